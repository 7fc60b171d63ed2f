import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxCgroup, type CgroupLayout } from '../../../actors/cgroups/sandbox-cgroup';
import { expandSlice, podContainerCgroupPath, resolveCgroupsPath, systemdToCgroupfs } from '../../../actors/cgroups/path';
import { PaddockError, SpecError } from '../../../base/errors';

const fail = (why: string): never => {
  throw new Error(why);
};
const cgroupfs = { systemd: false, systemdRunning: false, sandboxId: 'sb' };
const systemd = { systemd: true, systemdRunning: false, sandboxId: 'sb' };

/** The SpecError a call throws (so a test can check code, field and message at once). */
function specErrorOf(f: () => unknown): SpecError {
  try {
    f();
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  throw new Error('no error thrown');
}

describe('linux.cgroupsPath, cgroupfs (no --systemd-cgroup)', () => {
  it('absent or empty: paddock default (no relPath)', () => {
    expect(resolveCgroupsPath(undefined, cgroupfs)).toEqual({});
    expect(resolveCgroupsPath('', cgroupfs)).toEqual({});
  });

  it('absolute and relative paths are both below the hierarchy root (crun), cleaned of "." and extra slashes', () => {
    expect(resolveCgroupsPath('/k8s.io/abc', cgroupfs)).toEqual({ relPath: 'k8s.io/abc', asked: '/k8s.io/abc' });
    expect(resolveCgroupsPath('foo/bar', cgroupfs).relPath).toBe('foo/bar');
    expect(resolveCgroupsPath('//a/./b//', cgroupfs).relPath).toBe('a/b');
  });

  it('a slice:prefix:name string without --systemd-cgroup is one directory name, as runc and crun read it', () => {
    expect(resolveCgroupsPath('system.slice:docker:abc', cgroupfs).relPath).toBe('system.slice:docker:abc');
  });

  it.each([
    ['/a/../b', /linux\.cgroupsPath: must not contain "\.\." components/],
    ['..', /must not contain "\.\."/],
    ['/', /not the root itself/],
    ['/./', /not the root itself/],
    ['/a/cgroup.procs', /reserves/],
    ['/a\0b', /NUL/],
    [`/${'x'.repeat(256)}`, /longer than 255 bytes/],
  ])('%j is refused with ECONFIG_INVALID naming the field', (value, msg) => {
    const e = specErrorOf(() => resolveCgroupsPath(value, { ...cgroupfs, bundleDir: '/b' }));
    expect(e.code).toBe('ECONFIG_INVALID');
    expect(e.context.field).toBe('linux.cgroupsPath');
    expect(e.context.path).toBe('/b');
    expect(e.message).toMatch(msg);
  });
});

describe('--systemd-cgroup: slice:prefix:name', () => {
  it('expands nested slices as systemd names them', () => {
    expect(expandSlice('system.slice', fail)).toBe('system.slice');
    expect(expandSlice('a-b.slice', fail)).toBe('a.slice/a-b.slice');
    expect(expandSlice('kubepods-burstable-pod12.slice', fail)).toBe('kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice');
    expect(expandSlice('-.slice', fail)).toBe('');
  });

  it.each(['a--b.slice', '-a.slice', 'a-.slice', 'a.service', 'a/b.slice', '.slice'])('refuses the slice %j', (s) => {
    expect(() => expandSlice(s, fail)).toThrow();
  });

  it('maps to the scope directory systemd would make', () => {
    expect(systemdToCgroupfs('system.slice:docker:abc', fail)).toBe('system.slice/docker-abc.scope');
    expect(systemdToCgroupfs('kubepods-besteffort.slice:cri-containerd:f00', fail)).toBe('kubepods.slice/kubepods-besteffort.slice/cri-containerd-f00.scope');
    // runc: an empty slice is system.slice, an empty prefix leaves the name alone.
    expect(systemdToCgroupfs(':p:n', fail)).toBe('system.slice/p-n.scope');
    expect(systemdToCgroupfs('user.slice::n', fail)).toBe('user.slice/n.scope');
    expect(systemdToCgroupfs('-.slice:p:n', fail)).toBe('p-n.scope');
    // A name that is itself a slice is that slice.
    expect(systemdToCgroupfs('a.slice:p:a-b.slice', fail)).toBe('a.slice/a-b.slice');
  });

  it('the default (no cgroupsPath) is system.slice:paddock:<id>, as runc uses system.slice:runc:<id>', () => {
    expect(resolveCgroupsPath(undefined, systemd)).toEqual({ relPath: 'system.slice/paddock-sb.scope', asked: 'system.slice:paddock:sb' });
  });

  it.each([
    ['/k8s.io/abc', /expected "slice:prefix:name" with --systemd-cgroup, got "\/k8s\.io\/abc"/],
    ['a.slice:b', /expected "slice:prefix:name"/],
    ['a.slice:b:c:d', /expected "slice:prefix:name"/],
    ['a.slice:p:', /name part .* is empty/],
    ['nope:p:n', /must end in "\.slice"/],
    ['a.slice:p:../../x', /not a valid systemd unit name/],
    ['a.slice:p/q:n', /not a valid systemd unit name/],
  ])('%j is refused with ECONFIG_INVALID', (value, msg) => {
    const e = specErrorOf(() => resolveCgroupsPath(value, systemd));
    expect(e.code).toBe('ECONFIG_INVALID');
    expect(e.context.field).toBe('linux.cgroupsPath');
    expect(e.message).toMatch(msg);
  });

  it('with systemd running this host it is refused (ECONFIG_UNSUPPORTED): paddock cannot ask systemd for a scope', () => {
    const e = specErrorOf(() => resolveCgroupsPath('system.slice:docker:abc', { ...systemd, systemdRunning: true }));
    expect(e.code).toBe('ECONFIG_UNSUPPORTED');
    expect(e.message).toMatch(/systemd runs this host/);
  });
});

describe('a pod container cgroup (decision 0022)', () => {
  it('without a path: nested in the sandbox cgroup as ctr-<id>, also under --systemd-cgroup', () => {
    expect(podContainerCgroupPath(undefined, 'paddock/k-pod', 'app', cgroupfs)).toEqual({ relPath: 'paddock/k-pod/ctr-app', custom: false, nested: true });
    expect(podContainerCgroupPath('', 'k8s.io/pod', 'app', cgroupfs)).toEqual({ relPath: 'k8s.io/pod/ctr-app', custom: false, nested: true });
    expect(podContainerCgroupPath(undefined, 'system.slice/paddock-pod.scope', 'app', systemd).relPath).toBe('system.slice/paddock-pod.scope/ctr-app');
  });

  it("with a path: that path (containerd's sibling under the pod parent, or one below the sandbox), checked with the same rules", () => {
    expect(podContainerCgroupPath('/k8s.io/c1', 'k8s.io/pod', 'c1', cgroupfs)).toEqual({ relPath: 'k8s.io/c1', custom: true, nested: false, asked: '/k8s.io/c1' });
    expect(podContainerCgroupPath('/k8s.io/pod/c1', 'k8s.io/pod', 'c1', cgroupfs)).toMatchObject({ relPath: 'k8s.io/pod/c1', custom: true, nested: true });
    expect(podContainerCgroupPath('a.slice:cri:c1', 'a.slice/cri-pod.scope', 'c1', systemd)).toMatchObject({ relPath: 'a.slice/cri-c1.scope', nested: false });
    expect(() => podContainerCgroupPath('/k8s.io/../x', 'k8s.io/pod', 'c1', cgroupfs)).toThrow(SpecError);
    // A sibling whose name merely starts like the sandbox's is not below it.
    expect(podContainerCgroupPath('/k8s.io/pod2', 'k8s.io/pod', 'c1', cgroupfs).nested).toBe(false);
  });

  it("the sandbox's own cgroup is in use (ECGROUP_IN_USE); the children paddock uses itself are refused (ECONFIG_INVALID)", () => {
    let e: unknown;
    try {
      podContainerCgroupPath('/k8s.io/pod', 'k8s.io/pod', 'c1', cgroupfs);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(PaddockError);
    expect(e).toMatchObject({ code: 'ECGROUP_IN_USE', context: { field: 'linux.cgroupsPath' } });
    for (const child of ['containers', 'init', 'init/x']) {
      const err = specErrorOf(() => podContainerCgroupPath(`/k8s.io/pod/${child}`, 'k8s.io/pod', 'c1', cgroupfs));
      expect(err.code).toBe('ECONFIG_INVALID');
      expect(err.message).toMatch(/paddock uses itself/);
    }
  });
});

describe('SandboxCgroup at a linux.cgroupsPath (fake tree)', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cgp-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  function hybrid(): CgroupLayout {
    const v1: Record<string, string> = {};
    for (const c of ['memory', 'cpu', 'cpuacct', 'pids', 'freezer']) {
      v1[c] = path.join(root, c);
      fs.mkdirSync(v1[c] as string);
    }
    fs.mkdirSync(path.join(root, 'unified'));
    return { mode: 'hybrid', unified: path.join(root, 'unified'), v1 };
  }

  it('records what it made; teardown removes those and leaves parents that existed before', async () => {
    const layout = hybrid();
    // kubelet-style: the pod's parent exists in memory (with someone else's limit) only.
    fs.mkdirSync(path.join(root, 'memory/kubepods'));
    const cg = new SandboxCgroup(layout, 'kubepods/pod1/c1', { made: [] });
    cg.create({ pids: { limit: 4 } });
    expect(cg.made.map((d) => path.relative(root, d)).sort()).toEqual(
      [
        ...['memory/kubepods/pod1', 'memory/kubepods/pod1/c1'],
        ...['cpu', 'cpuacct', 'pids', 'freezer', 'unified'].flatMap((c) => [`${c}/kubepods`, `${c}/kubepods/pod1`, `${c}/kubepods/pod1/c1`]),
      ].sort(),
    );
    expect(fs.readFileSync(path.join(root, 'pids/kubepods/pod1/c1/pids.max'), 'utf8')).toBe('4');
    // A later process finds it from the record alone.
    const again = new SandboxCgroup(layout, 'kubepods/pod1/c1', { made: cg.made });
    await again.remove();
    expect(fs.existsSync(path.join(root, 'memory/kubepods'))).toBe(true);
    expect(fs.readdirSync(path.join(root, 'memory/kubepods'))).toEqual([]);
    for (const c of ['cpu', 'cpuacct', 'pids', 'freezer', 'unified']) expect(fs.readdirSync(path.join(root, c))).toEqual([]);
  });

  it('a leaf in use (holding processes or child cgroups) is refused as in use, and nothing it made is left', () => {
    const layout = hybrid();
    // In the fake tree a non-empty directory stands in for a busy cgroup (rmdir fails).
    fs.mkdirSync(path.join(root, 'pids/shared/c'), { recursive: true });
    fs.writeFileSync(path.join(root, 'pids/shared/c/cgroup.procs'), '4242\n');
    const cg = new SandboxCgroup(layout, 'shared/c', { made: [] });
    let err: unknown;
    try {
      cg.create(undefined);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ inUse: true });
    expect((err as Error).message).toMatch(/in use/);
    // memory, cpu, cpuacct were made before pids failed: all undone; pids' own dirs untouched.
    for (const c of ['memory', 'cpu', 'cpuacct', 'freezer', 'unified']) expect(fs.readdirSync(path.join(root, c))).toEqual([]);
    expect(fs.readFileSync(path.join(root, 'pids/shared/c/cgroup.procs'), 'utf8')).toBe('4242\n');
  });

  it('pure v2: controllers enabled down a custom chain, limits in the leaf; a parent that existed stays', async () => {
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpu memory pids\n');
    fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    // The kernel fills a new cgroup's cgroup.controllers; the fake tree needs it written.
    fs.mkdirSync(path.join(root, 'system.slice'));
    fs.writeFileSync(path.join(root, 'system.slice/cgroup.controllers'), 'cpu memory pids\n');
    fs.writeFileSync(path.join(root, 'system.slice/cgroup.subtree_control'), '');
    const cg = new SandboxCgroup({ mode: 'v2', unified: root, v1: {} }, 'system.slice/paddock-x.scope', { made: [] });
    cg.create({ memory: { limit: 8192 } });
    expect(fs.readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8')).toMatch(/^\+/);
    expect(fs.readFileSync(path.join(root, 'system.slice/cgroup.subtree_control'), 'utf8')).toMatch(/^\+/);
    expect(fs.readFileSync(path.join(root, 'system.slice/paddock-x.scope/memory.max'), 'utf8')).toBe('8192');
    expect(cg.made.map((d) => path.relative(root, d))).toEqual(['system.slice/paddock-x.scope']);
    await cg.remove();
    expect(fs.existsSync(path.join(root, 'system.slice/paddock-x.scope'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'system.slice'))).toBe(true);
  });
});

describe('SandboxCgroup found again from its record', () => {
  it('keeps to the directories it made: a same-named cpuset directory someone else made is not removed', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cgr-'));
    try {
      const v1: Record<string, string> = {};
      for (const c of ['memory', 'pids', 'cpuset']) {
        v1[c] = path.join(root, c);
        fs.mkdirSync(v1[c] as string);
      }
      const layout: CgroupLayout = { mode: 'v1', v1 };
      const cg = new SandboxCgroup(layout, 'app/x', { made: [] });
      cg.create(undefined);
      fs.mkdirSync(path.join(root, 'cpuset/app/x'), { recursive: true });
      const again = new SandboxCgroup(layout, 'app/x', { cpuset: true, made: cg.made });
      expect(again.paths.map((p) => path.relative(root, p)).sort()).toEqual(['memory/app/x', 'pids/app/x']);
      await again.remove();
      expect(fs.existsSync(path.join(root, 'memory/app'))).toBe(false);
      expect(fs.existsSync(path.join(root, 'cpuset/app/x'))).toBe(true);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
