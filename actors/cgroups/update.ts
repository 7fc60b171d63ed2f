import * as fs from 'node:fs';
import { findResourceProblems } from '../../specs/validate';
import type { OciResources } from '../../specs/oci';
import { CgroupError, planWrites, type CgroupWrite, type SandboxCgroup } from './sandbox-cgroup';
import type { EngineCore } from '../engine/core';
import { PaddockError, SpecError, StateError } from '../../base/errors';

/*
 * `update` (runc's): new linux.resources limits written to a running sandbox's cgroup,
 * v1 or v2 (docs/decisions/0035). The same keys and checks as at create (memory
 * limit/reservation/swap, cpu shares/quota/period/cpus/mems, pids limit); what is not
 * given is left as it is. The bundle is not changed: a restart applies the spec's own
 * limits again.
 */

/** Keys update applies; the rest of linux.resources is not updatable (devices: runc neither). */
const UPDATABLE = new Set(['memory', 'cpu', 'pids']);

export interface UpdateTarget {
  readonly sandboxId: string;
  readonly containerId?: string;
}

/**
 * Checks `resources` and writes them into the sandbox's cgroup (or a pod container's
 * own, decision 0022). Bad input is EINVALID_ARGUMENT naming the key
 * (`memory.limit: ...`) and changes nothing; a value the kernel refuses is ELAUNCH_STEP
 * naming the file (`cgroup: EBUSY (memory.limit_in_bytes)`), after the writes before it.
 */
export function updateResources(core: EngineCore, target: UpdateTarget, resources: unknown): OciResources {
  const rt = core.get(target.sandboxId);
  const snap = rt.actor.getSnapshot();
  const containerId = target.containerId ?? snap.context.rootContainerId ?? target.sandboxId;
  core.containerActor(rt, containerId);
  const state = String(snap.value);
  if (!['created', 'running', 'paused'].includes(state)) {
    throw new StateError('EINVALID_STATE', `cannot update sandbox ${target.sandboxId}: it is ${state}`, { sandboxId: target.sandboxId, verb: 'update', state });
  }
  const isRoot = containerId === snap.context.rootContainerId;
  const cg = isRoot ? rt.cgroup : rt.containers.get(containerId)?.cgroup;
  if (cg === undefined) {
    throw new StateError(
      'EINVALID_STATE',
      isRoot ? `cannot update sandbox ${target.sandboxId}: it has no cgroup` : `cannot update container ${containerId} alone: it has no cgroup of its own (its limits are the sandbox's)`,
      { sandboxId: target.sandboxId, containerId, verb: 'update' },
    );
  }
  const res = withCurrent(cg, checkUpdate(resources));
  const first = findResourceProblems(res)[0];
  if (first) throw argument(first.field, first.message.slice(first.field.length + 2));
  for (const key of ['kernel', 'kernelTCP']) {
    if (res.memory?.[key] !== undefined) rt.log.warn({ field: `memory.${key}`, step: 'update' }, `memory.${key} ignored: the kernel no longer supports kernel memory limits`);
  }
  // Only the root's cgroup holds paddock-init: pids.limit counts the containers' tasks.
  const initTasks = isRoot ? taskCount(snap.context.initHostPid) : 0;
  const writes = updateWrites(cg, res, initTasks);
  try {
    cg.apply(writes);
  } catch (e) {
    if (!(e instanceof CgroupError)) throw e;
    throw new PaddockError('ELAUNCH_STEP', e.message, { sandboxId: target.sandboxId, containerId, step: 'update', ...(e.fullPath ? { path: e.fullPath } : {}) }, e);
  }
  rt.log.info({ step: 'update', containerId, resources: res }, 'resources updated');
  return res;
}

/** The error of a bad key, named as in the resources object (`memory.limit`). */
function argument(field: string, reason: string): SpecError {
  const key = field.replace(/^linux\.resources\.?/, '') || 'resources';
  return new SpecError('EINVALID_ARGUMENT', `${key}: ${reason}`, { field: key });
}

function checkUpdate(resources: unknown): OciResources {
  if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) throw argument('linux.resources', 'must be an object');
  for (const k of Object.keys(resources)) {
    if (!UPDATABLE.has(k)) throw argument(`linux.resources.${k}`, 'cannot be updated (memory, cpu and pids can)');
  }
  return resources as OciResources;
}

/**
 * Fills in from the cgroup what the kernel needs together with a given value: the
 * memory limit for a swap alone (OCI swap counts memory plus swap), cpu.max's other
 * half on v2 (one file holds quota and period).
 */
function withCurrent(cg: SandboxCgroup, res: OciResources): OciResources {
  const v2 = cg.layout.mode === 'v2';
  let memory = res.memory;
  if (memory && typeof memory.swap === 'number' && memory.swap > 0 && memory.limit === undefined) {
    const cur = Number(cg.read(v2 ? 'unified' : 'memory', v2 ? 'memory.max' : 'memory.limit_in_bytes'));
    // An unlimited limit (`max`, or v1's page-rounded LONG_MAX) leaves swap without one: the check says so.
    if (Number.isSafeInteger(cur) && cur > 0 && cur < 2 ** 62) memory = { ...memory, limit: cur };
  }
  let cpu = res.cpu;
  if (v2 && cpu && (cpu.quota === undefined) !== (cpu.period === undefined)) {
    const [q, p] = (cg.read('unified', 'cpu.max') ?? 'max 100000').split(/\s+/);
    cpu = { ...cpu, ...(cpu.quota === undefined ? { quota: q === 'max' ? -1 : Number(q) } : { period: Number(p) }) };
  }
  return { ...res, ...(memory ? { memory } : {}), ...(cpu ? { cpu } : {}) };
}

/**
 * The writes for `res`: planWrites', with pids.max counting init's tasks (as at
 * create, launcher.ts) and, on v1, memsw before the limit when the limit grows past it
 * (the kernel keeps memsw >= limit at every step).
 */
export function updateWrites(cg: SandboxCgroup, res: OciResources, initTasks: number): CgroupWrite[] {
  const writes = planWrites(cg.layout.mode, res).filter((w) => w.file !== 'pids.max');
  const limit = res.pids?.limit;
  if (typeof limit === 'number' && limit !== 0) {
    writes.push({ hierarchy: cg.layout.mode === 'v2' ? 'unified' : 'pids', file: 'pids.max', value: limit < 0 ? 'max' : String(limit + initTasks) });
  }
  const li = writes.findIndex((w) => w.file === 'memory.limit_in_bytes');
  const si = writes.findIndex((w) => w.file === 'memory.memsw.limit_in_bytes');
  if (li >= 0 && si > li) {
    const memsw = Number(cg.read('memory', 'memory.memsw.limit_in_bytes'));
    const newLimit = Number(writes[li]?.value);
    if (Number.isFinite(memsw) && (newLimit < 0 || newLimit > memsw)) {
      const [sw] = writes.splice(si, 1);
      writes.splice(li, 0, sw as CgroupWrite);
    }
  }
  return writes;
}

function taskCount(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return fs.readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}
