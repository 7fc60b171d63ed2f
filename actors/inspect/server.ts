import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Observable, Subscription } from 'rxjs';
import type WebSocket from 'ws';
import { PaddockError, isPaddockError } from '../../base/errors';
import type { Logger } from '../../base/logger';
import { checkOptionKeys } from '../../base/options';
import type { EngineEvent, InspectorServer, ServeInspectorOptions, StatsEvent, StatsOptions } from '../engine/api';
import { SERVE_INSPECTOR_KEYS } from '../engine/option-keys';
import { LiveFeed, type PageMessage } from './feed';
import type { InspectionHub } from './hub';

/** What the live view watches and, with actions on, acts on: the engine, seen narrowly. */
export interface LiveViewHost {
  readonly hub: InspectionHub;
  readonly events$: Observable<EngineEvent>;
  readonly log: Logger;
  stats$(sandboxId: string, opts: StatsOptions): Observable<StatsEvent>;
  signal(sandboxId: string, containerId: string, signal: string): Promise<void>;
  pause(sandboxId: string): Promise<void>;
  resume(sandboxId: string): Promise<void>;
}

/** A viewer this far behind (bytes queued) misses frames until it drains, then gets the present again. */
const MAX_BUFFERED_BYTES = 1 << 20;
const MAX_VIEWERS = 32;
/** Client messages are small actions; anything bigger is not one. */
const MAX_MESSAGE_BYTES = 16 * 1024;
const TICK_MS = 250;
const STATS_INTERVAL_MS = 2_000;
/** Sparklines for at most this many sandboxes: each is a cgroup read every interval. */
const MAX_SAMPLED = 200;
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

interface Viewer {
  ws: WebSocket;
  lagging: boolean;
}

/**
 * Serves paddock's live view: one page (assets from actors/inspect-page, shipped in the
 * package) and a WebSocket that streams what the engine's actors do. Loopback and a
 * token by default; a viewer that is slow is skipped and brought up to date when it
 * drains, garbage from a client closes its socket, and nothing a viewer does makes the
 * engine wait.
 */
