/**
 * createContainer and startContainer hooks, run by paddock-init inside the
 * container's namespaces (docs/decisions/0013). Each hook leaves a marker in a
 * directory bind-mounted on the container's /tmp (the shared test rootfs is read-only), recording the state JSON it read and
 * the mount namespace it ran in; the container process then reports its own.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PaddockError } from '../../base/errors';
import type { OciConfig, OciHooks } from '../../specs/oci';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll } from '../helpers/env';

describeIf(['root', 'busybox'])('container hooks (createContainer, startContainer)', () => {
  const t = useEngine('chk');
  let shared = '';
  let hostHooks = '';

  beforeEach(() => {
    // Hooks and container run as the user namespace's root (host uid 100000).
    shared = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-chk-shared-'));
    fs.chmodSync(shared, 0o777);
    hostHooks = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-chk-hooks-'));
    fs.chmodSync(hostHooks, 0o755);
  });
  afterEach(() => {
    fs.rmSync(shared, { recursive: true, force: true });
    fs.rmSync(hostHooks, { recursive: true, force: true });
  });

  /** A script in `dir` (host side); returns its host path. */
  function script(dir: string, name: string, body: string): string {
    const p = path.join(dir, name);
    fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  }

  const withHooks = (hooks: OciHooks) => (c: OciConfig) => {
    c.hooks = hooks;
    c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'bind', source: shared, options: ['rbind', 'rw'] }];
  };

  async function created(hooks: OciHooks, args: string[]) {
    const sid = t.id();
    const dir = t.bundle({ args, extra: withHooks(hooks) });
    const h = await t.engine.createSandbox(sid, dir);
    return { sid, h, dir };
  }

  const read = (name: string) => fs.readFileSync(path.join(shared, name), 'utf8').split('\n');

  test('createContainer runs in the container mount namespace before pivot_root; startContainer in the container before the process', async () => {
    // createContainer: the path resolves on the host, cwd is the rootfs with the
    // container's mounts under it (so ./tmp is the bind mount).
    const create = script(hostHooks, 'create', [
      'cat > ./tmp/created.state',
      'readlink /proc/self/ns/mnt > ./tmp/created.ns',
      'test -e ./bin/busybox && echo rootfs-cwd >> ./tmp/created.ns',
      'echo "$HOOK_VAR" >> ./tmp/created.ns',
    ].join('\n'));
    // startContainer: the path resolves inside the container (the bind mount).
    script(shared, 'start', [
      'cat > /tmp/started.state',
      'readlink /proc/self/ns/mnt > /tmp/started.ns',
      'test -e /tmp/created.state && echo after-create >> /tmp/started.ns',
      'echo "$PATH" >> /tmp/started.ns',
    ].join('\n'));
    const { sid, h, dir } = await created(
      {
        createContainer: [{ path: create, env: ['HOOK_VAR=from-spec'] }],
        startContainer: [{ path: '/tmp/start', args: ['start', 'x'] }],
      },
      ['sh', '-c', 'readlink /proc/self/ns/mnt; test -e /tmp/started.state && echo hooks-done'],
    );
    // Container hooks run with the container's setup, which paddock does at start.
    expect(fs.existsSync(path.join(shared, 'created.state'))).toBe(false);
    await t.engine.startRoot(sid);
    expect(await t.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    const [containerNs, done] = (await readAll(h.stdio!.stdout)).split('\n');
    expect(done).toBe('hooks-done');

    const [createNs, cwdMark, hookVar] = read('created.ns');
    expect(createNs).toBe(containerNs);
    expect(createNs).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    expect(cwdMark).toBe('rootfs-cwd');
    expect(hookVar).toBe('from-spec');
    const [startNs, order, startPath] = read('started.ns');
    expect(startNs).toBe(containerNs);
    expect(order).toBe('after-create');
    // No env in the hook: the container process's environment, as under runc.
    expect(startPath).toMatch(/^\/usr\/local\/sbin:/);

    const cs = JSON.parse(read('created.state').join('\n')) as Record<string, unknown>;
    const ss = JSON.parse(read('started.state').join('\n')) as Record<string, unknown>;
    expect(cs).toMatchObject({ ociVersion: '1.0.2', id: sid, status: 'creating', pid: 1 });
    expect(ss).toMatchObject({ ociVersion: '1.0.2', id: sid, status: 'created', pid: 1 });
    expect(cs.bundle).toBe(dir);
    expect(ss.bundle).toBe(dir);
  });

  async function startFails(hooks: OciHooks): Promise<{ sid: string; err: PaddockError }> {
    const { sid } = await created(hooks, ['sh', '-c', 'touch /tmp/process-ran']);
    let err: unknown;
    try {
      await t.engine.startRoot(sid);
    } catch (e) {
      err = e;
    }
    expect((err as PaddockError | undefined)?.code).toBe('EHOOK_FAILED');
    // The user process never ran and the sandbox is as a failed execve leaves it.
    expect(fs.existsSync(path.join(shared, 'process-ran'))).toBe(false);
    expect(t.engine.list().find((s) => s.id === sid)?.status).toBe('created');
    return { sid, err: err as PaddockError };
  }

  test('a failing createContainer hook fails the start with its status and output; later hooks do not run', async () => {
    const bad = script(hostHooks, 'bad', 'echo "no GPU here" >&2; exit 3');
    const { err } = await startFails({
      createContainer: [{ path: bad }],
      startContainer: [{ path: script(shared, 'never', 'touch /tmp/start-ran') }],
    });
    expect(err.message).toBe(`hook createContainer[0]: ${bad}: exit status 3: no GPU here`);
    expect(err.context).toMatchObject({ step: 'hook createContainer[0]' });
    expect(fs.existsSync(path.join(shared, 'start-ran'))).toBe(false);
  });

  test('a startContainer hook that outlives its timeout is killed', async () => {
    script(shared, 'slow', 'sleep 60');
    const { err } = await startFails({ startContainer: [{ path: '/tmp/slow', timeout: 1 }] });
    expect(err.message).toBe('hook startContainer[0]: /tmp/slow: timed out after 1s');
  });

  test('a hook that cannot be executed names the errno', async () => {
    const { err } = await startFails({ createContainer: [{ path: '/no/such/hook' }] });
    expect(err.message).toBe('hook createContainer[0]: /no/such/hook: cannot execute: ENOENT');
  });

  test('a second container of the sandbox runs its own container hooks', async () => {
    const { sid } = await created({}, ['sleep', '30']);
    await t.engine.startRoot(sid);
    const hook = script(hostHooks, 'second', 'cat > ./tmp/second.state');
    const second = t.bundle({ args: ['true'], extra: withHooks({ createContainer: [{ path: hook }] }) });
    await t.engine.startContainer(sid, 'c2', second, { stdio: 'ignore' });
    expect(await t.engine.wait(sid, 'c2', { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect(JSON.parse(read('second.state').join('\n'))).toMatchObject({ id: 'c2', status: 'creating', bundle: second });
  });
  test('prepare: createContainer hooks run at create, startContainer hooks only at start (as runc)', async () => {
    const create = script(hostHooks, 'create', 'echo created > ./tmp/created.at');
    script(shared, 'start', 'echo started > /tmp/started.at');
    const sid = t.id();
    const dir = t.bundle({
      args: ['sh', '-c', 'cat /tmp/created.at /tmp/started.at'],
      extra: withHooks({ createContainer: [{ path: create }], startContainer: [{ path: '/tmp/start' }] }),
    });
    const h = await t.engine.createSandbox(sid, dir, { prepare: true });
    expect(fs.readFileSync(path.join(shared, 'created.at'), 'utf8')).toBe('created\n');
    expect(fs.existsSync(path.join(shared, 'started.at'))).toBe(false);
    // The held process is init's child, already in a mount namespace of its own.
    const held = fs.readFileSync(`/proc/${h.pid}/task/${h.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(held).toHaveLength(1);
    expect(fs.readlinkSync(`/proc/${held[0]}/ns/mnt`)).not.toBe(fs.readlinkSync(`/proc/${h.pid}/ns/mnt`));
    expect(t.engine.list()[0]).toMatchObject({ id: sid, status: 'created' });
    await t.engine.startRoot(sid);
    expect(await t.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect(await readAll(h.stdio!.stdout)).toBe('created\nstarted\n');
  });

  test('prepare: a failing createContainer hook fails create, and nothing is left', async () => {
    const create = script(hostHooks, 'create', 'echo no >&2; exit 3');
    const sid = t.id();
    const dir = t.bundle({ args: ['true'], extra: withHooks({ createContainer: [{ path: create }] }) });
    await expect(t.engine.createSandbox(sid, dir, { prepare: true })).rejects.toMatchObject({ code: 'EHOOK_FAILED' });
    expect(t.engine.list()).toEqual([]);
    expect(fs.existsSync(path.join(t.stateDir, sid))).toBe(false);
  });
});
