import { bool, expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { resolveAttached } from './common';

/**
 * `kill [--all] ID [SIGNAL]`, SIGTERM by default as in runc. A signal that takes init
 * down with its root container succeeds even when init's reply is lost (engine.signal).
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', alias: 'a', type: 'bool' }]);
  const [id, signal] = expectPositionals(p, 'kill', ['container-id', 'signal'], 1) as [string, string | undefined];
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  await engine.signal(r.sandboxId, r.containerId, signal ?? 'SIGTERM', bool(p, 'all') ? { all: true } : {});
  return 0;
}
