import * as fs from 'node:fs';
import * as net from 'node:net';
import { Readable, Writable } from 'node:stream';
import type { Fd, NativeFacade } from '../native/facade';

/**
 * stdio of sandboxed processes. paddock-init opens per-process log files in the
 * sandbox's state dir and hands them to the process as fd 1 and 2 (O_APPEND), so a
 * process never blocks on a pipe nobody reads and no output is lost when the
 * supervisor goes away; the supervisor streams the files. stdin is a FIFO that the
 * supervisor holds open for writing before the process starts.
 */

export interface StdioStreams {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
}

const CHUNK = 256 * 1024;

/**
 * A Readable over a growing log file: reads from `start`, and with `follow` keeps
 * reading as the file grows (inotify through fs.watch, no timers) until `done`
 * resolves — the writer has exited — and the last bytes are read.
 */
export function tailFile(file: string, opts: { follow: boolean; done: Promise<unknown>; start?: number }): Readable {
  let pos = opts.start ?? 0;
  let fd: number | undefined;
  let watcher: fs.FSWatcher | undefined;
  let finished = !opts.follow;
  let wake: (() => void) | undefined;
  let reading = false;
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
  function ensureWatcher(): void {
    if (watcher) return;
    try {
      watcher = fs.watch(file, () => {
        dirty = true;
        wake?.();
      });
    } catch {
      // The file does not exist yet; `done` still wakes us, and we retry.
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
