import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { WebSocket } from 'ws';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { CLI, runCli } from '../helpers/cli';
import { describeIf, poll, testStateDir } from '../helpers/env';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/*
 * `paddock inspect --root R`: the containers other CLI calls run (as podman and
 * containerd do) are shown from their persisted machines, and what happens to them
 * while the view is open arrives live, also for a container created after it started.
 */

type PageMsg = { t: string; [k: string]: unknown };

describeIf(['root', 'busybox'])('paddock inspect --root', () => {
  let root: string;
  let view: ChildProcess | undefined;
  let ws: WebSocket | undefined;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const bundle = (args: string[]) => {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cinsp');
  });
  afterEach(async () => {
    ws?.terminate();
    ws = undefined;
    if (view && view.exitCode === null) {
      const exited = new Promise((resolve) => view!.once('exit', resolve));
      view.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
      if (view.exitCode === null) view.kill('SIGKILL');
    }
    view = undefined;
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('shows the containers found at start and follows them, and a container created later, live', async () => {
    expect(cli('create', '--bundle', bundle(['sleep', '60']), 'old1').code).toBe(0);
    expect(cli('start', 'old1').code).toBe(0);

    view = spawn(process.execPath, [CLI, 'inspect', '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    view.stdout!.on('data', (d) => (out += String(d)));
    view.stderr!.on('data', (d) => (err += String(d)));
    const url = await poll(() => /paddock inspect: (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out)?.[1], 20_000, `the address (stderr: ${err})`);
    const u = new URL(url);
    const msgs: PageMsg[] = [];
    ws = new WebSocket(`ws://${u.host}/ws?token=${u.searchParams.get('token')}`);
    ws.on('message', (d) => msgs.push(...(JSON.parse(String(d)) as PageMsg[])));
    const sandbox = (name: string) => msgs.filter((m) => m.t === 'actor' && m.machine === 'sandbox' && m.name === name).pop();
    const valueOf = (id: unknown) => {
      let v: unknown;
      for (const m of msgs) if ((m.t === 'actor' || m.t === 'state') && m.id === id) v = m.value;
      return v;
    };

    // Found at start, from its persisted machine.
    await poll(() => sandbox('old1'), 10_000, 'old1 in the view');
    expect(valueOf(sandbox('old1')!.id)).toBe('running');

    // Killed by another CLI call while the view is open: it turns stopped with its signal.
    expect(cli('kill', 'old1', 'KILL').code).toBe(0);
    await poll(() => (valueOf(sandbox('old1')!.id) === 'stopped' ? true : undefined), 10_000, 'old1 stopped in the view');
    const last = msgs.filter((m) => m.id === sandbox('old1')!.id).pop() as PageMsg;
    expect((last.ctx as { exit?: unknown }).exit).toMatchObject({ signal: 9 });

    // Created after the view started: found by the next scan and followed.
    expect(cli('create', '--bundle', bundle(['sleep', '60']), 'new1').code).toBe(0);
    await poll(() => sandbox('new1'), 10_000, 'new1 in the view');
    expect(cli('start', 'new1').code).toBe(0);
    await poll(() => (valueOf(sandbox('new1')!.id) === 'running' ? true : undefined), 10_000, 'new1 running in the view');

    // The view holds no lock: runtime calls go through while it watches.
    expect(cli('kill', 'new1', 'KILL').code).toBe(0);
    await poll(() => (valueOf(sandbox('new1')!.id) === 'stopped' ? true : undefined), 10_000, 'new1 stopped in the view');
    expect(cli('delete', 'new1').code).toBe(0);
    // Deleted: the view lets go of it (its machine shows stopped once, then leaves the page).
    const gone = sandbox('new1')!.id;
    await poll(() => msgs.find((m) => m.t === 'state' && m.id === gone && m.status === 'stopped'), 10_000, 'new1 let go of');

    // SIGTERM ends the view cleanly; the containers it watched are untouched by it.
    const exited = new Promise<number | null>((resolve) => view!.once('exit', (code) => resolve(code)));
    view.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(JSON.parse(cli('state', 'old1').stdout)).toMatchObject({ status: 'stopped' });
  });

  test('a taken port is one line with its code', async () => {
    const first = spawn(process.execPath, [CLI, 'inspect', '--root', root], { stdio: ['ignore', 'pipe', 'ignore'] });
    view = first;
    let out = '';
    first.stdout!.on('data', (d) => (out += String(d)));
    const url = await poll(() => /paddock inspect: (\S+)/.exec(out)?.[1], 20_000, 'the first view');
    const port = new URL(url).port;
    const r = cli('inspect', '--port', port);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`paddock: cannot serve the inspector on 127.0.0.1:${port}: the port is taken (EINSPECTOR_LISTEN)\n`);
    expect(cli('inspect', '--port', 'http').stderr).toBe('paddock: invalid --port http: a number from 0 to 65535\n');
  });
});
