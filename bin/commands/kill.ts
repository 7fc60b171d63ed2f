import { bool, expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { ociState, resolveAttached } from './common';

/** `kill [--all] ID [SIGNAL]`, SIGTERM by default as in runc. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', alias: 'a', type: 'bool' }]);
  const [id, signal] = expectPositionals(p, 'kill', ['container-id', 'signal'], 1) as [string, string | undefined];
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  try {
    await engine.signal(r.sandboxId, r.containerId, signal ?? 'SIGTERM', bool(p, 'all') ? { all: true } : {});
  } catch (e) {
    // init exits with its root container, and a signal that ends the container can
    // lose init's reply to that exit (the channel closes first). The engine has read
    // the container's exit by then: the signal did its work, as `runc kill` reports.
    const summary = engine.list().find((s) => s.id === r.sandboxId);
    if ((e as { code?: string }).code === 'ECONTROL' && summary && ociState(summary, r.containerId).status === 'stopped') return 0;
    throw e;
  }
  return 0;
}
