/**
 * Whole-file reads and writes: writes that never leave a torn file, for state a crash
 * must not corrupt, and reads of files that may be gone (procfs, cgroupfs, sysfs).
 */
import * as fs from 'node:fs';
import { removeFile } from './remove-tree';

/** Puts a written temp file in place of the target (the native layer's exchange, decision 0016). */
export type ReplaceFile = (tmp: string, target: string) => void;

/**
 * A reader (or a supervisor restarted after a crash) sees either the old or the new
 * content, never a torn file. With `replace` the content goes to `<file>.next` and the
 * native layer exchanges the two names (no new inode per write, decision 0016); without
 * it, or when that fails, a fresh temp file is renamed over the target. No fsync unless
 * `durable`: a process crash keeps the page cache, and a host crash ends the sandboxes
 * the file describes, so 1-2 ms per write on ext4 would buy nothing (decision 0004).
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600, durable = false, replace?: ReplaceFile): void {
  if (replace && !durable) {
    const next = `${file}.next`;
    try {
      writeNext(next, data, mode);
      replace(next, file);
      return;
    } catch {
      // Below: a fresh temp file and a plain rename, as atomic, only slower on ext4.
      removeFile(next);
    }
  }
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, mode);
  try {
    try {
      if (typeof data === 'string') fs.writeSync(fd, data);
      else fs.writeSync(fd, data);
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    // A full disk or a vanished folder: no half-written temp file stays behind.
    try {
      removeFile(tmp);
    } catch {
      // the error that matters is the write's
    }
    throw e;
  }
}

/**
 * `<file>.next` is the previous content after an exchange (pd_replace_file): it is
 * overwritten in place, which costs no inode allocation and free, unlike a new temp
 * file per write. Whoever owns the file's lock is its only writer (a crash between
 * this write and the exchange leaves only `.next` incomplete).
 */
function writeNext(next: string, data: string | Buffer, mode: number): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = fs.openSync(next, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, mode);
  try {
    fs.writeSync(fd, buf, 0, buf.length, 0);
    fs.ftruncateSync(fd, buf.length);
  } finally {
    fs.closeSync(fd);
  }
}

/** A file's text, or undefined when it cannot be read (gone, a permission, a vanished cgroup). */
export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
