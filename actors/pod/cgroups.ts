import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeFacade } from '../../native/facade';
import { effectiveDeviceRules } from '../../specs/device-rules';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciDeviceCgroup, OciResources } from '../../specs/oci';
import { readCgroupRecord, recordPodCgroupLocked } from '../cgroups/record';
import { CgroupError, requestsLimits, SandboxCgroup, type CgroupLayout } from '../cgroups/sandbox-cgroup';
import type { PodContainerCgroupPath } from '../cgroups/path';
import { attachDevicePolicy, deviceEnforcement } from '../cgroups/devices';
import { LaunchError, PaddockError } from '../../base/errors';
import type { Logger } from '../../base/logger';
import type { SandboxPaths } from '../sandbox/state-store';

/**
 * The own cgroup of a container added to a sandbox (a pod container,
 * docs/decisions/0022): made and limited when the container is added, entered by its
 * process itself in paddock-init's child before it makes its cgroup namespace
 * (docs/decisions/0025; the engine writes the pid again while it is held, a backstop),
 * removed when the container is destroyed. Recorded in the sandbox's `cgroup.json`.
 */

export interface PodCgroupRequest {
  readonly layout: CgroupLayout | false;
  /** The sandbox's own cgroup; undefined when it runs without one. */
  readonly sandbox: SandboxCgroup | undefined;
  readonly paths: SandboxPaths;
  readonly sandboxId: string;
  readonly containerId: string;
  readonly where: PodContainerCgroupPath;
  readonly resources: DeepReadonly<OciResources> | undefined;
  /** The sandbox runs in a user namespace: device rules are not applied (decision 0019). */
  readonly userns: boolean;
  /** paddock-init's host uid and gid: what its child must be able to write as (0: root, anything). */
  readonly owner: { readonly uid: number; readonly gid: number };
  readonly native: NativeFacade;
  readonly log: Logger;
}

/**
 * Makes the container's cgroup with its limits (and device rules) applied, and records
 * it. Undefined when the sandbox has no cgroup and the container asks for neither a
 * limit nor a path (it then runs in the sandbox, stats from /proc, as a sandbox
 * without a cgroup does). Throws LaunchError (`cgroup: ...`), ECGROUP_IN_USE for a
 * busy path; on any failure nothing it made is left.
 */
export function makePodCgroup(req: PodCgroupRequest): SandboxCgroup | undefined {
  const ctx = { sandboxId: req.sandboxId, containerId: req.containerId, step: 'cgroup' };
  const { layout, where, resources } = req;
  if (layout === false || layout.mode === 'none' || !req.sandbox) {
    if (!requestsLimits(resources) && !where.custom) return undefined;
    const field = where.custom && !requestsLimits(resources) ? 'linux.cgroupsPath' : 'linux.resources';
    throw new LaunchError(`cgroup: ENOENT (sandbox ${req.sandboxId} has no cgroup, so its containers cannot have their own; ${field} asks for one)`, { ...ctx, field });
  }
  const via = deviceEnforcement(layout, resources?.devices);
  const devices = via === 'v1';
  const cpuset = typeof resources?.cpu?.cpus === 'string' || typeof resources?.cpu?.mems === 'string';
  const cg = new SandboxCgroup(layout, where.relPath, { cpuset, devices, made: [] });
  // Set when this call moved init into its leaf: a failure below moves it back, so a
  // refused add leaves the sandbox's cgroup as it found it.
  let undoLeaf: (() => void) | undefined;
  const sandbox = req.sandbox;
  try {
    // v2: a cgroup whose children have controllers holds no process; init moves to a leaf first.
    if (where.nested) undoLeaf = sandbox.moveProcessesToLeaf();
    const deviceRules = via === 'none' ? [] : (effectiveDeviceRules(resources?.devices) as OciDeviceCgroup[]);
    cg.create(devices ? { ...resources, devices: deviceRules } : resources, { devices });
    if (via === 'bpf') {
      try {
        attachDevicePolicy(req.native, cg.dirOf('unified'), deviceRules);
      } catch (e) {
        cg.removeSync();
        throw e;
      }
    }
  } catch (e) {
    // cg.create removes what it made when it fails.
    undoLeaf?.();
    throw podCgroupError(req, e);
  }
  try {
    grantChildPlacement(cg, req.sandbox, req.owner);
  } catch (e) {
    cg.removeSync();
    undoLeaf?.();
    const err = e as NodeJS.ErrnoException;
    throw new LaunchError(`cgroup: ${err.code ?? 'EIO'} (chown ${err.path ?? 'cgroup.procs'})`, { ...ctx, ...(err.path ? { path: err.path } : {}) }, e);
  }
  try {
    recordPodCgroupLocked(req.paths, req.containerId, { relPath: cg.relPath, custom: where.custom, made: cg.made });
  } catch (e) {
    cg.removeSync();
    undoLeaf?.();
    throw new LaunchError(`cgroup: ${(e as NodeJS.ErrnoException).code ?? 'EIO'} (writing ${req.paths.cgroupFile})`, { ...ctx, path: req.paths.cgroupFile }, e);
  }
  req.log.debug({ containerId: req.containerId, step: 'cgroup', relPath: cg.relPath, custom: where.custom }, 'pod container cgroup made');
  return cg;
}

