import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { ociState, resolveAttached } from './common';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'state', ['container-id']) as [string];
  // Read-only: no channel to init is connected (nor nanomsg loaded) to report a state.
  const r = await resolveAttached(await ctx.engine({ readOnly: true }), ctx.root, id);
  ctx.io.stdout.write(`${JSON.stringify(ociState(r.summary, r.containerId), null, 2)}\n`);
  return 0;
}
