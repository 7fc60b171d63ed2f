import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { createEngine, isPaddockError, type Engine } from '../../index';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { describeIf, poll, quietLogger, testStateDir } from '../helpers/env';

/*
 * A real WebSocket inspector endpoint (the `ws` package, as the Stately inspector's
 * bridge is) receives what an engine reports over `inspect: { url }`, or through an
 * inspector made by @statelyai/inspect itself, during a full lifecycle.
 */

interface Msg {
  type: string;
  sessionId: string;
  name?: string;
  parentId?: string;
  definition?: string;
  snapshot?: { status?: string; value?: unknown; context?: Record<string, unknown> };
  event?: { type: string };
}

const SECRET = 's3cr3t-never-shown';

/** A WebSocket endpoint that records every JSON message it is sent. */
async function endpoint() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const raw: string[] = [];
  const sockets = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('message', (data) => raw.push(String(data)));
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const msgs = () => raw.map((r) => JSON.parse(r) as Msg);
  /** The session of the actor named `name` (its newest one: a restarted sandbox has several). */
  const sessions = (name: string) => msgs().filter((m) => m.type === '@xstate.actor' && m.name === name).map((m) => m.sessionId);
  /** The state values an actor went through, in order, repeats folded. */
  const values = (sessionId: string) => {
    const out: string[] = [];
    for (const m of msgs()) {
      if (m.sessionId !== sessionId || (m.type !== '@xstate.snapshot' && m.type !== '@xstate.actor')) continue;
      const v = JSON.stringify(m.snapshot?.value);
      if (v !== undefined && out[out.length - 1] !== v) out.push(v);
    }
    return out.map((v) => JSON.parse(v) as unknown);
  };
  const close = async () => {
    for (const s of sockets) s.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
  return { wss, url, raw, msgs, sessions, values, close };
}

