import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { WebSocket } from 'ws';
import { createEngine, isPaddockError, type Engine, type InspectorServer } from '../../index';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { describeIf, poll, quietLogger, testStateDir } from '../helpers/env';

/*
 * engine.serveInspector without a browser: what a viewer's socket receives, and what
 * the server does with bad input (a taken port, a wrong token, garbage, a viewer that
 * stops reading).
 */

type PageMsg = { t: string; [k: string]: unknown };

function get(url: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

/** A viewer's socket: every message it was sent, flattened from the frames. */
async function viewer(server: InspectorServer, token = server.token) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${token}`);
  const msgs: PageMsg[] = [];
  ws.on('message', (d) => msgs.push(...(JSON.parse(String(d)) as PageMsg[])));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, msgs };
}

describeIf(['root', 'busybox'])('the live view server', () => {
  let engine: Engine;
  let stateDir: string;
  const bundles: TestBundle[] = [];
  const sockets: WebSocket[] = [];

  beforeEach(async () => {
    stateDir = testStateDir('lvs');
    engine = await createEngine({ stateDir, logger: quietLogger() });
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.terminate();
    for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
    await engine.close();
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  function bundle(args: string[]): string {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  }

  test('a viewer gets the present (machines, charts, actors) and then each change; the page and its files are served from the package', async () => {
    await engine.createSandbox('pre1', bundle(['sleep', '60']), { stdio: 'ignore' });
    await engine.startRoot('pre1');
    const server = await engine.serveInspector();
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    const page = await get(server.url);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<script src="app.js"><\/script>/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect((await get(`http://127.0.0.1:${server.port}/app.js`)).body).toMatch(/new WebSocket/);

    const v = await viewer(server);
    sockets.push(v.ws);
    await poll(() => (v.msgs.some((m) => m.t === 'actor' && m.name === 'pre1') ? true : undefined), 5_000, 'pre1 in the present');
    expect(v.msgs[0]).toMatchObject({ t: 'hello', actions: false });
    const defs = v.msgs.filter((m) => m.t === 'def').map((m) => (m.def as { machine: string }).machine);
    expect(defs).toEqual(expect.arrayContaining(['supervisor', 'sandbox', 'container']));
    const pre1 = v.msgs.find((m) => m.t === 'actor' && m.name === 'pre1' && m.machine === 'sandbox') as PageMsg;
    expect(pre1.value).toBe('running');

    // A change arrives as it happens: the kill, and the sandbox's stopped state with its signal.
    await engine.signal('pre1', 'pre1', 'SIGKILL');
    await poll(() => (v.msgs.some((m) => m.t === 'state' && m.id === pre1.id && m.value === 'stopped') ? true : undefined), 5_000, 'pre1 stopped');
    const stopped = v.msgs.filter((m) => m.t === 'state' && m.id === pre1.id).pop() as PageMsg;
    expect((stopped.ctx as { exit: unknown }).exit).toMatchObject({ signal: 9 });
    await poll(() => (v.msgs.some((m) => m.t === 'event' && (m.e as { type: string }).type === 'exit') ? true : undefined), 5_000, 'the exit event');
    await server.close();
  });

  test('a wrong token gets 403 for the page and the socket; a taken port is EINSPECTOR_LISTEN; bad options are refused by name', async () => {
    const server = await engine.serveInspector();
    expect((await get(`http://127.0.0.1:${server.port}/?token=nope`)).status).toBe(403);
    expect((await get(`http://127.0.0.1:${server.port}/`)).body).toMatch(/wrong or missing token/);
    const refused = await viewer(server, 'x'.repeat(server.token.length)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(refused?.message).toMatch(/403/);

    const taken = await engine.serveInspector({ port: server.port }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPaddockError(taken, 'EINSPECTOR_LISTEN')).toBe(true);
    expect((taken as Error).message).toBe(`cannot serve the inspector on 127.0.0.1:${server.port}: the port is taken`);

    for (const [opts, field] of [
      [{ prot: 1 }, 'serveInspector options.prot'],
      [{ port: 70000 }, 'serveInspector options.port'],
      [{ token: 'short' }, 'serveInspector options.token'],
      [{ actions: 'yes' }, 'serveInspector options.actions'],
    ] as const) {
      const e = await engine.serveInspector(opts as never).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isPaddockError(e, 'EINVALID_ARGUMENT')).toBe(true);
      expect((e as { context: { field: string } }).context.field).toBe(field);
    }
    await server.close();
  });

  test('garbage over the socket closes it with a reason; a read-only view refuses actions; with actions on, a wrong token is refused and the right one kills', async () => {
    await engine.createSandbox('act1', bundle(['sleep', '60']), { stdio: 'ignore' });
    await engine.startRoot('act1');
    const ro = await engine.serveInspector();
    const g = await viewer(ro);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => g.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
    g.ws.send('{"this is": not json');
    const c = await closed;
    expect(c.code).toBe(1008);
    expect(c.reason).toMatch(/expected a JSON action/);
    expect(g.msgs.some((m) => m.t === 'error')).toBe(true);

    const r = await viewer(ro);
    sockets.push(r.ws);
    r.ws.send(JSON.stringify({ t: 'action', ref: 'a1', action: 'kill', sandboxId: 'act1', token: ro.token }));
    await poll(() => r.msgs.find((m) => m.t === 'result' && m.ref === 'a1'), 5_000, 'the refusal');
    expect(r.msgs.find((m) => m.t === 'result')).toMatchObject({ ok: false, code: 'EINSPECTOR_DENIED' });
    expect(engine.isRunning('act1')).toBe(true);

    const rw = await engine.serveInspector({ actions: true });
    const w = await viewer(rw);
    sockets.push(w.ws);
    w.ws.send(JSON.stringify({ t: 'action', ref: 'b1', action: 'kill', sandboxId: 'act1', token: 'wrong' }));
    await poll(() => w.msgs.find((m) => m.t === 'result' && m.ref === 'b1'), 5_000, 'the wrong-token refusal');
    expect(w.msgs.find((m) => m.ref === 'b1')).toMatchObject({ ok: false, code: 'EINSPECTOR_DENIED', message: 'wrong token' });
    w.ws.send(JSON.stringify({ t: 'action', ref: 'b2', action: 'kill', sandboxId: 'act1', token: rw.token }));
    await poll(() => w.msgs.find((m) => m.t === 'result' && m.ref === 'b2'), 5_000, 'the kill');
    expect(w.msgs.find((m) => m.ref === 'b2')).toMatchObject({ ok: true });
    expect(await engine.wait('act1', 'act1', { timeoutMs: 5_000 })).toMatchObject({ signal: 9 });
    w.ws.send(JSON.stringify({ t: 'action', ref: 'b3', action: 'pause', sandboxId: 'nope', token: rw.token }));
    await poll(() => w.msgs.find((m) => m.t === 'result' && m.ref === 'b3'), 5_000, 'the unknown sandbox');
    expect(w.msgs.find((m) => m.ref === 'b3')).toMatchObject({ ok: false, code: 'ESANDBOX_NOT_FOUND' });
  });

  test('a viewer that stops reading is skipped, the engine is not held up, and it gets the present once it drains', async () => {
    const server = await engine.serveInspector();
    // A raw socket that completes the handshake and then does not read.
    const sock = net.connect(server.port, '127.0.0.1');
    sockets.push({ terminate: () => sock.destroy() } as unknown as WebSocket);
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.write(`GET /ws?token=${server.token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await new Promise<void>((resolve) => sock.once('data', () => resolve()));
    sock.pause();
    const t0 = performance.now();
    for (let i = 0; i < 40; i++) {
      await engine.createSandbox(`sl${i}`, bundle(['true']), { stdio: 'ignore' });
      await engine.startRoot(`sl${i}`);
      await engine.wait(`sl${i}`, `sl${i}`, { timeoutMs: 10_000 });
      await engine.destroy(`sl${i}`);
    }
    // Nothing asserted on time (no timed assertions in tests): that the loop ended is the point.
    expect(performance.now() - t0).toBeGreaterThan(0);
    // A well-behaved viewer alongside still gets everything.
    const v = await viewer(server);
    sockets.push(v.ws);
    await poll(() => (v.msgs.some((m) => m.t === 'hello') ? true : undefined), 5_000, 'the other viewer');
    sock.resume();
    await server.close();
  });
});
