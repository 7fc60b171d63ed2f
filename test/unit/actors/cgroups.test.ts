import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CgroupError,
  cgroupOf,
  deviceWrites,
  parseLayout,
  planWrites,
  requestsLimits,
  SandboxCgroup,
  sandboxCgroupPath,
  sharesToWeight,
  swapToV2,
  stateDirKey,
  v1OnlyMemoryFields,
  type CgroupLayout,
} from '../../../actors/cgroups/sandbox-cgroup';

const mi = (mountPoint: string, fstype: string, superOpts: string) => `30 25 0:26 / ${mountPoint} rw,nosuid - ${fstype} cgroup ${superOpts}`;

describe('parseLayout', () => {
  it('pure v2: cgroup2 at /sys/fs/cgroup with controllers', () => {
    const l = parseLayout(mi('/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate'), () => ['cpu', 'memory', 'pids']);
    expect(l).toEqual({ mode: 'v2', unified: '/sys/fs/cgroup', v1: {} });
  });

  it('hybrid: v1 controllers plus a controller-less unified tree', () => {
    const text = [
      mi('/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
      mi('/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
      mi('/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
      mi('/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
      mi('/sys/fs/cgroup/systemd', 'cgroup', 'rw,xattr,name=systemd'),
    ].join('\n');
    const l = parseLayout(text, () => []);
    expect(l.mode).toBe('hybrid');
    expect(l.unified).toBe('/sys/fs/cgroup/unified');
    expect(l.v1).toEqual({ cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' });
  });

  it('v1 only, and none', () => {
    expect(parseLayout(mi('/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'), () => []).mode).toBe('v1');
    expect(parseLayout('22 1 0:21 / /proc rw - proc proc rw', () => []).mode).toBe('none');
  });

  it('unescapes octal escapes in mount points', () => {
    expect(parseLayout(mi('/cg\\040root', 'cgroup2', 'rw'), () => ['pids']).unified).toBe('/cg root');
  });
});

describe('conversions', () => {
  it('cpu.shares to cpu.weight: 1024 is 100, the ends are 1 and 10000, monotonic', () => {
    expect(sharesToWeight(1024)).toBe(100);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(sharesToWeight(512)).toBeLessThan(100);
    expect(sharesToWeight(2048)).toBeGreaterThan(100);
  });

  it('memory.swap (memory+swap) to memory.swap.max (swap alone)', () => {
    expect(swapToV2(32, 96)).toBe('64');
    expect(swapToV2(32, -1)).toBe('max');
    expect(() => swapToV2(undefined, 96)).toThrow(new CgroupError('EINVAL', 'memory.swap.max'));
  });

  it('the state dir is hashed into the path, so two engines never share one', () => {
    expect(sandboxCgroupPath('/run/a', 'web')).toMatch(/^paddock\/[0-9a-f]{8}-web$/);
    expect(sandboxCgroupPath('/run/a', 'web')).not.toBe(sandboxCgroupPath('/run/b', 'web'));
  });
});

describe('planWrites: file names per mode', () => {
  const res = {
    memory: { limit: 33554432, reservation: 1048576, swap: 67108864 },
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1' },
    pids: { limit: 5 },
  };

  it('v1', () => {
    expect(planWrites('v1', res).map((w) => `${w.hierarchy}:${w.file}=${w.value}`)).toEqual([
      'memory:memory.limit_in_bytes=33554432',
      'memory:memory.soft_limit_in_bytes=1048576',
      'memory:memory.memsw.limit_in_bytes=67108864',
      'cpu:cpu.shares=512',
      'cpu:cpu.cfs_period_us=100000',
      'cpu:cpu.cfs_quota_us=50000',
      'cpuset:cpuset.cpus=0-1',
      'pids:pids.max=5',
    ]);
    expect(planWrites('hybrid', res)).toEqual(planWrites('v1', res));
  });

  it('v2', () => {
    expect(planWrites('v2', res).map((w) => `${w.file}=${w.value}`)).toEqual([
      'memory.max=33554432',
      'memory.low=1048576',
      'memory.swap.max=33554432',
      `cpu.weight=${sharesToWeight(512)}`,
      'cpu.max=50000 100000',
      'cpuset.cpus=0-1',
      'pids.max=5',
    ]);
    expect(planWrites('v2', res).every((w) => w.hierarchy === 'unified')).toBe(true);
  });

  it('swappiness (0 included) and disableOOMKiller are v1 files only; they ask for a cgroup all the same', () => {
    const mem = { memory: { swappiness: 0, disableOOMKiller: true } };
    expect(planWrites('v1', mem).map((w) => `${w.hierarchy}:${w.file}=${w.value}`)).toEqual(['memory:memory.swappiness=0', 'memory:memory.oom_control=1']);
    expect(planWrites('v2', mem)).toEqual([]);
    expect(planWrites('v1', { memory: { disableOOMKiller: false } })).toEqual([]);
    expect(requestsLimits(mem)).toBe(true);
    expect(requestsLimits({ memory: { disableOOMKiller: false } })).toBe(false);
    expect(v1OnlyMemoryFields(mem)).toEqual(['linux.resources.memory.swappiness', 'linux.resources.memory.disableOOMKiller']);
  });

  it('-1 is unlimited, 0 is unset; a period alone keeps the quota unlimited', () => {
    expect(planWrites('v2', { memory: { limit: -1 }, pids: { limit: -1 }, cpu: { period: 20000 } }).map((w) => `${w.file}=${w.value}`)).toEqual([
      'memory.max=max',
      'cpu.max=max 20000',
      'pids.max=max',
    ]);
    expect(planWrites('v1', { memory: { limit: -1 }, cpu: { quota: -1 } }).map((w) => `${w.file}=${w.value}`)).toEqual([
      'memory.limit_in_bytes=-1',
      'cpu.cfs_quota_us=-1',
    ]);
    expect(planWrites('v2', { memory: { limit: 0 }, pids: { limit: 0 } })).toEqual([]);
  });

  it("containerd's cpu.shares 1024 and device rules ask for no limit", () => {
    expect(requestsLimits({ cpu: { shares: 1024 }, devices: [{ allow: false, access: 'rwm' }] })).toBe(false);
    expect(requestsLimits(undefined)).toBe(false);
    expect(requestsLimits({ pids: { limit: 5 } })).toBe(true);
    expect(requestsLimits({ cpu: { shares: 1024, quota: 1000 } })).toBe(true);
  });
});

describe('SandboxCgroup against a fake tree', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cg-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
  const read = (...p: string[]) => fs.readFileSync(path.join(root, ...p), 'utf8');

  function v1Layout(withUnified: boolean): CgroupLayout {
    const v1: Record<string, string> = {};
    for (const c of ['memory', 'cpu', 'cpuacct', 'pids', 'freezer', 'cpuset']) {
      v1[c] = path.join(root, c);
      fs.mkdirSync(v1[c] as string);
    }
    fs.writeFileSync(path.join(root, 'cpuset', 'cpuset.cpus'), '0-7\n');
    fs.writeFileSync(path.join(root, 'cpuset', 'cpuset.mems'), '0\n');
    if (withUnified) fs.mkdirSync(path.join(root, 'unified'));
    return { mode: withUnified ? 'hybrid' : 'v1', ...(withUnified ? { unified: path.join(root, 'unified') } : {}), v1 };
  }

  it('birthplace names the v1 tasks files and the cgroup2 directory; place writes only where the process is not', () => {
    const cg = new SandboxCgroup(v1Layout(true), 'paddock/k-sb');
    cg.create(undefined);
    const born = cg.birthplace();
    expect(born.tasks.map((p) => path.relative(root, p)).sort()).toEqual(['cpu', 'cpuacct', 'freezer', 'memory', 'pids'].map((c) => `${c}/paddock/k-sb/tasks`));
    expect(born.dir && path.relative(root, born.dir)).toBe('unified/paddock/k-sb');
    // As /proc/PID/cgroup shows an init the launch placed everywhere but in pids.
    const now = ['7:pids:/', '6:freezer:/paddock/k-sb', '4:memory:/paddock/k-sb', '2:cpuacct:/paddock/k-sb', '1:cpu:/paddock/k-sb', '0::/paddock/k-sb', ''].join('\n');
    cg.place(4242, now);
    for (const p of cg.paths) {
      const procs = path.join(p, 'cgroup.procs');
      expect([p, fs.existsSync(procs) ? fs.readFileSync(procs, 'utf8') : 'not written']).toEqual([p, p.includes('/pids/') ? '4242' : 'not written']);
    }
    // Nothing known (the process is gone, or no procfs): every hierarchy is written, as before.
    cg.place(4243, undefined);
    for (const p of cg.paths) expect(read(path.relative(root, path.join(p, 'cgroup.procs')))).toBe('4243');
  });

  it('cgroupOf finds a hierarchy in /proc/PID/cgroup, co-mounted controllers and cgroup2 included', () => {
    const text = '9:name=systemd:/\n8:cpu,cpuacct:/a/b\n4:memory:/m\n0::/u\n';
    expect(cgroupOf(text, 'cpu')).toBe('/a/b');
    expect(cgroupOf(text, 'cpuacct')).toBe('/a/b');
    expect(cgroupOf(text, 'memory')).toBe('/m');
    expect(cgroupOf(text, 'unified')).toBe('/u');
    expect(cgroupOf(text, 'pids')).toBeUndefined();
    expect(cgroupOf('garbage', 'memory')).toBeUndefined();
  });

  it('hybrid: a directory per v1 controller and in the unified tree; limits, procs, stats, kill, remove', async () => {
    const cg = new SandboxCgroup(v1Layout(true), 'paddock/k-sb');
    cg.create({ memory: { limit: 1024 }, pids: { limit: 3 } });
    expect(cg.paths.map((p) => path.relative(root, p)).sort()).toEqual(
      ['cpu', 'cpuacct', 'freezer', 'memory', 'pids', 'unified'].map((c) => `${c}/paddock/k-sb`),
    );
    expect(read('memory/paddock/k-sb/memory.limit_in_bytes')).toBe('1024');
    expect(read('pids/paddock/k-sb/pids.max')).toBe('3');
    cg.addProcess(4242);
    for (const p of cg.paths) expect(fs.readFileSync(path.join(p, 'cgroup.procs'), 'utf8')).toBe('4242');

    fs.writeFileSync(path.join(root, 'memory/paddock/k-sb/memory.usage_in_bytes'), '8192\n');
    fs.writeFileSync(path.join(root, 'cpuacct/paddock/k-sb/cpuacct.usage'), '123456\n');
    fs.writeFileSync(path.join(root, 'pids/paddock/k-sb/pids.current'), '2\n');
    expect(cg.stats()).toEqual({ memoryBytes: 8192, memoryLimitBytes: 1024, cpuUsageNs: 123456, pids: 2 });

    fs.writeFileSync(path.join(root, 'unified/paddock/k-sb/cgroup.kill'), '');
    cg.kill();
    expect(read('unified/paddock/k-sb/cgroup.kill')).toBe('1');

    expect(cg.limitPids(5)).toBe(7);
    expect(read('pids/paddock/k-sb/pids.max')).toBe('7');

    await cg.remove();
    for (const p of cg.paths) expect(fs.existsSync(p)).toBe(false);
  });

  it('the shared paddock/ level goes with the last sandbox, not before', async () => {
    const layout = v1Layout(true);
    const a = new SandboxCgroup(layout, 'paddock/k-a');
    const b = new SandboxCgroup(layout, 'paddock/k-b');
    a.create(undefined);
    b.create(undefined);
    await a.remove();
    for (const c of ['memory', 'pids', 'unified']) expect(fs.readdirSync(path.join(root, c, 'paddock'))).toEqual(['k-b']);
    await b.remove();
    for (const c of ['cpu', 'cpuacct', 'freezer', 'memory', 'pids', 'unified']) {
      expect(fs.existsSync(path.join(root, c, 'paddock'))).toBe(false);
      expect(fs.existsSync(path.join(root, c))).toBe(true);
    }
  });

  it('v1: cpuset only when asked, with the parent cpus/mems copied down', () => {
    const layout = v1Layout(false);
    expect(new SandboxCgroup(layout, 'paddock/a').paths.some((p) => p.includes('cpuset'))).toBe(false);
    // The kernel makes a v1 cpuset's files empty.
    fs.mkdirSync(path.join(root, 'cpuset/paddock'));
    fs.writeFileSync(path.join(root, 'cpuset/paddock/cpuset.cpus'), '\n');
    const cg = new SandboxCgroup(layout, 'paddock/a', { cpuset: true });
    cg.create({ cpu: { mems: '0' } });
    expect(read('cpuset/paddock/cpuset.cpus')).toBe('0-7');
    expect(read('cpuset/paddock/a/cpuset.cpus')).toBe('0-7');
    expect(read('cpuset/paddock/a/cpuset.mems')).toBe('0');
  });

  it('v2: controllers enabled down the parent chain, v2 file names', () => {
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    fs.mkdirSync(path.join(root, 'paddock'));
    fs.writeFileSync(path.join(root, 'paddock/cgroup.controllers'), 'cpu memory pids\n');
    fs.writeFileSync(path.join(root, 'paddock/cgroup.subtree_control'), 'memory cpu\n');
    const cg = new SandboxCgroup({ mode: 'v2', unified: root, v1: {} }, 'paddock/k-sb');
    cg.create({ memory: { limit: 4096, swap: 8192 }, cpu: { shares: 1024, quota: 20000 } });
    // One controller a write (the fake files keep the last one); already enabled ones are not written.
    expect(read('cgroup.subtree_control')).toBe('+pids');
    expect(read('paddock/cgroup.subtree_control')).toBe('+pids');
    expect(fs.readdirSync(path.join(root, 'paddock/k-sb')).sort()).toEqual(['cpu.max', 'cpu.weight', 'memory.max', 'memory.swap.max']);
    expect(read('paddock/k-sb/memory.max')).toBe('4096');
    expect(read('paddock/k-sb/memory.swap.max')).toBe('4096');
    expect(read('paddock/k-sb/cpu.weight')).toBe('100');
    expect(read('paddock/k-sb/cpu.max')).toBe('20000 100000');
    fs.writeFileSync(path.join(root, 'paddock/k-sb/memory.current'), '5000\n');
    fs.writeFileSync(path.join(root, 'paddock/k-sb/cpu.stat'), 'usage_usec 7\nuser_usec 5\n');
    fs.writeFileSync(path.join(root, 'paddock/k-sb/pids.current'), '3\n');
    expect(cg.stats()).toEqual({ memoryBytes: 5000, memoryLimitBytes: 4096, cpuUsageNs: 7000, pids: 3 });
  });

  it('v2: a controller that is not available fails naming it, and leaves nothing', () => {
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'memory\n');
    fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    const cg = new SandboxCgroup({ mode: 'v2', unified: root, v1: {} }, 'paddock/x');
    expect(() => cg.create({ pids: { limit: 4 } })).toThrow(/^cgroup: ENOTSUP \(controller pids is not available/);
    expect(fs.existsSync(path.join(root, 'paddock/x'))).toBe(false);
  });

  it('a limit that cannot be written names the file; create undoes itself', () => {
    const { pids: _, ...v1 } = v1Layout(false).v1;
    const cg = new SandboxCgroup({ mode: 'v1', v1 }, 'paddock/y');
    expect(() => cg.create({ memory: { limit: 4096 }, pids: { limit: 3 } })).toThrow('cgroup: ENOENT (pids.max)');
    for (const p of cg.paths) expect(fs.existsSync(p)).toBe(false);
  });

  it('a stale empty directory of the same name is reused', () => {
    const layout = v1Layout(false);
    fs.mkdirSync(path.join(root, 'pids/paddock/z'), { recursive: true });
    const cg = new SandboxCgroup(layout, 'paddock/z');
    cg.create({ pids: { limit: 2 } });
    expect(read('pids/paddock/z/pids.max')).toBe('2');
  });
});

describe('device rules (linux.resources.devices)', () => {
  const rules = {
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 136, minor: -1, access: 'rw' },
    ],
  };

  it('become v1 devices writes: deny all first, then each allow; -1 or absent is *', () => {
    expect(deviceWrites(rules as never)).toEqual([
      { hierarchy: 'devices', file: 'devices.deny', value: 'a *:* rwm' },
      { hierarchy: 'devices', file: 'devices.allow', value: 'c 1:3 rwm' },
      { hierarchy: 'devices', file: 'devices.allow', value: 'c 136:* rw' },
    ]);
    expect(deviceWrites(undefined)).toEqual([]);
  });

  it('are written to the sandbox devices cgroup on v1; a host without one refuses them with ENOTSUP', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cgdev-'));
    try {
      for (const c of ['memory', 'devices', 'unified']) fs.mkdirSync(path.join(root, c));
      const v1: CgroupLayout = { mode: 'hybrid', unified: path.join(root, 'unified'), v1: { memory: path.join(root, 'memory'), devices: path.join(root, 'devices') } };
      const cg = new SandboxCgroup(v1, 'paddock/k-dev', { devices: true });
      cg.create(rules as never, { devices: true });
      // A fake tree keeps only the last write per file; the real devices cgroup accumulates them.
      expect(fs.readFileSync(path.join(root, 'devices/paddock/k-dev/devices.allow'), 'utf8')).toBe('c 136:* rw');
      expect(fs.readFileSync(path.join(root, 'devices/paddock/k-dev/devices.deny'), 'utf8')).toBe('a *:* rwm');
      // Found again without the option (reattach), so teardown removes it.
      expect(new SandboxCgroup(v1, 'paddock/k-dev').paths).toContain(path.join(root, 'devices/paddock/k-dev'));

      const v2: CgroupLayout = { mode: 'v2', unified: path.join(root, 'unified'), v1: {} };
      const err = (() => {
        try {
          new SandboxCgroup(v2, 'paddock/k-dev2', { devices: true }).create(rules as never, { devices: true });
        } catch (e) {
          return e as CgroupError;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(CgroupError);
      expect(err?.errnoName).toBe('ENOTSUP');
      expect(fs.existsSync(path.join(root, 'unified/paddock/k-dev2'))).toBe(false);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('sandboxCgroupPath', () => {
  it('hashes the absolute state dir with FNV-1a (reference values of the 32-bit variant)', () => {
    expect(stateDirKey('')).toBe('811c9dc5');
    expect(stateDirKey('a')).toBe('e40c292c');
    expect(stateDirKey('foobar')).toBe('bf9cf968');
  });

  it('gives two state dirs two paths for one id, and one state dir (however spelled) one path', () => {
    const a = sandboxCgroupPath('/run/paddock', 'web');
    expect(a).toMatch(/^paddock\/[0-9a-f]{8}-web$/);
    expect(sandboxCgroupPath('/run/paddock2', 'web')).not.toBe(a);
    expect(sandboxCgroupPath('/run/./paddock/', 'web')).toBe(a);
  });
});