describeIf(['root', 'busybox'])('the XState inspector over a WebSocket', () => {
  let engine: Engine | undefined;
  let server: Awaited<ReturnType<typeof endpoint>> | undefined;
  let stateDir = '';
  const bundles: TestBundle[] = [];
  const stops: Array<() => void> = [];

  afterEach(async () => {
    if (engine) {
      for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
      await engine.close();
    }
    engine = undefined;
    for (const s of stops.splice(0)) s();
    await server?.close();
    server = undefined;
    for (const b of bundles.splice(0)) b.cleanup();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  });

  function bundle(args: string[]): string {
    const b = makeBundle({ args, env: [`API_KEY=${SECRET}`] });
    bundles.push(b);
    return b.dir;
  }

  test('inspect: { url } reports a full lifecycle in order: sandbox, container, exec, restart with its backoff; nothing secret', async () => {
    server = await endpoint();
    stateDir = testStateDir('insp');
    engine = await createEngine({ stateDir, logger: quietLogger(), inspect: { url: server.url } });
    const srv = server;
    await poll(() => (srv.wss.clients.size === 1 ? true : undefined), 5_000, 'the engine connects to the inspector');

    await engine.createSandbox('web1', bundle(['sleep', '60']), { stdio: 'ignore' });
    await engine.startRoot('web1');
    const exec = await engine.execute('web1', 'web1', { args: ['sh', '-c', `echo $API_KEY >/dev/null`], stdio: 'ignore' });
    await engine.waitPid('web1', exec.pid, { timeoutMs: 10_000 });
    await engine.signal('web1', 'web1', 'SIGKILL');
    await engine.wait('web1', 'web1', { timeoutMs: 10_000 });

    await engine.createSandbox('job1', bundle(['sh', '-c', 'exit 3']), {
      stdio: 'ignore',
      restart: { policy: 'on-failure', maxRestarts: 1, periodMs: 60_000, backoff: { initialMs: 300, maxMs: 300, factor: 2, jitter: 0 } },
    });
    await engine.startRoot('job1');
    const restartName = 'restart:job1';
    await poll(() => (srv.values(srv.sessions(restartName)[0] ?? '').includes('failed') || srv.values(srv.sessions(restartName)[0] ?? '').includes('stopped') ? true : undefined), 20_000, 'the restart machine gives up');
    await poll(() => (srv.values(srv.sessions('web1')[0] ?? '').includes('stopped') ? true : undefined), 5_000, 'web1 shown stopped');

    // The sandbox: one actor named after it, through the OCI lifecycle in order.
    const [web1] = srv.sessions('web1');
    expect(web1).toBeDefined();
    const sandboxStates = srv.values(web1 as string).filter((v) => typeof v === 'string') as string[];
    const order = ['creating', 'created', 'running', 'stopped'];
    expect(order.filter((s) => sandboxStates.includes(s))).toEqual(order);
    expect(order.map((s) => sandboxStates.indexOf(s))).toEqual([...order.map((s) => sandboxStates.indexOf(s))].sort((a, b) => a - b));
    const actorMsg = srv.msgs().find((m) => m.type === '@xstate.actor' && m.sessionId === web1) as Msg;
    expect(JSON.parse(actorMsg.definition as string)).toMatchObject({ id: 'sandbox' });

    // Its root container and the exec'd process are its children, named after them.
    const children = srv.msgs().filter((m) => m.type === '@xstate.actor' && m.parentId === web1);
    const container = children.find((m) => m.name === 'web1');
    const proc = children.find((m) => m.name === `pid-${exec.pid}`);
    expect(container).toBeDefined();
    expect(proc).toBeDefined();
    expect(srv.values(container!.sessionId)).toEqual(expect.arrayContaining(['created', 'running', 'stopped']));
    expect(srv.values(proc!.sessionId)).toEqual(['running', 'exited']);
    // The kill is the container's exit, with its signal.
    const stoppedSnap = srv.msgs().filter((m) => m.type === '@xstate.snapshot' && m.sessionId === container!.sessionId).pop();
    expect(stoppedSnap?.snapshot?.context?.exit).toMatchObject({ signal: 9 });

    // The restart: exit 3, a backoff of 300 ms, a relaunch, and a give-up after maxRestarts.
    const [restart] = srv.sessions(restartName);
    const restartStates = srv.values(restart as string);
    // (`exited` decides at once, so it never shows as a state of its own.)
    expect(restartStates).toEqual(['running', 'backoff', 'restarting', 'running', 'failed']);
    const backoffEntry = srv.msgs().find((m) => m.type === '@xstate.snapshot' && m.sessionId === restart && m.snapshot?.value === 'backoff');
    expect(JSON.stringify(backoffEntry?.snapshot?.context)).toMatch(/300/);
    // Two instances of job1 ran: two sandbox actors named job1, each with a root container job1.
    const job1 = srv.msgs().filter((m) => m.type === '@xstate.actor' && m.name === 'job1');
    expect(job1.filter((m) => m.parentId === undefined)).toHaveLength(2);
    expect(job1.filter((m) => m.parentId !== undefined)).toHaveLength(2);

    // The supervisor machine reports too, under its name.
    expect(srv.sessions('supervisor').length).toBe(1);
    // Nothing secret: no env value, no fd.
    for (const r of srv.raw) {
      expect(r).not.toContain(SECRET);
      expect(r).not.toMatch(/"(pid)?fds?"\s*:/);
    }
  });

  test("an inspector made by @statelyai/inspect's createWebSocketInspector is accepted as it is", async () => {
    server = await endpoint();
    stateDir = testStateDir('insp');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createWebSocketInspector } = require('@statelyai/inspect') as typeof import('@statelyai/inspect');
    const inspector = createWebSocketInspector({ url: server.url });
    stops.push(() => inspector.stop());
    engine = await createEngine({ stateDir, logger: quietLogger(), inspect: inspector });
    const srv = server;
    await poll(() => (srv.wss.clients.size === 1 ? true : undefined), 5_000, 'the inspector connects');
    await engine.createSandbox('one1', bundle(['true']), { stdio: 'ignore' });
    await engine.startRoot('one1');
    await engine.wait('one1', 'one1', { timeoutMs: 10_000 });
    await poll(() => (srv.values(srv.sessions('one1')[0] ?? '').includes('stopped') ? true : undefined), 5_000, 'one1 shown stopped');
    for (const r of srv.raw) expect(r).not.toContain(SECRET);
  });

  test('pool, health and group machines report too, each under a name that says what it watches', async () => {
    server = await endpoint();
    stateDir = testStateDir('insp');
    engine = await createEngine({ stateDir, logger: quietLogger(), inspect: { url: server.url } });
    const srv = server;
    await poll(() => (srv.wss.clients.size === 1 ? true : undefined), 5_000, 'the engine connects');
    await engine.createSandbox('hl1', bundle(['sleep', '60']), { stdio: 'ignore', health: { intervalMs: 100, timeoutMs: 1_000, failureThreshold: 3 } });
    await engine.startRoot('hl1');
    const pool = await engine.pool('warm', { bundle: bundle(['sleep', '60']), size: 1, stdio: 'ignore' });
    const tree = engine.supervise({ name: 'svc', strategy: 'one_for_one', children: [{ id: 'leaf1', bundle: bundle(['sleep', '60']) }] });
    await tree.start();
    await poll(() => (['health:hl1', 'pool:warm', 'group:svc'].every((n) => srv.sessions(n).length === 1) ? true : undefined), 10_000, 'health, pool and group actors');
    await poll(() => (srv.values(srv.sessions('group:svc')[0] as string).includes('running') ? true : undefined), 5_000, 'the group running');
    await tree.stop();
    await pool.drain();
  });

  test('a bad inspect option is refused by name before anything is made', async () => {
    stateDir = testStateDir('insp');
    fs.rmSync(stateDir, { recursive: true, force: true });
    const bad: unknown[] = [{ url: 'http://127.0.0.1:1' }, { url: 'ws://127.0.0.1:1', retry: 1 }, { nxt: () => undefined }, 42];
    for (const inspect of bad) {
      const e = await createEngine({ stateDir, logger: quietLogger(), inspect: inspect as never }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isPaddockError(e, 'EINVALID_ARGUMENT')).toBe(true);
      expect(fs.existsSync(stateDir)).toBe(false);
    }
  });

  test('an inspector that is away, or stops reading, never holds the engine up; close() lets go of it', async () => {
    server = await endpoint();
    stateDir = testStateDir('insp');
    // Nobody listens on the first address: events are dropped, the lifecycle runs as ever.
    const away = await endpoint();
    const awayUrl = away.url;
    await away.close();
    engine = await createEngine({ stateDir, logger: quietLogger(), inspect: { url: awayUrl } });
    await engine.createSandbox('gone1', bundle(['true']), { stdio: 'ignore' });
    await engine.startRoot('gone1');
    expect(await engine.wait('gone1', 'gone1', { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    await engine.destroy('gone1');
    await engine.close();
    engine = undefined;
    // A viewer that accepts the socket but never reads: the engine's work is unchanged.
    const srv = server;
    const paused: Array<{ pause(): void; resume(): void }> = [];
    srv.wss.on('connection', (ws) => {
      const sock = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      sock.pause();
      paused.push(sock);
    });
    engine = await createEngine({ stateDir, logger: quietLogger(), inspect: { url: srv.url } });
    await poll(() => (srv.wss.clients.size === 1 ? true : undefined), 5_000, 'the engine connects');
    for (let i = 0; i < 3; i++) {
      await engine.createSandbox(`slow${i}`, bundle(['true']), { stdio: 'ignore' });
      await engine.startRoot(`slow${i}`);
      await engine.wait(`slow${i}`, `slow${i}`, { timeoutMs: 10_000 });
      await engine.destroy(`slow${i}`);
    }
    await engine.close();
    engine = undefined;
    // close() closed the socket to the inspector (the endpoint sees it once it reads again).
    for (const p of paused) p.resume();
    await poll(() => (srv.wss.clients.size === 0 ? true : undefined), 5_000, 'the inspector socket closes');
  });
});

