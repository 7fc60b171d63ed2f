import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { ociState, summaryOf } from './common';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'state', ['container-id']) as [string];
  const s = await summaryOf(await ctx.engine(), id);
  process.stdout.write(`${JSON.stringify(ociState(s), null, 2)}\n`);
  return 0;
}
