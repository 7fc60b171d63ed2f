import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OciHooks } from '../../specs/oci';
import { PaddockError } from '../../base/errors';
import { removeFile } from '../../base/remove-tree';
import { readText, writeFileAtomic, type ReplaceFile } from '../../base/files';

/**
 * The state directory: one folder per sandbox holding its persisted machine
 * snapshot, its lock, init's sockets, exits.log and the stdio log files. The folder
 * is the supervisor's (0700) once init is ready; logs/ and stdin/ stay the sandbox
 * root's, and init reaches them through fds it opened at startup (decision 0030).
 *
 *   <stateDir>/<sandboxId>/state.json     persisted sandbox snapshot (atomic writes)
 *   <stateDir>/<sandboxId>/lock           owner pid + start time (O_EXCL)
 *   <stateDir>/<sandboxId>/sandbox.plan   SANDBOX_PLAN message read by paddock-init
 *   <stateDir>/<sandboxId>/init.pid       host pid and start time of paddock-init
 *   <stateDir>/<sandboxId>/control.sock   nanomsg REP of paddock-init (0600, the supervisor's; decision 0030)
 *   <stateDir>/<sandboxId>/events.sock    nanomsg PUB of paddock-init (0600, the supervisor's)
 *   <stateDir>/<sandboxId>/init.log       paddock-init's own diagnostics, capped (decision 0031)
 *   <stateDir>/<sandboxId>/exits.log      EV_EXITED records, written before they are published
 *   <stateDir>/<sandboxId>/logs/          <cid>.stdout, <cid>.stderr, <cid>.exec-<n>.stdout, ...
 *                                         and <file>.1, the part before the last rotation
 *   <stateDir>/<sandboxId>/stdin/         FIFOs for stdin: 'pipe', and pty-<suffix> console endpoints
 *   <stateDir>/<sandboxId>/<cid>.start    START_CONTAINER of a prepared container, as encoded
 *                                         when it was prepared (actors/containers/start.ts)
 *   <stateDir>/<sandboxId>/bundle/      config.json the engine made: a template's, or a bundle
 *                                         given a host id range (userns: 'auto', decision 0028)
 *   <stateDir>/.userns.json, .userns.lock  the id pool's ranges and their holders (actors/sandbox/id-pool.ts)
 *   <stateDir>/.containers/<containerId>  the CLI's index: sandbox id of a container added
 *                                         to a sandbox (bin/container-index.ts); not a
 *                                         valid sandbox id, so never taken for a sandbox
 */

export const STATE_VERSION = 1;

export interface PersistedSandbox {
  readonly version: number;
  readonly sandboxId: string;
  readonly savedAt: string;
  /** Host uid/gid that own the sandbox dir (the sandbox's root when user-namespaced). */
  readonly ownerUid: number;
  readonly ownerGid: number;
  /** Per container: bundle and stdio choice, so exec and logs work after a reattach. */
  readonly containers: Record<string, { bundleDir: string; stdio: StdioMode; noPivot?: boolean }>;
  readonly execCounter: number;
  /** When the sandbox was created (OCI state and `list` show it). */
  readonly createdAt?: string;
  /** OCI hooks of the root container, so a later process (`paddock delete`) runs poststop even if the bundle is gone. */
  readonly hooks?: OciHooks;
  /** Cap of container output files (decision 0031), so a restart by a later supervisor keeps it. */
  readonly logSizeMax?: number;
  /** Liveness probe settings, so a reattaching supervisor keeps probing. */
  readonly health?: { intervalMs: number; timeoutMs: number; failureThreshold: number };
  /** XState persisted snapshot of the sandbox machine (plain JSON). */
  readonly snapshot: unknown;
}

export type StdioMode = 'pipe' | 'inherit' | 'ignore';

/**
 * The lock of a root's resident supervisor (`<root>/paddockd.lock`, decision 0044):
 * "pid starttime" of the paddockd serving the root. Named here so that an engine that
 * meets a sandbox paddockd owns can say so.
 */
export const RESIDENT_LOCK_NAME = 'paddockd.lock';

export class SandboxPaths {
  constructor(readonly stateDir: string, readonly sandboxId: string) {}
  get dir(): string {
    return path.join(this.stateDir, this.sandboxId);
  }
  get stateFile(): string {
    return path.join(this.dir, 'state.json');
  }
  get lockFile(): string {
    return path.join(this.dir, 'lock');
  }
  /** Host pid and start time of paddock-init, as runc's --pid-file (plus the start time). */
  get pidFile(): string {
    return path.join(this.dir, 'init.pid');
  }
  /** Where the sandbox's cgroup is and which directories paddock made for it (docs/decisions/0018). */
  get cgroupFile(): string {
    return path.join(this.dir, 'cgroup.json');
  }
  get planFile(): string {
    return path.join(this.dir, 'sandbox.plan');
  }
  get controlSock(): string {
    return path.join(this.dir, 'control.sock');
  }
  get eventsSock(): string {
    return path.join(this.dir, 'events.sock');
  }
  get exitsLog(): string {
    return path.join(this.dir, 'exits.log');
  }
  /** Bytes of exits.log whose exits were reported (decision 0017): a reattach reports only what follows. */
  get exitsCursor(): string {
    return path.join(this.dir, 'exits.cursor');
  }
  get logsDir(): string {
    return path.join(this.dir, 'logs');
  }
  get stdinDir(): string {
    return path.join(this.dir, 'stdin');
  }
  log(name: string, stream: 'stdout' | 'stderr'): string {
    return path.join(this.logsDir, `${name}.${stream}`);
  }
  fifo(name: string): string {
    return path.join(this.stdinDir, `${name}.fifo`);
  }
  startRequest(containerId: string): string {
    return path.join(this.dir, `${containerId}.start`);
  }
}

