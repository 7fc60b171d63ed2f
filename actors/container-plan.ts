import type { ProcessPlan } from '../protocols/messages';
import { CLONE } from '../protocols/messages';
import { planContainer } from '../specs/plan';
import type { ContainerRuntime } from './launcher';
import type { SandboxPaths, StdioMode } from './state-store';

/*
 * The process plan of a container, from its bundle and its stdio: what paddock-init
 * is sent to start it (actors/container-start.ts).
 */

export function containerPlan(c: ContainerRuntime, stdio: Parameters<typeof planContainer>[1]): ProcessPlan {
  let plan = planContainer(c.bundle, stdio, { containerId: c.id });
  // A pod's shared process namespace (0024): made in that container's, not a new one.
  if (c.pidNsOf) plan = { ...plan, pidNsOf: c.pidNsOf, nsFlags: (plan.nsFlags ?? 0) & ~CLONE.NEWPID };
  return c.noPivot ? { ...plan, noPivot: true } : plan;
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
