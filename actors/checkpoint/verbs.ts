/**
 * engine.checkpoint and engine.restore: every argument checked before anything is done,
 * then the sandbox machine's `checkpoint`/`restore`, whose effects are dump.ts and
 * restore.ts (docs/decisions/0040).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { waitFor } from 'xstate';
import { PaddockError, restoreError } from '../../base/errors';
import { checkOptionKeys } from '../../base/options';
import type { CheckpointRequest } from '../../machines/types';
import type { CheckpointOptions, CheckpointResult, RestoreOptions, SandboxHandle } from '../engine/api';
import type { EngineCore } from '../engine/core';
import { CHECKPOINT_KEYS, RESTORE_KEYS } from '../engine/option-keys';
import { findCriu, hasDirtyTracking } from './criu';
import { CRIU_TIMEOUT_MS, userNamespaceRefusal } from './dump';
import { readRecord } from './image';
import { sameNamespace } from './proc-view';
import { setRestoreOptions } from './restore';

const CGROUP_MODES = ['soft', 'full', 'strict', 'ignore'] as const;
const FLAGS = ['leaveRunning', 'tcpEstablished', 'extUnixSk', 'shellJob', 'fileLocks', 'preDump'] as const;

function bad(message: string, field: string): PaddockError {
  return new PaddockError('EINVALID_ARGUMENT', message, { field });
}

function checkCommon(opts: CheckpointOptions | RestoreOptions, what: string): void {
  if (typeof opts.imagePath !== 'string' || !path.isAbsolute(opts.imagePath)) throw bad(`${what}: imagePath must be an absolute path`, 'imagePath');
  if (opts.workPath !== undefined && (typeof opts.workPath !== 'string' || !path.isAbsolute(opts.workPath))) throw bad(`${what}: workPath must be an absolute path`, 'workPath');
  for (const k of FLAGS) {
    const v = (opts as unknown as Record<string, unknown>)[k];
    if (v !== undefined && typeof v !== 'boolean') throw bad(`${what}: ${k} must be a boolean`, k);
  }
  const mode = opts.manageCgroupsMode;
  if (mode !== undefined && !(CGROUP_MODES as readonly string[]).includes(mode)) {
    throw bad(`${what}: manageCgroupsMode must be one of ${CGROUP_MODES.join(', ')}, not ${JSON.stringify(mode)}`, 'manageCgroupsMode');
  }
}

/** An image directory a dump may write: missing (then made) or empty; never one that holds something. */
function checkImageDir(dir: string): void {
  let entries: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw bad(`checkpoint: imagePath ${dir} is not a directory`, 'imagePath');
    entries = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (entries.length > 0) throw bad(`checkpoint: imagePath ${dir} is not empty`, 'imagePath');
}

