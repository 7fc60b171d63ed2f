import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeFacade } from '../native/facade';
import type { ProcessPlan } from '../protocols/messages';
import { needsStagedDevices, planDevices } from '../specs/device-nodes';
import { PaddockError } from './errors';
import { planContainer } from '../specs/plan';
import type { ContainerRuntime, Runtime } from './launcher';
import { podContainerPlan } from './pod-plan';
import type { SandboxPaths, StdioMode } from './state-store';

/*
 * The process plan of a container, from its bundle and its stdio: what paddock-init
 * is sent to start it (actors/container-start.ts).
 */

export function containerPlan(c: ContainerRuntime, stdio: Parameters<typeof planContainer>[1], rt?: Runtime, paths: SandboxPaths | undefined = rt?.paths): ProcessPlan {
  const deviceDir = paths && deviceDirOf(paths, c.id);
  // A pod container's shared namespaces and own cgroups (0024, 0025).
  const plan = podContainerPlan(planContainer(c.bundle, stdio, { containerId: c.id, ...(deviceDir ? { deviceDir } : {}) }), c, rt);
  return c.noPivot ? { ...plan, noPivot: true } : plan;
}

/** Where the supervisor makes a container's linux.devices nodes (specs/device-nodes.ts). */
export function deviceDirOf(paths: SandboxPaths, containerId: string): string {
  return path.join(paths.dir, 'devices', containerId);
}

/**
 * Makes the container's linux.devices char and block nodes that paddock-init binds in
 * (no user namespace: decision 0034), before its plan is sent. Replaces what an earlier
 * launch left; a failure names the entry (`linux.devices[2]: mknod: EPERM (...)`).
 */
export function stageDeviceNodes(native: NativeFacade, c: ContainerRuntime, paths: SandboxPaths): void {
  if (!needsStagedDevices(c.bundle.config)) return;
  const dir = deviceDirOf(paths, c.id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { staged } = planDevices(c.bundle.config, dir);
  for (const s of staged) {
    try {
      native.mknod(s.hostPath, s.node);
    } catch (e) {
      const i = path.basename(s.hostPath);
      const field = `linux.devices[${i}]`;
      throw new PaddockError('ELAUNCH_STEP', `${field}: ${(e as Error).message}`, { containerId: c.id, field, step: 'mknod' }, e);
    }
  }
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
