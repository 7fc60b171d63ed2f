import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readCgroupRecord, recordPodCgroupLocked, writeCgroupRecord } from '../../../actors/cgroups/record';
import { SandboxCgroup } from '../../../actors/cgroups/sandbox-cgroup';
import { SandboxPaths } from '../../../actors/sandbox/state-store';

/** cgroup.json: the sandbox's cgroup and its pod containers' own (decisions 0018, 0022). */
describe('cgroup.json', () => {
  let dir: string;
  let paths: SandboxPaths;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cgrec-'));
    paths = new SandboxPaths(dir, 'sb');
    fs.mkdirSync(paths.dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps pod containers beside the sandbox record; dropping the last one leaves no containers key', () => {
    writeCgroupRecord(paths, { relPath: 'k8s.io/sb', custom: true, made: ['/x/k8s.io/sb'] });
    recordPodCgroupLocked(paths, 'a', { relPath: 'k8s.io/a', custom: true, made: ['/x/k8s.io/a'] });
    recordPodCgroupLocked(paths, 'b', { relPath: 'k8s.io/sb/ctr-b', custom: false, made: ['/x/k8s.io/sb/ctr-b'] });
    expect(readCgroupRecord(paths)).toEqual({
      relPath: 'k8s.io/sb',
      custom: true,
      made: ['/x/k8s.io/sb'],
      containers: { a: { relPath: 'k8s.io/a', custom: true, made: ['/x/k8s.io/a'] }, b: { relPath: 'k8s.io/sb/ctr-b', custom: false, made: ['/x/k8s.io/sb/ctr-b'] } },
    });
    recordPodCgroupLocked(paths, 'a', undefined);
    recordPodCgroupLocked(paths, 'b', undefined);
    expect(readCgroupRecord(paths)).toEqual({ relPath: 'k8s.io/sb', custom: true, made: ['/x/k8s.io/sb'] });
    expect(JSON.parse(fs.readFileSync(paths.cgroupFile, 'utf8'))).not.toHaveProperty('containers');
  });

  it('drops malformed container entries; without a sandbox record a pod container cannot be recorded', () => {
    fs.writeFileSync(paths.cgroupFile, JSON.stringify({ relPath: 'p/sb', custom: false, made: [], containers: { ok: { relPath: 'p/sb/ctr-ok', made: [] }, bad: { relPath: '../x', made: [] }, worse: 7 } }));
    expect(readCgroupRecord(paths)?.containers).toEqual({ ok: { relPath: 'p/sb/ctr-ok', custom: false, made: [] } });
    fs.rmSync(paths.cgroupFile);
    expect(() => recordPodCgroupLocked(paths, 'a', { relPath: 'a', custom: true, made: [] })).toThrow(/missing/);
    expect(() => recordPodCgroupLocked(paths, 'a', undefined)).not.toThrow();
  });
});

describe('SandboxCgroup.moveProcessesToLeaf (fake tree)', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-leaf-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("v2: writes each process of the sandbox's directory into its init leaf; v1/hybrid: does nothing", () => {
    const cg = new SandboxCgroup({ mode: 'v2', unified: root, v1: {} }, 'paddock/sb');
    fs.mkdirSync(path.join(root, 'paddock/sb'), { recursive: true });
    fs.writeFileSync(path.join(root, 'paddock/sb/cgroup.procs'), '10\n11\n');
    cg.moveProcessesToLeaf();
    // The fake file keeps the last write, as the kernel's takes one pid a write.
    expect(fs.readFileSync(path.join(root, 'paddock/sb/init/cgroup.procs'), 'utf8')).toBe('11');
    expect(() => cg.moveProcessesToLeaf()).not.toThrow();

    const hybrid = new SandboxCgroup({ mode: 'hybrid', unified: path.join(root, 'u'), v1: { memory: path.join(root, 'm') } }, 'paddock/sb');
    fs.mkdirSync(path.join(root, 'u/paddock/sb'), { recursive: true });
    fs.writeFileSync(path.join(root, 'u/paddock/sb/cgroup.procs'), '10\n');
    hybrid.moveProcessesToLeaf();
    expect(fs.existsSync(path.join(root, 'u/paddock/sb/init'))).toBe(false);
  });
});
