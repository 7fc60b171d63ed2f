import { expectPositionals, parseArgs, str, UsageError } from '../args';
import type { CliContext } from '../context';
import { formatStacks } from '../../actors/observe/stacks';
import { resolveAttached } from './common';

/**
 * `debug stacks [--format text|json] ID`: runsc's `debug --stacks`, the dump of
 * engine.stacks for a stuck sandbox (init, then each container's processes: thread
 * state, wchan, syscall, kernel stack). ID names the sandbox or one of its containers.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'format', alias: 'f', type: 'string' }]);
  const [what, id] = expectPositionals(p, 'debug', ['what', 'container-id']) as [string, string];
  if (what !== 'stacks') throw new UsageError(`unknown debug subject ${what}: only stacks`);
  const format = str(p, 'format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`invalid format option ${format}: text or json`);
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  const stacks = await engine.stacks(r.sandboxId);
  ctx.io.stdout.write(format === 'json' ? `${JSON.stringify(stacks, null, 2)}\n` : formatStacks(stacks));
  return 0;
}
