import { bool, expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { ociState, resolveAttached, retriesLostCall } from './common';

/**
 * `kill [--all] ID [SIGNAL]`, SIGTERM by default as in runc. A signal that takes init
 * down with its root container succeeds even when init's reply is lost (engine.signal).
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', alias: 'a', type: 'bool' }]);
  const [id, signal] = expectPositionals(p, 'kill', ['container-id', 'signal'], 1) as [string, string | undefined];
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  // Asked again after a paddockd died during it: a container that has stopped needs no signal.
  if (retriesLostCall(ctx) && ociState(r.summary, r.containerId).status === 'stopped') return 0;
  await engine.signal(r.sandboxId, r.containerId, signal ?? 'SIGTERM', bool(p, 'all') ? { all: true } : {});
  return 0;
}