/**
 * The `cgroup.procs` files of a pod container's cgroup that its process writes "0" to
 * itself, in paddock-init's child, before it makes or joins its cgroup namespace (and an
 * exec'd process before it joins the container): the plan's CGROUP_PROCS. The paths are
 * the host's, which is what init sees (its mount and cgroup namespaces are copies of the
 * supervisor's). Root (no user namespace, or one mapping root to host root) writes any
 * of them. Another uid writes those grantChildPlacement gave it: every v1 directory, and
 * the cgroup2 one only when it is nested in the sandbox's cgroup2 directory, since a v2
 * move also needs write access to the cgroup.procs of the common ancestor, and one
 * outside the sandbox (containerd's sibling paths) is not the sandbox's to be given;
 * that one is left to the engine's placement while the process is held.
 */
export function childCgroupProcs(cg: SandboxCgroup, sandbox: SandboxCgroup | undefined, initUid: number): string[] {
  const unified = cg.dirOf('unified');
  const nested = nestedUnified(cg, sandbox) !== undefined;
  return cg.paths.filter((dir) => initUid === 0 || dir !== unified || nested).map((dir) => path.join(dir, 'cgroup.procs'));
}

/** The sandbox's cgroup2 directory when the container's is below it (their common ancestor), else undefined. */
function nestedUnified(cg: SandboxCgroup, sandbox: SandboxCgroup | undefined): string | undefined {
  const unified = cg.dirOf('unified');
  const sandboxUnified = sandbox?.dirOf('unified');
  return unified !== undefined && sandboxUnified !== undefined && unified.startsWith(`${sandboxUnified}/`) ? sandboxUnified : undefined;
}

/**
 * Lets a paddock-init that is not host root write the files childCgroupProcs lists: each
 * is chowned to init's host uid, and for a nested cgroup2 directory so is the sandbox's
 * own cgroup2 cgroup.procs (the common ancestor of init's cgroup and the container's).
 * That last one also lets the sandbox's root user move its own processes between the
 * sandbox's cgroup2 directory and the pod containers' below it, within the sandbox; see
 * docs/decisions/0025 for why that is acceptable.
 */
function grantChildPlacement(cg: SandboxCgroup, sandbox: SandboxCgroup | undefined, owner: { readonly uid: number; readonly gid: number }): void {
  if (owner.uid === 0) return;
  const files = childCgroupProcs(cg, sandbox, owner.uid);
  const ancestor = nestedUnified(cg, sandbox);
  if (ancestor !== undefined) files.push(path.join(ancestor, 'cgroup.procs'));
  // v1's `tasks` beside each cgroup.procs, which init's child writes first (a thread
  // moving itself, without the kernel's global lock: docs/decisions/0046). It lets init
  // move no more than cgroup.procs already does: its own processes, within the sandbox.
  const unified = cg.dirOf('unified');
  for (const dir of cg.paths) if (dir !== unified && fs.existsSync(path.join(dir, 'tasks'))) files.push(path.join(dir, 'tasks'));
  for (const f of files) fs.chownSync(f, owner.uid, owner.gid);
}

/**
 * Moves a container's process (all its threads) into its cgroup, in every hierarchy.
 * Idempotent. A process that is gone (ESRCH) is not an error: its exit is reported as usual.
 * `held`: a process held in paddock-hold, one thread that entered its cgroups itself
 * (CGROUP_PROCS): written only where /proc/PID/cgroup shows it is not (SandboxCgroup.place),
 * which spares the kernel's global lock and its grace period (docs/decisions/0046).
 */
