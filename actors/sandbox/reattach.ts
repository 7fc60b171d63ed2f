import { startOomEvents } from '../observe/oom';
import * as fs from 'node:fs';
import type { Actor, AnyActorRef } from 'xstate';
import type { containerMachine } from '../../machines/container.machine';
import { isValidId } from '../../machines/ids';
import { loadBundle, type Bundle } from '../../specs/load';
import { containerPlan, reattachedStdio } from '../containers/plan';
import { deferred } from '../../base/deferred';
import type { EngineCore } from '../engine/core';
import type { PaddockError } from '../../base/errors';
import { hasHooks } from '../containers/oci-hooks';
import { stillHeld } from '../containers/held-release';
import { onEvent, onInitExit, startHealth } from './init-watch';
import { connectChannels, findCgroup } from './launcher';
import { findPodCgroups, removePodCgroup } from '../pod/cgroups';
import { removeTree } from '../../base/remove-tree';
import { startSandboxActor } from './actor';
import { SandboxPaths, acquireLock, acquireLockLocked, loadSandbox, processParent, processStartTime } from './state-store';
import { newRuntime, type ContainerRuntime, type Runtime } from './runtime';
import { reattachNetwork, stopOrphanHelper } from '../network';

/*
 * A supervisor restart (or a one-shot caller such as the CLI): a sandbox is taken
 * back from its state folder, its machines restored, the exits recorded meanwhile
 * read, and its init's channels connected again (docs/decisions/0004, 0017 and 0020).
 */

export async function reattach(core: EngineCore, id: string): Promise<void> {
  if (!isValidId(id)) return;
  const paths = new SandboxPaths(core.stateDir, id);
  const saved = loadSandbox(paths);
  if (!saved) {
    await removeHalfCreated(core, paths);
    return;
  }
  await acquireLock(paths, core.options.lockTimeoutMs ?? 0);
  const snapshot = saved.snapshot as { context?: { bundleDir?: string; initHostPid?: number; initStartTime?: number } };
  const bundleDir = snapshot.context?.bundleDir ?? '';
  const containers = new Map<string, ContainerRuntime>();
  let rootBundle: Bundle | undefined;
  for (const [cid, c] of Object.entries(saved.containers)) {
    let bundle: Bundle;
    try {
      bundle = await loadBundle(c.bundleDir);
    } catch {
      // The bundle may be gone; exec then fails, but statuses and logs still work.
      bundle = { dir: c.bundleDir, config: { ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/' } }, rootfs: '' } as unknown as Bundle;
    }
    if (!rootBundle) rootBundle = bundle;
    const cr: ContainerRuntime = { id: cid, bundle, stdio: c.stdio, done: deferred<void>(), ...(c.noPivot ? { noPivot: true } : {}) };
    // A container created by another process and not started yet is planned again,
    // but only if a START needs the plan (planOf): a held one is released without it.
    // Its log files are reused; a stdin FIFO lost its writer with that process.
    // A pod container is planned when it is started (actors/pod/containers.ts): its namespace paths need
    // the running sandbox to resolve, its cgroup files the sandbox's cgroups.
    if (bundle.rootfs && bundle === rootBundle) cr.replan = () => containerPlan(cr, reattachedStdio(paths, cid, c.stdio));
    containers.set(cid, cr);
  }
  const rt = newRuntime({
    id,
    paths,
    log: core.log.child({ sandboxId: id }),
    bundle: rootBundle ?? ({ dir: bundleDir } as unknown as Bundle),
    owner: { uid: saved.ownerUid, gid: saved.ownerGid },
    containers,
    execCounter: saved.execCounter,
    rootStdio: 'ignore',
    createdAt: saved.createdAt ?? saved.savedAt,
    ...(saved.health ? { health: saved.health } : {}),
    ...(typeof saved.logSizeMax === 'number' ? { logSizeMax: saved.logSizeMax } : {}),
  });
  core.runtimes.set(id, rt);
  const hooks = saved.hooks ?? containers.get(id)?.bundle.config.hooks;
  if (hooks !== undefined && hasHooks(hooks)) core.hooks.set(id, hooks);
  core.supervisor.send({ type: 'sandbox.register', sandboxId: id });
  const actor = startSandboxActor(core, rt, { snapshot: saved.snapshot });
  for (const [key, ref] of Object.entries(actor.getSnapshot().children)) {
    if (!key.startsWith('pid-')) continue;
    const ctx = (ref as AnyActorRef).getSnapshot().context as { pid: number; containerId: string };
    rt.execs.set(ctx.pid, { name: `${ctx.containerId}.exec-?`, containerId: ctx.containerId, done: deferred<void>() });
  }
  const cgroup = findCgroup(paths, core.cgroupLayout);
  if (cgroup) rt.cgroup = cgroup;
  // OOM events go on for a live sandbox found again (`paddock events` is such a reattach).
  const found = actor.getSnapshot();
  if (found.context.rootContainerId !== undefined && found.hasTag('alive')) startOomEvents(core, rt, found.context.rootContainerId);
  for (const [cid, cg] of findPodCgroups(paths, core.cgroupLayout)) {
    const cr = containers.get(cid);
    if (cr) cr.cgroup = cg;
    // Made for a container whose add never finished (its supervisor died): nobody else has it (we hold the lock).
    else void removePodCgroup(cg, paths, cid, rt.log);
  }
  // What an earlier supervisor reported only updates the machines. Replayed before
  // init's pidfd is watched and its events are subscribed: either can read exits.log
  // (an exit, init's end) while the channels connect, and must start at the cursor.
  core.exits.readLog(rt, core.exits.loadCursor(rt), true);
  const hostPid = snapshot.context?.initHostPid;
  const alive =
    hostPid !== undefined && snapshot.context?.initStartTime !== undefined && processStartTime(hostPid) === snapshot.context.initStartTime;
  if (alive && hostPid !== undefined) {
    try {
      rt.pidfd = core.native.pidfdOpen(hostPid);
      rt.initAlive = true;
      rt.watchToken = core.watcher.watch(rt.pidfd, () => onInitExit(core, rt));
      if (core.options.attachChannels !== false) await connectChannels(rt, core.requestTimeout, (m) => onEvent(core, rt, m));
    } catch (e) {
      rt.log.warn({ err: e }, 'sandbox init alive but unreachable');
    }
  }
  // Whatever else happened while no supervisor ran is in exits.log.
  core.exits.readLog(rt);
  if (rt.initAlive) reconcileReleased(rt, snapshot.context?.initHostPid as number);
  if (core.options.attachChannels !== false) startHealth(core, rt);
  // Only the owner supervises the helper; a read-only attach leaves it be.
  if (core.options.attachChannels !== false || !rt.initAlive) reattachNetwork(core, rt);
  if (!rt.initAlive) {
    rt.initExited.resolve();
    core.exits.reportLost(rt);
    actor.send({ type: 'init.exited' });
  }
  core.persistNow(rt);
}

/**
 * A prepared container whose process no longer waits (neither paddock-hold nor
 * init's copy) was released by a supervisor that died before it wrote `running`
 * (decision 0020): it runs, so say so. Still a child of this sandbox's init, and
 * alive: had it died, its exit would be in exits.log, read just before, and the
 * container would be stopped already; so its pid cannot have been reused.
 */
function reconcileReleased(rt: Runtime, initHostPid: number): void {
  for (const [cid, ref] of Object.entries(rt.actor.getSnapshot().children)) {
    if (cid.startsWith('pid-')) continue;
    const c = (ref as unknown as Actor<typeof containerMachine>).getSnapshot();
    const held = c.context.prepared;
    if (c.value !== 'created' || !held) continue;
    if (processParent(held.hostPid) !== initHostPid || stillHeld(held.hostPid) !== false) continue;
    rt.log.info({ containerId: cid, hostPid: held.hostPid }, 'a prepared container was started before its supervisor died: running');
    (ref as unknown as Actor<typeof containerMachine>).send({ type: 'released' });
  }
}

/** SIGKILL through a pidfd; with `servingDir`, only if the pidfd's process still serves it (the pid was not reused meanwhile). */
function killPid(core: EngineCore, pid: number, servingDir?: string): void {
  let fd;
  try {
    fd = core.native.pidfdOpen(pid);
  } catch {
    return; // gone
  }
  try {
    if (servingDir === undefined || servesDir(pid, servingDir)) core.native.pidfdSendSignal(fd, 9);
  } catch {
    // exited meanwhile
  } finally {
    core.native.closeFd(fd);
  }
}

/** Whether `pid` is a paddock-init whose command line names `dir` (its argv[1]). */
function servesDir(pid: number, dir: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === dir && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'paddock-init';
  } catch {
    return false; // exited meanwhile
  }
}

/** Host pids of the paddock-init processes that serve `dir`. */
function initsServing(dir: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => servesDir(pid, dir));
}

