import { bool, expectPositionals, parseArgs, str, UsageError } from '../args';
import type { CliContext } from '../context';
import { resolveAttached } from './common';

/**
 * `events [--stats] [--interval 5s] ID`: one stats JSON with --stats, otherwise a
 * stats line per interval until the container stops (runc's shape:
 * {"type":"stats","id":...,"data":{...}}).
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'stats', type: 'bool' },
    { name: 'interval', type: 'string' },
  ]);
  const [id] = expectPositionals(p, 'events', ['container-id']) as [string];
  const intervalText = str(p, 'interval') ?? '5s';
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(intervalText);
  if (!m) throw new UsageError(`invalid --interval ${intervalText}: a duration such as 5s or 500ms`);
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (ms <= 0) throw new UsageError('--interval must be positive');
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  const emit = async () => {
    const data = await engine.event(r.sandboxId, r.containerId);
    process.stdout.write(`${JSON.stringify({ type: 'stats', id, data })}\n`);
  };
  if (bool(p, 'stats')) {
    await emit();
    return 0;
  }
  // A stream only reads: give up the sandbox's lock (as a waiting `exec` does), so `kill`
  // and `delete` are not held up for as long as it runs (runc's events does not block them).
  engine.release(r.sandboxId);
  while (engine.isRunning(r.sandboxId) && (!r.sub || engine.list().find((s) => s.id === r.sandboxId)?.containers.find((c) => c.id === r.containerId)?.status === 'running')) {
    await emit();
    await new Promise((r) => setTimeout(r, ms));
  }
  return 0;
}
