import type * as nano from 'nanomsg';
import { decode } from '../../protocols/decode';
import { encode } from '../../protocols/encode';
import type { Message, MessageOf } from '../../protocols/messages';
import { WireCode } from '../../protocols/messages';
import { ChannelError, LaunchError, PaddockError, StateError } from '../../base/errors';
import type { ErrorCode } from '../../base/errors';

/** How long an unused control socket stays open (see ControlClient). */
export const DEFAULT_IDLE_CLOSE_MS = 1_000;

type Request = Exclude<Message, { type: 'OK' | 'ERROR' | 'EV_STARTED' | 'EV_EXITED' | 'EV_PROBE' | 'SANDBOX_PLAN' }>;

interface Pending {
  readonly req: Request;
  readonly resolve: (m: MessageOf<'OK'>) => void;
  readonly reject: (e: Error) => void;
  readonly timeoutMs: number;
  /** `req` already encoded (see `encodeRequest`). */
  readonly bytes?: Buffer;
}

/**
 * The supervisor's end of a sandbox's control channel (nanomsg REQ over
 * `ipc://<dir>/control.sock`). A REQ socket carries one request at a time, so
 * requests queue here; each has a timeout, and a reply that arrives after its
 * request timed out is dropped by REQ's own request ids.
 *
 * The socket is opened by the first request and closed once no request has been
 * pending for `idleCloseMs`. An idle sandbox is most sandboxes: a nanomsg socket and
 * its connection cost the supervisor ~14 KiB and three fds each, which for a thousand
 * idle sandboxes was a fifth of the supervisor's memory. Reconnecting to init's
 * already bound socket is local and queued by REQ itself, so a request after a quiet
 * spell pays only the connect (tens of microseconds).
 */
export class ControlClient {
  private sock: nano.NanoSocket | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly queue: Pending[] = [];
  private current: (Pending & { timer: NodeJS.Timeout }) | undefined;
  private closed = false;

  constructor(
    readonly sandboxId: string,
    private readonly socketPath: string,
    private readonly defaultTimeoutMs = 5_000,
    private readonly idleCloseMs = DEFAULT_IDLE_CLOSE_MS,
  ) {}

  /** Whether a socket is open now (tests, and the memory it stands for). */
  get connected(): boolean {
    return this.sock !== undefined;
  }

  private open(): nano.NanoSocket {
    // Reconnect fast: init binds its socket a few ms after we may first connect.
    const sock = nanomsg().socket('req', { reconn: 1, maxreconn: 10 });
    sock.on('data', (buf: Buffer) => {
      if (sock === this.sock) this.onReply(buf);
    });
    sock.on('error', (e: Error) => {
      if (sock === this.sock) this.failCurrent(new ChannelError('ECONTROL', `control channel: ${e.message}`, { sandboxId: this.sandboxId }));
    });
    sock.connect(`ipc://${this.socketPath}`);
    return sock;
  }

