/**
 * The checkpoint room (docs/decisions/0040): CRIU driven from the supervisor. This
 * module finds a criu that works here and runs it, bounded; proc-view.ts reads what a
 * dump must be told, image.ts keeps paddock's record beside CRIU's images, dump.ts and
 * restore.ts are the sandbox machine's two effects, verbs.ts the engine's two commands.
 * It may import base/, machines/, protocols/ and the other actors rooms.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PaddockError } from '../../base/errors';

export const SETUP_SCRIPT = 'scripts/setup-criu.sh';
const DEFAULT_PREFIX = '/var/lib/paddock/criu';

/**
 * criu and its helpers get PATH and nothing else of the supervisor's environment: it
 * needs nothing more, and a host's large environment (seen: a test run's 300 KB
 * variable) would fail every spawn with E2BIG.
 */
function criuEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
}

/** criu binaries that passed `criu check` (~50 ms): a pass does not change while the engine runs. */
const passed = new Set<string>();

/**
 * Whether `bin` passes `criu check`; else why not (its last line). A failure is tried
 * again twice and never remembered: `criu check` was seen failing now and then on this
 * host, and a passing criu must not be refused for the engine's whole life.
 */
function checkCriu(bin: string): string | undefined {
  if (passed.has(bin)) return undefined;
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    return `${bin}: not an executable`;
  }
  let why = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = spawnSync(bin, ['check'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, env: criuEnv() });
    if (r.status === 0) {
      passed.add(bin);
      return undefined;
    }
    const lines = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').filter((l) => /Error/.test(l));
    why = `${bin}: ${lines.at(-1) ?? (r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`)}`;
  }
  return why;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const f = path.join(dir, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The criu to use: `explicit` (EngineOptions.criuPath), else $PADDOCK_CRIU, else paddock's
 * own build, else the system's; the first candidate that passes `criu check`. An explicit
 * path is the only candidate: a caller who names one must not get another.
 */
export function findCriu(explicit?: string): string {
  const env = process.env.PADDOCK_CRIU;
  const candidates =
    explicit !== undefined
      ? [explicit]
      : env
        ? [env]
        : [path.join(process.env.PADDOCK_CRIU_PREFIX ?? DEFAULT_PREFIX, 'sbin', 'criu'), onPath('criu')].filter((c): c is string => c !== undefined);
  const why: string[] = [];
  for (const c of candidates) {
    const no = checkCriu(c);
    if (no === undefined) return c;
    why.push(no);
  }
  throw new PaddockError(
    'ECRIU_UNAVAILABLE',
    `no criu passes 'criu check' (${why.join('; ') || 'none found'}); run ${SETUP_SCRIPT}`,
    { step: 'criu check', ...(candidates[0] !== undefined ? { path: candidates[0] } : {}) },
  );
}

/** Whether the kernel tracks dirty pages (`criu check --feature mem_dirty_track`): pre-dump needs it. */
export function hasDirtyTracking(criu: string): boolean {
  return spawnSync(criu, ['check', '--feature', 'mem_dirty_track'], { stdio: 'ignore', timeout: 30_000, env: criuEnv() }).status === 0;
}

export interface CriuRun {
  readonly criu: string;
  /** criu's arguments, the action first. */
  readonly args: readonly string[];
  /** paddock-init's host pid: criu runs in init's pid namespace, with a /proc of it. */
  readonly initHostPid: number;
  /** criu's log, named in a failure. */
  readonly logFile: string;
  /** Fds criu inherits: index = fd number in criu (3 and up). */
  readonly fds?: readonly number[];
  /**
   * A directory made read-only in criu's own mount namespace before it starts (bound
   * onto itself, then remounted): a restore's `--root`, when the container's root was
   * read-only. criu's root mount is a bind of it, and a bind keeps the read-only flag.
   */
  readonly readonlyDir?: string;
  /** cgroup.procs files the runner writes its own pid to before criu starts (a restore into the sandbox's cgroup). */
  readonly cgroupProcs?: readonly string[];
  readonly timeoutMs: number;
  readonly step: 'dump' | 'restore';
  readonly sandboxId: string;
}

/**
 * Runs criu in paddock-init's pid namespace: a dump then sees the container's pids as
 * init does, and a restore's detached tree is reparented to init, its pid namespace's
 * reaper, when criu exits. criu reads /proc by its own pids, so it gets a mount
 * namespace of its own with a /proc of that pid namespace (unshare --mount-proc); the
 * host's mounts are otherwise the same. A first shell moves itself into the sandbox's
 * cgroups when asked, so everything after it is born there.
 */
export async function runCriu(run: CriuRun): Promise<void> {
  const ro = run.readonlyDir !== undefined ? ['/bin/sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && shift && exec "$@"', run.readonlyDir, '--'] : [];
  const inner = ['nsenter', `--pid=/proc/${run.initHostPid}/ns/pid`, '--', 'unshare', '--mount', '--propagation', 'private', '--mount-proc', '--', ...ro, run.criu, ...run.args];
  const procs = run.cgroupProcs ?? [];
  // $0 is the name; the cgroup files come before '--', the command after it.
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"';
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'ignore', 'pipe', ...(run.fds ?? [])];
  const child = spawn('/bin/sh', ['-c', script, 'paddock-criu', ...procs, '--', ...inner], { stdio, detached: true, env: criuEnv() });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 8192) stderr += b.toString();
  });
  const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // Its own process group: nsenter, unshare and criu go together.
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, run.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
  if (status.code === 0) return;
  if (status.timedOut) {
    throw new PaddockError('ETIMEOUT', `criu ${run.step} did not finish in ${run.timeoutMs} ms (log: ${run.logFile})`, { sandboxId: run.sandboxId, step: run.step, path: run.logFile });
  }
  if (status.code === 97) {
    throw new PaddockError('ECRIU_FAILED', `criu ${run.step}: could not enter the sandbox's cgroup: ${stderr.trim()}`, { sandboxId: run.sandboxId, step: run.step });
  }
  const lines = errorLines(run.logFile);
  const why = lines.length > 0 ? lines.join('; ') : stderr.trim() || `exit ${status.code ?? status.signal}`;
  throw new PaddockError('ECRIU_FAILED', `criu ${run.step} failed: ${why} (log: ${run.logFile})`, { sandboxId: run.sandboxId, step: run.step, path: run.logFile });
}

/**
 * The lines of a criu log that say why it failed. criu logs "Error (file:line): ..." and
 * also a few it survives (setting RLIMIT_NOFILE for itself in a user namespace), so
 * those are left out; at most the last five.
 */
export function errorLines(logFile: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => /\bError\b/.test(l) && !/RLIMIT_NOFILE/.test(l) && !/exited, status=/.test(l))
    .map((l) => l.replace(/^\([0-9.]+\)\s*/, '').trim())
    .slice(-5);
}