export async function serveInspector(host: LiveViewHost, opts: ServeInspectorOptions = {}): Promise<InspectorServer> {
  const o = checkServeOptions(opts);
  const assets = loadAssets();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { WebSocketServer } = require('ws') as typeof import('ws');
  const viewers = new Set<Viewer>();
  const feed = new LiveFeed((batch) => deliver(batch));
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const server = http.createServer((req, res) => serveHttp(req, res));
  let listening: { host: string; port: number } = { host: o.host, port: o.port };

  function deliver(batch: PageMessage[]): void {
    if (viewers.size === 0) return;
    const text = JSON.stringify(batch);
    for (const v of viewers) {
      if (v.lagging) continue;
      if (v.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        v.lagging = true;
        continue;
      }
      v.ws.send(text);
    }
  }

  function serveHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = ASSETS[url.pathname];
    const headers = {
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // The token is in the page's URL: no Referer may carry it anywhere.
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    };
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, headers).end();
      return;
    }
    if ((req.method !== 'GET' && req.method !== 'HEAD') || file === undefined) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('paddock inspect: not found\n');
      return;
    }
    // The page itself asks for the token; its script and style hold no data.
    if (file === 'index.html' && !tokenMatches(url.searchParams.get('token'), o.token)) {
      res.writeHead(403, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('paddock inspect: wrong or missing token; open the address with ?token= that was printed when the view started\n');
      return;
    }
    const body = assets.get(file) as Buffer;
    res.writeHead(200, { ...headers, 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const refuse = (status: string, why: string) => {
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(why)}\r\n\r\n${why}`);
    };
    socket.on('error', () => undefined);
    if (url.pathname !== '/ws') return refuse('404 Not Found', 'paddock inspect: no such socket\n');
    if (!tokenMatches(url.searchParams.get('token'), o.token)) return refuse('403 Forbidden', 'paddock inspect: wrong or missing token\n');
    if (viewers.size >= MAX_VIEWERS) return refuse('503 Service Unavailable', `paddock inspect: already ${MAX_VIEWERS} viewers\n`);
    wss.handleUpgrade(req, socket, head, (ws) => welcome(ws));
  });

  function welcome(ws: WebSocket): void {
    const v: Viewer = { ws, lagging: false };
    viewers.add(v);
    ws.on('error', () => undefined);
    ws.on('close', () => viewers.delete(v));
    ws.on('message', (data, isBinary) => onMessage(v, data as Buffer, isBinary));
    const hello: PageMessage = { t: 'hello', actions: o.actions, version: 1, now: Date.now() };
    ws.send(JSON.stringify([hello, ...feed.present()]));
  }

  function onMessage(v: Viewer, data: Buffer, isBinary: boolean): void {
    let msg: unknown;
    try {
      msg = isBinary ? undefined : JSON.parse(data.toString('utf8'));
    } catch {
      msg = undefined;
    }
    const action = parseAction(msg);
    if (!action) {
      // Not a page of ours: say why in one line and hang up.
      const why = 'paddock inspect: expected a JSON action {t:"action",ref,action,sandboxId,token}';
      v.ws.send(JSON.stringify([{ t: 'error', message: why } satisfies PageMessage]));
      v.ws.close(1008, why.slice(0, 120));
      return;
    }
    void runAction(action).then((r) => {
      if (v.ws.readyState === v.ws.OPEN) v.ws.send(JSON.stringify([r]));
    });
  }

  async function runAction(a: Action): Promise<PageMessage> {
    const denied = (message: string): PageMessage => ({ t: 'result', ref: a.ref, ok: false, code: 'EINSPECTOR_DENIED', message });
    if (!o.actions) return denied('this view is read-only: start it with actions enabled (paddock inspect --actions)');
    if (!tokenMatches(a.token, o.token)) return denied('wrong token');
    try {
      if (a.action === 'kill') await host.signal(a.sandboxId, a.containerId ?? a.sandboxId, 'SIGKILL');
      else if (a.action === 'pause') await host.pause(a.sandboxId);
      else await host.resume(a.sandboxId);
      host.log.info({ sandboxId: a.sandboxId, action: a.action }, 'live view action');
      return { t: 'result', ref: a.ref, ok: true };
    } catch (e) {
      return { t: 'result', ref: a.ref, ok: false, code: isPaddockError(e) ? e.code : 'EINVALID_ARGUMENT', message: (e as Error).message };
    }
  }

  // Usage sparklines: sampled only while someone watches.
  const sampled = new Map<string, Subscription>();
  function reconcileStats(): void {
    const want = viewers.size > 0 ? new Set(feed.sampledSandboxes().slice(0, MAX_SAMPLED)) : new Set<string>();
    for (const [id, sub] of sampled) {
      if (!want.has(id)) {
        sub.unsubscribe();
        sampled.delete(id);
      }
    }
    for (const id of want) {
      if (sampled.has(id)) continue;
      try {
        const sub = host.stats$(id, { intervalMs: STATS_INTERVAL_MS }).subscribe({
          next: (s) => feed.sample(id, s.data.memory?.usage?.usage ?? null, s.data.cpu?.usage?.total ?? null),
          error: () => undefined,
        });
        sampled.set(id, sub);
      } catch {
        // No cgroup (or gone meanwhile): no sparkline for it.
      }
    }
  }

  const tick = setInterval(() => {
    feed.sweep();
    reconcileStats();
    for (const v of viewers) {
      if (v.lagging && v.ws.bufferedAmount < MAX_BUFFERED_BYTES / 4) {
        v.lagging = false;
        v.ws.send(JSON.stringify(feed.present()));
      }
    }
  }, TICK_MS);
  tick.unref();

  const detach = host.hub.attach(feed.inspect);
  for (const ref of host.hub.liveActors()) feed.adopt(ref);
  const eventsSub = host.events$.subscribe({
    next: (e) => {
      feed.event(e);
      if (e.type === 'state' && e.containerId === undefined && (e.status === 'destroyed' || e.status === 'destroying')) feed.forgetStats(e.sandboxId);
    },
    error: () => undefined,
  });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    clearInterval(tick);
    detach();
    eventsSub.unsubscribe();
    for (const s of sampled.values()) s.unsubscribe();
    sampled.clear();
    for (const v of viewers) v.ws.terminate();
    viewers.clear();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: o.port, host: o.host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await close().catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is taken' : code === 'EADDRNOTAVAIL' ? 'it is not an address of this host' : code === 'EACCES' ? 'a port below 1024 needs privileges' : (e as Error).message;
    throw new PaddockError('EINSPECTOR_LISTEN', `cannot serve the inspector on ${o.host}:${o.port}: ${why}`, { step: 'listen' }, e);
  }
  server.on('error', (err) => host.log.warn({ err }, 'inspector server error'));
  const addr = server.address() as AddressInfo;
  listening = { host: o.host, port: addr.port };
  const shownHost = listening.host.includes(':') ? `[${listening.host}]` : listening.host;
  host.log.info({ host: listening.host, port: listening.port, actions: o.actions }, 'live view listening');
  return {
    url: `http://${shownHost}:${listening.port}/?token=${o.token}`,
    host: listening.host,
    port: listening.port,
    token: o.token,
    close,
  };
}

interface Action {
  ref: string;
  action: 'kill' | 'pause' | 'resume';
  sandboxId: string;
  containerId?: string;
  token: string;
}

function parseAction(m: unknown): Action | undefined {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return undefined;
  const a = m as Record<string, unknown>;
  if (a.t !== 'action' || typeof a.ref !== 'string' || typeof a.sandboxId !== 'string' || typeof a.token !== 'string') return undefined;
  if (a.action !== 'kill' && a.action !== 'pause' && a.action !== 'resume') return undefined;
  if (a.containerId !== undefined && typeof a.containerId !== 'string') return undefined;
  return { ref: a.ref, action: a.action, sandboxId: a.sandboxId, token: a.token, ...(typeof a.containerId === 'string' ? { containerId: a.containerId } : {}) };
}

function tokenMatches(given: unknown, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function checkServeOptions(opts: ServeInspectorOptions): Required<ServeInspectorOptions> {
  checkOptionKeys(opts, SERVE_INSPECTOR_KEYS, 'serveInspector options');
  const bad = (field: string, why: string) => new PaddockError('EINVALID_ARGUMENT', `serveInspector options.${field}: ${why}`, { field: `serveInspector options.${field}` });
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad('port', `must be an integer from 0 to 65535, not ${JSON.stringify(opts.port)}`);
  const host = opts.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) throw bad('host', 'must be an address or host name');
  if (opts.token !== undefined && (typeof opts.token !== 'string' || !/^[A-Za-z0-9_-]{16,128}$/.test(opts.token))) throw bad('token', 'must be 16 to 128 of [A-Za-z0-9_-]');
  if (opts.actions !== undefined && typeof opts.actions !== 'boolean') throw bad('actions', 'must be true or false');
  return { port, host, token: opts.token ?? crypto.randomBytes(24).toString('base64url'), actions: opts.actions === true };
}

/** The page's files: beside this module's folder in the sources and in dist/, beside the CLI bundle. */
function loadAssets(): Map<string, Buffer> {
  const dirs = [path.join(__dirname, '..', 'inspect-page'), path.join(__dirname, 'inspect-page')];
  const dir = dirs.find((d) => fs.existsSync(path.join(d, 'index.html')));
  if (!dir) throw new PaddockError('ENOT_SUPPORTED', `the live view's page is not in this build (looked in ${dirs.join(', ')})`);
  const out = new Map<string, Buffer>();
  for (const f of new Set(Object.values(ASSETS))) out.set(f, fs.readFileSync(path.join(dir, f)));
  return out;
}