  /**
   * `bytes`, when given, is `encodeRequest(req)` made earlier: a request known in
   * advance (a prepared container's start) then costs no encoding on its critical path.
   */
  request<T extends Request>(req: T, timeoutMs = this.defaultTimeoutMs, bytes?: Buffer): Promise<MessageOf<'OK'>> {
    if (this.closed) {
      return Promise.reject(new ChannelError('ECONTROL', 'control channel is closed', { sandboxId: this.sandboxId }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject, timeoutMs, ...(bytes ? { bytes } : {}) });
      this.pump();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new ChannelError('ECONTROL', 'control channel closed', { sandboxId: this.sandboxId });
    this.failCurrent(err);
    for (const p of this.queue.splice(0)) p.reject(err);
    this.drop();
  }

  private drop(): void {
    this.cancelIdle();
    this.sock?.close();
    this.sock = undefined;
  }

  private cancelIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private pump(): void {
    if (this.current || this.closed) return;
    const next = this.queue.shift();
    if (!next) {
      // Nothing left to send: the socket goes after a quiet spell (never keeps Node alive).
      if (this.sock && !this.idleTimer) {
        this.idleTimer = setTimeout(() => this.drop(), this.idleCloseMs);
        this.idleTimer.unref();
      }
      return;
    }
    this.cancelIdle();
    const sock = (this.sock ??= this.open());
    const timer = setTimeout(() => {
      // A peer that swallowed a request may never answer on this socket again; the next
      // request starts afresh on a new one.
      this.drop();
      this.failCurrent(
        new ChannelError('ETIMEOUT', `control request ${next.req.type} got no reply in ${next.timeoutMs} ms`, {
          sandboxId: this.sandboxId,
          step: next.req.type,
        }),
      );
    }, next.timeoutMs);
    this.current = { ...next, timer };
    try {
      sock.send(next.bytes ?? encode(next.req));
    } catch (e) {
      this.failCurrent(new ChannelError('ECONTROL', `control send failed: ${(e as Error).message}`, { sandboxId: this.sandboxId }));
    }
  }

  private onReply(buf: Buffer): void {
    const cur = this.current;
    if (!cur) return;
    clearTimeout(cur.timer);
    this.current = undefined;
    let msg: Message;
    try {
      msg = decode(buf);
    } catch (e) {
      cur.reject(new ChannelError('EPROTOCOL', `bad reply to ${cur.req.type}: ${(e as Error).message}`, { sandboxId: this.sandboxId }));
      this.pump();
      return;
    }
    if (msg.type === 'OK') cur.resolve(msg);
    else if (msg.type === 'ERROR') cur.reject(wireError(msg, this.sandboxId, cur.req));
    else cur.reject(new ChannelError('EPROTOCOL', `unexpected reply ${msg.type} to ${cur.req.type}`, { sandboxId: this.sandboxId }));
    this.pump();
  }

  private failCurrent(err: Error): void {
    const cur = this.current;
    if (!cur) return;
    clearTimeout(cur.timer);
    this.current = undefined;
    cur.reject(err);
    this.pump();
  }
}

/**
 * The nanomsg addon, loaded by the first socket: a CLI call that reads state only
 * (`paddock state`, attachChannels false) never opens one, and loading it costs ~15 ms.
 */
export function nanomsg(): typeof nano {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('nanomsg') as typeof nano;
}

/** A request's wire form, for `ControlClient.request(req, timeoutMs, bytes)`. */
export function encodeRequest(req: Request): Buffer {
  return encode(req);
}

/** Turns an ERROR reply into the typed error the engine raises. Codes travel as numbers, never strings to match. */
export function wireError(msg: MessageOf<'ERROR'>, sandboxId: string, req?: Request): PaddockError {
  const containerId = req && 'cid' in req ? req.cid : undefined;
  const ctx = {
    sandboxId,
    ...(containerId !== undefined ? { containerId } : {}),
    ...(msg.step !== undefined ? { step: msg.step } : {}),
    ...(msg.errno !== undefined ? { errno: msg.errno } : {}),
  };
  const detail = msg.msg ? ` (${msg.msg})` : '';
  switch (msg.code) {
    case WireCode.LAUNCH:
      // A container hook is the caller's program failing, not a step of paddock's
      // (docs/decisions/0010): the same code as the hooks run on the host.
      if (msg.step?.startsWith('hook ')) return new PaddockError('EHOOK_FAILED', `${msg.step}: ${msg.msg ?? errnoText(msg.errno)}`, ctx);
      return new LaunchError(`${msg.step ?? 'launch'}: ${errnoText(msg.errno)}${detail}`, ctx);
    case WireCode.NOT_FOUND:
      return new StateError(req?.type === 'WAIT_PID' || (req?.type === 'SIGNAL' && req.pid) ? 'EPROCESS_NOT_FOUND' : 'ECONTAINER_NOT_FOUND', `not found in sandbox ${sandboxId}${detail}`, ctx);
    case WireCode.EXISTS:
      return new StateError('ECONTAINER_EXISTS', `container ${containerId ?? ''} already exists in sandbox ${sandboxId}`, ctx);
    case WireCode.BAD_STATE:
      return new StateError('EINVALID_STATE', `${req?.type.toLowerCase() ?? 'request'} not allowed now${detail}`, ctx);
    case WireCode.BAD_SIGNAL:
      return new PaddockError('EINVALID_SIGNAL', `invalid signal${detail}`, ctx);
    case WireCode.BAD_MESSAGE:
      return new ChannelError('EPROTOCOL', `paddock-init rejected the request${detail}`, ctx);
    default:
      return new ChannelError('ECONTROL' as ErrorCode, `paddock-init failed${detail}`, ctx);
  }
}

function errnoText(errno: number | undefined): string {
  if (errno === undefined) return 'failed';
  try {
    // Lazy: errno names come from the native package's table, which has no native dependency.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { errnoName } = require('../../base/errno') as { errnoName: (n: number) => string };
    return errnoName(errno);
  } catch {
    return `errno ${errno}`;
  }
}
