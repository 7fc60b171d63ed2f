import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Fd, NativeFacade, WatchedExit } from '../../native/facade';

const RECORD = 16;

/**
 * Host-side exit notifications for sandbox processes. The native layer watches every
 * pidfd of the process with one epoll on one thread; this class opens its own exit
 * channel (a pipe of its own, so several engines in one process never share or steal
 * records), reads it through libuv (no polling) and calls back per token.
 */
export class PidfdWatcher {
  private channel: Fd | undefined;
  private socket: net.Socket | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private readonly listeners = new Map<number, (exit: WatchedExit) => void>();

  constructor(private readonly native: NativeFacade) {}

  /** Watch `pidfd`; `onExit` runs once. Returns the token to unwatch with. */
  watch(pidfd: Fd, onExit: (exit: WatchedExit) => void): number {
    const channel = this.ensureChannel();
    // No record can be read before we return to the event loop, so registering the
    // callback after the native call loses nothing.
    const token = this.native.watch(channel, pidfd);
    this.listeners.set(token, onExit);
    this.updateRef();
    return token;
  }

  /** Watch any fd (an OOM eventfd): `onReadable` runs once, when it first is. */
  watchReadable(fd: Fd, onReadable: () => void): number {
    const channel = this.ensureChannel();
    const token = this.native.watchReadable(channel, fd);
    this.listeners.set(token, () => onReadable());
    this.updateRef();
    return token;
  }

  unwatch(token: number): void {
    if (!this.listeners.delete(token)) return;
    try {
      this.native.unwatch(token);
    } catch {
      // Already reported and removed natively.
    }
    this.updateRef();
  }

  /**
   * Release everything: every watch of this watcher, its channel (the native side's
   * write end) and the read end. No callback runs afterwards. A later watch() opens
   * a new channel.
   */
  close(): void {
    this.listeners.clear();
    const channel = this.channel;
    const socket = this.socket;
    this.channel = undefined;
    this.socket = undefined;
    this.pending = Buffer.alloc(0);
    if (channel === undefined) return;
    try {
      this.native.closeWatchChannel(channel);
    } finally {
      // The socket owns the read end and closes it.
      socket?.removeAllListeners('data');
      socket?.destroy();
    }
  }

  private ensureChannel(): Fd {
    if (this.channel !== undefined) return this.channel;
    const fd = this.native.openWatchChannel();
    let sock: net.Socket;
    try {
      sock = new net.Socket({ fd, readable: true, writable: false });
    } catch (e) {
      try {
        this.native.closeWatchChannel(fd);
      } finally {
        fs.closeSync(fd); // a real fd either way (FakeNative's channels are real pipes)
      }
      throw e;
    }
    sock.on('data', (chunk: Buffer) => {
      if (this.socket === sock) this.onData(chunk);
    });
    sock.on('error', () => undefined);
    sock.unref();
    this.channel = fd;
    this.socket = sock;
    return fd;
  }

  /** Only watched processes should keep a host process alive. */
  private updateRef(): void {
    if (!this.socket) return;
    if (this.listeners.size > 0) this.socket.ref();
    else this.socket.unref();
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (this.pending.length - off >= RECORD) {
      const exit: WatchedExit = {
        token: this.pending.readUInt32LE(off),
        reaped: this.pending.readInt32LE(off + 4) !== 0,
        exitCode: this.pending.readInt32LE(off + 8),
        signal: this.pending.readInt32LE(off + 12),
      };
      off += RECORD;
      // Unknown tokens (unwatched after the record was written) are dropped.
      const cb = this.listeners.get(exit.token);
      if (cb) {
        this.listeners.delete(exit.token);
        cb(exit);
      }
    }
    this.pending = this.pending.subarray(off);
    this.updateRef();
  }
}
