import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../actors/engine/api';

/** What every command gets: runc's global flags, resolved, and a lazily made engine. */
export interface CliContext {
  readonly root: string;
  readonly logFile?: string;
  readonly logFormat: 'text' | 'json';
  readonly debug: boolean;
  /** The caller's stdio, directory and environment: this process's, or a forwarded call's in paddockd. */
  readonly io: CliIo;
  /**
   * The engine, made on first use. `readOnly`: sandboxes are attached without their
   * control and event channels (EngineOptions.attachChannels), for commands that only
   * report what they find; the first call decides for the whole process.
   */
  engine(opts?: { readOnly?: boolean }): Promise<Engine>;
  /** Set when the call runs in paddockd for a client (bin/resident/), not in the caller's process. */
  readonly resident?: ResidentCall;
  close(): Promise<void>;
}

/**
 * What a command may use of its caller. In-process it is this process's own; in
 * paddockd (bin/resident/) it is the client's fds, cwd and environment, since one
 * process serves many callers at once.
 */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean; unpipe(): unknown; destroy(): unknown };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** stdin as an fd, for a whole read (`update -r -`). */
  readonly stdinFd: number;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

/** What paddockd's client does for a call that needs a process of the caller's own. */
export interface ResidentCall {
  /**
   * Starts the client program again as the caller's child with these arguments (the
   * relay of `exec --detach --pid-file`, which conmon waits for) and returns its pid.
   */
  spawnSelf(argv: readonly string[]): Promise<number>;
  /** Settles when the client has gone (its connection closed): the end of a call that serves until its caller stops. */
  readonly gone: Promise<void>;
  /** The client's pid (SO_PEERCRED): the parent of a paddock-init it launched for this call. */
  readonly callerPid: number;
}

/**
 * Thrown in paddockd by a call only the caller's own process can serve (it relays its
 * terminal): the client runs it in-process. `sandboxId`: a sandbox paddockd holds that
 * the call works on, which paddockd lets go of first, so the call can take its lock.
 */
export class InProcessOnly extends Error {
  readonly inProcessOnly = true;
  constructor(message: string, readonly sandboxId?: string) {
    super(message);
  }
}

export function processIo(): CliIo {
  return { stdin: process.stdin, stdinFd: 0, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env };
}

/** A path argument, against the caller's directory. */
export function resolvePath(ctx: { io: Pick<CliIo, 'cwd'> }, p: string): string {
  return path.resolve(ctx.io.cwd, p);
}

/** A verb's implementation (bin/commands/*.ts `run`): its exit status. */
export type Command = (ctx: CliContext, argv: string[]) => Promise<number>;

export const DEFAULT_ROOT = '/run/paddock';

/**
 * Compiled seccomp filters are kept next to the built CLI (dist/cli/seccomp.cache), as
 * its V8 code caches are, and for the same reason: every call is a new process. Not
 * when the CLI runs from its sources (tests of bin/), which must not write there.
 * scripts/bundle-cli.js empties it with each build.
 */
const SECCOMP_CACHE = __dirname.endsWith(`${path.sep}dist${path.sep}cli`) ? path.join(__dirname, 'seccomp.cache') : undefined;

