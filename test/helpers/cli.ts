import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The bundled CLI, exactly what `paddock --no-daemon` runs (built by scripts/setup.sh). */
export const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'paddock.js');
/** The native client (docs/decisions/0044), which hands each call to the root's paddockd. */
export const CLIENT = path.resolve(__dirname, '..', '..', 'native', 'build', 'paddock');

/**
 * Which CLI the tests drive: `PADDOCK_TEST_CLI=daemon` the native client and its
 * resident paddockd, otherwise (`node`, the default) the Node CLI in-process. CI runs
 * the CLI tests once in each mode (.ci/run).
 */
export const CLI_MODE: 'daemon' | 'node' = process.env.PADDOCK_TEST_CLI === 'daemon' ? 'daemon' : 'node';

/**
 * How long a test's paddockd stays once it holds nothing: short, so that one whose
 * test deleted everything is gone soon after; the hook below stops the rest.
 */
const TEST_IDLE_MS = '500';

/** The program and arguments of one CLI call in the mode of this run. */
export function cliCommand(args: readonly string[]): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  if (CLI_MODE === 'daemon') return { file: CLIENT, args: [...args], env: { ...process.env, PADDOCK_DAEMON_IDLE_MS: TEST_IDLE_MS } };
  return { file: process.execPath, args: [CLI, ...args], env: process.env };
}

/** What paddockd keeps in the root it serves (bin/resident/protocol.ts). */
export const DAEMON_FILES: ReadonlySet<string> = new Set(['paddockd.sock', 'paddockd.lock', 'paddockd.log']);

/** The entries of a --root that belong to sandboxes: everything but paddockd's own files. */
export function sandboxEntries(root: string): string[] {
  return fs.existsSync(root) ? fs.readdirSync(root).filter((e) => !DAEMON_FILES.has(e)) : [];
}


/** The paddockd serving `root` now (from its lock file), or undefined. */
export function daemonPid(root: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(root, 'paddockd.lock'), 'utf8').split(' ')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is still a paddockd of `root` (not a process that took its pid since). */
function isDaemonOf(pid: number, root: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('paddockd.js')) && argv.includes(root);
  } catch {
    return false;
  }
}

/**
 * Stops a paddockd (SIGTERM: it drains and closes its engine; sandboxes keep running)
 * and waits for it to go, within a bound. By pid, since a test may have removed its root.
 */
export function stopDaemon(root: string, pid: number | undefined = daemonPid(root), timeoutMs = 10_000): void {
  if (pid === undefined || !isDaemonOf(pid, root)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isDaemonOf(pid, root)) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  throw new Error(`paddockd ${pid} of ${root} did not stop within ${timeoutMs} ms`);
}

/** Every paddockd a call of this test file reached, by root. */
const daemons = new Map<string, Set<number>>();

function noteDaemon(root: string): void {
  const pid = daemonPid(root);
  if (pid === undefined) return;
  const set = daemons.get(root) ?? new Set<number>();
  set.add(pid);
  daemons.set(root, set);
}

// A test file's paddockds must not outlive it.
if (CLI_MODE === 'daemon' && typeof afterAll === 'function') {
  afterAll(() => {
    for (const [root, pids] of daemons) for (const pid of pids) stopDaemon(root, pid);
    daemons.clear();
  });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one CLI call with `--root`. Output goes through files, not pipes: a detached
 * sandbox inherits the caller's stdio (as with runc), so a pipe would only see EOF when
 * the container exits.
 */
export function runCli(root: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): CliResult {
  const io = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cli-io-'));
  const out = path.join(io, 'out');
  const err = path.join(io, 'err');
  const fds = [fs.openSync(out, 'w+'), fs.openSync(err, 'w+')] as const;
  try {
    const c = cliCommand(['--root', root, ...args]);
    const r = spawnSync(c.file, c.args, { stdio: ['ignore', fds[0], fds[1]], timeout: 30_000, env: { ...c.env, ...opts.env } });
    if (CLI_MODE === 'daemon') noteDaemon(root);
    return { code: r.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
  } finally {
    fs.closeSync(fds[0]);
    fs.closeSync(fds[1]);
    fs.rmSync(io, { recursive: true, force: true });
  }
}
