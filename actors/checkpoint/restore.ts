/**
 * The `restoreSandbox` effect: CRIU restores a checkpoint as the root container of a
 * sandbox whose paddock-init is up and whose root container was planned, not started.
 *
 * criu runs in init's pid namespace (actors/checkpoint/criu.ts) and inside the
 * sandbox's cgroups, joins init's net, ipc and uts namespaces (and its user namespace
 * when the checkpoint had one), makes the container's pid and mount namespaces again on
 * the bundle's rootfs, and detaches: the restored tree's root is then init's child, and
 * ADOPT makes it the root container's process, reaped and recorded like any other.
 * Its stdin is the new sandbox's FIFO and its stdout/stderr the new sandbox's log files,
 * given to criu as the fds the dumped tree had outside the container.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PaddockError } from '../../base/errors';
import type { StartedProcess } from '../../machines/container.machine';
import type { RestoreOptions } from '../engine/api';
import type { EngineCore } from '../engine/core';
import type { Runtime } from '../sandbox/runtime';
import { findCriu, runCriu } from './criu';
import { CRIU_TIMEOUT_MS } from './dump';
import { readRecord } from './image';
import type { OutsideFile } from './proc-view';
import type { Fd } from '../../native/facade';

/** The options of restores in flight: the machine's input carries only the image path. */
const pending = new WeakMap<Runtime, RestoreOptions>();

export function setRestoreOptions(rt: Runtime, opts: RestoreOptions): void {
  pending.set(rt, opts);
}

/**
 * Opens what fd `s.fd` (0–2) of the restored root process gets, of the kind criu restores
 * it as: paddock's stdin FIFO or output pipe becomes the new sandbox's FIFO or log file;
 * any other file (a CLI caller's /dev/null or output file) is opened again by its path
 * when it is still there, else /dev/null. criu restores a file's offset, which a FIFO
 * refuses (ESPIPE): a file must not become a FIFO.
 */
function openStdio(rt: Runtime, containerId: string, s: OutsideFile): { fd: number; own: boolean } {
  // As runc's restore: the caller's own stdio (the CLI's, which conmon and shims hand it).
  if (rt.rootStdio === 'inherit') return { fd: s.fd, own: false };
  return { fd: openFor(rt, containerId, s), own: true };
}

function openFor(rt: Runtime, containerId: string, s: OutsideFile): number {
  const { O_RDWR, O_WRONLY, O_APPEND, O_NONBLOCK } = fs.constants;
  const ours = s.kind === 'pipe' || (s.path !== undefined && /\/(stdin\/[^/]+\.fifo|logs\/[^/]+\.std(out|err))$/.test(s.path));
  if (ours) {
    const file = s.fd === 0 ? rt.paths.fifo(containerId) : rt.paths.log(containerId, s.fd === 1 ? 'stdout' : 'stderr');
    // O_RDWR: a FIFO opened for reading alone would wait for a writer.
    if (fs.existsSync(file)) return fs.openSync(file, s.fd === 0 ? O_RDWR | O_NONBLOCK : O_WRONLY | O_APPEND);
  } else if (s.path !== undefined && fs.existsSync(s.path)) {
    return fs.openSync(s.path, s.fd === 0 ? 'r' : O_WRONLY | O_APPEND);
  } else if (s.fd > 0 && fs.existsSync(rt.paths.log(containerId, s.fd === 1 ? 'stdout' : 'stderr'))) {
    // A file that is gone (criu wants a regular file again): the new sandbox's log.
    return fs.openSync(rt.paths.log(containerId, s.fd === 1 ? 'stdout' : 'stderr'), O_WRONLY | O_APPEND);
  }
  return fs.openSync('/dev/null', s.fd === 0 ? 'r' : 'w');
}

