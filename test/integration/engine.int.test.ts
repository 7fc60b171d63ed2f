import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../../index';
import type { makeBundle } from '../helpers/bundle';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, readAll } from '../helpers/env';
import { mountsUnder, paddockInitPids } from '../helpers/leaks';

/**
 * The engine end to end with every part real: paddock-init in fresh namespaces,
 * busybox containers, nanomsg channels and pidfds.
 */
describeIf(['root', 'busybox'])('engine (real sandboxes)', () => {
  const fx = useEngine('engine');
  const bundle = (args: string[], extra: Parameters<typeof makeBundle>[0] = { args }) => fx.bundle({ ...extra, args });
  const id = () => fx.id();
  let engine: Engine;
  let stateDir: string;
  beforeEach(() => {
    engine = fx.engine;
    stateDir = fx.stateDir;
  });

  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const run = (args: string[], { args: _args, ...opts }: Parameters<typeof makeBundle>[0] = { args }) => fx.run(args, opts);

  test('true exits 0, exit 7 is 7, SIGKILL is reported as signal 9', async () => {
    expect((await run(['true'])).status).toMatchObject({ exitCode: 0, signal: null });
    expect((await run(['sh', '-c', 'exit 7'])).status).toMatchObject({ exitCode: 7, signal: null });

    const sid = id();
    await engine.createSandbox(sid, bundle(['sleep', '60']));
    await engine.startRoot(sid);
    expect(engine.isRunning(sid)).toBe(true);
    await engine.signal(sid, sid, 'SIGKILL');
    expect(await engine.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: null, signal: 9 });
    expect(engine.list().find((s) => s.id === sid)?.status).toBe('stopped');
  });

  test('inside: pid 1, the spec hostname, only lo, mapped uid, no host processes', async () => {
    const script = [
      'echo pid=$$',
      'echo host=$(hostname)',
      'echo nets=$(ls /sys/class/net | tr "\\n" " ")',
      'echo uid=$(id -u)',
      'echo procs=$(ls /proc | grep -c "^[0-9]")',
    ].join('; ');
    const { stdout, sid } = await run(['sh', '-c', script], { args: [], hostname: 'box-one' });
    expect(stdout).toContain('pid=1\n');
    expect(stdout).toContain('host=box-one\n');
    expect(stdout).toMatch(/nets=lo\s*\n/);
    expect(stdout).toContain('uid=0\n');
    // sh, ls, grep and the subshells: a handful, never the host's hundreds.
    const procs = Number(/procs=(\d+)/.exec(stdout)?.[1]);
    expect(procs).toBeGreaterThan(0);
    expect(procs).toBeLessThan(10);
    expect(sid).toBeDefined();
  });

  test('the container root maps to an unprivileged host uid', async () => {
    const sid = id();
    const h = await engine.createSandbox(sid, bundle(['sleep', '30']));
    const started = await engine.startRoot(sid);
    const status = fs.readFileSync(`/proc/${started.hostPid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('100000');
    expect(h.pid).toBeGreaterThan(0);
    await engine.destroy(sid);
  });

  test('stdout and stderr arrive intact and in order, including a 50 MB burst (no log cap)', async () => {
    const n = 6_500_000;
    // Uncapped: the process writes its file itself (decision 0002). With a cap, a reader
    // that falls more than a rotated part behind loses the middle (bounded-logs test).
    const { stdout, stderr, status } = await fx.run(['sh', '-c', `seq 1 ${n}; echo done-err >&2`], {}, { logSizeMax: 0 });
    expect(status.exitCode).toBe(0);
    expect(stdout.length).toBeGreaterThan(50_000_000);
    const lines = stdout.split('\n');
    expect(lines.length).toBe(n + 1);
    expect(lines[0]).toBe('1');
    expect(lines[n - 1]).toBe(String(n));
    // Spot-check order throughout without building a 50 MB expectation string.
    for (let i = 0; i < n; i += 99_991) expect(lines[i]).toBe(String(i + 1));
    expect(stderr).toBe('done-err\n');
  }, 120_000);

  test('stdin reaches the container through its FIFO', async () => {
    const sid = id();
    const h = await engine.createSandbox(sid, bundle(['sh', '-c', 'read line; echo got:$line; cat | wc -c']));
    await engine.startRoot(sid);
    h.stdio!.stdin.write('hello\n');
    h.stdio!.stdin.end('abcdef');
    expect(await engine.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    expect((await readAll(h.stdio!.stdout)).trim().split(/\s+/)).toEqual(['got:hello', '6']);
  });

  test('exec into a running container: ps lists it, waitPid returns its status, output is streamed', async () => {
    const sid = id();
    await engine.createSandbox(sid, bundle(['sleep', '60']));
    await engine.startRoot(sid);
    const ex = await engine.execute(sid, sid, { args: ['sh', '-c', 'echo from-exec; echo err-exec >&2; sleep 1; exit 5'] });
    expect(ex.pid).toBeGreaterThan(1);
    const ps = await engine.processes(sid, sid);
    expect(ps.map((p) => p.kind)).toEqual(expect.arrayContaining(['container', 'exec']));
    expect(ps.find((p) => p.pid === ex.pid)?.hostPid).toBe(ex.hostPid);
    expect(await engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 5, signal: null });
    expect(await readAll(ex.stdout!)).toBe('from-exec\n');
    expect(await readAll(ex.stderr!)).toBe('err-exec\n');
    const stats = await engine.event(sid, sid);
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.memory.rssBytes).toBeGreaterThan(0);
    expect((await engine.stacks(sid)).init.table).toContain(sid);
  });

  test('an idle sandbox keeps no control connection, and the next request reconnects to its init', async () => {
    const sid = id();
    await engine.createSandbox(sid, bundle(['sleep', '60']));
    await engine.startRoot(sid);
    const control = () => (engine as unknown as { runtimes: Map<string, { control?: { connected: boolean } }> }).runtimes.get(sid)?.control;
    expect((await engine.processes(sid, sid)).map((p) => p.kind)).toEqual(['container']);
    expect(control()?.connected).toBe(true);
    // Bounded: the client closes after DEFAULT_IDLE_CLOSE_MS (1 s) without requests.
    const deadline = Date.now() + 5_000;
    while (control()?.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(control()?.connected).toBe(false);
    const ex = await engine.execute(sid, sid, { args: ['sh', '-c', 'exit 4'] });
    expect(await engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 4 });
    await engine.signal(sid, sid, 'SIGKILL');
    expect(await engine.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });

  test("paddock-init sizes nng's thread pools for one CPU, whatever the host has, and starts no name resolver", async () => {
    const sid = id();
    const h = await engine.createSandbox(sid, bundle(['sleep', '60']));
    const names = fs.readdirSync(`/proc/${h.pid}/task`).map((t) => fs.readFileSync(`/proc/${h.pid}/task/${t}/comm`, 'utf8').trim());
    const count = (n: string) => names.filter((x) => x === n).length;
    // nng: two task threads and one timer thread per CPU it is told of, and no resolver
    // (native/c/init/nng-threads.c); the control channel works without it.
    expect(count('nng:task')).toBe(2);
    expect(count('nng:aio:expire')).toBe(1);
    expect(count('nng:resolver')).toBe(0);
    expect(names.length).toBe(7);
    await engine.startRoot(sid);
    expect((await engine.processes(sid, sid)).map((p) => p.kind)).toEqual(['container']);
  });

  test('a second container shares net, ipc and uts but not mounts or pids', async () => {
    const sid = id();
    const nsScript = 'for n in net ipc uts mnt pid; do echo $n=$(readlink /proc/self/ns/$n); done; sleep 30';
    const h = await engine.createSandbox(sid, bundle(['sh', '-c', nsScript]));
    await engine.startRoot(sid);
    const second = await engine.startContainer(sid, 'b', bundle(['sh', '-c', nsScript]));
    expect(second.pid).toBeGreaterThan(1);
    const read = async (name: string) =>
      poll(() => {
        const text = fs.readFileSync(path.join(stateDir, sid, 'logs', `${name}.stdout`), 'utf8');
        return text.includes('pid=') ? text : undefined;
      }, 10_000, `${name} namespaces`);
    const a = Object.fromEntries((await read(sid)).trim().split('\n').map((l) => l.split('=')));
    const b = Object.fromEntries((await read('b')).trim().split('\n').map((l) => l.split('=')));
    expect(b.net).toBe(a.net);
    expect(b.ipc).toBe(a.ipc);
    expect(b.uts).toBe(a.uts);
    expect(b.mnt).not.toBe(a.mnt);
    expect(b.pid).not.toBe(a.pid);
    expect(h.rootContainerId).toBe(sid);
    await engine.destroyContainer(sid, 'b');
    expect(engine.list().find((s) => s.id === sid)?.containers.map((c) => c.id)).toEqual([sid]);
  });

  test("a pid namespace by path shares a pod's: the sandbox's means its first container's, a container's means that one's", async () => {
    const sid = id();
    const h = await engine.createSandbox(sid, bundle(['sleep', '30']));
    await engine.startRoot(sid);
    const script = 'echo "$(readlink /proc/self/ns/pid) $(tr "\\0" " " < /proc/1/cmdline)"; exec sleep 30';
    const withPidPath = (p: string | undefined) =>
      fx.bundle({
        args: ['sh', '-c', script],
        extra: (c) => {
          if (p !== undefined) c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: p } : n));
        },
      });
    const read = async (name: string) =>
      poll(() => {
        const text = fs.readFileSync(path.join(stateDir, sid, 'logs', `${name}.stdout`), 'utf8');
        return text.includes('\n') ? text.trim() : undefined;
      }, 10_000, `${name} output`);
    const nsOf = (hostPid: number) => fs.readlinkSync(`/proc/${hostPid}/ns/pid`);
    const rootHostPid = engine.list().find((x) => x.id === sid)?.containers.find((c) => c.id === sid)?.hostPid as number;
    // CRI's path: /proc/<the sandbox's pid>/ns/pid, which is paddock-init's namespace.
    await engine.startContainer(sid, 'shared', withPidPath(`/proc/${h.pid}/ns/pid`));
    expect(await read('shared')).toBe(`${nsOf(rootHostPid)} sleep 30`);
    const own = await engine.startContainer(sid, 'own', withPidPath(undefined));
    expect(await read('own')).toMatch(/^pid:\[\d+\] sh -c /);
    expect(nsOf(own.hostPid)).not.toBe(nsOf(rootHostPid));
    const next = await engine.startContainer(sid, 'next', withPidPath(`/proc/${own.hostPid}/ns/pid`));
    expect(await read('next')).toBe(`${nsOf(own.hostPid)} sleep 30`);
    expect(next.pid).toBeGreaterThan(1);

    // Any other pid namespace is refused at add, and nothing of the container is left.
    await expect(engine.startContainer(sid, 'host', withPidPath(`/proc/${process.pid}/ns/pid`))).rejects.toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      context: { field: 'linux.namespaces[0].path' },
    });
    await expect(engine.startContainer(sid, 'gone', withPidPath('/proc/999999999/ns/pid'))).rejects.toMatchObject({ code: 'ELAUNCH_STEP', context: { step: 'namespace_path' } });
    // The network, ipc and uts namespaces are the sandbox's: a path to the sandbox's own is
    // accepted (CRI gives them), another is refused instead of being ignored.
    const netPath = (p: string) =>
      fx.bundle({
        args: ['true'],
        extra: (c) => {
          c.linux!.namespaces = [...c.linux!.namespaces!.filter((n) => n.type !== 'network'), { type: 'network', path: p }];
        },
      });
    await expect(engine.startContainer(sid, 'hostnet', netPath(`/proc/${process.pid}/ns/net`))).rejects.toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      message: expect.stringContaining("shares the sandbox's network namespace"),
    });
    const same = await engine.startContainer(sid, 'podnet', netPath(`/proc/${h.pid}/ns/net`));
    expect(await engine.wait(sid, same.containerId, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    await engine.destroyContainer(sid, 'podnet');
    expect(engine.list().find((x) => x.id === sid)?.containers.map((c) => c.id).sort()).toEqual(['next', 'own', sid, 'shared'].sort());
    // A sandbox given one joins it, as runc does (decision 0036): its root container is in
    // that very namespace, where paddock-init's pid namespace is, and sees its pid 1 (the
    // first sandbox's paddock-init).
    const sid2 = id();
    // Without a user namespace of its own: one made beside the first sandbox's could not
    // mount /proc for a pid namespace that one owns (EPERM, as with runc).
    const joining = fx.bundle({
      userns: false,
      args: ['sh', '-c', 'echo "$(readlink /proc/self/ns/pid) $(tr "\\0" " " < /proc/1/cmdline)"'],
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${h.pid}/ns/pid` } : n));
      },
    });
    const h2 = await engine.createSandbox(sid2, joining);
    await engine.startRoot(sid2);
    expect(await engine.wait(sid2, sid2, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    expect((await readAll(h2.stdio!.stdout)).trim()).toMatch(new RegExp(`^${nsOf(h.pid).replace(/[[\]]/g, '\\$&')} paddock-init `));
    await engine.destroy(sid2);
  });

  test('addContainer registers a container (created) that startContainer starts later; its id is reusable after destroy', async () => {
    const sid = id();
    await engine.createSandbox(sid, bundle(['sleep', '60']));
    await expect(engine.addContainer(sid, 'early', bundle(['true']))).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    await engine.startRoot(sid);
    await expect(engine.startContainer(sid, 'c')).rejects.toMatchObject({ code: 'ECONTAINER_NOT_FOUND' });
    const b = bundle(['sh', '-c', 'echo side; sleep 60']);
    expect(await engine.addContainer(sid, 'c', b, { stdio: 'ignore' })).toMatchObject({ id: 'c', status: 'created' });
    await expect(engine.addContainer(sid, 'c', b)).rejects.toMatchObject({ code: 'ECONTAINER_EXISTS' });
    await expect(engine.startContainer(sid, 'c', b)).rejects.toMatchObject({ code: 'ECONTAINER_EXISTS' });
    expect(engine.list().find((s) => s.id === sid)?.containers.map((c) => [c.id, c.status])).toEqual([
      [sid, 'running'],
      ['c', 'created'],
    ]);
    const h = await engine.startContainer(sid, 'c');
    expect(h.hostPid).toBeGreaterThan(0);
    expect(engine.list().find((s) => s.id === sid)?.containers.find((c) => c.id === 'c')?.status).toBe('running');
    await expect(engine.startContainer(sid, 'c')).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    await engine.destroyContainer(sid, 'c');
    // Destroying a container that was never started, and reusing an id, both work.
    await engine.addContainer(sid, 'c', b);
    await engine.destroyContainer(sid, 'c');
    const again = await engine.startContainer(sid, 'c', bundle(['sh', '-c', 'echo again; sleep 60']));
    await poll(() => (fs.readFileSync(path.join(stateDir, sid, 'logs', 'c.stdout'), 'utf8') === 'again\n' ? true : undefined), 10_000, 'c output');
    expect(again.hostPid).not.toBe(h.hostPid);
  });

  test('destroy kills every process and leaves no process, mount, socket or state file', async () => {
    const sid = id();
    const h = await engine.createSandbox(sid, bundle(['sh', '-c', 'sleep 100 & sleep 100 & wait']));
    const started = await engine.startRoot(sid);
    const ex = await engine.execute(sid, sid, { args: ['sleep', '100'] });
    const pids = [h.pid, started.hostPid, ex.hostPid];
    for (const p of pids) expect(fs.existsSync(`/proc/${p}`)).toBe(true);
    await engine.destroy(sid);
    for (const p of pids) expect(fs.existsSync(`/proc/${p}`)).toBe(false);
    expect(paddockInitPids()).not.toContain(h.pid);
    expect(fs.existsSync(path.join(stateDir, sid))).toBe(false);
    expect(mountsUnder(path.join(stateDir, sid))).toEqual([]);
    expect(engine.list().map((s) => s.id)).not.toContain(sid);
  });

  test('a cgroup mount without a cgroup namespace gets a private one (as podman asks)', async () => {
    const cg = (c: Parameters<NonNullable<Parameters<typeof makeBundle>[0]['extra']>>[0]) => {
      c.mounts = [...(c.mounts ?? []), { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] }];
    };
    const { status, stdout } = await run(['sh', '-c', 'cat /proc/self/cgroup; readlink /proc/self/ns/cgroup; grep " /sys/fs/cgroup " /proc/self/mountinfo'], {
      args: [],
      extra: cg,
    });
    expect(status).toMatchObject({ exitCode: 0 });
    // In its own cgroup namespace the container sees itself at the root.
    expect(stdout).toMatch(/^0::\/$/m);
    expect(stdout).toMatch(/ \/sys\/fs\/cgroup ro,.* - cgroup2 /);
    expect(stdout).not.toContain(fs.readlinkSync('/proc/self/ns/cgroup'));
  });

  test('events$ reports state changes and exits', async () => {
    const seen: string[] = [];
    const sub = engine.events$.subscribe((e) => {
      if (e.type === 'exit') seen.push(`exit:${e.containerId}:${e.exit.exitCode}`);
      if (e.type === 'state' && !e.containerId) seen.push(`state:${e.status}`);
    });
    // The root waits for its stdin to close, so it cannot exit before `running` is
    // reported (a bare `exit 3` can beat it: starting, then exit, then stopped).
    const sid = id();
    const h = await engine.createSandbox(sid, bundle(['sh', '-c', 'read x; exit 3']));
    await engine.startRoot(sid);
    await poll(() => (seen.includes('state:running') ? true : undefined), 10_000, 'state running');
    h.stdio!.stdin!.end();
    expect(await engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 3 });
    sub.unsubscribe();
    expect(seen).toEqual(['state:creating', 'state:created', 'state:starting', 'state:running', `exit:${sid}:3`, 'state:stopped']);
  });

  test('100 sandboxes started concurrently all run and all exit cleanly', async () => {
    const dir = bundle(['sh', '-c', 'sleep 2']);
    const ids = Array.from({ length: 100 }, (_, i) => `many${i}`);
    // Every start resolved with the root process's pid: each container really ran (on
    // two loaded cores a start reply can arrive after a short container already exited,
    // so the sandbox's own `running` state is not the proof).
    const started = await Promise.all(ids.map((s) => engine.createSandbox(s, dir).then(() => engine.startRoot(s))));
    expect(started.filter((c) => c.pid > 0 && c.hostPid > 0)).toHaveLength(100);
    const statuses = await Promise.all(ids.map((s) => engine.wait(s, s, { timeoutMs: 60_000 })));
    expect(statuses.every((s) => s.exitCode === 0)).toBe(true);
    await Promise.all(ids.map((s) => engine.destroy(s)));
    expect(engine.list().filter((s) => ids.includes(s.id))).toEqual([]);
  }, 120_000);
});
