import * as fs from 'node:fs';
import * as path from 'node:path';
import { bool, expectPositionals, list, parseArgs, str, UsageError } from '../args';
import { writePidFile, type CliContext } from '../context';
import { exitCodeOf } from './common';

/**
 * `exec [options] ID [COMMAND ARGS...]` or `exec --process FILE ID`. The process's
 * output goes to log files in the state dir (it must not depend on this short-lived
 * caller) and is relayed to our stdout/stderr until it exits; our stdin feeds its FIFO.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    [
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
    ],
    { stopAtFirstPositional: true },
  );
  if (bool(p, 'tty') || str(p, 'console-socket') !== undefined) throw new UsageError('exec --tty needs terminals, which are not supported yet');
  const [id, ...cmd] = p.positionals;
  if (!id) expectPositionals(p, 'exec', ['container-id', 'command']);
  let args = cmd;
  let env = list(p, 'env');
  let cwd = str(p, 'cwd');
  let user: { uid: number; gid: number; additionalGids?: number[] } | undefined;
  const processFile = str(p, 'process');
  if (processFile) {
    const spec = JSON.parse(fs.readFileSync(path.resolve(processFile), 'utf8')) as {
      args?: string[];
      env?: string[];
      cwd?: string;
      terminal?: boolean;
      user?: { uid?: number; gid?: number; additionalGids?: number[] };
    };
    if (spec.terminal) throw new UsageError('process.terminal is not supported yet');
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
  const engine = await ctx.engine();
  await engine.attach(id as string);
  const detach = bool(p, 'detach');
  const r = await engine.execute(id as string, id as string, {
    args,
    ...(env.length ? { env } : {}),
    ...(cwd ? { cwd } : {}),
    ...(user ? { user } : {}),
    stdio: 'pipe',
  });
  const pidFile = str(p, 'pid-file');
  if (pidFile) writePidFile(path.resolve(pidFile), r.hostPid);
  if (detach) {
    r.stdin?.destroy();
    return 0;
  }
  if (r.stdin && !process.stdin.isTTY) process.stdin.pipe(r.stdin);
  else r.stdin?.end();
  const out = r.stdout ? new Promise((res) => r.stdout!.pipe(process.stdout, { end: false }).on('unpipe', res).on('finish', res)) : undefined;
  const err = r.stderr ? new Promise((res) => r.stderr!.pipe(process.stderr, { end: false }).on('unpipe', res).on('finish', res)) : undefined;
  const exit = await engine.waitPid(id as string, r.pid);
  await Promise.all([out, err]);
  process.stdin.unpipe();
  process.stdin.destroy();
  return exitCodeOf(exit);
}
