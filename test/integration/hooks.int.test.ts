import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EngineEvent } from '../../actors/engine/api';
import type { OciConfig } from '../../specs/oci';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { useEngine } from '../helpers/engine-fixture';
import { runCli } from '../helpers/cli';
import { describeIf, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';


/**
 * A temp dir of hook scripts. Each recording hook appends `<name> <status> <pid>` (read
 * from the state JSON on its stdin) to `log`.
 */
function hookDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-hooks-'));
  const log = path.join(dir, 'log');
  const write = (name: string, body: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  };
  const recorder = (name: string, tail = '') =>
    write(
      name,
      [
        's=$(cat)',
        `st=$(printf '%s' "$s" | sed -n 's/.*"status":"\\([a-z]*\\)".*/\\1/p')`,
        `pid=$(printf '%s' "$s" | sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p')`,
        `echo "$(basename "$0") $st $pid" >> ${log}`,
        tail,
      ].join('\n'),
    );
  return {
    dir,
    log,
    write,
    recorder,
    lines: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

describeIf(['root', 'busybox'])('OCI hooks (engine)', () => {
  const t = useEngine('hooks');
  let h: ReturnType<typeof hookDir>;
  beforeEach(() => {
    h = hookDir();
  });
  afterEach(() => h.cleanup());

  const bundleWith = (hooks: OciConfig['hooks'], args = ['sleep', '30']) =>
    t.bundle({ args, extra: (c) => { c.hooks = hooks; } });

  test('prestart + createRuntime at create (created, init pid, as crun), poststart after start (running), poststop after destroy (stopped)', async () => {
    const dir = bundleWith({
      prestart: [{ path: h.recorder('prestart') }],
      createRuntime: [{ path: h.recorder('createRuntime-0') }, { path: h.recorder('createRuntime-1') }],
      poststart: [{ path: h.recorder('poststart') }],
      poststop: [{ path: h.recorder('poststop') }],
    });
    const sb = await t.engine.createSandbox('hk1', dir, { stdio: 'ignore' });
    expect(h.lines()).toEqual([`prestart created ${sb.pid}`, `createRuntime-0 created ${sb.pid}`, `createRuntime-1 created ${sb.pid}`]);
    // The container process has not started: the sandbox is still `created`.
    expect(t.engine.list()[0]).toMatchObject({ id: 'hk1', status: 'created' });

    await t.engine.startRoot('hk1');
    expect(h.lines().slice(3)).toEqual([`poststart running ${sb.pid}`]);

    await t.engine.destroy('hk1');
    expect(h.lines().slice(4)).toEqual(['poststop stopped 0']);
    expect(fs.existsSync(path.join(t.stateDir, 'hk1'))).toBe(false);
  });

  test('the hook gets the whole state JSON and its args/env', async () => {
    const out = path.join(h.dir, 'state.json');
    const hook = h.write('dump', `cat > ${out}; echo "$1 $FOO" > ${out}.args`);
    const dir = t.bundle({
      args: ['sleep', '30'],
      extra: (c) => {
        c.annotations = { 'org.example/k': 'v' };
        c.hooks = { createRuntime: [{ path: hook, args: ['dump', 'arg1'], env: ['FOO=bar'] }] };
      },
    });
    const sb = await t.engine.createSandbox('hk2', dir, { stdio: 'ignore' });
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toEqual({
      ociVersion: '1.0.2',
      id: 'hk2',
      status: 'created',
      pid: sb.pid,
      bundle: fs.realpathSync(dir),
      annotations: { 'org.example/k': 'v' },
    });
    expect(fs.readFileSync(`${out}.args`, 'utf8')).toBe('arg1 bar\n');
  });

  test('a failing createRuntime hook fails the create with EHOOK_FAILED and leaves nothing (poststop still runs)', async () => {
    const before = paddockInitPids();
    const dir = bundleWith({
      prestart: [{ path: h.recorder('prestart') }],
      createRuntime: [{ path: h.write('bad', 'echo "cannot set up the network" >&2; exit 7') }, { path: h.recorder('never') }],
      poststop: [{ path: h.recorder('poststop') }],
    });
    const err = await t.engine.createSandbox('hk3', dir, { stdio: 'ignore' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EHOOK_FAILED', context: { sandboxId: 'hk3', step: 'hook createRuntime[0]' } });
    expect(err.message).toMatch(/exited with status 7: cannot set up the network/);
    expect(h.lines()).toEqual([expect.stringMatching(/^prestart created \d+$/), 'poststop stopped 0']);
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
    expect(fs.existsSync(path.join(t.stateDir, 'hk3'))).toBe(false);
    expect(t.engine.list()).toEqual([]);
    // The id is free again.
    await t.engine.createSandbox('hk3', t.bundle({ args: ['true'] }), { stdio: 'ignore' });
  });

  test('a hook exceeding its timeout is killed and fails the create', async () => {
    const before = paddockInitPids();
    const dir = bundleWith({ prestart: [{ path: h.write('slow', 'sleep 30'), timeout: 1 }] });
    const err = await t.engine.createSandbox('hk4', dir, { stdio: 'ignore' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EHOOK_FAILED', context: { step: 'hook prestart[0]' } });
    expect(err.message).toMatch(/timed out after 1s/);
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
    expect(fs.existsSync(path.join(t.stateDir, 'hk4'))).toBe(false);
  });

  test('a missing hook binary fails the create', async () => {
    const err = await t.engine.createSandbox('hk5', bundleWith({ createRuntime: [{ path: path.join(h.dir, 'missing') }] }), { stdio: 'ignore' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EHOOK_FAILED', context: { step: 'hook createRuntime[0]' } });
    expect(fs.existsSync(path.join(t.stateDir, 'hk5'))).toBe(false);
  });

  test('a failing poststart hook is a warning: error event, the container keeps running, later hooks run', async () => {
    const events: EngineEvent[] = [];
    const sub = t.engine.events$.subscribe((e) => events.push(e));
    const dir = bundleWith({
      poststart: [{ path: h.write('bad', 'exit 2') }, { path: h.recorder('poststart-1') }],
      poststop: [{ path: h.write('bad2', 'exit 3') }, { path: h.recorder('poststop-1') }],
    });
    await t.engine.createSandbox('hk6', dir, { stdio: 'ignore' });
    await t.engine.startRoot('hk6');
    expect(t.engine.list()[0]).toMatchObject({ status: 'running' });
    expect(h.lines()).toEqual([expect.stringMatching(/^poststart-1 running \d+$/)]);
    await t.engine.destroy('hk6');
    expect(h.lines()[1]).toBe('poststop-1 stopped 0');
    sub.unsubscribe();
    const errors = events.filter((e): e is Extract<EngineEvent, { type: 'error' }> => e.type === 'error');
    expect(errors.map((e) => [e.sandboxId, e.error.code, e.error.context.step])).toEqual([
      ['hk6', 'EHOOK_FAILED', 'hook poststart[0]'],
      ['hk6', 'EHOOK_FAILED', 'hook poststop[0]'],
    ]);
  });

  test('a relative hook path is ECONFIG_INVALID naming it', async () => {
    const dir = bundleWith({ prestart: [{ path: 'bin/true' }] });
    await expect(t.engine.createSandbox('hk8', dir)).rejects.toMatchObject({ code: 'ECONFIG_INVALID', context: { field: 'hooks.prestart[0].path' } });
  });

  test('hooks of a second container in the sandbox are refused, not skipped', async () => {
    await t.engine.createSandbox('hk9', t.bundle({ args: ['sleep', '30'] }), { stdio: 'ignore' });
    await t.engine.startRoot('hk9');
    const second = bundleWith({ poststop: [{ path: '/bin/true' }] });
    await expect(t.engine.startContainer('hk9', 'c2', second, { stdio: 'ignore' })).rejects.toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      context: { field: 'hooks.poststop' },
    });
  });
});

describeIf(['root', 'busybox'])('OCI hooks (CLI: create, start, delete are separate processes)', () => {
  let root: string;
  let h: ReturnType<typeof hookDir>;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-hooks');
    h = hookDir();
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    h.cleanup();
    reapZombies();
  });

  test('create runs prestart, start runs poststart, delete runs poststop (even with the bundle gone)', () => {
    const b = makeBundle({
      args: ['sleep', '60'],
      extra: (c) => {
        c.hooks = {
          prestart: [{ path: h.recorder('prestart') }],
          poststart: [{ path: h.recorder('poststart') }],
          poststop: [{ path: h.recorder('poststop') }],
        };
      },
    });
    bundles.push(b);
    const pidFile = path.join(h.dir, 'pid');
    expect(cli('create', '--bundle', b.dir, '--pid-file', pidFile, 'ch1')).toMatchObject({ code: 0, stderr: '' });
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(h.lines()).toEqual([`prestart created ${pid}`]);

    expect(cli('start', 'ch1')).toMatchObject({ code: 0, stderr: '' });
    expect(h.lines()).toEqual([`prestart created ${pid}`, `poststart running ${pid}`]);

    // As containerd does after the container exits: the bundle may already be gone.
    b.cleanup();
    expect(cli('delete', '--force', 'ch1')).toMatchObject({ code: 0 });
    expect(h.lines()).toEqual([`prestart created ${pid}`, `poststart running ${pid}`, 'poststop stopped 0']);
    expect(fs.existsSync(path.join(root, 'ch1'))).toBe(false);
    reapZombies(); // we are the subreaper of the CLI's paddock-init
    expect(paddockInitPids()).not.toContain(pid);
  });

  test('a failing prestart hook makes create exit 1 with one line and leaves nothing', () => {
    const b = makeBundle({ args: ['sleep', '60'], extra: (c) => { c.hooks = { prestart: [{ path: h.write('bad', 'exit 9') }] }; } });
    bundles.push(b);
    const before = paddockInitPids();
    const r = cli('create', '--bundle', b.dir, 'ch2');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^paddock: .*hook prestart\[0\].*exited with status 9/);
    expect(fs.existsSync(path.join(root, 'ch2'))).toBe(false);
    reapZombies();
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
  });
});