/**
 * A sandbox folder without state.json is a create that never finished (its
 * supervisor died mid-launch): nobody can use it, so once its owner is gone its init
 * is killed and the folder removed.
 */
async function removeHalfCreated(core: EngineCore, paths: SandboxPaths): Promise<void> {
  if (!fs.existsSync(paths.dir)) return;
  try {
    acquireLockLocked(paths);
  } catch (e) {
    // Still being created by a live engine (or not ours to judge).
    if ((e as PaddockError).code === 'ELOCKED') return;
  }
  try {
    const [pidText, startText] = fs.readFileSync(paths.pidFile, 'utf8').trim().split(' ');
    const pid = Number(pidText);
    if (pid > 0 && processStartTime(pid) === Number(startText)) killPid(core, pid);
  } catch {
    // No pid file: init never started, or its launcher died before writing it.
  }
  // paddockd's client launches init and answers with its pid: a paddockd killed
  // between that answer and the pid file left an init that nothing names but its own
  // command line (paddock-init SANDBOX_DIR), seen under podman's chaos test.
  for (const pid of initsServing(paths.dir)) killPid(core, pid, paths.dir);
  stopOrphanHelper(core, paths);
  core.log.warn({ sandboxId: paths.sandboxId }, 'removed a sandbox whose create never finished');
  // Found before the folder goes: its cgroup.json says where the cgroup is. Removed (once
  // the killed init has left it) before the folder: a supervisor killed in between finds
  // the folder again next time, and the cgroup with it; the other way round the cgroup
  // was left with nothing that named it (seen under paddockd's chaos test).
  const cgroup = findCgroup(paths, core.cgroupLayout);
  await cgroup
    ?.remove()
    .catch((err: Error) => core.log.warn({ sandboxId: paths.sandboxId, err: err.message }, 'could not remove the cgroup of a half-created sandbox'));
  removeTree(paths.dir);
  // The range its create took, if any (userns: 'auto').
  core.releaseIds(paths.sandboxId);
}
