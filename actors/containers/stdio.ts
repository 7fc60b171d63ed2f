import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StdioHandles } from '../engine/api';
import { containerPlan } from './plan';
import type { EngineCore } from '../engine/core';
import { PaddockError } from '../../base/errors';
import { removeFile } from '../../base/remove-tree';
import type { StdioMode } from '../sandbox/state-store';
import { closedWritable, openStdinFifo, tailFile } from './stdio-files';
import type { ContainerRuntime, Runtime } from '../sandbox/runtime';

/*
 * The stdio of containers and exec'd processes (docs/decisions/0002): the mode asked
 * for, the log files and stdin FIFO made for it, and their removal.
 */

/** Default cap of a container output file (decision 0031): 4 MiB, twice per stream with its rotated part. */
export const DEFAULT_LOG_SIZE_MAX = 4 << 20;
/** Below this, the marker line would take a visible part of every file. */
export const MIN_LOG_SIZE_MAX = 4096;

/** CreateSandboxOptions.logSizeMax (else the engine's, else the default); 0: no cap. */
export function checkLogSizeMax(value: unknown, engineDefault: unknown): number {
  for (const [v, field] of [[value, 'logSizeMax'], [engineDefault, 'EngineOptions.logSizeMax']] as const) {
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || (v !== 0 && v < MIN_LOG_SIZE_MAX)) {
      throw new PaddockError('EINVALID_ARGUMENT', `${field} must be 0 (no cap) or a whole number of bytes >= ${MIN_LOG_SIZE_MAX}, not ${JSON.stringify(v)}`);
    }
    return v;
  }
  return DEFAULT_LOG_SIZE_MAX;
}

export function checkStdio(mode: unknown): StdioMode {
  if (mode === undefined) return 'pipe';
  if (mode === 'pipe' || mode === 'inherit' || mode === 'ignore') return mode;
  throw new PaddockError('EINVALID_ARGUMENT', `stdio must be 'pipe', 'inherit' or 'ignore', not ${JSON.stringify(mode)}`);
}

/**
 * Resolves stdio for a container or exec'd process: log files (created here so a
 * tail can watch them at once, owned by the sandbox's root), an optional stdin FIFO,
 * and the plan fields paddock-init needs.
 */
export function prepareStdio(core: EngineCore, rt: Runtime, name: string, containerId: string | undefined, mode: StdioMode) {
  const plan: { stdinPath?: string; stdoutPath?: string; stderrPath?: string; stdioInherit?: number } = {};
  let stdinFd: number | undefined;
  let stdin: StdioHandles['stdin'] | undefined;
  if (mode === 'inherit') plan.stdioInherit = 7;
  if (mode === 'pipe') {
    for (const s of ['stdout', 'stderr'] as const) {
      const file = rt.paths.log(name, s);
      fs.closeSync(fs.openSync(file, 'a', 0o640));
      fs.chownSync(file, rt.owner.uid, rt.owner.gid);
      plan[s === 'stdout' ? 'stdoutPath' : 'stderrPath'] = file;
    }
    const fifo = openStdinFifo(core.native, rt.paths.fifo(name), rt.owner.uid, rt.owner.gid);
    stdinFd = fifo.fd;
    stdin = fifo.stream;
    plan.stdinPath = rt.paths.fifo(name);
  }
  const streams = (done: Promise<unknown>): StdioHandles | undefined =>
    mode === 'pipe'
      ? {
          stdin: stdin ?? closedWritable(),
          stdout: tailFile(rt.paths.log(name, 'stdout'), { follow: true, done }),
          stderr: tailFile(rt.paths.log(name, 'stderr'), { follow: true, done }),
        }
      : undefined;
  if (containerId !== undefined) {
    const c = rt.containers.get(containerId) as ContainerRuntime;
    c.plan = containerPlan(c, plan, rt);
    c.stdinFd = stdinFd;
    c.streams = streams(c.done.promise);
  }
  return {
    plan,
    stdinFd,
    streams,
    close: () => {
      if (stdin) stdin.destroy();
    },
  };
}

export function closeContainerStdio(c: ContainerRuntime | undefined): void {
  if (!c) return;
  c.streams?.stdin.destroy();
  c.done.resolve();
}

/** The stdin FIFOs and log files of a destroyed container and its exec'd processes, so its id can be used again. */
export function removeContainerFiles(rt: Runtime, containerId: string): void {
  removeFile(rt.paths.startRequest(containerId));
  for (const dir of [rt.paths.stdinDir, rt.paths.logsDir]) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (n.startsWith(`${containerId}.`) && /^(exec-\d+\.)?(stdout|stderr|fifo)(\.1)?$/.test(n.slice(containerId.length + 1))) {
        removeFile(path.join(dir, n));
      }
    }
  }
}
