import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { bool, expectPositionals, list, parseArgs, str, UsageError } from '../args';
import { InProcessOnly, resolvePath, writePidFile, type CliContext } from '../context';
import { exitCodeOf, resolveAttached } from './common';
import { resolveContainer } from '../container-index';
import { ownConsole, relayTerminal, type OwnConsole } from '../terminal';
import type { OciProcess } from '../../specs/oci';
import { PaddockError } from '../../base/errors';

const EXEC_FLAGS = [
  { name: 'process', alias: 'p', type: 'string' },
  { name: 'detach', alias: 'd', type: 'bool' },
  { name: 'tty', alias: 't', type: 'bool' },
  { name: 'pid-file', type: 'string' },
  { name: 'console-socket', type: 'string' },
  { name: 'cwd', type: 'string' },
  { name: 'env', alias: 'e', type: 'list' },
  { name: 'user', alias: 'u', type: 'string' },
  { name: 'additional-gids', alias: 'g', type: 'list' },
  { name: 'no-new-privs', type: 'bool' },
  { name: 'cap', alias: 'c', type: 'list' },
  { name: 'preserve-fds', type: 'string' },
  // Internal: the waiter `exec --detach --tty --pid-file` leaves for conmon (see relay()).
  { name: 'wait-pid', type: 'string' },
] as const;

/**
 * `exec [options] ID [COMMAND ARGS...]` or `exec --process FILE ID`. The process's
 * output goes to log files in the state dir (it must not depend on this short-lived
 * caller) and is relayed to our stdout/stderr until it exits; our stdin feeds its FIFO.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, EXEC_FLAGS, { stopAtFirstPositional: true });
  const [id, ...cmd] = p.positionals;
  const waitPid = str(p, 'wait-pid');
  if (waitPid !== undefined && id) return waitFor(ctx, id, Number(waitPid));
  if (!id) expectPositionals(p, 'exec', ['container-id', 'command']);
  let args = cmd;
  let env = list(p, 'env');
  let cwd = str(p, 'cwd');
  let user: { uid: number; gid: number; additionalGids?: number[] } | undefined;
  let tty = bool(p, 'tty');
  // Absent: the container's own sets, rlimits and no_new_privs (planExec's defaults).
  let security: Pick<OciProcess, 'capabilities' | 'rlimits' | 'noNewPrivileges'> = {};
  const processFile = str(p, 'process');
  if (processFile) {
    const spec = JSON.parse(fs.readFileSync(resolvePath(ctx, processFile), 'utf8')) as {
      args?: string[];
      env?: string[];
      cwd?: string;
      terminal?: boolean;
      user?: { uid?: number; gid?: number; additionalGids?: number[] };
    } & Pick<OciProcess, 'capabilities' | 'rlimits' | 'noNewPrivileges'>;
    // As runc: the file is the whole process, so an absent capabilities object there
    // means none (planExec reads an explicit {} as empty sets).
    security = { capabilities: spec.capabilities ?? {} };
    if (spec.rlimits !== undefined) security.rlimits = spec.rlimits;
    if (spec.noNewPrivileges !== undefined) security.noNewPrivileges = spec.noNewPrivileges;
    if (spec.terminal) tty = true;
    args = spec.args ?? [];
    env = [...(spec.env ?? []), ...env];
    cwd = cwd ?? spec.cwd;
    if (spec.user) user = { uid: spec.user.uid ?? 0, gid: spec.user.gid ?? 0, ...(spec.user.additionalGids ? { additionalGids: spec.user.additionalGids } : {}) };
  }
  const u = str(p, 'user');
  if (u !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(u);
    if (!m) throw new UsageError(`invalid --user ${u}: uid[:gid] numbers`);
    user = { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
  }
  if (args.length === 0) throw new UsageError('exec needs a command (or --process)');
  if (bool(p, 'no-new-privs')) security.noNewPrivileges = true;
  const addCaps = list(p, 'cap');
  const detach = bool(p, 'detach');
  const pidFile = str(p, 'pid-file');
  const cs = str(p, 'console-socket');
  const consoleSocket = cs === undefined ? undefined : resolvePath(ctx, cs);
  // runc's rules: a terminal goes to a console socket only from a detached exec; in
  // the foreground this process relays it.
  if (consoleSocket !== undefined && (!tty || !detach)) {
    throw new PaddockError('ECONSOLE', '--console-socket needs --tty (or process.terminal) and --detach');
  }
  if (detach && pidFile && !tty) return relay(ctx, argv, resolvePath(ctx, pidFile));
  if (tty && !detach && ctx.resident) throw new InProcessOnly('exec relays a terminal', resolveContainer(ctx.root, id as string).sandboxId);
  const engine = await ctx.engine();
  const ref = await resolveAttached(engine, ctx.root, id as string);
  const own: OwnConsole | undefined = tty && !detach ? ownConsole() : undefined;
  let r;
  try {
    r = await engine.execute(ref.sandboxId, ref.containerId, {
      args,
      ...security,
      ...(addCaps.length > 0 ? { addCapabilities: addCaps } : {}),
      ...(env.length ? { env } : {}),
      ...(cwd ? { cwd } : {}),
      ...(user ? { user } : {}),
      stdio: 'pipe',
      ...(tty ? { terminal: true, ...(consoleSocket ?? own ? { consoleSocket: consoleSocket ?? own?.socket } : {}) } : {}),
    });
  } catch (e) {
    own?.close();
    throw e;
  }
  if (own) {
    const relay = relayTerminal(own.take());
    engine.release(ref.sandboxId);
    const exit = await engine.waitPid(ref.sandboxId, r.pid);
    await relay.finish();
    return exitCodeOf(exit);
  }
  if (detach && pidFile && tty) {
    // The terminal is handed over by now (conmon waits for it before we exit); the
    // pid file names a waiter that exits with the process's status.
    return waiter(ctx, id as string, r.pid, resolvePath(ctx, pidFile));
  }
  if (pidFile) writePidFile(resolvePath(ctx, pidFile), r.hostPid);
  if (detach) {
    r.stdin?.destroy();
    return 0;
  }
  // From here on we only wait: let `kill`/`stop` on this sandbox go ahead meanwhile.
  engine.release(ref.sandboxId);
  const io = ctx.io;
  if (r.stdin && !io.stdin.isTTY) io.stdin.pipe(r.stdin);
  else r.stdin?.end();
  const out = r.stdout ? new Promise((res) => r.stdout!.pipe(io.stdout, { end: false }).on('unpipe', res).on('finish', res)) : undefined;
  const err = r.stderr ? new Promise((res) => r.stderr!.pipe(io.stderr, { end: false }).on('unpipe', res).on('finish', res)) : undefined;
  const exit = await engine.waitPid(ref.sandboxId, r.pid);
  await Promise.all([out, err]);
  io.stdin.unpipe();
  io.stdin.destroy();
  return exitCodeOf(exit);
}

/**
 * `exec --detach --pid-file F` as conmon uses it: conmon gives the runtime its pipes as
 * stdio and, being a subreaper, waits for the pid in F after the runtime exits. The
 * exec'd process is paddock-init's child, never conmon's, so F gets the pid of a relay
 * instead: this same CLI running the exec without --detach, which inherits conmon's
 * pipes, copies the process's output to them and exits with its status. It is our
 * child, so it is reparented to conmon when we exit.
 */
