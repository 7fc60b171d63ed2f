import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectLayout, SandboxCgroup, sandboxCgroupPath } from '../../actors/cgroups/sandbox-cgroup';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, readAll, testIf } from '../helpers/env';

/**
 * Each sandbox in its own cgroup (v2, hybrid or v1, whatever the host has): the root
 * container's linux.resources applied, event() reading it, destroy removing it.
 */
describeIf(['root', 'busybox', 'cgroups'])('cgroups (real sandboxes)', () => {
  const fx = useEngine('cgroups');
  const layout = detectLayout();
  let seq = 0;
  const id = () => `cg${++seq}`;
  /** The sandbox's directories in every hierarchy, as the host sees them. */
  const dirsOf = (sid: string) => new SandboxCgroup(layout, sandboxCgroupPath(fx.stateDir, sid), { cpuset: true }).paths;
  const fileOf = (sid: string, v1: 'memory' | 'pids', v1File: string, v2File: string) => {
    const cg = new SandboxCgroup(layout, sandboxCgroupPath(fx.stateDir, sid));
    return layout.mode === 'v2' ? path.join(cg.dirOf('unified') as string, v2File) : path.join(cg.dirOf(v1) as string, v1File);
  };

  test('init is born in its cgroup: when the supervisor comes to place it, it is in every hierarchy already (decision 0046)', async () => {
    const sid = id();
    const dir = fx.bundle({ args: ['true'], extra: (c) => void (c.linux!.resources = { pids: { limit: 50 } }) });
    // What /proc/PID/cgroup said at the moment the engine came to move init: the v1
    // self-moves (tasks) and CLONE_INTO_CGROUP leave it nothing to do. A regression
    // would still place init (place() falls back to cgroup.procs), only slower, so it
    // is caught here rather than by any other test.
    const seen: string[] = [];
    const real = SandboxCgroup.prototype.place;
    const place = jest.spyOn(SandboxCgroup.prototype, 'place').mockImplementation(function (this: SandboxCgroup, pid: number, text?: string) {
      seen.push(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
      return real.call(this, pid, text);
    });
    try {
      await fx.engine.createSandbox(sid, dir);
    } finally {
      place.mockRestore();
    }
    expect(seen).toHaveLength(1);
    const cg = new SandboxCgroup(layout, sandboxCgroupPath(fx.stateDir, sid));
    expect(cg.paths.filter((d) => fs.existsSync(d)).length).toBeGreaterThan(0);
    expect(cg.missing(seen[0])).toEqual([]);
    await fx.engine.destroy(sid);
  });

  test('a pids limit of 5 makes the sixth fork fail', async () => {
    const sid = id();
    const dir = fx.bundle({
      args: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo forked'],
      extra: (c) => {
        c.linux!.resources = { pids: { limit: 5 } };
      },
    });
    const h = await fx.engine.createSandbox(sid, dir);
    // The limit counts the container's tasks: paddock-init's own (its nng threads) are added.
    const initTasks = fs.readdirSync(`/proc/${h.pid}/task`).length;
    expect(fs.readFileSync(fileOf(sid, 'pids', 'pids.max', 'pids.max'), 'utf8').trim()).toBe(String(5 + initTasks));
    await fx.engine.startRoot(sid);
    await fx.engine.wait(sid, sid, { timeoutMs: 20_000 });
    const stderr = await readAll(h.stdio!.stderr);
    expect(stderr).toMatch(/can't fork|Resource temporarily unavailable/);
    const current = Number(fs.readFileSync(fileOf(sid, 'pids', 'pids.current', 'pids.current'), 'utf8'));
    expect(current).toBeLessThanOrEqual(5 + initTasks);
  });

  test('a 32 MiB memory limit is set on the host side; event() reads the cgroup; destroy removes every directory', async () => {
    const sid = id();
    const limit = 32 * 1024 * 1024;
    const dir = fx.bundle({
      args: ['sleep', '60'],
      extra: (c) => {
        c.linux!.resources = { memory: { limit }, cpu: { shares: 512, quota: 50000, period: 100000 } };
      },
    });
    await fx.engine.createSandbox(sid, dir);
    const dirs = dirsOf(sid).filter((d) => fs.existsSync(d));
    expect(dirs.length).toBeGreaterThan(0);
    expect(Number(fs.readFileSync(fileOf(sid, 'memory', 'memory.limit_in_bytes', 'memory.max'), 'utf8'))).toBe(limit);
    await fx.engine.startRoot(sid);
    const stats = await poll(async () => {
      const s = await fx.engine.event(sid, sid);
      return s.pids >= 1 && s.cpu.usageNs > 0 ? s : undefined;
    });
    expect(stats.source).toBe('cgroup');
    expect(stats.memory.rssBytes).toBeGreaterThan(0);
    expect(stats.memory.limitBytes).toBe(limit);
    // pids counts the containers' tasks (init's are left out, as pids.limit does).
    expect(stats.pids).toBe(1);
    expect(stats.cpu.usageNs).toBeGreaterThan(0);
    // init and the container are in it, in every hierarchy.
    const pid = fx.engine.list().find((s) => s.id === sid)?.pid;
    for (const d of dirs) {
      const procs = fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
      expect(procs.length).toBeGreaterThanOrEqual(2);
      if (pid !== undefined) expect(procs).toContain(pid);
    }
    await fx.engine.destroy(sid);
    for (const d of dirsOf(sid)) expect(fs.existsSync(d)).toBe(false);
  });

  // The v1 devices controller applies device rules here (a v2-only host attaches a device program: devices.int.test.ts).
  testIf(['cgroup-v1-devices'])(
    "without a user namespace, containerd's default device rules go to the devices cgroup: a node outside them cannot be opened",
    async () => {
      const sid = id();
      const dir = fx.bundle({
        userns: false,
        // mknod needs CAP_MKNOD and a tmpfs that allows device nodes (no nodev).
        // mknod of any node is allowed (runc's defaults); opening a loop device is not.
        args: ['sh', '-c', 'mknod /tmp/loop b 7 0 && head -c 1 /tmp/loop; echo "rc=$?"; head -c 0 /dev/null && echo null-ok'],
        extra: (c) => {
          c.process!.capabilities = { bounding: ['CAP_MKNOD'], effective: ['CAP_MKNOD'], permitted: ['CAP_MKNOD'] };
          c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=1777'] }];
          c.linux!.resources = {
            devices: [
              { allow: false, access: 'rwm' },
              { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
              { allow: true, type: 'c', major: 136, access: 'rwm' },
            ],
          };
        },
      });
      const h = await fx.engine.createSandbox(sid, dir);
      const devDir = new SandboxCgroup(layout, sandboxCgroupPath(fx.stateDir, sid), { devices: true }).dirOf('devices') as string;
      // The spec's allows, then runc's standard ones (mknod of anything; null, zero, full,
      // random, urandom, tty, ptmx, pts, tun).
      expect(fs.readFileSync(path.join(devDir, 'devices.list'), 'utf8').trim().split('\n').sort()).toEqual(
        ['b *:* m', 'c *:* m', 'c 10:200 rwm', 'c 136:* rwm', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm'],
      );
      await fx.engine.startRoot(sid);
      expect(await fx.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
      const out = await readAll(h.stdio!.stdout);
      const err = await readAll(h.stdio!.stderr);
      expect(err).toMatch(/Operation not permitted/);
      expect(out).toMatch(/rc=1\nnull-ok\n$/);
      await fx.engine.destroy(sid);
      expect(fs.existsSync(devDir)).toBe(false);
    },
  );

  test('a limit the kernel refuses fails the create and leaves nothing', async () => {
    const sid = id();
    const dir = fx.bundle({
      args: ['true'],
      extra: (c) => {
        // Below the current usage of nothing: cpus no host has.
        c.linux!.resources = { cpu: { cpus: '4000-4001' } };
      },
    });
    await expect(fx.engine.createSandbox(sid, dir)).rejects.toMatchObject({ message: expect.stringMatching(/^cgroup: E[A-Z]+ \(cpuset\.cpus\)/) });
    for (const d of dirsOf(sid)) expect(fs.existsSync(d)).toBe(false);
    expect(fs.existsSync(path.join(fx.stateDir, sid))).toBe(false);
  });

  test('a sandbox without limits still gets a cgroup; reattach finds it and destroy removes it', async () => {
    const sid = id();
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'] }));
    await fx.engine.startRoot(sid);
    expect(dirsOf(sid).some((d) => fs.existsSync(d))).toBe(true);
    const { createEngine } = await import('../../index');
    const { quietLogger } = await import('../helpers/env');
    await fx.engine.close();
    const again = await createEngine({ stateDir: fx.stateDir, logger: quietLogger() });
    try {
      expect((await again.event(sid, sid)).source).toBe('cgroup');
      await again.destroy(sid);
      for (const d of dirsOf(sid)) expect(fs.existsSync(d)).toBe(false);
    } finally {
      await again.close();
    }
  });

  test("a second container is measured by its own cgroup, with the limits of its own spec (decision 0022)", async () => {
    const sid = id();
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'], extra: (c) => void (c.linux!.resources = { pids: { limit: 50 } }) }));
    await fx.engine.startRoot(sid);
    await fx.engine.startContainer(sid, 'side', fx.bundle({ args: ['sleep', '60'] }), { stdio: 'ignore' });
    const side = await fx.engine.event(sid, 'side');
    expect(side.source).toBe('cgroup');
    expect(side.pids).toBe(1);
    expect((await fx.engine.event(sid, sid)).source).toBe('cgroup');
    const limited = fx.bundle({ args: ['sleep', '60'], extra: (c) => void (c.linux!.resources = { memory: { limit: 1 << 24 } }) });
    await fx.engine.startContainer(sid, 'other', limited, { stdio: 'ignore' });
    expect((await fx.engine.event(sid, 'other')).memory.limitBytes).toBe(1 << 24);
  });

  test('without cgroups: limits fail the create and leave nothing; no limits run with /proc stats', async () => {
    const { createEngine } = await import('../../index');
    const { quietLogger } = await import('../helpers/env');
    const eng = await createEngine({ stateDir: fx.stateDir, logger: quietLogger(), cgroups: false, reattach: false });
    try {
      const limited = fx.bundle({ args: ['true'], extra: (c) => void (c.linux!.resources = { pids: { limit: 5 } }) });
      await expect(eng.createSandbox('nocg1', limited)).rejects.toMatchObject({ message: expect.stringMatching(/^cgroup: ENOENT/) });
      expect(fs.existsSync(path.join(fx.stateDir, 'nocg1'))).toBe(false);
      // containerd's default shares ask for nothing.
      await eng.createSandbox('nocg2', fx.bundle({ args: ['sleep', '60'], extra: (c) => void (c.linux!.resources = { cpu: { shares: 1024 } }) }));
      await eng.startRoot('nocg2');
      const s = await poll(async () => {
        const st = await eng.event('nocg2', 'nocg2');
        return st.pids >= 1 ? st : undefined;
      });
      expect(s.source).toBeUndefined();
      for (const d of dirsOf('nocg2')) expect(fs.existsSync(d)).toBe(false);
      await eng.destroy('nocg2');
    } finally {
      await eng.close();
    }
  });
});
