import * as net from 'node:net';
import type { Fd, NativeFacade, WatchedExit } from '../native/facade';

const RECORD = 16;

/**
 * Host-side exit notifications for sandbox processes. The native layer watches every
 * pidfd with one epoll on one thread and writes a 16-byte record per exit to a pipe;
 * this class reads that pipe through libuv (no polling) and calls back per token.
 */
export class PidfdWatcher {
  private socket: net.Socket | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private readonly listeners = new Map<number, (exit: WatchedExit) => void>();
  private nextToken = 1;

  constructor(private readonly native: NativeFacade) {}

  /** Watch `pidfd`; `onExit` runs once. Returns the token to unwatch with. */
  watch(pidfd: Fd, onExit: (exit: WatchedExit) => void): number {
    this.ensureReading();
    const token = this.nextToken++;
    this.listeners.set(token, onExit);
    try {
      this.native.watch(pidfd, token);
    } catch (e) {
      this.listeners.delete(token);
      throw e;
    }
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

  /** Stop keeping the event loop alive; the native thread stays parked on epoll. */
  close(): void {
    for (const token of [...this.listeners.keys()]) this.unwatch(token);
    this.socket?.unref();
  }

  private ensureReading(): void {
    if (this.socket) return;
    const fd = this.native.watcherFd();
    const sock = new net.Socket({ fd, readable: true, writable: false });
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => undefined);
    this.socket = sock;
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
