import { waitFor } from 'xstate';
import type { EngineCore } from '../engine/core';
import { StateError, restoreError } from '../../base/errors';
import { freezeContainer, thawContainer, type FreezerHost } from './freezer';
import type { Runtime } from '../sandbox/runtime';

/*
 * pause and resume on top of the cgroup freezer (actors/cgroups/freezer.ts,
 * docs/decisions/0014): a whole sandbox through its machine, or one pod container
 * alone in its own cgroup (decision 0022).
 */

/** What the freezer needs of a sandbox: its cgroup and its pod containers' own. */
export function freezerHost(rt: Runtime): FreezerHost {
  const podCgroups = [...rt.containers.values()].flatMap((c) => (c.cgroup ? [c.cgroup] : []));
  return { id: rt.id, ...(rt.cgroup ? { cgroup: rt.cgroup } : {}), podCgroups };
}

export function isRootOf(core: EngineCore, sandboxId: string, containerId: string): boolean {
  return core.get(sandboxId).actor.getSnapshot().context.rootContainerId === containerId;
}

/**
 * One pod container: only while its sandbox runs (a paused sandbox is resumed as a
 * whole), and only from running (pause) or paused (resume), as runc says it.
 */
export async function freezeOrThawContainer(core: EngineCore, sandboxId: string, containerId: string, verb: 'pause' | 'resume'): Promise<void> {
  const rt = core.get(sandboxId);
  const c = core.containerActor(rt, containerId);
  const sandboxState = String(rt.actor.getSnapshot().value);
  if (sandboxState !== 'running') {
    throw new StateError('EINVALID_STATE', `cannot ${verb} container ${containerId}: sandbox ${sandboxId} is ${sandboxState}`, { sandboxId, containerId, verb, state: sandboxState });
  }
  if (!c.getSnapshot().can({ type: verb })) {
    throw new StateError('EINVALID_STATE', `cannot ${verb} container ${containerId}: it is ${String(c.getSnapshot().value)}`, { sandboxId, containerId, verb, state: String(c.getSnapshot().value) });
  }
  const cgroup = rt.containers.get(containerId)?.cgroup;
  const host = { sandboxId, containerId, ...(cgroup ? { cgroup } : {}) };
  if (verb === 'pause') await freezeContainer(host, { timeoutMs: core.requestTimeout });
  else await thawContainer(host, { timeoutMs: core.requestTimeout });
  c.send({ type: verb });
  core.persistNow(rt);
}

export async function freezeOrThaw(core: EngineCore, sandboxId: string, verb: 'pause' | 'resume', busy: string, want: string): Promise<void> {
  const rt = core.get(sandboxId);
  core.requireCan(rt, { type: verb }, verb);
  rt.actor.send({ type: verb });
  // The freezer bounds its own wait (requestTimeoutMs); this only guards a wedged actor.
  const snap = await waitFor(rt.actor, (s) => s.value !== busy, { timeout: core.requestTimeout * 4 });
  core.persistNow(rt);
  if (snap.value !== want) {
    if (snap.context.error) throw restoreError(snap.context.error, sandboxId, 'ECONTROL');
    throw new StateError('EINVALID_STATE', `cannot ${verb} sandbox ${sandboxId}: it is ${String(snap.value)}`, { sandboxId, verb, state: String(snap.value) });
  }
}
