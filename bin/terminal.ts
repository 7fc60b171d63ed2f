import * as os from 'node:os';
import * as path from 'node:path';
import { randomSuffix } from '../base/random-suffix';
import type { Fd, NativeFacade } from '../native/facade';
import { removeFile } from '../base/remove-tree';

/**
 * `run` in the foreground with `process.terminal` and no --console-socket, as runc
 * does: this process is its own console socket (a listener in the temp dir that the
 * engine sends the pty master to), then relays the terminal to its own stdio.
 */
export interface OwnConsole {
  readonly socket: string;
  /** The master the engine sent us (call once create has returned). */
  take(): Fd;
  close(): void;
}

export function ownConsole(): OwnConsole {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadNative } = require('../native/ffi') as { loadNative: () => NativeFacade };
  const native = loadNative();
  // Short and private: sun_path holds 107 bytes, and the socket is 0600 root.
  const socket = path.join(os.tmpdir(), `paddock-tty-${process.pid}-${randomSuffix()}.sock`);
  const listenFd = native.consoleListen(socket, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    native.closeFd(listenFd);
    removeFile(socket);
  };
  return {
    socket,
    // The sender is this very process (the engine's hand-off), already queued.
    take: () => {
      try {
        return native.consoleAccept(listenFd, process.pid, 5_000);
      } finally {
        close();
      }
    },
    close,
  };
}

/**
 * Copies our stdin to the terminal (raw, when stdin is a terminal itself) and the
 * terminal to our stdout. `finish` waits (bounded) for the last output, which ends
 * with EIO once every slave is closed, then restores our terminal.
 */
export function relayTerminal(master: Fd): { finish(): Promise<void> } {
  // Required here: `create` and `run` import this module, and only a terminal needs tty.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tty = require('node:tty') as typeof import('node:tty');
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  const output = new tty.ReadStream(master);
  const input = new tty.WriteStream(master);
  const ended = new Promise<void>((resolve) => {
    output.on('end', resolve);
    output.on('error', () => resolve()); // EIO: the last slave closed
    output.on('close', resolve);
  });
  output.pipe(process.stdout, { end: false });
  stdin.pipe(input);
  input.on('error', () => undefined);
  return {
    async finish() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, 2_000)))]);
      clearTimeout(timer);
      stdin.unpipe(input);
      if (raw) stdin.setRawMode(false);
      stdin.destroy();
      output.destroy();
      input.destroy();
    },
  };
}
