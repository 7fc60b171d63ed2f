import * as fs from 'node:fs';
import { waitFor } from 'xstate';
import type { MessageOf, ProcessPlan } from '../../protocols/messages';
import type { ContainerHandle } from '../engine/api';
import { encodeRequest } from '../channels/control-client';
import { withConsole } from './console';
import { planOf } from './plan';
import type { EngineCore } from '../engine/core';
import { StateError, restoreError } from '../../base/errors';
import { heldProcessDead, HeldRelease } from './held-release';
import { placeInPodCgroup } from '../pod/cgroups';
import { writeFileAtomic } from '../../base/files';
import type { ContainerRuntime, Runtime } from '../sandbox/runtime';

/*
 * Starting a container's process: prepared (made up to just before its execve and held
 * in paddock-hold, docs/decisions/0017 and 0020), released directly or by init's START,
 * and the start's outcome collected.
 */

/**
 * `prepare`: the container's process is made now (mounts, pivot_root, identity,
 * createContainer hooks) and waits just before execve; start only releases it, one
 * round trip (docs/decisions/0017). What runc's create does, and what a warm pool's
 * acquire relies on.
 */
export async function holdContainer(core: EngineCore, rt: Runtime, containerId: string): Promise<void> {
  const c = rt.containers.get(containerId);
  const plan = c && planOf(c);
  if (!c || !plan) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${rt.id}`, { sandboxId: rt.id, containerId });
  const reply = await core.control(rt).request({ type: 'START_CONTAINER', cid: containerId, plan: { ...plan, hold: true } });
  recordHeld(core, rt, c, reply);
  rt.log.child({ containerId }).debug({ step: 'prepare' }, 'container prepared, held before execve');
}

/**
 * create/start with a terminal (docs/decisions/0012): init makes the container's
 * process now, up to just before execve, with its pty; the master goes to the
 * caller's console socket and the start that follows lets the process run.
 */
export async function holdWithConsole(core: EngineCore, rt: Runtime, containerId: string, consoleSocket: string): Promise<void> {
  const c = rt.containers.get(containerId);
  const plan = c && planOf(c);
  if (!c || !plan) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${rt.id}`, { sandboxId: rt.id, containerId });
  const reply = await withConsole(core.native, core.requestTimeout, rt, consoleSocket, (endpoint) =>
    core.control(rt).request({ type: 'START_CONTAINER', cid: containerId, plan: { ...plan, consoleSocket: endpoint, hold: true } }),
  );
  recordHeld(core, rt, c, reply);
  rt.log.child({ containerId }).debug({ step: 'console' }, 'container held with its terminal handed over');
}

/** init made the process and holds it before its execve: the machine learns it, then the start is made ready. */
function recordHeld(core: EngineCore, rt: Runtime, c: ContainerRuntime, reply: MessageOf<'OK'>): void {
  core.containerActor(rt, c.id).send({ type: 'prepared', pid: reply.pid as number, hostPid: reply.hostPid as number });
  placeHeld(rt, c, reply.hostPid as number);
  encodeStart(rt, c);
  takeRelease(core, rt, c, reply);
}

/**
 * The moment a pod container enters its own cgroup (decision 0022): held in
 * paddock-hold, it has run none of its program and forked nothing, so everything it
 * will run is accounted, limited and frozen there.
 */
function placeHeld(rt: Runtime, c: ContainerRuntime, hostPid: number): void {
  if (c.cgroup) placeInPodCgroup(c.cgroup, hostPid, { sandboxId: rt.id, containerId: c.id }, true);
}

/**
 * A container held in paddock-hold can be started by this process directly
 * (docs/decisions/0020); if its fds cannot be had, init's START releases it as before.
 */
function takeRelease(core: EngineCore, rt: Runtime, c: ContainerRuntime, reply: MessageOf<'OK'>): void {
  if (reply.heldExec !== 1 || !reply.hostPid) return;
  try {
    c.held = HeldRelease.take(core.native, reply.hostPid);
  } catch (e) {
    rt.log.debug({ containerId: c.id, err: (e as Error).message }, 'no direct release; init will release the container');
  }
}

/**
 * The release is known from now on: encode it here, off the start's critical path.
 * Also kept in the sandbox's folder: a start made by another process (the CLI's
 * `start`, a reattached supervisor) sends these bytes instead of planning the
 * container again, which would compile its seccomp profile once more for a START
 * whose plan init does not read (the process was made from it at the prepare).
 */
function encodeStart(rt: Runtime, c: ContainerRuntime): void {
  if (!c.plan) return;
  c.startRequest = { plan: c.plan, bytes: encodeRequest({ type: 'START_CONTAINER', cid: c.id, plan: c.plan }) };
  try {
    writeFileAtomic(rt.paths.startRequest(c.id), c.startRequest.bytes);
  } catch (e) {
    // A later process plans the container again instead.
    rt.log.debug({ containerId: c.id, err: (e as Error).message }, 'could not keep the encoded start');
  }
}

/**
 * The START encoded at the prepare: by this process while its plan is still the one
 * encoded, or kept (encodeStart) by the process that prepared it and left no plan here.
 */
function encodedStart(rt: Runtime, c: ContainerRuntime, prepared: unknown): Buffer | undefined {
  if (c.startRequest) return c.startRequest.plan === c.plan ? c.startRequest.bytes : undefined;
  if (!prepared || c.plan !== undefined) return undefined;
  try {
    return fs.readFileSync(rt.paths.startRequest(c.id));
  } catch {
    return undefined;
  }
}

