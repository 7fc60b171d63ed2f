import type { ProcessPlan } from '../../protocols/messages';
import { CLONE } from '../../protocols/messages';
import type { SandboxCgroup } from '../cgroups/sandbox-cgroup';
import { childCgroupProcs } from './cgroups';
import type { PodNamespaces } from './namespaces';

/**
 * What a sandbox adds to the plans of a container added to it (a pod container) and of
 * the processes exec'd into one: the namespaces it shares with another container
 * (docs/decisions/0024, 0025) and the cgroups its process enters itself before anything
 * runs (0025). A root container, and any container without these, gets its plan unchanged.
 */

export interface PodContainerParts extends PodNamespaces {
  /** Its own cgroup (actors/pod/cgroups.ts); never the root container's. */
  readonly cgroup?: SandboxCgroup;
}

export interface PodSandboxParts {
  /** The sandbox's own cgroup, undefined without one. */
  readonly cgroup?: SandboxCgroup;
  /** paddock-init's host uid. */
  readonly owner: { readonly uid: number };
}

export function podContainerPlan(plan: ProcessPlan, c: PodContainerParts, sandbox: PodSandboxParts | undefined): ProcessPlan {
  let nsFlags = plan.nsFlags ?? 0;
  const out: { -readonly [K in keyof ProcessPlan]: ProcessPlan[K] } = { ...plan };
  // Made in that container's namespace rather than a new one: init sees to it.
  if (c.pidNsOf !== undefined) {
    out.pidNsOf = c.pidNsOf;
    nsFlags &= ~CLONE.NEWPID;
  }
  if (c.cgroupNsOf !== undefined) {
    out.cgroupNsOf = c.cgroupNsOf;
    nsFlags &= ~CLONE.NEWCGROUP;
  }
  if (plan.nsFlags !== undefined || nsFlags !== 0) out.nsFlags = nsFlags;
  const files = cgroupFiles(c, sandbox);
  if (files.length > 0) out.cgroupProcs = files;
  return out;
}

export function podExecPlan(plan: ProcessPlan, c: PodContainerParts, sandbox: PodSandboxParts | undefined): ProcessPlan {
  const files = cgroupFiles(c, sandbox);
  return files.length > 0 ? { ...plan, cgroupProcs: files } : plan;
}

function cgroupFiles(c: PodContainerParts, sandbox: PodSandboxParts | undefined): string[] {
  if (c.cgroup === undefined || sandbox === undefined) return [];
  return childCgroupProcs(c.cgroup, sandbox.cgroup, sandbox.owner.uid);
}