/**
 * The fields of /proc/<pid>/stat after the command name (field 3, the state, first),
 * or undefined if the process is gone — or a zombie: an init whose parent died is
 * reparented to a PID 1 that may never reap it, and it must not count as running.
 */
function liveStatFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] === 'Z' || rest[0] === 'X' ? undefined : rest;
  } catch {
    return undefined;
  }
}

/** Start time of a live process in clock ticks since boot (field 22), or undefined. */
export function processStartTime(pid: number): number | undefined {
  const v = Number(liveStatFields(pid)?.[19]);
  return Number.isFinite(v) ? v : undefined;
}

/** Parent pid of a live process (field 4), or undefined. */
export function processParent(pid: number): number | undefined {
  const v = Number(liveStatFields(pid)?.[1]);
  return Number.isFinite(v) ? v : undefined;
}


/**
 * Ownership of a sandbox by one engine process. The lock file holds the owner's pid
 * and start time; a lock whose owner is gone (or whose pid was reused) is stale and
 * taken over — that is how a restarted supervisor reattaches.
 *
 * Preconditions: the sandbox dir exists.
 */
export function acquireLockLocked(paths: SandboxPaths): void {
  const me = `${process.pid} ${processStartTime(process.pid) ?? 0}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(paths.lockFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      fs.writeSync(fd, me);
      fs.closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const [pidText, startText] = (readText(paths.lockFile) ?? '').trim().split(' ');
      const pid = Number(pidText);
      if (pid === process.pid) return;
      const alive = Number.isInteger(pid) && pid > 0 && processStartTime(pid) === Number(startText);
      if (alive) {
        const resident = (readText(path.join(paths.stateDir, RESIDENT_LOCK_NAME)) ?? '').split(' ')[0] === pidText;
        const owner = resident ? `process ${pid}, the paddockd serving ${paths.stateDir}: drive it with the paddock CLI, or stop that paddockd (SIGTERM) first` : `process ${pid}`;
        throw new PaddockError('ELOCKED', `sandbox ${paths.sandboxId} is owned by ${owner}`, {
          sandboxId: paths.sandboxId,
          path: paths.lockFile,
        });
      }
      removeFile(paths.lockFile);
    }
  }
  throw new PaddockError('ELOCKED', `cannot take the lock of sandbox ${paths.sandboxId}`, { sandboxId: paths.sandboxId });
}

/**
 * acquireLockLocked, waiting up to `timeoutMs` for another live owner to let go —
 * how concurrent one-shot callers (CLI invocations) on one sandbox are serialised.
 */
export async function acquireLock(paths: SandboxPaths, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let wait = 2;
  for (;;) {
    try {
      acquireLockLocked(paths);
      return;
    } catch (e) {
      if ((e as PaddockError).code !== 'ELOCKED' || Date.now() >= deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 50);
  }
}

export function releaseLock(paths: SandboxPaths): void {
  try {
    const [pidText] = (readText(paths.lockFile) ?? '').trim().split(' ');
    if (Number(pidText) === process.pid) removeFile(paths.lockFile);
  } catch {
    // Already gone with the sandbox dir.
  }
}


export function saveSandboxLocked(paths: SandboxPaths, state: PersistedSandbox, replace?: ReplaceFile): void {
  writeFileAtomic(paths.stateFile, JSON.stringify(state), 0o600, false, replace);
}

export function loadSandbox(paths: SandboxPaths): PersistedSandbox | undefined {
  let text: string;
  try {
    text = fs.readFileSync(paths.stateFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as PersistedSandbox;
    if (parsed.version !== STATE_VERSION || parsed.sandboxId !== paths.sandboxId) throw new Error('version or id mismatch');
    return parsed;
  } catch (e) {
    throw new PaddockError('ESTATE_CORRUPT', `state of sandbox ${paths.sandboxId} cannot be read: ${(e as Error).message}`, {
      sandboxId: paths.sandboxId,
      path: paths.stateFile,
    });
  }
}

/** Sandbox ids that have a folder in the state dir. */
export function listSandboxIds(stateDir: string): string[] {
  try {
    return fs
      .readdirSync(stateDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}
