import * as path from 'node:path';
import { bool, expectPositionals, parseArgs, str, UsageError, type FlagSpec } from '../args';
import { writePidFile, type CliContext } from '../context';

export const CREATE_FLAGS = [
  { name: 'bundle', alias: 'b', type: 'string' },
  { name: 'pid-file', type: 'string' },
  { name: 'console-socket', type: 'string' },
  { name: 'no-pivot', type: 'bool' },
  { name: 'no-new-keyring', type: 'bool' },
  { name: 'preserve-fds', type: 'string' },
] as const;

/**
 * `create`: launches the sandbox process (paddock-init) in the bundle's namespaces
 * and plans the container; `start` runs it. The pid file gets init's pid, which
 * exits with the container's status (what conmon and containerd-shim wait on).
 */
export async function createFromArgs(ctx: CliContext, argv: string[], cmd: string, extra: readonly FlagSpec[] = []) {
  const p = parseArgs(argv, [...CREATE_FLAGS, ...extra]);
  const [id] = expectPositionals(p, cmd, ['container-id']) as [string];
  if (str(p, 'console-socket') !== undefined) {
    throw new UsageError('--console-socket needs process.terminal, which is not supported yet');
  }
  const bundle = path.resolve(str(p, 'bundle') ?? '.');
  const engine = await ctx.engine();
  const h = await engine.createSandbox(id, bundle, { stdio: 'inherit', ...(bool(p, 'no-pivot') ? { noPivot: true } : {}) });
  const pidFile = str(p, 'pid-file');
  if (pidFile) writePidFile(path.resolve(pidFile), h.pid);
  return { engine, id, handle: h, parsed: p };
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  await createFromArgs(ctx, argv, 'create');
  return 0;
}