export async function restoreIntoSandbox(core: EngineCore, sandboxId: string, containerId: string, imagePath: string): Promise<StartedProcess> {
  const rt = core.mustRuntime(sandboxId);
  const opts = pending.get(rt) ?? { imagePath };
  pending.delete(rt);
  const record = readRecord(imagePath);
  const criu = findCriu(core.options.criuPath);
  const initHostPid = rt.actor.getSnapshot().context.initHostPid as number;
  const work = opts.workPath ?? imagePath;
  const pidFile = path.join(work, `restore-${process.pid}.pid`);
  fs.rmSync(pidFile, { force: true });

  // criu gets them as fds 3, 4, ...: its --inherit-fd names each by the key the dump gave it.
  const fds: number[] = [];
  const opened: number[] = [];
  const outputs: number[] = [];
  const inherit: string[] = [];
  try {
    for (const s of record.stdio.filter((x) => x.fd <= 2)) {
      const { fd, own } = openStdio(rt, containerId, s);
      fds.push(fd);
      if (own) opened.push(fd);
      if (own && s.fd > 0) outputs.push(fd);
      inherit.push('--inherit-fd', `fd[${fds.length + 2}]:${s.key}`);
    }
    const ns = ['net', 'ipc', 'uts', ...(record.userns ? ['user'] : [])];
    const args = [
      'restore',
      '--images-dir', imagePath,
      '--work-dir', work,
      '--log-file', 'restore.log',
      '--restore-detached',
      // The file a stdio fd gets now (a log file is 0640) need not have the mode bits
      // the dumped one had; its type criu still checks.
      '--skip-file-rwx-check',
      '--pidfile', pidFile,
      '--root', rt.bundle.rootfs,
      `--manage-cgroups=${opts.manageCgroupsMode ?? 'ignore'}`,
      ...(opts.tcpEstablished ? ['--tcp-established'] : []),
      ...(opts.extUnixSk ? ['--ext-unix-sk'] : []),
      ...(opts.shellJob ? ['--shell-job'] : []),
      ...(opts.fileLocks ? ['--file-locks'] : []),
      ...ns.flatMap((n) => ['--join-ns', `${n}:/proc/1/ns/${n}`]),
      ...record.mounts.flatMap((m) => ['--external', `mnt[${m.key}]:${m.hostPath}`]),
      ...inherit,
    ];
    rt.log.debug({ step: 'restore', args }, 'criu restore');
    await runCriu({
      criu,
      args,
      initHostPid,
      logFile: path.join(work, 'restore.log'),
      fds,
      ...(record.rootReadonly ? { readonlyDir: rt.bundle.rootfs } : {}),
      ...(rt.cgroup ? { cgroupProcs: rt.cgroup.procsFiles() } : {}),
      timeoutMs: CRIU_TIMEOUT_MS,
      step: 'restore',
      sandboxId,
    });
  } finally {
    for (const fd of opened) fs.closeSync(fd);
  }
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  fs.rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 1) {
    throw new PaddockError('ECRIU_FAILED', `criu restore wrote no pid to ${pidFile}`, { sandboxId, containerId, step: 'restore' });
  }
  const reply = await core.control(rt).request({ type: 'ADOPT', cid: containerId, pid });
  const hostPid = reply.hostPid as number;
  if (outputs.length > 0) appendAgain(core, rt, hostPid, record.stdio.filter((s) => s.fd > 0 && s.fd <= 2).map((s) => s.fd));
  return { pid: reply.pid as number, hostPid };
}

/**
 * criu opens a file handed in for a dumped pipe again, with the pipe's flags: the
 * restored process writes its log file from offset 0, and its next dump records the
 * file's size, which a restore must then match. O_APPEND on the description it holds
 * (reached through pidfd_getfd) makes it append again, and dump as a log file.
 */
function appendAgain(core: EngineCore, rt: Runtime, hostPid: number, fds: readonly number[]): void {
  let pidfd: Fd | undefined;
  try {
    pidfd = core.native.pidfdOpen(hostPid);
    for (const n of fds) {
      const dup = core.native.pidfdGetfd(pidfd, n);
      try {
        core.native.fdSetAppend(dup);
      } finally {
        core.native.closeFd(dup);
      }
    }
  } catch (e) {
    rt.log.warn({ err: e, step: 'restore' }, 'could not set O_APPEND on the restored output');
  } finally {
    if (pidfd !== undefined) core.native.closeFd(pidfd);
  }
}