export async function checkpoint(core: EngineCore, sandboxId: string, opts: CheckpointOptions): Promise<CheckpointResult> {
  const rt = core.get(sandboxId);
  checkOptionKeys(opts, CHECKPOINT_KEYS, 'checkpoint options');
  if (opts === null || typeof opts !== 'object') throw bad('checkpoint: options with an imagePath are required', 'imagePath');
  checkCommon(opts, 'checkpoint');
  const request: CheckpointRequest = {
    imagePath: opts.imagePath,
    leaveRunning: opts.leaveRunning === true,
    tcpEstablished: opts.tcpEstablished === true,
    extUnixSk: opts.extUnixSk === true,
    shellJob: opts.shellJob === true,
    fileLocks: opts.fileLocks === true,
    ...(opts.workPath !== undefined ? { workPath: opts.workPath } : {}),
    ...(opts.manageCgroupsMode !== undefined ? { manageCgroupsMode: opts.manageCgroupsMode } : {}),
  };
  core.requireCan(rt, { type: 'checkpoint', request }, 'checkpoint');
  // Only the root container's tree is dumped: a pod's other containers would be lost.
  const others = Object.keys(rt.actor.getSnapshot().context.containers).filter((c) => c !== rt.actor.getSnapshot().context.rootContainerId);
  if (others.length > 0) {
    throw new PaddockError('ENOT_SUPPORTED', `checkpoint: sandbox ${sandboxId} holds containers besides its root (${others.join(', ')}); only a sandbox of one container can be checkpointed`, { sandboxId, verb: 'checkpoint' });
  }
  const initHostPid = rt.actor.getSnapshot().context.initHostPid;
  if (initHostPid !== undefined && !sameNamespace(initHostPid, process.pid, 'user')) throw userNamespaceRefusal(sandboxId);
  const criu = findCriu(core.options.criuPath);
  if (opts.preDump === true && !hasDirtyTracking(criu)) {
    throw new PaddockError('ENOT_SUPPORTED', 'checkpoint: preDump needs dirty-page tracking, which this kernel lacks (criu check --feature mem_dirty_track)', { sandboxId, verb: 'checkpoint', field: 'preDump' });
  }
  if (opts.preDump === true) {
    throw new PaddockError('ENOT_SUPPORTED', 'checkpoint: preDump is not implemented by paddock yet', { sandboxId, verb: 'checkpoint', field: 'preDump' });
  }
  checkImageDir(opts.imagePath);
  fs.mkdirSync(opts.imagePath, { recursive: true, mode: 0o700 });
  if (opts.workPath !== undefined) fs.mkdirSync(opts.workPath, { recursive: true, mode: 0o700 });

  rt.actor.send({ type: 'checkpoint', request });
  // criu bounds its own run; this only guards a wedged actor.
  const snap = await waitFor(rt.actor, (s) => s.value !== 'checkpointing', { timeout: CRIU_TIMEOUT_MS + 30_000 });
  core.persistNow(rt);
  // A failed dump leaves an error, whether the sandbox runs on or ended meanwhile.
  if (snap.context.error) throw restoreError(snap.context.error, sandboxId, 'ECONTROL');
  if (snap.value !== 'running' && snap.value !== 'stopped') {
    throw new PaddockError('EINVALID_STATE', `checkpoint of sandbox ${sandboxId} ended in ${String(snap.value)}`, { sandboxId, verb: 'checkpoint', state: String(snap.value) });
  }
  return { imagePath: opts.imagePath, state: snap.value };
}

/**
 * Checks a restore's arguments before createSandbox makes anything: the options, the
 * checkpoint's record and a working criu.
 */
export function checkRestore(core: EngineCore, opts: RestoreOptions): void {
  checkOptionKeys(opts, RESTORE_KEYS, 'restore options');
  if (opts === null || typeof opts !== 'object') throw bad('restore: options with an imagePath are required', 'imagePath');
  checkCommon(opts, 'restore');
  if (opts.stdio !== undefined && opts.stdio !== 'pipe' && opts.stdio !== 'inherit') throw bad(`restore: stdio must be 'pipe' or 'inherit', not ${JSON.stringify(opts.stdio)}`, 'stdio');
  const record = readRecord(opts.imagePath);
  if (record.userns) throw userNamespaceRefusal(record.sandboxId);
  findCriu(core.options.criuPath);
}

/**
 * After createSandbox made the sandbox (init up, root container planned): the machine's
 * `restore`. A failure destroys the sandbox again, through `destroy`.
 */
export async function restoreInto(core: EngineCore, handle: SandboxHandle, opts: RestoreOptions, destroy: (id: string) => Promise<void>): Promise<SandboxHandle> {
  const rt = core.get(handle.id);
  setRestoreOptions(rt, opts);
  try {
    core.requireCan(rt, { type: 'restore', imagePath: opts.imagePath }, 'restore');
    rt.actor.send({ type: 'restore', imagePath: opts.imagePath });
    const snap = await waitFor(rt.actor, (s) => s.value !== 'restoring', { timeout: CRIU_TIMEOUT_MS + 30_000 });
    if (snap.value !== 'running') {
      throw snap.context.error
        ? restoreError(snap.context.error, handle.id, 'ECONTROL')
        : new PaddockError('EINVALID_STATE', `restore of sandbox ${handle.id} ended in ${String(snap.value)}`, { sandboxId: handle.id, verb: 'restore', state: String(snap.value) });
    }
    // The root container runs once it has taken the restored pids.
    const rootId = snap.context.rootContainerId as string;
    await waitFor(core.containerActor(rt, rootId), (s) => s.value !== 'created', { timeout: 5_000 });
    core.persistNow(rt);
    return handle;
  } catch (e) {
    await destroy(handle.id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed restore'));
    throw e;
  }
}
