/**
 * OCI lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks", runtime.md
 * "Lifecycle"), run on the host for the root container of a sandbox.
 *
 * Each hook is a host process: `path` executed with `args` (argv, args[0] included)
 * and `env` (absent: the supervisor's environment, as runc; present: exactly that
 * list), the container's state JSON on its stdin, and its stdout/stderr captured (the
 * tail goes into the error message). It is killed (SIGKILL, its whole process group)
 * when `timeout` seconds pass — 30 s when the config sets none, where runc waits
 * forever. Hooks of one kind run in order; the first failure stops that list.
 *
 * createContainer and startContainer run inside the container, by paddock-init
 * (native/c/init/hooks.c, docs/decisions/0013). See docs/decisions/0010.
 */

import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciHook, OciHooks } from '../../specs/oci';
import { PaddockError } from '../../base/errors';

export type HookKind = keyof OciHooks;
export type Hooks = DeepReadonly<OciHooks>;

export const DEFAULT_HOOK_TIMEOUT_S = 30;

/** runtime-spec "State", as a hook reads it on stdin. */
export interface HookState {
  readonly ociVersion: string;
  readonly id: string;
  readonly status: 'creating' | 'created' | 'running' | 'stopped';
  readonly pid: number;
  readonly bundle: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Bytes of a hook's stdout/stderr kept for the error message. */
const OUTPUT_TAIL = 4096;
/** After the hook exits, how long a grandchild may keep its output pipes open. */
const DRAIN_MS = 200;

/** True when `hooks` holds at least one hook of any kind. */
export function hasHooks(hooks: Hooks | undefined): boolean {
  return hooks !== undefined && Object.values(hooks).some((l) => Array.isArray(l) && l.length > 0);
}

/**
 * Runs one hook; resolves when it exited with status 0, otherwise rejects with
 * EHOOK_FAILED whose context.step is `hook <kind>[<index>]` and context.path the hook.
 */
export function runHook(kind: HookKind, index: number, hook: DeepReadonly<OciHook>, state: HookState, ctx: { sandboxId: string }): Promise<void> {
  const step = `hook ${kind}[${index}]`;
  const timeoutS = hook.timeout ?? DEFAULT_HOOK_TIMEOUT_S;
  const fail = (why: string, cause?: unknown) =>
    new PaddockError('EHOOK_FAILED', `${step} (${hook.path}) ${why}`, { sandboxId: ctx.sandboxId, step, path: hook.path }, cause);

  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let timedOut = false;
    let output = '';
    const keep = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    const args = hook.args ?? [];
    let child: ChildProcess;
    try {
      // node:child_process on first use: most sandboxes (and CLI calls) run no hook.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      child = spawn(hook.path, args.slice(1), {
        argv0: args[0] ?? hook.path,
        // runc runs create's hooks from the bundle directory (it chdirs there).
        cwd: fs.existsSync(state.bundle) ? state.bundle : '/',
        env: hook.env ? envObject(hook.env) : process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        // Own process group, so a timeout kills what the hook started too.
        detached: true,
      });
    } catch (e) {
      reject(fail(`could not be started: ${(e as Error).message}`, e));
      return;
    }
    const finish = (err?: PaddockError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      if (err) reject(err);
      else resolve();
    };
    let drain: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutS * 1000);

    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // A hook need not read its stdin: EPIPE is not a failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(`${JSON.stringify(state)}\n`);

    child.on('error', (e) => finish(fail(`could not be started: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e)));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const verdict = () => {
        const tail = output.trim() ? `: ${output.trim().split('\n').slice(-5).join(' | ')}` : '';
        if (timedOut) finish(fail(`timed out after ${timeoutS}s and was killed${tail}`));
        else if (signal) finish(fail(`was killed by ${signal}${tail}`));
        else if (code !== 0) finish(fail(`exited with status ${code}${tail}`));
        else finish();
      };
      // 'close' waits for the pipes, which a daemon the hook started may hold forever.
      child.once('close', verdict);
      drain = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        verdict();
      }, DRAIN_MS);
    });
  });
}

/** The hooks of `kind` in order; rejects with the first failure (the rest do not run). */
export async function runHooks(kind: HookKind, hooks: Hooks | undefined, state: HookState, ctx: { sandboxId: string }): Promise<void> {
  const list = hooks?.[kind] ?? [];
  for (const [i, h] of list.entries()) await runHook(kind, i, h, state, ctx);
}

/**
 * The hooks of `kind` in order, every one of them: a failure is handed to `warn` and
 * the rest still run (the spec's rule for poststart and poststop).
 */
export async function runHooksWarn(
  kind: HookKind,
  hooks: Hooks | undefined,
  state: HookState,
  ctx: { sandboxId: string },
  warn: (err: PaddockError) => void,
): Promise<void> {
  const list = hooks?.[kind] ?? [];
  for (const [i, h] of list.entries()) {
    try {
      await runHook(kind, i, h, state, ctx);
    } catch (e) {
      warn(e instanceof PaddockError ? e : new PaddockError('EHOOK_FAILED', String(e), { sandboxId: ctx.sandboxId, step: `hook ${kind}[${i}]` }));
    }
  }
}

function envObject(env: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const e of env) {
    const eq = e.indexOf('=');
    if (eq > 0) out[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return out;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
