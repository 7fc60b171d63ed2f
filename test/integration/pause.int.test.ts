import * as fs from 'node:fs';
import * as path from 'node:path';
import { firstValueFrom, filter } from 'rxjs';
import { detectLayout, SandboxCgroup, sandboxCgroupPath, type CgroupLayout } from '../../actors/cgroups/sandbox-cgroup';
import { createEngine, type Engine } from '../../index';
import { makeBundle, TEST_USERNS, type TestBundle } from '../helpers/bundle';
import { describeIf, poll, quietLogger, testIf, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';

/**
 * pause/resume with the cgroup freezer, on real sandboxes (docs/decisions/0014): a
 * busybox loop writes a counter to a bind-mounted host file; while paused the counter
 * does not move (read twice across a gap), the container's tasks sit in the frozen
 * `<sandbox>/containers` cgroup while paddock-init keeps answering, and after resume it
 * moves on. Both freezers: cgroup v2's (the default where the sandbox has a cgroup2
 * directory, as on this hybrid host) and v1's (an engine given a v1-only layout).
 */
describeIf(['root', 'busybox', 'cgroups'])('pause / resume (real sandboxes)', () => {
  const host = detectLayout();
  const v1Layout: CgroupLayout | undefined =
    host.mode !== 'v2' && host.v1.freezer !== undefined ? { mode: 'v1', v1: host.v1 } : undefined;
  let stateDir: string;
  let engine: Engine;
  const engines: Engine[] = [];
  const bundles: TestBundle[] = [];
  const outDirs: string[] = [];
  let seq = 0;
  /** While paused the loop must not move for this long; long enough for ~10 of its turns. */
  const QUIET_GAP_MS = 500;

  const open = async (cgroups?: CgroupLayout) => {
    const e = await createEngine({ stateDir, logger: quietLogger(), ...(cgroups ? { cgroups } : {}) });
    engines.push(e);
    return e;
  };

  beforeEach(async () => {
    stateDir = testStateDir('pause');
    engine = await open();
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) {
      for (const s of e.list()) await e.destroy(s.id).catch(() => undefined);
      await e.close();
    }
    for (const b of bundles.splice(0)) b.cleanup();
    for (const d of outDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  /** A sandbox whose root counts forever into <out>/n, bind-mounted as its /tmp (written whole, then renamed). */
  async function counting(e: Engine = engine) {
    const sid = `pz${++seq}`;
    const out = fs.mkdtempSync(path.join(path.dirname(stateDir), 'pause-out-'));
    outDirs.push(out);
    fs.chownSync(out, TEST_USERNS.hostId, TEST_USERNS.hostId);
    const b = makeBundle({
      args: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.tmp; mv /tmp/n.tmp /tmp/n; sleep 0.05; done'],
      extra: (c) => {
        c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'bind', source: out, options: ['rbind', 'rw'] }];
      },
    });
    bundles.push(b);
    const h = await e.createSandbox(sid, b.dir, { stdio: 'ignore' });
    const started = await e.startRoot(sid);
    const counter = () => {
      try {
        return Number(fs.readFileSync(path.join(out, 'n'), 'utf8'));
      } catch {
        return 0;
      }
    };
    // It runs: the counter moves.
    const first = await poll(() => (counter() > 0 ? counter() : undefined), 10_000, 'first count');
    await poll(() => (counter() > first ? true : undefined), 10_000, 'count moving');
    return { sid, initPid: h.pid, hostPid: started.hostPid, counter };
  }

  const cgroupOf = (sid: string, layout: CgroupLayout = host) => new SandboxCgroup(layout, sandboxCgroupPath(stateDir, sid), { cpuset: true });
  /** The cgroup2 path of a process (the `0::` line of /proc/PID/cgroup). */
  const unifiedPathOf = (pid: number) => /^0::(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
  const v1FreezerPathOf = (pid: number) => /^\d+:freezer:(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
  const gap = () => new Promise((r) => setTimeout(r, QUIET_GAP_MS));
  const statusOf = (e: Engine, sid: string) => e.list().find((s) => s.id === sid)?.status;

  test('cgroup v2 freezer: the counter stops while paused and moves on after resume; init keeps answering', async () => {
    const c = await counting();
    // An exec'd process is frozen with the container.
    const ex = await engine.execute(c.sid, c.sid, { args: ['sleep', '60'], stdio: 'ignore' });
    const pausedEvent = firstValueFrom(engine.events$.pipe(filter((ev) => ev.type === 'state' && ev.sandboxId === c.sid && !('containerId' in ev) && ev.status === 'paused')));
    await engine.pause(c.sid);
    await pausedEvent;
    expect(statusOf(engine, c.sid)).toBe('paused');
    expect(engine.list().find((s) => s.id === c.sid)?.containers[0]?.status).toBe('paused');

    const a = c.counter();
    await gap();
    expect(c.counter()).toBe(a);

    // The container's task is in the frozen child, init is not.
    const unified = cgroupOf(c.sid).dirOf('unified');
    if (unified !== undefined) {
      const frozenDir = path.join(unified, 'containers');
      expect(fs.readFileSync(path.join(frozenDir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
      expect(unifiedPathOf(c.hostPid)).toBe(`/${sandboxCgroupPath(stateDir, c.sid)}/containers`);
      expect(unifiedPathOf(c.initPid)).toBe(`/${sandboxCgroupPath(stateDir, c.sid)}`);
      expect(unifiedPathOf(ex.hostPid)).toBe(`/${sandboxCgroupPath(stateDir, c.sid)}/containers`);
    }
    // paddock-init answers over the control channel while its containers are frozen.
    const procs = await engine.processes(c.sid, c.sid);
    expect(procs.map((p) => p.hostPid)).toContain(c.hostPid);

    await engine.resume(c.sid);
    expect(statusOf(engine, c.sid)).toBe('running');
    expect(engine.list().find((s) => s.id === c.sid)?.containers[0]?.status).toBe('running');
    await poll(() => (c.counter() > a ? true : undefined), 10_000, 'count moving after resume');
    // And it pauses again (the child cgroup is reused).
    await engine.pause(c.sid);
    const b = c.counter();
    await gap();
    expect(c.counter()).toBe(b);
    await engine.resume(c.sid);
    await poll(() => (c.counter() > b ? true : undefined), 10_000, 'count moving after the second resume');
  });

  test('paused is persisted: another engine on the state dir sees it paused and can resume it', async () => {
    const c = await counting();
    await engine.pause(c.sid);
    await engine.close();
    const second = await open();
    expect(statusOf(second, c.sid)).toBe('paused');
    const a = c.counter();
    await gap();
    expect(c.counter()).toBe(a);
    await second.resume(c.sid);
    await poll(() => (c.counter() > a ? true : undefined), 10_000, 'count moving after resume');
  });

  test('destroy while paused (v2) leaves nothing; SIGKILL while paused ends the container at once', async () => {
    const before = paddockInitPids();
    const c = await counting();
    await engine.pause(c.sid);
    // cgroup v2 delivers SIGKILL to frozen tasks.
    await engine.signal(c.sid, c.sid, 'SIGKILL');
    expect(await engine.wait(c.sid, c.sid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: null, signal: 9 });
    await poll(() => (statusOf(engine, c.sid) === 'stopped' ? true : undefined), 10_000, 'stopped');
    await expect(engine.resume(c.sid)).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    await engine.destroy(c.sid);

    const d = await counting();
    await engine.pause(d.sid);
    await engine.destroy(d.sid);
    expect(engine.list()).toEqual([]);
    expect(fs.existsSync(path.join(stateDir, d.sid))).toBe(false);
    expect(cgroupOf(d.sid).paths.filter((p) => fs.existsSync(p))).toEqual([]);
    expect(fs.existsSync(`/proc/${d.hostPid}`)).toBe(false);
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
  });

  testIf(['cgroup-v1-freezer'])('cgroup v1 freezer: tasks frozen (freezer.state FROZEN, D state); resume; destroy while paused leaves nothing', async () => {
    const before = paddockInitPids();
    const v1 = await open(v1Layout);
    const c = await counting(v1);
    await v1.pause(c.sid);
    const frozenDir = path.join(cgroupOf(c.sid, v1Layout).dirOf('freezer') as string, 'containers');
    expect(fs.readFileSync(path.join(frozenDir, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    expect(v1FreezerPathOf(c.hostPid)).toBe(`/${sandboxCgroupPath(stateDir, c.sid)}/containers`);
    expect(v1FreezerPathOf(c.initPid)).toBe(`/${sandboxCgroupPath(stateDir, c.sid)}`);
    // A task in the v1 refrigerator reports uninterruptible sleep.
    expect(fs.readFileSync(`/proc/${c.hostPid}/status`, 'utf8')).toMatch(/^State:\s+D/m);
    const a = c.counter();
    await gap();
    expect(c.counter()).toBe(a);
    await v1.resume(c.sid);
    expect(fs.readFileSync(path.join(frozenDir, 'freezer.state'), 'utf8').trim()).toBe('THAWED');
    await poll(() => (c.counter() > a ? true : undefined), 10_000, 'count moving after resume');

    // v1 holds SIGKILL until thawed: destroy kills, thaws, and nothing is left.
    await v1.pause(c.sid);
    await v1.destroy(c.sid);
    expect(v1.list()).toEqual([]);
    expect(cgroupOf(c.sid, v1Layout).paths.filter((p) => fs.existsSync(p))).toEqual([]);
    expect(fs.existsSync(`/proc/${c.hostPid}`)).toBe(false);
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
  });

  test('bad input changes nothing: pause of created or stopped, resume of running, exec while paused, unknown id', async () => {
    const b = makeBundle({ args: ['sleep', '30'] });
    bundles.push(b);
    await engine.createSandbox('pzc', b.dir, { stdio: 'ignore' });
    await expect(engine.pause('pzc')).rejects.toMatchObject({ code: 'EINVALID_STATE', context: { verb: 'pause', state: 'created' } });
    await expect(engine.resume('pzc')).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    expect(statusOf(engine, 'pzc')).toBe('created');

    const c = await counting();
    await expect(engine.resume(c.sid)).rejects.toMatchObject({ code: 'EINVALID_STATE', context: { verb: 'resume', state: 'running' } });
    expect(statusOf(engine, c.sid)).toBe('running');
    await engine.pause(c.sid);
    await expect(engine.pause(c.sid)).rejects.toMatchObject({ code: 'EINVALID_STATE', context: { state: 'paused' } });
    await expect(engine.execute(c.sid, c.sid, { args: ['true'] })).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    expect(statusOf(engine, c.sid)).toBe('paused');
    await engine.resume(c.sid);

    const ran = makeBundle({ args: ['true'] });
    bundles.push(ran);
    await engine.createSandbox('pzs', ran.dir, { stdio: 'ignore' });
    await engine.startRoot('pzs');
    await engine.wait('pzs', 'pzs', { timeoutMs: 10_000 });
    await poll(() => (statusOf(engine, 'pzs') === 'stopped' ? true : undefined), 10_000, 'stopped');
    await expect(engine.pause('pzs')).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    expect(statusOf(engine, 'pzs')).toBe('stopped');

    await expect(engine.pause('nope')).rejects.toMatchObject({ code: 'ESANDBOX_NOT_FOUND' });
    await expect(engine.resume('nope')).rejects.toMatchObject({ code: 'ESANDBOX_NOT_FOUND' });
  });
});
