/**
 * The lock of a small table every engine on a state dir shares (the userns id pool, the
 * bridge's address leases): an O_EXCL file holding "pid starttime" for one read-modify-
 * write. A lock whose process is gone is taken over; so is an empty one once it is a
 * second old (its maker died between the open and the write: before, it stayed locked
 * for good). The wait is synchronous, so the table's update is one uninterrupted step in
 * this process, and bounded.
 */
import * as fs from 'node:fs';
import { PaddockError } from '../../base/errors';
import { removeFile } from '../../base/remove-tree';
import { processStartTime } from './state-store';

const EMPTY_STALE_MS = 1_000;

/** Runs `fn` holding `lockFile`; ELOCKED naming `what` after `timeoutMs`. The lock goes whatever `fn` does. */
export function withTableLock<T>(lockFile: string, what: string, timeoutMs: number, fn: () => T): T {
  take(lockFile, what, timeoutMs);
  try {
    return fn();
  } finally {
    removeFile(lockFile);
  }
}

function take(lockFile: string, what: string, timeoutMs: number): void {
  const me = `${process.pid} ${processStartTime(process.pid) ?? 0}\n`;
  const deadline = Date.now() + timeoutMs;
  let wait = 1;
  for (;;) {
    try {
      const fd = fs.openSync(lockFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      try {
        fs.writeSync(fd, me);
      } finally {
        fs.closeSync(fd);
      }
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner: string;
    let age: number;
    try {
      owner = fs.readFileSync(lockFile, 'utf8');
      age = Date.now() - fs.statSync(lockFile).mtimeMs;
    } catch {
      continue; // let go meanwhile
    }
    const [pidText, startText] = owner.trim().split(' ');
    const pid = Number(pidText);
    const stale = owner === '' ? age > EMPTY_STALE_MS : !(Number.isInteger(pid) && pid > 0 && processStartTime(pid) === Number(startText));
    if (stale) {
      removeFile(lockFile);
      continue;
    }
    if (Date.now() > deadline) throw new PaddockError('ELOCKED', `${what} is locked by process ${owner === '' ? '(being written)' : pid}`, { path: lockFile });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
    wait = Math.min(wait * 2, 20);
  }
}