/**
 * Releases a container held in paddock-hold by writing to its release pipe: the
 * machines move on (and the state is written) while the kernel runs the execve, and
 * awaitStarted collects its outcome (docs/decisions/0020). False when there is no
 * direct release (init's START then releases it); the held fds are closed either way.
 */
export function releaseHeld(rt: Runtime, c: ContainerRuntime, prepared: { pid: number; hostPid: number } | undefined): boolean {
  const held = c.held;
  c.held = undefined;
  if (!held || !prepared) {
    held?.dispose();
    return false;
  }
  // go() closes what this side holds when there is no release.
  const released = held.go();
  if (released !== 'released') {
    if (released === 'gone') c.heldGone = true;
    return false;
  }
  c.startRequest = undefined;
  c.releasing = held;
  rt.log.debug({ containerId: c.id, ...prepared, step: 'start' }, 'container released');
  return true;
}

/**
 * The container machine's start effect: a container prepared here and released early
 * (startRoot) is only recorded, one held is released, any other is started by init.
 */
export async function startProcess(core: EngineCore, sandboxId: string, containerId: string): Promise<{ pid: number; hostPid: number }> {
  const rt = core.mustRuntime(sandboxId);
  const c = rt.containers.get(containerId);
  if (!c) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
  let reply: MessageOf<'OK'>;
  const prepared = core.containerActor(rt, containerId).getSnapshot().context.prepared;
  if (c.releasedEarly) {
    c.releasedEarly = false;
    if (prepared) return prepared;
  }
  const pre = encodedStart(rt, c, prepared);
  c.startRequest = undefined;
  // Placed when it was prepared; again here (idempotent) for a prepare whose supervisor
  // died before it could place it.
  if (c.cgroup && prepared) placeInPodCgroup(c.cgroup, prepared.hostPid, { sandboxId, containerId }, true);
  if (releaseHeld(rt, c, prepared) && prepared) return prepared;
  // Killed while held: no start. Checked before the START, not inferred after it: a
  // dying root takes init with it, and its exit record (reaped after this point) would
  // pass the test below for a process that started and exited at once.
  if (prepared && (c.heldGone || heldProcessDead(prepared.hostPid))) {
    throw new StateError('EINVALID_STATE', `container ${containerId} exited before its start`, { sandboxId, containerId, verb: 'start' });
  }
  // Only now, and only without encoded bytes: a container released above, or one
  // whose START was kept when it was prepared, needs no plan here.
  const plan = pre ? c.plan : planOf(c);
  if (!pre && !plan) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
  const sentAtNs = BigInt(Date.now() - 1) * 1_000_000n;
  try {
    reply = await core.control(rt).request({ type: 'START_CONTAINER', cid: containerId, plan: plan as ProcessPlan }, undefined, pre);
  } catch (e) {
    // A process that exits at once can take init down with it before the start reply
    // leaves (nng does not flush on exit). Its record in exits.log proves it started,
    // unless it is older than this start: a prepared process that died while held
    // (init's realtime clock and ours are the host's).
    const rec = rt.initAlive ? undefined : exitRecordOf(core, rt, containerId);
    if (rec && rec.timeNs >= sentAtNs) return { pid: rec.pid, hostPid: rec.hostPid };
    if (rec) throw new StateError('EINVALID_STATE', `container ${containerId} exited before its start`, { sandboxId, containerId, verb: 'start' }, e);
    throw e;
  }
  rt.log.debug({ containerId, pid: reply.pid, hostPid: reply.hostPid, step: 'start' }, 'container started');
  return { pid: reply.pid as number, hostPid: reply.hostPid as number };
}

/** Waits for the machines to leave `starting`, then for a direct release's execve (the start's outcome). */
export async function awaitStarted(core: EngineCore, rt: Runtime, containerId: string): Promise<ContainerHandle> {
  const c = core.containerActor(rt, containerId);
  const snap = await waitFor(c, (s) => s.value !== 'starting', { timeout: 60_000 });
  const cr = rt.containers.get(containerId);
  const releasing = cr?.releasing;
  if (cr) cr.releasing = undefined;
  // stopped with an error: the start failed because its held process had died.
  if ((snap.value !== 'running' && snap.value !== 'stopped') || (snap.value === 'stopped' && snap.context.error)) {
    releasing?.dispose();
    throw restoreError(snap.context.error, rt.id, 'ELAUNCH_STEP', containerId);
  }
  // A started process is never started again (a restart makes a new sandbox, or plans a
  // pod container anew): its plan would only be memory kept for each idle sandbox.
  if (cr) {
    cr.plan = undefined;
    cr.replan = undefined;
    cr.startRequest = undefined;
  }
  // Written before the caller hears of the start; after a direct release, in the next
  // turn of the loop instead (the write took a quarter of an acquire). A supervisor that
  // dies before it leaves `created` on disk for a running container, which a reattach
  // tells from /proc and moves to running (decision 0020).
  if (releasing) core.persist(rt);
  else core.persistNow(rt);
  // A failed execve after a direct release: the holder exits 127 and its exit record
  // stops the container, as any process that dies at once; the start reports the step.
  if (releasing) await releasing.outcome(rt.id, containerId, core.requestTimeout);
  return {
    sandboxId: rt.id,
    containerId,
    pid: snap.context.pid as number,
    hostPid: snap.context.hostPid as number,
    ...(cr?.streams ? { stdio: cr.streams } : {}),
  };
}

function exitRecordOf(core: EngineCore, rt: Runtime, containerId: string): MessageOf<'EV_EXITED'> | undefined {
  core.exits.readLog(rt);
  return rt.containerExits.get(containerId);
}