export function makeContext(
  globals: { root?: string; log?: string; logFormat?: string; debug?: boolean; systemdCgroup?: boolean },
  io: CliIo = processIo(),
): CliContext {
  let engine: Engine | undefined;
  // PADDOCK_ROOT: for callers that cannot pass --root on every call (podman's cleanup
  // process, started by conmon, does not forward --runtime-flag).
  const root = rootOf(globals, io);
  const ctx: CliContext = {
    root,
    ...(globals.log ? { logFile: globals.log } : {}),
    logFormat: globals.logFormat === 'json' ? 'json' : 'text',
    debug: globals.debug ?? false,
    io,
    async engine(opts = {}) {
      if (!engine) {
        // Loaded only by commands that need it: the engine pulls in xstate, rxjs,
        // nanomsg and ffi-rs, which `spec`, `features` and `--version` never pay for.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { createEngine } = require('../actors/engine/engine') as typeof import('../actors/engine/engine');
        // --systemd-cgroup reads linux.cgroupsPath as runc's slice:prefix:name (decision 0018);
        // only create/run look at it, every later call finds the cgroup in the sandbox's state.
        engine = await createEngine({
          stateDir: root,
          reattach: false,
          lockTimeoutMs: 10_000,
          logger: cliLogger(globals),
          initStderr: 'ignore',
          ...(globals.systemdCgroup ? { systemdCgroup: true } : {}),
          ...(opts.readOnly ? { attachChannels: false } : {}),
          ...(SECCOMP_CACHE ? { seccompCacheDir: SECCOMP_CACHE } : {}),
          ...engineOptionsFromEnv(io.env),
        });
      }
      return engine;
    },
    async close() {
      await engine?.close();
      engine = undefined;
    },
  };
  return ctx;
}

/** The --root a call means (also what the client and paddockd agree on). */
export function rootOf(globals: { root?: string }, io: Pick<CliIo, 'env' | 'cwd'>): string {
  return path.resolve(io.cwd, globals.root ?? (io.env.PADDOCK_ROOT || DEFAULT_ROOT));
}

/** Engine options a caller sets by environment (the only ones paddockd's client forwards). */
export function engineOptionsFromEnv(env: NodeJS.ProcessEnv): { idPool?: { start: number; size: number } } {
  // The host id pool of `paddock.userns: auto` (decision 0028): PADDOCK_ID_POOL=START:SIZE,
  // as podman or containerd can set it for the runtime; createEngine checks it.
  return env.PADDOCK_ID_POOL ? { idPool: idPoolFromEnv(env.PADDOCK_ID_POOL) } : {};
}

/** `START:SIZE` (decimal or 0x hex); anything else is left for createEngine's one-line refusal. */
function idPoolFromEnv(text: string): { start: number; size: number } {
  const [start, size, ...rest] = text.split(':').map((x) => (/^(0x[0-9a-f]+|\d+)$/i.test(x.trim()) ? Number(x.trim()) : NaN));
  return { start: rest.length > 0 ? NaN : (start as number), size: size ?? NaN };
}

/** One error line: stderr always; also the --log file in runc's JSON shape, which containerd reads. */
export function reportError(ctx: Pick<CliContext, 'logFile' | 'logFormat'> & { io?: CliIo } | undefined, message: string, stderr: NodeJS.WritableStream = ctx?.io?.stderr ?? process.stderr): void {
  stderr.write(`paddock: ${message}\n`);
  if (ctx?.logFile) {
    const line =
      ctx.logFormat === 'json'
        ? JSON.stringify({ level: 'error', msg: message, time: new Date().toISOString() })
        : `time="${new Date().toISOString()}" level=error msg="${message.replace(/"/g, '\\"')}"`;
    try {
      fs.appendFileSync(ctx.logFile, `${line}\n`);
    } catch {
      // The log is best effort; stderr already has the message.
    }
  }
}

/** Writes a pid file the way runc does: whole or not at all. */
export function writePidFile(file: string, pid: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, String(pid));
  fs.renameSync(tmp, file);
}

/** stderr belongs to the caller (one error line); logs go to --log, or to stderr with --debug. */
function cliLogger(globals: { log?: string; debug?: boolean }) {
  /* eslint-disable @typescript-eslint/no-require-imports */
  if (!globals.log && !globals.debug) {
    return (require('../base/logger') as typeof import('../base/logger')).createSilentLogger();
  }
  const pino = require('pino') as typeof import('pino');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const dest = globals.log
    ? pino.default.destination({ dest: globals.log, append: true, sync: true, mkdir: true })
    : pino.default.destination({ dest: 2, sync: true });
  return pino.default({ level: globals.debug ? 'debug' : 'info', name: 'paddock' }, dest);
}
