import { SandboxCgroup, type CgroupLayout } from '../../../actors/cgroups/sandbox-cgroup';
import { childCgroupProcs } from '../../../actors/pod/cgroups';
import { podContainerPlan, podExecPlan } from '../../../actors/pod/plan';
import { CLONE, type ProcessPlan } from '../../../protocols/messages';

/** Pure: which files a pod container's process writes itself, and what its plans carry (docs/decisions/0025). */

const hybrid: CgroupLayout = { mode: 'hybrid', unified: '/cg/unified', v1: { memory: '/cg/memory', pids: '/cg/pids' } };
const sandbox = new SandboxCgroup(hybrid, 'paddock/k-s');
const nested = new SandboxCgroup(hybrid, 'paddock/k-s/ctr-a');
const sibling = new SandboxCgroup(hybrid, 'k8s.io/a');
const base: ProcessPlan = { args: ['sh'], env: [], uid: 0, gid: 0, rootfs: '/r', nsFlags: CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWCGROUP };

describe('childCgroupProcs', () => {
  it('root (no user namespace) writes every hierarchy, nested or not', () => {
    expect(childCgroupProcs(nested, sandbox, 0)).toEqual([
      '/cg/memory/paddock/k-s/ctr-a/cgroup.procs',
      '/cg/pids/paddock/k-s/ctr-a/cgroup.procs',
      '/cg/unified/paddock/k-s/ctr-a/cgroup.procs',
    ]);
    expect(childCgroupProcs(sibling, sandbox, 0)).toHaveLength(3);
  });

  it('another uid writes the cgroup2 file only below the sandbox (the common ancestor must be the sandbox\'s to give)', () => {
    expect(childCgroupProcs(nested, sandbox, 100000)).toHaveLength(3);
    expect(childCgroupProcs(sibling, sandbox, 100000)).toEqual(['/cg/memory/k8s.io/a/cgroup.procs', '/cg/pids/k8s.io/a/cgroup.procs']);
    // A sandbox directory whose name is a prefix of the container's is not its parent.
    expect(childCgroupProcs(new SandboxCgroup(hybrid, 'paddock/k-s2/ctr-a'), sandbox, 100000)).toHaveLength(2);
    expect(childCgroupProcs(nested, undefined, 100000)).toHaveLength(2);
  });
});

describe('podContainerPlan / podExecPlan', () => {
  it('leaves a container without shared namespaces or a cgroup unchanged', () => {
    expect(podContainerPlan(base, {}, { owner: { uid: 0 } })).toEqual(base);
    expect(podExecPlan({ args: ['ls'], env: [], uid: 0, gid: 0 }, {}, { owner: { uid: 0 } })).toEqual({ args: ['ls'], env: [], uid: 0, gid: 0 });
  });

  it('shares namespaces without asking for new ones, and lists its cgroup files', () => {
    const p = podContainerPlan(base, { pidNsOf: 'a', cgroupNsOf: 'b', cgroup: nested }, { cgroup: sandbox, owner: { uid: 0 } });
    expect(p.nsFlags).toBe(CLONE.NEWNS);
    expect(p).toMatchObject({ pidNsOf: 'a', cgroupNsOf: 'b' });
    expect(p.cgroupProcs).toHaveLength(3);
    // Its own namespace, once inside its cgroups.
    const own = podContainerPlan(base, { cgroup: nested }, { cgroup: sandbox, owner: { uid: 0 } });
    expect(own.nsFlags).toBe(base.nsFlags);
    expect(own.cgroupNsOf).toBeUndefined();
  });

  it("gives an exec the container's cgroup files; no sandbox view, no files", () => {
    const exec: ProcessPlan = { args: ['ls'], env: [], uid: 0, gid: 0 };
    expect(podExecPlan(exec, { cgroup: sibling }, { cgroup: sandbox, owner: { uid: 100000 } }).cgroupProcs).toEqual(['/cg/memory/k8s.io/a/cgroup.procs', '/cg/pids/k8s.io/a/cgroup.procs']);
    expect(podExecPlan(exec, { cgroup: sibling }, undefined)).toBe(exec);
  });
});
