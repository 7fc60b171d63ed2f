import { expectPositionals, parseArgs, str, UsageError } from '../args';
import type { CliContext } from '../context';
import { resolveAttached } from './common';

/** `ps [--format table|json] ID`: json is the array of host pids, as runc prints it. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'format', alias: 'f', type: 'string' }]);
  const [id] = expectPositionals(p, 'ps', ['container-id']) as [string];
  const format = str(p, 'format') ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`invalid format option ${format}: table or json`);
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  const procs = await engine.processes(r.sandboxId, r.containerId);
  if (format === 'json') ctx.io.stdout.write(`${JSON.stringify(procs.map((x) => x.hostPid))}\n`);
  else {
    const rows = [['PID', 'PPID', 'KIND', 'CMD'], ...procs.map((x) => [String(x.hostPid), String(x.ppid), x.kind, x.command])];
    ctx.io.stdout.write(rows.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(12) : c)).join('') + '\n').join(''));
  }
  return 0;
}
