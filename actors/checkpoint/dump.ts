/**
 * The `checkpointSandbox` effect: CRIU dumps the root container's process tree.
 *
 * Not paddock-init's tree: CRIU cannot dump a nested pid namespace ("Can't dump nested
 * pid namespace"), and every container has one below init's. So the tree is the
 * container's, as runc dumps its container's init, with criu in init's pid namespace.
 * The namespaces the container shares with init (net, ipc, uts, user) are in the images
 * too; restore.ts joins the new sandbox's instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AnyActorRef } from 'xstate';
import { PaddockError } from '../../base/errors';
import type { CheckpointRequest } from '../../machines/types';
import type { EngineCore } from '../engine/core';
import { findCriu, runCriu } from './criu';
import { RECORD_VERSION, writeRecord } from './image';
import { externalMounts, outsideFiles, parseMountinfo, pidInInit, processTree, sameNamespace, type OutsideFile } from './proc-view';

/** criu's own bound; the machine's checkpointTimeout is above it. */
export const CRIU_TIMEOUT_MS = 90_000;

export async function dumpSandbox(core: EngineCore, sandboxId: string, req: CheckpointRequest): Promise<void> {
  const rt = core.mustRuntime(sandboxId);
  const snap = rt.actor.getSnapshot();
  const rootId = snap.context.rootContainerId as string;
  const initHostPid = snap.context.initHostPid as number;
  const root = (snap.children[rootId] as AnyActorRef | undefined)?.getSnapshot() as { context: { hostPid?: number } } | undefined;
  const hostPid = root?.context.hostPid;
  const fail = (msg: string, step = 'dump') => new PaddockError('ECRIU_FAILED', msg, { sandboxId, containerId: rootId, step });
  if (hostPid === undefined) throw fail(`container ${rootId} has no process to checkpoint`);
  if (sameNamespace(hostPid, initHostPid, 'pid') || sameNamespace(hostPid, initHostPid, 'mnt')) {
    throw new PaddockError('ENOT_SUPPORTED', `container ${rootId} shares paddock-init's pid or mount namespace: only a container with its own can be checkpointed`, { sandboxId, containerId: rootId, verb: 'checkpoint' });
  }
  // See docs/decisions/0040: the restore could not make the tree's user namespace
  // below init's pid namespace, so a dump that kills the workload would be for nothing.
  if (!sameNamespace(initHostPid, process.pid, 'user')) throw userNamespaceRefusal(sandboxId);
  const nsPid = pidInInit(hostPid, initHostPid);
  if (nsPid === undefined) throw fail(`cannot find container ${rootId}'s pid in paddock-init's pid namespace`);
  const criu = findCriu(core.options.criuPath);

  const mounts = parseMountinfo(fs.readFileSync(`/proc/${hostPid}/mountinfo`, 'utf8'));
  const ext = externalMounts(mounts, parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')));
  const mountIds = new Set(mounts.map((m) => m.id));
  const stdio = outsideFiles(hostPid, mountIds, [0, 1, 2]);
  // Every other process of the tree, and the root's other fds: files outside the
  // container are external too (CRIU cannot look them up), but only stdio is given back.
  const others = new Map<string, OutsideFile>();
  for (const pid of processTree(hostPid)) {
    for (const f of outsideFiles(pid, mountIds)) if (f.kind === 'file' && !stdio.some((s) => s.key === f.key)) others.set(f.key, f);
  }
  const files = [...stdio.filter((s) => s.kind === 'file'), ...others.values()];

  // Read now: without leaveRunning, init is gone once the dump is done.
  const userns = !sameNamespace(initHostPid, process.pid, 'user');
  const work = req.workPath ?? req.imagePath;
  const args = [
    'dump',
    '--tree', String(nsPid),
    '--images-dir', req.imagePath,
    '--work-dir', work,
    '--log-file', 'dump.log',
    // An optional argument to criu: only the = form takes it.
    `--manage-cgroups=${req.manageCgroupsMode ?? 'soft'}`,
    // Never CRIU's own kill: the root's death makes init kill its whole pid namespace,
    // criu included, maybe before criu is done. Left stopped, the tree is killed below.
    req.leaveRunning ? '--leave-running' : '--leave-stopped',
    ...(req.tcpEstablished ? ['--tcp-established'] : []),
    ...(req.extUnixSk ? ['--ext-unix-sk'] : []),
    ...(req.shellJob ? ['--shell-job'] : []),
    ...(req.fileLocks ? ['--file-locks'] : []),
    ...ext.flatMap((m) => ['--external', `mnt[${m.key}]:${m.key}`]),
    ...files.flatMap((f) => ['--external', f.key]),
  ];
  rt.log.debug({ step: 'checkpoint', args }, 'criu dump');
  try {
    await runCriu({ criu, args, initHostPid, logFile: path.join(work, 'dump.log'), timeoutMs: CRIU_TIMEOUT_MS, step: 'dump', sandboxId });
  } catch (e) {
    // criu resumes the tree when it fails, but not when it was killed (the timeout).
    if (!req.leaveRunning) resumeTree(hostPid);
    throw e;
  }
  writeRecord(req.imagePath, {
    version: RECORD_VERSION,
    sandboxId,
    containerId: rootId,
    createdAt: new Date().toISOString(),
    rootfs: rt.bundle.rootfs,
    mounts: ext,
    stdio,
    otherFiles: [...others.values()],
    userns,
    rootReadonly: mounts.find((m) => m.mountpoint === '/')?.options.split(',').includes('ro') === true,
  });
  // The images are whole: now the tree goes. Its root is stopped, so its pid cannot have
  // been reused; init reaps it and ends the sandbox (closing the control channel, so
  // not a SIGNAL request, whose reply might never come).
  if (!req.leaveRunning) process.kill(hostPid, 'SIGKILL');
}

export function userNamespaceRefusal(sandboxId: string): PaddockError {
  return new PaddockError(
    'ENOT_SUPPORTED',
    `sandbox ${sandboxId} has a user namespace: criu would have to make it again below paddock-init's pid namespace, which the kernel refuses (EINVAL), so it cannot be checkpointed and restored`,
    { sandboxId, verb: 'checkpoint' },
  );
}

function resumeTree(hostPid: number): void {
  for (const pid of processTree(hostPid)) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
}