async function relay(ctx: CliContext, argv: string[], pidFile: string): Promise<number> {
  const globals = globalArgs(ctx);
  if (ctx.resident) {
    writePidFile(pidFile, await ctx.resident.spawnSelf([...globals, 'exec', ...withoutDetach(argv)]));
    return 0;
  }
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, ...globals, 'exec', ...withoutDetach(argv)], {
    stdio: 'inherit',
  });
  if (child.pid === undefined) throw new Error('exec --detach: could not start the relay process');
  writePidFile(pidFile, child.pid);
  child.unref();
  return 0;
}

function globalArgs(ctx: CliContext): string[] {
  return ['--root', ctx.root, ...(ctx.logFile ? ['--log', ctx.logFile, '--log-format', ctx.logFormat] : []), ...(ctx.debug ? ['--debug'] : [])];
}

/** As relay(), for a process already started with a terminal: the child only waits. */
async function waiter(ctx: CliContext, id: string, pid: number, pidFile: string): Promise<number> {
  if (ctx.resident) {
    writePidFile(pidFile, await ctx.resident.spawnSelf([...globalArgs(ctx), 'exec', '--wait-pid', String(pid), id]));
    return 0;
  }
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, ...globalArgs(ctx), 'exec', '--wait-pid', String(pid), id], {
    stdio: 'inherit',
  });
  if (child.pid === undefined) throw new Error('exec --detach: could not start the waiter process');
  writePidFile(pidFile, child.pid);
  child.unref();
  return 0;
}

/** `exec --wait-pid N ID`: waits for process N of the container and exits with its status. */
async function waitFor(ctx: CliContext, id: string, pid: number): Promise<number> {
  if (!Number.isInteger(pid) || pid <= 0) throw new UsageError(`invalid --wait-pid ${pid}`);
  const engine = await ctx.engine();
  const ref = await resolveAttached(engine, ctx.root, id);
  engine.release(ref.sandboxId);
  return exitCodeOf(await engine.waitPid(ref.sandboxId, pid));
}

/** argv without --detach/-d and --pid-file, looking only at the options before the container id. */
function withoutDetach(argv: string[]): string[] {
  const byName = new Map<string, (typeof EXEC_FLAGS)[number]>();
  for (const f of EXEC_FLAGS) {
    byName.set(`--${f.name}`, f);
    byName.set(`-${f.name}`, f);
    if ('alias' in f) byName.set(`-${f.alias}`, f);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--' || !arg.startsWith('-') || arg === '-') return [...out, ...argv.slice(i)];
    const eq = arg.indexOf('=');
    const spec = byName.get(eq > 0 ? arg.slice(0, eq) : arg);
    const takesValue = spec !== undefined && spec.type !== 'bool' && eq < 0;
    const drop = spec?.name === 'detach' || spec?.name === 'pid-file';
    if (!drop) out.push(arg, ...(takesValue && i + 1 < argv.length ? [argv[i + 1] as string] : []));
    if (takesValue) i++;
  }
  return out;
}
