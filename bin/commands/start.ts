import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { ociState, resolveAttached, retriesLostCall } from './common';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'start', ['container-id']) as [string];
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  // Asked again after a paddockd died during it: that paddockd started it already.
  if (retriesLostCall(ctx) && ociState(r.summary, r.containerId).status !== 'created') return 0;
  if (r.sub) await engine.startContainer(r.sandboxId, r.containerId);
  else await engine.startRoot(id);
  return 0;
}
