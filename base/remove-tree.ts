import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Removes a sandbox folder and everything in it; a missing folder is not an error.
 *
 * `fs.rmSync(dir, { recursive: true })` does the same, but loads and compiles Node's
 * internal rimraf module the first time, a visible share of a CLI call that deletes
 * one small folder. A sandbox folder holds a few files, sockets and at most a
 * `.supervision` folder, and nothing else writes into it while it is removed, so
 * neither rimraf's retries nor its busy-file handling are needed here.
 */
export function removeTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return fs.unlinkSync(dir);
    throw e;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) removeTree(p);
    else removeFile(p);
  }
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Unlinks one file (socket, symlink...); a missing one is not an error. Not rmSync: see above. */
export function removeFile(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
