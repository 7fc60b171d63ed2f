import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectLayout, SandboxCgroup, sandboxCgroupPath } from '../../actors/cgroups/sandbox-cgroup';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, missingNeeds } from '../helpers/env';

/**
 * cgroup2 alone at /sys/fs/cgroup with its controllers, the layout most hosts have
 * (decision 0033). On other hosts, CI runs this file in the cgroup v2 guest
 * (scripts/test-cgroup2-vm.sh).
 */

/** The layout read straight from the mount table, independently of the helper and of actors/cgroups/sandbox-cgroup. */
function mountTable(): { v2At?: string; v1Count: number } {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => {
    const [pre, post] = l.split(' - ');
    return { point: (pre ?? '').split(' ')[4] ?? '', type: (post ?? '').split(' ')[0] ?? '' };
  });
  return { v2At: mounts.find((m) => m.type === 'cgroup2' && m.point.startsWith('/sys/fs/cgroup'))?.point, v1Count: mounts.filter((m) => m.type === 'cgroup').length };
}

// Runs on every host: a wrong answer here would make CI defer (or fail) the wrong tests.
test('the layout needs agree with the mount table', () => {
  const t = mountTable();
  const controllers = t.v2At ? fs.readFileSync(path.join(t.v2At, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/) : [];
  const v2Only = t.v2At === '/sys/fs/cgroup' && t.v1Count === 0 && ['memory', 'cpu', 'pids'].every((c) => controllers.includes(c));
  expect(missingNeeds(['cgroup-v2-only']).length === 0).toBe(v2Only);
  expect(missingNeeds(['cgroup-hybrid']).length === 0).toBe(t.v2At !== undefined && t.v2At !== '/sys/fs/cgroup' && t.v1Count > 0);
  expect(missingNeeds(['cgroup2']).length === 0).toBe(t.v2At !== undefined);
});

describeIf(['root', 'busybox', 'cgroup-v2-only'])('cgroup2 only (real sandboxes)', () => {
  const fx = useEngine('cg2');
  const dirOf = (sid: string) => new SandboxCgroup(detectLayout(), sandboxCgroupPath(fx.stateDir, sid)).dirOf('unified') as string;

  test('the sandbox gets one directory in the unified tree, with memory, cpu and pids applied, and nothing in v1', async () => {
    const sid = fx.id();
    const limit = 32 * 1024 * 1024;
    await fx.engine.createSandbox(sid, fx.bundle({
      args: ['sleep', '600'],
      extra: (c) => {
        c.linux!.resources = { memory: { limit }, cpu: { quota: 50_000, period: 100_000 }, pids: { limit: 20 } };
      },
    }));
    const root = await fx.engine.startRoot(sid);
    const dir = dirOf(sid);
    expect(path.dirname(dir).startsWith('/sys/fs/cgroup/')).toBe(true);
    expect(Number(fs.readFileSync(path.join(dir, 'memory.max'), 'utf8'))).toBe(limit);
    expect(fs.readFileSync(path.join(dir, 'cpu.max'), 'utf8').trim()).toBe('50000 100000');
    expect(Number(fs.readFileSync(path.join(dir, 'pids.max'), 'utf8'))).toBeGreaterThanOrEqual(20);
    // One hierarchy: the container's /proc/<pid>/cgroup has the single 0:: line, in the sandbox's directory (or below it).
    const lines = fs.readFileSync(`/proc/${root.hostPid}/cgroup`, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(`/sys/fs/cgroup${lines[0]!.replace(/^0::/, '')}`.startsWith(dir)).toBe(true);
    const stats = await fx.engine.event(sid, sid);
    expect(stats).toMatchObject({ source: 'cgroup', memory: { limitBytes: limit } });
    await fx.engine.destroy(sid);
    expect(fs.existsSync(dir)).toBe(false);
  });

  test('memory beyond memory.max is OOM-killed: the exit is SIGKILL and memory.events counts the kill', async () => {
    const sid = fx.id();
    const limit = 16 * 1024 * 1024;
    // dd's 64 MiB buffer is touched as /dev/zero fills it: the kernel's OOM killer ends dd.
    await fx.engine.createSandbox(sid, fx.bundle({
      args: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=4'],
      extra: (c) => {
        c.linux!.resources = { memory: { limit, swap: limit } };
      },
    }));
    await fx.engine.startRoot(sid);
    expect(await fx.engine.wait(sid, sid, { timeoutMs: 60_000 })).toMatchObject({ exitCode: null, signal: 9 });
    const events = Object.fromEntries(
      fs.readFileSync(path.join(dirOf(sid), 'memory.events'), 'utf8').trim().split('\n').map((l) => l.split(' ') as [string, string]),
    );
    expect(Number(events.oom_kill)).toBeGreaterThanOrEqual(1);
    await fx.engine.destroy(sid);
  });
});
