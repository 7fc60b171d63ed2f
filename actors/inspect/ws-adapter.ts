import type WebSocket from 'ws';
import type { Logger } from '../../base/logger';

/** A viewer that is this far behind (bytes queued in the socket) misses events until it catches up. */
export const MAX_BUFFERED_BYTES = 1 << 20;
/** Events kept while the socket is not open yet, replayed on connect (the newest win). */
const MAX_DEFERRED = 200;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * The transport of `inspect: { url }`: each inspection message one JSON text frame, as
 * @statelyai/inspect's WebSocket adapter sends them, but bounded. Events are dropped (and counted) while the socket has more than
 * MAX_BUFFERED_BYTES queued or is closed, so a slow or absent inspector costs the
 * engine nothing but the drop; reconnects back off and never keep the process alive;
 * stop() ends it for good (the library's own adapter reconnects even after stop).
 */
export class BoundedWebSocketAdapter {
  /** Events dropped because the inspector could not keep up or was away. */
  dropped = 0;
  private ws: WebSocket | undefined;
  private open = false;
  private stopped = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly deferred: unknown[] = [];

  constructor(
    readonly url: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.stopped || this.ws) return;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { WebSocket: Ws } = require('ws') as typeof import('ws');
    // No permessage-deflate: zlib on every event would cost the engine more than the bytes saved on loopback.
    const ws = new Ws(this.url, { handshakeTimeout: 5_000, perMessageDeflate: false });
    this.ws = ws;
    ws.on('open', () => {
      this.open = true;
      this.retryMs = RETRY_MIN_MS;
      for (const e of this.deferred.splice(0)) this.write(e);
    });
    // Messages from the inspector are not commands: paddock takes none over this socket.
    ws.on('message', () => undefined);
    ws.on('error', (err) => this.log.debug({ err: err.message, url: this.url }, 'inspector socket error'));
    ws.on('close', () => {
      this.open = false;
      this.ws = undefined;
      if (this.stopped) return;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.start();
      }, this.retryMs);
      // A viewer that is away must not keep a host process from exiting.
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.deferred.length = 0;
    const ws = this.ws;
    this.ws = undefined;
    this.open = false;
    if (ws) {
      ws.removeAllListeners('close');
      ws.on('error', () => undefined);
      ws.terminate();
    }
  }

  send(event: unknown): void {
    if (this.stopped) return;
    if (!this.open) {
      this.deferred.push(event);
      if (this.deferred.length > MAX_DEFERRED) {
        this.deferred.shift();
        this.dropped++;
      }
      return;
    }
    this.write(event);
  }

  /** A tick's messages: their frames leave in one write (the socket is corked meanwhile). */
  sendAll(events: readonly unknown[]): void {
    const sock = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } } | undefined)?._socket;
    if (this.open && sock) sock.cork();
    try {
      for (const e of events) this.send(e);
    } finally {
      if (this.open && sock) sock.uncork();
    }
  }

  private write(event: unknown): void {
    const ws = this.ws;
    if (!ws || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.dropped++;
      return;
    }
    let text: string;
    try {
      text = JSON.stringify(event);
    } catch {
      this.dropped++;
      return;
    }
    ws.send(text);
  }
}
