import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCgroupRecord } from '../../actors/cgroups/record';
import { detectLayout, SandboxCgroup, sandboxCgroupPath, type CgroupLayout } from '../../actors/cgroups/sandbox-cgroup';
import { SandboxPaths } from '../../actors/sandbox/state-store';
import type { OciConfig } from '../../specs/oci';
import { createEngine, type Engine } from '../../index';
import { makeBundle, type MakeBundleOptions, type TestBundle } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { describeIf, poll, quietLogger, testIf, testStateDir } from '../helpers/env';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/**
 * Each container added to a sandbox (a pod container) in a cgroup of its own
 * (docs/decisions/0022): its limits applied there, its stats read there, it alone
 * paused there, and the cgroup removed with it. On the host's layout (hybrid here: v1
 * controllers, cgroup2 freezer), with v1's freezer, and with an engine given a v2-only
 * layout (the controller-less unified tree), where the sandbox's own processes move
 * into its `init` leaf.
 */
describeIf(['root', 'busybox', 'cgroups'])('pod containers in their own cgroups (real sandboxes)', () => {
  const host = detectLayout();
  const v1Layout: CgroupLayout | undefined = host.mode !== 'v2' && host.v1.freezer !== undefined ? { mode: 'v1', v1: host.v1 } : undefined;
  const v2Layout: CgroupLayout | undefined = host.unified !== undefined ? { mode: 'v2', unified: host.unified, v1: {} } : undefined;
  let stateDir: string;
  const engines: Engine[] = [];
  const bundles: TestBundle[] = [];
  let seq = 0;
  const MiB = 1024 * 1024;

  const open = async (cgroups?: CgroupLayout) => {
    const e = await createEngine({ stateDir, logger: quietLogger(), reattach: false, ...(cgroups ? { cgroups } : {}) });
    engines.push(e);
    return e;
  };
  const bundle = (args: string[], extra?: MakeBundleOptions['extra']) => {
    const b = makeBundle({ args, ...(extra ? { extra } : {}) });
    bundles.push(b);
    return b.dir;
  };
  const limited = (args: string[], resources: NonNullable<NonNullable<OciConfig['linux']>['resources']>) => bundle(args, (c) => void (c.linux!.resources = resources));

  beforeEach(() => {
    stateDir = testStateDir('podcg');
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) {
      for (const s of e.list()) await e.destroy(s.id).catch(() => undefined);
      await e.close();
    }
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  /** A running sandbox whose root sleeps, plus `side` added, prepared and started with `sideBundle`. */
  async function pod(e: Engine, sideBundle: string) {
    const sid = `pc${++seq}`;
    const h = await e.createSandbox(sid, bundle(['sleep', '60']), { stdio: 'ignore' });
    const root = await e.startRoot(sid);
    await e.addContainer(sid, 'side', sideBundle, { stdio: 'pipe', prepare: true });
    const side = await e.startContainer(sid, 'side');
    return { sid, initPid: h.pid, rootPid: root.hostPid, sidePid: side.hostPid };
  }
  const sandboxCg = (sid: string, layout: CgroupLayout = host) => new SandboxCgroup(layout, sandboxCgroupPath(stateDir, sid), { cpuset: true });
  const sideCg = (sid: string, layout: CgroupLayout = host) => new SandboxCgroup(layout, `${sandboxCgroupPath(stateDir, sid)}/ctr-side`, { cpuset: true });
  const procsOf = (dir: string) => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  const statusOf = (e: Engine, sid: string, cid?: string) => {
    const s = e.list().find((x) => x.id === sid);
    return cid === undefined ? s?.status : s?.containers.find((c) => c.id === cid)?.status;
  };
  /** The task state letter of /proc/PID/stat (R, S, D, ...). */
  const taskState = (pid: number) => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  };
  const frozenV2 = (dir: string) => /^frozen 1$/m.test(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8'));

  test('limits apply to the second container only, seen from inside and from the host; stats differ; destroy removes its cgroup', async () => {
    const e = await open();
    const limit = 48 * MiB;
    const p = await pod(e, limited(['sh', '-c', 'cat /proc/self/cgroup; exec sleep 60'], { memory: { limit }, pids: { limit: 20 }, cpu: { shares: 256 } }));
    const cg = sideCg(p.sid);
    const v2 = host.mode === 'v2';
    const memDir = cg.dirOf(v2 ? 'unified' : 'memory') as string;
    expect(Number(fs.readFileSync(path.join(memDir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8'))).toBe(limit);
    expect(fs.readFileSync(path.join(cg.dirOf(v2 ? 'unified' : 'pids') as string, 'pids.max'), 'utf8').trim()).toBe('20');
    // Its process is in it (placed while held), in every hierarchy; the root's and init are not.
    const made = cg.paths.filter((d) => fs.existsSync(d));
    expect(made.length).toBeGreaterThanOrEqual(host.mode === 'v2' ? 1 : 5);
    for (const d of made) {
      expect(procsOf(d)).toContain(p.sidePid);
      expect(procsOf(d)).not.toContain(p.rootPid);
      expect(procsOf(d)).not.toContain(p.initPid);
    }
    // The root container is unaffected: no limit on the sandbox, and it is not in the container's cgroup.
    const sbMem = sandboxCg(p.sid).dirOf(v2 ? 'unified' : 'memory') as string;
    expect(Number(fs.readFileSync(path.join(sbMem, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').replace('max', 'Infinity'))).toBeGreaterThan(limit);
    expect(fs.readFileSync(`/proc/${p.rootPid}/cgroup`, 'utf8')).not.toMatch(/ctr-side/);
    // From inside (no cgroup namespace here: the host's path; with one, `/`, cgroup-namespaces.int.test.ts).
    const log = new SandboxPaths(stateDir, p.sid).log('side', 'stdout');
    const inside = await poll(() => {
      const t = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      return /ctr-side/.test(t) ? t : undefined;
    }, 10_000, 'the container to print its cgroup');
    expect(inside).toMatch(v2 ? /^0::(\/.*)?\/ctr-side$/m : /:memory:(\/.*)?\/ctr-side$/m);

    const side = await e.event(p.sid, 'side');
    expect(side).toMatchObject({ source: 'cgroup', pids: 1, memory: { limitBytes: limit } });
    const root = await e.event(p.sid, p.sid);
    expect(root.source).toBe('cgroup');
    expect(root.memory.limitBytes).toBeUndefined();

    // Recorded, so a later process can remove it.
    expect(readCgroupRecord(new SandboxPaths(stateDir, p.sid))?.containers?.side).toMatchObject({ relPath: cg.relPath, custom: false });
    await e.destroyContainer(p.sid, 'side');
    for (const d of cg.paths) expect(fs.existsSync(d)).toBe(false);
    expect(readCgroupRecord(new SandboxPaths(stateDir, p.sid))?.containers).toBeUndefined();
    expect(statusOf(e, p.sid)).toBe('running');
    await e.destroy(p.sid);
    for (const d of sandboxCg(p.sid).paths) expect(fs.existsSync(d)).toBe(false);
  });

  test('a held container enters its cgroups itself: when the engine comes to place it, it is in every hierarchy already (decision 0046)', async () => {
    const e = await open();
    // /proc/PID/cgroup of the held process at the moment the engine places it: the child
    // wrote "0" to each v1 `tasks` file (no global lock) and cgroup2's cgroup.procs, so
    // place() has nothing to write. A regression would still place it, only slower.
    const seen: Array<{ relPath: string; text: string }> = [];
    const real = SandboxCgroup.prototype.place;
    const spy = jest.spyOn(SandboxCgroup.prototype, 'place').mockImplementation(function (this: SandboxCgroup, pid: number, text?: string) {
      seen.push({ relPath: this.relPath, text: fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8') });
      return real.call(this, pid, text);
    });
    let p;
    try {
      p = await pod(e, limited(['sleep', '60'], { pids: { limit: 20 } }));
    } finally {
      spy.mockRestore();
    }
    const cg = sideCg(p.sid);
    const side = seen.filter((x) => x.relPath === cg.relPath);
    expect(side.length).toBeGreaterThanOrEqual(1);
    const made = cg.paths.filter((d) => fs.existsSync(d));
    expect(made.length).toBeGreaterThanOrEqual(host.mode === 'v2' ? 1 : 5);
    for (const { text } of side) expect(cg.missing(text).filter((d) => made.includes(d))).toEqual([]);
    await e.destroy(p.sid);
  });

  test('a pids limit on the second container makes its sixth fork fail; the root container forks freely', async () => {
    const e = await open();
    const p = await pod(e, limited(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo forked; exec sleep 60'], { pids: { limit: 5 } }));
    const err = new SandboxPaths(stateDir, p.sid).log('side', 'stderr');
    await poll(() => (fs.existsSync(err) && /can't fork|Resource temporarily unavailable/.test(fs.readFileSync(err, 'utf8')) ? true : undefined), 10_000, 'a refused fork');
    const r = await e.execute(p.sid, p.sid, { args: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do true & done; wait; echo ok'], stdio: 'ignore' });
    expect(await e.waitPid(p.sid, r.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
  });

  test('pause of the second container alone freezes its cgroup only; the root container keeps running; kill --all empties it', async () => {
    const e = await open();
    const p = await pod(e, bundle(['sleep', '60']));
    await e.pause(p.sid, 'side');
    expect(statusOf(e, p.sid, 'side')).toBe('paused');
    expect(statusOf(e, p.sid)).toBe('running');
    expect(statusOf(e, p.sid, p.sid)).toBe('running');
    const cg = sideCg(p.sid);
    const unified = cg.dirOf('unified');
    if (unified && fs.existsSync(path.join(unified, 'cgroup.freeze'))) expect(frozenV2(unified)).toBe(true);
    // The root container answers an exec; the paused one refuses it (as runc).
    const r = await e.execute(p.sid, p.sid, { args: ['true'], stdio: 'ignore' });
    expect(await e.waitPid(p.sid, r.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    await expect(e.execute(p.sid, 'side', { args: ['true'], stdio: 'ignore' })).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    await expect(e.pause(p.sid, 'side')).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    // The stats of the frozen container still come from its cgroup.
    expect((await e.event(p.sid, 'side')).source).toBe('cgroup');

    await e.resume(p.sid, 'side');
    expect(statusOf(e, p.sid, 'side')).toBe('running');
    if (unified && fs.existsSync(path.join(unified, 'cgroup.freeze'))) expect(frozenV2(unified)).toBe(false);
    await expect(e.resume(p.sid, 'side')).rejects.toMatchObject({ code: 'EINVALID_STATE' });

    // Pausing the sandbox freezes the pod container's own cgroup too; resuming thaws it.
    await e.pause(p.sid);
    expect(statusOf(e, p.sid, 'side')).toBe('paused');
    if (unified && fs.existsSync(path.join(unified, 'cgroup.freeze'))) expect(frozenV2(unified)).toBe(true);
    await expect(e.resume(p.sid, 'side')).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    await e.resume(p.sid);
    expect(statusOf(e, p.sid, 'side')).toBe('running');

    // kill --all reaches what the container forked, through its cgroup.
    await e.execute(p.sid, 'side', { args: ['sh', '-c', 'sleep 50 & sleep 51 & wait'], stdio: 'ignore' });
    await poll(() => (procsOf(cg.paths[0] as string).length >= 4 ? true : undefined), 5_000, 'forks in the cgroup');
    await e.signal(p.sid, 'side', 'KILL', { all: true });
    await poll(() => (procsOf(cg.paths[0] as string).length === 0 ? true : undefined), 5_000, 'the cgroup to empty');
    await poll(() => (statusOf(e, p.sid, 'side') === 'stopped' ? true : undefined), 5_000, 'side to stop');
    expect(statusOf(e, p.sid)).toBe('running');
  });

  testIf(['cgroup-v1-freezer'])('v1 freezer: the paused container is FROZEN (task state D) while the root runs; destroy while paused leaves nothing', async () => {
    const e = await open(v1Layout);
    const p = await pod(e, bundle(['sleep', '60']));
    const cg = sideCg(p.sid, v1Layout);
    await e.pause(p.sid, 'side');
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    expect(taskState(p.sidePid)).toBe('D');
    expect(taskState(p.rootPid)).not.toBe('D');
    // A paused container is destroyed alone: killed, thawed, its cgroup gone.
    await e.destroyContainer(p.sid, 'side');
    for (const d of cg.paths) expect(fs.existsSync(d)).toBe(false);
    // And a sandbox destroyed with a container paused alone leaves nothing either.
    await e.addContainer(p.sid, 'side', bundle(['sleep', '60']), { stdio: 'ignore', prepare: true });
    await e.startContainer(p.sid, 'side');
    await e.pause(p.sid, 'side');
    await e.destroy(p.sid);
    for (const d of [...cg.paths, ...sandboxCg(p.sid, v1Layout).paths]) expect(fs.existsSync(d)).toBe(false);
  });

  testIf(['cgroup2'])('v2-only layout: init moves to the sandbox\'s init leaf; the container is frozen alone and with its sandbox; nothing is left', async () => {
    const layout = v2Layout as CgroupLayout;
    const e = await open(layout);
    // No limits: this host's cgroup2 tree has no controllers to enable.
    const p = await pod(e, bundle(['sleep', '60']));
    const sb = sandboxCg(p.sid, layout).dirOf('unified') as string;
    const side = sideCg(p.sid, layout).dirOf('unified') as string;
    expect(procsOf(sb)).toEqual([]);
    expect(procsOf(path.join(sb, 'init'))).toEqual(expect.arrayContaining([p.initPid, p.rootPid]));
    expect(procsOf(side)).toEqual([p.sidePid]);
    // A container added without prepare is held, placed, then released by its start.
    await e.addContainer(p.sid, 'late', bundle(['sleep', '60']), { stdio: 'ignore' });
    const late = await e.startContainer(p.sid, 'late');
    expect(procsOf(path.join(sb, 'ctr-late'))).toEqual([late.hostPid]);

    await e.pause(p.sid, 'side');
    expect(frozenV2(side)).toBe(true);
    expect(frozenV2(path.join(sb, 'ctr-late'))).toBe(false);
    await e.resume(p.sid, 'side');
    // The sandbox's pause moves the root's processes from the init leaf into containers; init stays.
    await e.pause(p.sid);
    expect(procsOf(path.join(sb, 'init'))).toEqual([p.initPid]);
    expect(procsOf(path.join(sb, 'containers'))).toContain(p.rootPid);
    expect(frozenV2(path.join(sb, 'containers'))).toBe(true);
    expect(frozenV2(side)).toBe(true);
    await e.resume(p.sid);
    expect(frozenV2(side)).toBe(false);
    await e.destroy(p.sid);
    expect(fs.existsSync(sb)).toBe(false);
  });

  testIf(['cgroup-v1-devices'])('without a user namespace, the second container\'s device rules go to its own v1 devices cgroup', async () => {
    const e = await open();
    const sid = `pc${++seq}`;
    const plain = (args: string[], extra?: MakeBundleOptions['extra']) => {
      const b = makeBundle({ args, userns: false, ...(extra ? { extra } : {}) });
      bundles.push(b);
      return b.dir;
    };
    // A sandbox without device rules (defaultSpec() has runc's deny-all): no devices cgroup of its own.
    await e.createSandbox(sid, plain(['sleep', '60'], (c) => { delete c.linux!.resources; }), { stdio: 'ignore' });
    await e.startRoot(sid);
    const rules = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    ];
    await e.addContainer(sid, 'side', plain(['sleep', '60'], (c) => void (c.linux!.resources = { devices: rules })), { stdio: 'ignore', prepare: true });
    const started = await e.startContainer(sid, 'side');
    const dev = new SandboxCgroup(host, `${sandboxCgroupPath(stateDir, sid)}/ctr-side`, { devices: true }).dirOf('devices') as string;
    // The spec's allow, then runc's standard ones; the sandbox (no rules) has no devices cgroup of its own.
    expect(fs.readFileSync(path.join(dev, 'devices.list'), 'utf8')).toMatch(/^c 1:3 rwm$/m);
    expect(fs.readFileSync(path.join(dev, 'devices.list'), 'utf8')).not.toMatch(/^a \*:\* rwm$/m);
    expect(procsOf(dev)).toEqual([started.hostPid]);
    await e.destroyContainer(sid, 'side');
    // Made by the container (the sandbox's devices level too): all of it goes.
    expect(fs.existsSync(dev)).toBe(false);
    expect(fs.existsSync(path.dirname(dev))).toBe(false);
  });

  test('reattach finds the container cgroup (stats, destroy); a sibling linux.cgroupsPath is honoured and its parents removed', async () => {
    const e = await open();
    const parent = `paddock/podcg-${process.pid}-${seq + 1}`;
    const sideBundle = bundle(['sleep', '60'], (c) => {
      c.linux!.cgroupsPath = `/${parent}/side`;
      c.linux!.resources = { memory: { limit: 40 * MiB } };
    });
    const p = await pod(e, sideBundle);
    const cg = new SandboxCgroup(host, `${parent}/side`);
    for (const d of cg.paths) expect(procsOf(d)).toContain(p.sidePid);
    expect(readCgroupRecord(new SandboxPaths(stateDir, p.sid))?.containers?.side).toMatchObject({ relPath: `${parent}/side`, custom: true });
    expect(fs.existsSync(sideCg(p.sid).paths[0] as string)).toBe(false);
    await e.close();
    engines.splice(engines.indexOf(e), 1);

    const again = await open();
    await again.attach(p.sid);
    expect(await again.event(p.sid, 'side')).toMatchObject({ source: 'cgroup', memory: { limitBytes: 40 * MiB } });
    await again.destroy(p.sid);
    for (const d of cg.paths) {
      expect(fs.existsSync(d)).toBe(false);
      expect(fs.existsSync(path.dirname(d))).toBe(false);
    }
  });

  test('bad input: the sandbox\'s own cgroup or a busy one is ECGROUP_IN_USE, ".." is ECONFIG_INVALID; nothing is left', async () => {
    const e = await open();
    const sid = `pc${++seq}`;
    await e.createSandbox(sid, bundle(['sleep', '60']), { stdio: 'ignore' });
    await e.startRoot(sid);
    const other = `pc${++seq}`;
    await e.createSandbox(other, bundle(['sleep', '60']), { stdio: 'ignore' });
    const withPath = (p: string) => bundle(['true'], (c) => void (c.linux!.cgroupsPath = p));
    const before = fs.readdirSync(sandboxCg(sid).paths[0] as string).filter((n) => !n.includes('.'));
    await expect(e.addContainer(sid, 'a', withPath(`/${sandboxCgroupPath(stateDir, sid)}`))).rejects.toMatchObject({ code: 'ECGROUP_IN_USE' });
    // Another sandbox's cgroup holds its init.
    await expect(e.addContainer(sid, 'b', withPath(`/${sandboxCgroupPath(stateDir, other)}`))).rejects.toMatchObject({ code: 'ECGROUP_IN_USE' });
    await expect(e.addContainer(sid, 'c', withPath('/paddock/../x'))).rejects.toMatchObject({ code: 'ECONFIG_INVALID', context: { field: 'linux.cgroupsPath' } });
    await expect(e.addContainer(sid, 'd', withPath(`/${sandboxCgroupPath(stateDir, sid)}/init`))).rejects.toMatchObject({ code: 'ECONFIG_INVALID' });
    // A limit the kernel refuses fails the add with nothing made.
    await expect(e.addContainer(sid, 'e', limited(['true'], { cpu: { cpus: '4000-4001' } }))).rejects.toMatchObject({ message: expect.stringMatching(/^cgroup: E[A-Z]+ \(cpuset\.cpus\)/) });
    expect(e.list().find((s) => s.id === sid)?.containers.map((c) => c.id)).toEqual([sid]);
    expect(fs.readdirSync(sandboxCg(sid).paths[0] as string).filter((n) => !n.includes('.'))).toEqual(before);
    for (const d of new SandboxCgroup(host, `${sandboxCgroupPath(stateDir, sid)}/ctr-e`, { cpuset: true }).paths) expect(fs.existsSync(d)).toBe(false);
    expect(procsOf(sandboxCg(other).paths[0] as string).length).toBeGreaterThan(0);
    expect(readCgroupRecord(new SandboxPaths(stateDir, sid))?.containers).toBeUndefined();
  });
});

/**
 * The same through the OCI CLI, as containerd's CRI drives a pod: each call is a fresh
 * process, so the container's cgroup is found again from the sandbox's cgroup.json.
 */
describeIf(['root', 'busybox', 'cgroups'])('paddock CLI: a pod container in its own cgroup', () => {
  const TYPE = 'io.kubernetes.cri.container-type';
  const SANDBOX = 'io.kubernetes.cri.sandbox-id';
  const host = detectLayout();
  let root: string;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const state = (id: string) => JSON.parse(cli('state', id).stdout) as { status: string; pid: number };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-podcg');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) if (!id.startsWith('.')) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('create with container-type=container applies its limit to its own cgroup; events, pause and delete use it', () => {
    const mk = (args: string[], annotations: Record<string, string>, resources?: object) => {
      const b = makeBundle({
        args,
        extra: (c) => {
          c.annotations = annotations;
          if (resources) c.linux!.resources = resources as NonNullable<NonNullable<OciConfig['linux']>['resources']>;
        },
      });
      bundles.push(b);
      return b.dir;
    };
    expect(cli('run', '-d', '--bundle', mk(['sleep', '60'], { [TYPE]: 'sandbox' }), 'pod').code).toBe(0);
    const limit = 40 * 1024 * 1024;
    expect(cli('create', '--bundle', mk(['sleep', '60'], { [TYPE]: 'container', [SANDBOX]: 'pod' }, { memory: { limit }, pids: { limit: 10 } }), 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(cli('start', 'app')).toMatchObject({ code: 0, stderr: '' });
    const cg = new SandboxCgroup(host, `${sandboxCgroupPath(root, 'pod')}/ctr-app`);
    const v2 = host.mode === 'v2';
    const memDir = cg.dirOf(v2 ? 'unified' : 'memory') as string;
    expect(Number(fs.readFileSync(path.join(memDir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8'))).toBe(limit);
    expect(fs.readFileSync(path.join(memDir, 'cgroup.procs'), 'utf8').trim().split('\n')).toHaveLength(1);

    // runc's events --stats shape (issue 16): the pod container's own cgroup, and the sandbox's.
    const stats = (id: string) => JSON.parse(cli('events', '--stats', id).stdout) as { type: string; id: string; data: { pids: { current: number }; memory: { usage: { limit: number } } } };
    expect(stats('app')).toMatchObject({ type: 'stats', id: 'app', data: { pids: { current: 1 }, memory: { usage: { limit } } } });
    expect(stats('pod').data.memory.usage.limit).not.toBe(limit);

    expect(cli('pause', 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(state('app').status).toBe('paused');
    expect(state('pod').status).toBe('running');
    const unified = cg.dirOf('unified');
    if (unified && fs.existsSync(path.join(unified, 'cgroup.freeze'))) expect(fs.readFileSync(path.join(unified, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
    expect(cli('resume', 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(state('app').status).toBe('running');

    expect(cli('delete', '--force', 'app')).toMatchObject({ code: 0, stderr: '' });
    for (const d of cg.paths) expect(fs.existsSync(d)).toBe(false);
    expect(state('pod').status).toBe('running');
    // A second one left for the sandbox's delete --force to take.
    expect(cli('create', '--bundle', mk(['sleep', '60'], { [TYPE]: 'container', [SANDBOX]: 'pod' }), 'app2').code).toBe(0);
    expect(cli('start', 'app2').code).toBe(0);
    const cg2 = new SandboxCgroup(host, `${sandboxCgroupPath(root, 'pod')}/ctr-app2`);
    expect(cg2.exists()).toBe(true);
    expect(cli('delete', '--force', 'pod')).toMatchObject({ code: 0, stderr: '' });
    for (const d of [...cg2.paths, ...new SandboxCgroup(host, sandboxCgroupPath(root, 'pod')).paths]) expect(fs.existsSync(d)).toBe(false);
  });
});
