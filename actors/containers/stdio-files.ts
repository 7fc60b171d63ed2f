import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { Fd, NativeFacade } from '../../native/facade';

/**
 * stdio of sandboxed processes. paddock-init opens per-process log files in the
 * sandbox's state dir and hands them to the process as fd 1 and 2 (O_APPEND), so a
 * process never blocks on a pipe nobody reads and no output is lost when the
 * supervisor goes away; the supervisor streams the files. stdin is a FIFO that the
 * supervisor holds open for writing before the process starts.
 */

const CHUNK = 256 * 1024;

/**
 * A Readable over a growing log file: reads from `start`, and with `follow` keeps
 * reading as the file grows (inotify through fs.watch, no timers) until `done`
 * resolves — the writer has exited — and the last bytes are read. When paddock-init
 * rotates the file at its cap (renamed to `<file>.1`, a new one begun; decision
 * 0031), the stream reads the old inode to its end and goes on at the start of the
 * new file, so nothing written after the cap is missed.
 */
export function tailFile(file: string, opts: { follow: boolean; done: Promise<unknown>; start?: number }): Readable {
  let pos = opts.start ?? 0;
  let fd: number | undefined;
  let watcher: fs.FSWatcher | undefined;
  let finished = !opts.follow;
  let wake: (() => void) | undefined;
  let reading = false;
  /** The path names another file than fd: read fd to its end once more, then switch. */
  let rotated = false;
  let watchingDir = false;
  void opts.done.then(
    () => {
      finished = true;
      wake?.();
    },
    () => {
      finished = true;
      wake?.();
    },
  );

  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (!reading) void pump();
    },
    destroy(err, cb) {
      finished = true;
      watcher?.close();
      if (fd !== undefined) fs.close(fd, () => cb(err));
      else cb(err);
      wake?.();
    },
  });

  // Growth seen by inotify while we were reading is remembered, so a write that
  // lands between a short read and the wait is never slept through.
  let dirty = false;
  const changed = (): void => {
    dirty = true;
    wake?.();
  };
  function ensureWatcher(): void {
    if (watcher && !watchingDir) return;
    try {
      const w = fs.watch(file, changed);
      watcher?.close();
      watcher = w;
      watchingDir = false;
    } catch {
      // The file does not exist (yet, or for the instant of a rotation): watch its
      // folder for it, and watch the file itself at the next try.
      if (watcher) return;
      try {
        const base = path.basename(file);
        watcher = fs.watch(path.dirname(file), (_ev, name) => {
          if (name === null || name === base) changed();
        });
        watchingDir = true;
      } catch {
        // No folder either: `done` still wakes us.
      }
    }
  }

  function fstatOf(f: number): Promise<fs.Stats | undefined> {
    return new Promise((res) => fs.fstat(f, (e, s) => res(e ? undefined : s)));
  }

  /** `<file>.1` opened, if it is not the part just read; else undefined (open `file`). */
  async function nextPart(doneIno: number | undefined): Promise<number | undefined> {
    let f: number;
    try {
      f = await new Promise<number>((res, rej) => fs.open(`${file}.1`, 'r', (e, x) => (e ? rej(e) : res(x))));
    } catch {
      return undefined;
    }
    const st = await fstatOf(f);
    if (st !== undefined && st.ino !== doneIno) return f;
    await new Promise<void>((resolve) => fs.close(f, () => resolve()));
    return undefined;
  }

  /** Whether `file` now names another inode than the open fd (init rotated it). */
  async function rotatedAway(f: number): Promise<boolean> {
    try {
      const [now, open] = await Promise.all([fs.promises.stat(file), new Promise<fs.Stats>((res, rej) => fs.fstat(f, (e, s) => (e ? rej(e) : res(s))))]);
      return now.ino !== open.ino || now.dev !== open.dev;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }

  async function waitForChange(): Promise<void> {
    ensureWatcher();
    if (!dirty && !finished) await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
    dirty = false;
  }

  async function pump(): Promise<void> {
    reading = true;
    try {
      for (;;) {
        if (stream.destroyed) return;
        if (fd === undefined) {
          try {
            fd = await new Promise<number>((resolve, reject) =>
              fs.open(file, 'r', (err, f) => (err ? reject(err) : resolve(f))),
            );
          } catch {
            if (finished) {
              stream.push(null);
              return;
            }
            await waitForChange();
            continue;
          }
        }
        // Sampled before the read: a read that finds nothing after the writer was done
        // is the true end; one that raced its exit is simply retried.
        const wasFinished = finished;
        if (opts.follow) ensureWatcher();
        dirty = false;
        const buf = Buffer.allocUnsafe(CHUNK);
        const n = await new Promise<number>((resolve, reject) =>
          fs.read(fd as number, buf, 0, CHUNK, pos, (err, bytes) => (err ? reject(err) : resolve(bytes))),
        );
        if (n > 0) {
          pos += n;
          if (!stream.push(buf.subarray(0, n))) return;
          continue;
        }
        if (opts.follow && rotated) {
          // The old file is read to its end: go on from the start of the next part.
          // Usually that is the new file; when init rotated more than once meanwhile,
          // `<file>.1` is a part we have not read (an older one is gone for good).
          rotated = false;
          const old = fd;
          const oldIno = (await fstatOf(old))?.ino;
          fd = await nextPart(oldIno);
          pos = 0;
          watcher?.close();
          watcher = undefined;
          dirty = true;
          await new Promise<void>((resolve) => fs.close(old, () => resolve()));
          continue;
        }
        if (opts.follow && (await rotatedAway(fd))) {
          rotated = true;
          continue;
        }
        if (wasFinished) {
          watcher?.close();
          stream.push(null);
          return;
        }
        if (finished) continue;
        await waitForChange();
      }
    } catch (e) {
      stream.destroy(e as Error);
    } finally {
      reading = false;
    }
  }
  return stream;
}

/**
 * Creates the stdin FIFO and opens it read-write without blocking, before the
 * process exists: a FIFO read with no writer returns EOF at once, so the writer
 * must be there first. Closing the returned stream is the process's EOF.
 */
export function openStdinFifo(native: NativeFacade, file: string, ownerUid: number, ownerGid: number): { stream: Writable; fd: number } {
  native.mkfifo(file, 0o600);
  fs.chownSync(file, ownerUid, ownerGid);
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const sock = new net.Socket({ fd, readable: false, writable: true });
  // An unused stdin must not keep the host's event loop alive.
  sock.unref();
  sock.on('error', () => undefined);
  return { stream: sock, fd };
}

/** A stdin for processes started without 'pipe': writes are refused. */
export function closedWritable(): Writable {
  const w = new Writable({
    write(_chunk, _enc, cb) {
      cb(new Error('stdin is not a pipe for this process'));
    },
  });
  w.end();
  return w;
}

export type { Fd };
