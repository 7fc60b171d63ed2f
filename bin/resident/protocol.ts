/**
 * The wire between the native `paddock` client (native/c/client/) and paddockd, over
 * `<root>/paddockd.sock` (docs/decisions/0044). Small on purpose: the client is C.
 *
 * Client → daemon, once: "PDK1", u32 LE length, then NUL-terminated strings:
 *   version, cwd, argc, argv..., envc, env ("K=V")...
 * Daemon → client, frames of one type byte, u32 LE length, payload:
 *   H  accepted (the call runs); K  still running (every KEEPALIVE_MS);
 *   X  exit code (decimal), the last frame; F  run this call in-process (reason);
 *   V  version mismatch: this daemon drains and exits, connect again (its version);
 *   S  start yourself again as my caller's child with these argv (NUL-separated);
 *   L  launch paddock-init (launch-plan.ts) and keep it as your child.
 * Client → daemon after the request, frames of the same shape: P  reply to S
 * (decimal pid, or -errno); R  reply to L (launch-plan.ts).
 */
export const MAGIC = 'PDK1';
/** Wire version: the client and the daemon must carry the same (a build of one package). */
export const PROTOCOL = 2;
export const MAX_REQUEST_BYTES = 1 << 20;
export const KEEPALIVE_MS = 1000;
export const SOCKET_NAME = 'paddockd.sock';
export { RESIDENT_LOCK_NAME as LOCK_NAME } from '../../actors/sandbox/state-store';
export const LOG_NAME = 'paddockd.log';

export interface CallRequest {
  readonly version: string;
  readonly cwd: string;
  readonly argv: string[];
  readonly env: Record<string, string>;
}

export class ProtocolError extends Error {
  readonly code = 'EPROTOCOL';
}

/** The request, once `buf` holds it whole; undefined while more bytes are needed. Throws ProtocolError on anything malformed. */
export function parseRequest(buf: Buffer): { request: CallRequest; rest: Buffer } | undefined {
  if (buf.length >= 4 && buf.toString('latin1', 0, 4) !== MAGIC) throw new ProtocolError('not a paddock client (bad magic)');
  if (buf.length < 8) return undefined;
  const len = buf.readUInt32LE(4);
  if (len > MAX_REQUEST_BYTES) throw new ProtocolError(`request of ${len} bytes (at most ${MAX_REQUEST_BYTES})`);
  if (buf.length < 8 + len) return undefined;
  const body = buf.subarray(8, 8 + len);
  if (len === 0 || body[len - 1] !== 0) throw new ProtocolError('request not NUL-terminated');
  const fields = body.toString('utf8', 0, len - 1).split('\0');
  let i = 0;
  const next = (what: string): string => {
    const f = fields[i++];
    if (f === undefined) throw new ProtocolError(`request ends before its ${what}`);
    return f;
  };
  const count = (what: string): number => {
    const t = next(what);
    if (!/^\d{1,6}$/.test(t)) throw new ProtocolError(`bad ${what}: ${JSON.stringify(t.slice(0, 20))}`);
    return Number(t);
  };
  const version = next('version');
  const cwd = next('cwd');
  if (!cwd.startsWith('/')) throw new ProtocolError('cwd is not absolute');
  const argv: string[] = [];
  for (let n = count('argc'); n > 0; n--) argv.push(next('argv'));
  const env: Record<string, string> = {};
  for (let n = count('envc'); n > 0; n--) {
    const kv = next('env');
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new ProtocolError('env entry without a name');
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (i !== fields.length) throw new ProtocolError('trailing fields in request');
  return { request: { version, cwd, argv, env }, rest: buf.subarray(8 + len) };
}

export function frame(type: string, payload: string | Buffer = ''): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(5);
  head.write(type, 0, 1, 'latin1');
  head.writeUInt32LE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Frames from the client after its request: feed bytes, get whole frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Array<{ type: string; payload: Buffer }> {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<{ type: string; payload: Buffer }> = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32LE(1);
      if (len > MAX_REQUEST_BYTES) throw new ProtocolError(`frame of ${len} bytes`);
      if (this.buf.length < 5 + len) break;
      out.push({ type: this.buf.toString('latin1', 0, 1), payload: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
}
