import { filter, firstValueFrom, map, type Observable } from 'rxjs';
import { bool, expectPositionals, parseArgs, str, UsageError } from '../args';
import type { CliContext } from '../context';
import { resolveAttached } from './common';

/**
 * `events [--stats] [--interval 5s] ID`, as runc's: with --stats one
 * `{"type":"stats","id":ID,"data":{...}}` line (runc's types.Stats) and exit;
 * otherwise a stats line every interval and an `{"type":"oom","id":ID}` line at each
 * OOM of the container's cgroup, until the container stops.
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
  const ms = Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000));
  if (ms <= 0) throw new UsageError('--interval must be positive');
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  const opts = { intervalMs: ms, ...(r.sub ? { containerId: r.containerId } : {}) };
  const line = (o: unknown) => ctx.io.stdout.write(`${JSON.stringify(o)}\n`);
  if (bool(p, 'stats')) {
    const s = await firstValueFrom(engine.stats$(r.sandboxId, opts));
    line({ type: 'stats', id, data: s.data });
    return 0;
  }
  // Only watching from here on: give up the sandbox's lock (as a waiting `exec` does), so
  // exec, kill and delete are not held up while it runs (runc's events does not block them).
  engine.release(r.sandboxId);
  const stats$ = engine.stats$(r.sandboxId, opts).pipe(map((s) => ({ type: 'stats', id, data: s.data })));
  const oom$: Observable<unknown> = engine.events$.pipe(
    filter((e) => e.type === 'oom' && e.sandboxId === r.sandboxId),
    map(() => ({ type: 'oom', id })),
  );
  // Until the stats stream completes (the sandbox stopped); oom lines on the way.
  await new Promise<void>((resolve, reject) => {
    const oomSub = oom$.subscribe(line);
    stats$.subscribe({
      next: line,
      error: (e: unknown) => {
        oomSub.unsubscribe();
        reject(e);
      },
      complete: () => {
        oomSub.unsubscribe();
        resolve();
      },
    });
  });
  return 0;
}
