import { parseArgs, str, UsageError } from '../args';
import type { CliContext } from '../context';
import { INDEX_DIR } from '../container-index';
import { ociState, type OciState } from './common';
import * as fs from 'node:fs';

/** `list`: every sandbox's root container, then the containers added to it. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'format', alias: 'f', type: 'string' },
    { name: 'quiet', alias: 'q', type: 'bool' },
  ]);
  const format = str(p, 'format') ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`invalid format option ${format}: table or json`);
  // Read-only: attaching every sandbox connects no channel to any init.
  const engine = await ctx.engine({ readOnly: true });
  const ids = fs.existsSync(ctx.root)
    ? fs
        .readdirSync(ctx.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && d.name !== INDEX_DIR)
        .map((d) => d.name)
    : [];
  for (const id of ids) await engine.attach(id).catch(() => undefined);
  const states: OciState[] = [];
  for (const s of engine.list()) {
    states.push(ociState(s));
    for (const c of s.containers) if (c.id !== s.id) states.push(ociState(s, c.id));
  }
  if (p.flags.quiet === true) {
    ctx.io.stdout.write(states.map((s) => `${s.id}\n`).join(''));
  } else if (format === 'json') {
    ctx.io.stdout.write(`${JSON.stringify(states)}\n`);
  } else {
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created ?? '', 'root'])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    ctx.io.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]! + 3)).join('').trimEnd() + '\n').join(''));
  }
  return 0;
}