export function placeInPodCgroup(cg: SandboxCgroup, hostPid: number, ctx: { sandboxId: string; containerId: string }, held = false): void {
  try {
    if (held) cg.place(hostPid);
    else cg.addProcess(hostPid);
  } catch (e) {
    if (e instanceof CgroupError && e.errnoName === 'ESRCH') return;
    if (e instanceof CgroupError) throw new LaunchError(e.message, { ...ctx, step: 'cgroup', ...(e.fullPath ? { path: e.fullPath } : {}) }, e);
    throw e;
  }
}

/**
 * An exec'd process of a pod container and everything it forked meanwhile. paddock-init
 * forks and execs it at once (exec has no hold), so by the time its pid is known it may
 * have children, born in the sandbox's cgroup. Each pass moves the whole tree (a
 * process forked by one already moved is born inside); passes repeat while the tree
 * still grows, bounded. Left out: a descendant that was orphaned (its parent exited)
 * before the walk reached it. Returns how many processes were moved.
 */
export function placeTreeInPodCgroup(cg: SandboxCgroup, hostPid: number, ctx: { sandboxId: string; containerId: string }, tree: (pid: number) => number[]): number {
  const moved = new Set<number>();
  for (let pass = 0; pass < 5; pass++) {
    const fresh = tree(hostPid).filter((p) => !moved.has(p));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      placeInPodCgroup(cg, pid, ctx);
      moved.add(pid);
    }
  }
  return moved.size;
}

/**
 * Kills what is left in a pod container's cgroup, removes it (retried while exiting
 * tasks leave) and drops it from the record. Failures are logged: the sandbox's
 * teardown tries again (and removes anything nested in its own cgroup).
 */
export async function removePodCgroup(cg: SandboxCgroup, paths: SandboxPaths, containerId: string, log: Logger): Promise<void> {
  try {
    cg.kill();
  } catch {
    // nothing left to kill, or no cgroup.kill
  }
  try {
    await cg.remove();
  } catch (e) {
    log.warn({ containerId, step: 'cgroup', err: (e as Error).message, paths: cg.paths }, 'could not remove the container cgroup');
    return;
  }
  try {
    recordPodCgroupLocked(paths, containerId, undefined);
  } catch {
    // the sandbox folder is going away with its record
  }
}

/** The pod containers' cgroups of a sandbox, from its `cgroup.json` (reattach, `paddock delete`). */
export function findPodCgroups(paths: SandboxPaths, layout: CgroupLayout | false): Map<string, SandboxCgroup> {
  const out = new Map<string, SandboxCgroup>();
  if (layout === false || layout.mode === 'none') return out;
  for (const [cid, rec] of Object.entries(readCgroupRecord(paths)?.containers ?? {})) {
    const cg = new SandboxCgroup(layout, rec.relPath, { cpuset: true, made: rec.made });
    if (cg.exists()) out.set(cid, cg);
  }
  return out;
}

function podCgroupError(req: PodCgroupRequest, e: unknown): Error {
  if (!(e instanceof CgroupError)) return e as Error;
  const ctx = { sandboxId: req.sandboxId, containerId: req.containerId, step: 'cgroup', ...(e.fullPath ? { path: e.fullPath } : {}) };
  if (e.inUse) {
    const asked = req.where.asked;
    return new PaddockError(
      'ECGROUP_IN_USE',
      `linux.cgroupsPath: cgroup ${e.fullPath ?? e.file}${asked !== undefined ? ` (asked as ${JSON.stringify(asked)})` : ''} is in use: it holds processes or child cgroups (another container's, or someone else's)`,
      { ...ctx, field: 'linux.cgroupsPath' },
      e,
    );
  }
  return new LaunchError(e.message, ctx, e);
}

/**
 * kill --all on a container with its own cgroup: every process in it, also those
 * init never saw (forked by the container's own processes). SIGKILL through
 * cgroup.kill where there is one; best effort, as the processes may be exiting.
 */
export function signalCgroup(cg: SandboxCgroup, signo: number): void {
  if (signo === 9) {
    try {
      cg.kill();
      return;
    } catch {
      // no cgroup.kill: one by one below
    }
  }
  for (const pid of cg.pids()) {
    try {
      process.kill(pid, signo);
    } catch {
      // gone
    }
  }
}
