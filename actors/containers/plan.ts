import type { ProcessPlan } from '../../protocols/messages';
import { planContainer } from '../../specs/plan';
import { podContainerPlan } from '../pod/plan';
import { seccompOf } from './seccomp-cache';
import type { SandboxPaths, StdioMode } from '../sandbox/state-store';
import type { ContainerRuntime, Runtime } from '../sandbox/runtime';

/*
 * The process plan of a container, from its bundle and its stdio: what paddock-init
 * is sent to start it (actors/containers/start.ts).
 */

export function containerPlan(c: ContainerRuntime, stdio: Parameters<typeof planContainer>[1], rt?: Runtime): ProcessPlan {
  // A pod container's shared namespaces and own cgroups (0024, 0025).
  const plan = podContainerPlan(planContainer(c.bundle, stdio, { containerId: c.id, seccomp: seccompOf(c.bundle.config) }), c, rt);
  return c.noPivot ? { ...plan, noPivot: true } : plan;
}

/** The container's plan; one left for later (`replan`, a reattached container) is made now. Throws its planning error. */
export function planOf(c: ContainerRuntime): ProcessPlan | undefined {
  if (c.plan === undefined && c.replan !== undefined) {
    const make = c.replan;
    c.replan = undefined;
    c.plan = make();
  }
  return c.plan;
}

/**
 * The stdio fields of a plan for a container another engine (or process) registered:
 * its log files are reused; its stdin FIFO lost its writer with that one, so none is planned.
 */
export function reattachedStdio(paths: SandboxPaths, name: string, mode: StdioMode): Parameters<typeof planContainer>[1] {
  if (mode === 'inherit') return { stdioInherit: 7 };
  if (mode === 'ignore') return {};
  return { stdoutPath: paths.log(name, 'stdout'), stderrPath: paths.log(name, 'stderr') };
}
