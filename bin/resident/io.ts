import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tty from 'node:tty';
import { Writable } from 'node:stream';
import type { CliIo } from '../context';

/**
 * A client's fd as a Writable for paddockd: asynchronous writes (a caller that stops
 * reading its pipe holds up this call, never the daemon's other calls), in order,
 * without changing the fd's flags (it is a copy of the caller's own open file, which
 * the caller's parent may share). `end()` resolves once every byte is written.
 */
class FdWriter extends Writable {
  constructor(private readonly fd: number) {
    super({ decodeStrings: true });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const writeFrom = (off: number): void => {
      fs.write(this.fd, chunk, off, chunk.length - off, null, (e, n) => {
        // A pipe the caller made non-blocking: wait a little, as a blocking write would.
        if (e && (e as NodeJS.ErrnoException).code === 'EAGAIN') return void setTimeout(() => writeFrom(off), 2);
        // A reader gone (EPIPE) is the caller's business; the call goes on as runc's would after SIGPIPE is ignored.
        if (e) return cb();
        if (off + n < chunk.length) return writeFrom(off + n);
        cb();
      });
    };
    writeFrom(0);
  }
}

export interface ResidentIo extends CliIo {
  /** Waits for every write to reach its fd, then closes the fds this call took from the client. */
  finish(): Promise<void>;
}

/** The client's stdio fds (copies taken by pidfd_getfd) as a command's CliIo. */
export function residentIo(fds: readonly [number, number, number], cwd: string, env: Record<string, string>): ResidentIo {
  const stdout = new FdWriter(fds[1]);
  const stderr = new FdWriter(fds[2]);
  let stdin: (NodeJS.ReadableStream & { isTTY?: boolean; unpipe(): unknown; destroy(): unknown }) | undefined;
  let stdinOwnsFd = false;
  const ended = (w: Writable) => new Promise<void>((resolve) => (w.writableFinished ? resolve() : w.end(resolve)));
  return {
    stdout,
    stderr,
    stdinFd: fds[0],
    cwd,
    env,
    get stdin() {
      if (!stdin) {
        const st = fs.fstatSync(fds[0]);
        const isTTY = tty.isatty(fds[0]);
        if (!isTTY && (st.isFIFO() || st.isSocket())) {
          // Through libuv's poll, not the thread pool: a read that waits for a writer must not hold a pool thread.
          stdin = Object.assign(new net.Socket({ fd: fds[0], readable: true, writable: false }), { isTTY: false });
          stdinOwnsFd = true;
        } else {
          stdin = Object.assign(fs.createReadStream('', { fd: fds[0], autoClose: false }), { isTTY });
        }
      }
      return stdin;
    },
    async finish() {
      await Promise.all([ended(stdout), ended(stderr)]);
      stdin?.destroy();
      for (const [i, fd] of fds.entries()) {
        if (i === 0 && stdinOwnsFd) continue;
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
      }
    },
  };
}
