import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'start', ['container-id']) as [string];
  const engine = await ctx.engine();
  await engine.attach(id);
  await engine.startRoot(id);
  return 0;
}
