import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';

/** `resume` exists so callers get a clear answer; the engine rejects it with ENOT_SUPPORTED. */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'image-path', type: 'string' },
    { name: 'work-path', type: 'string' },
    { name: 'leave-running', type: 'bool' },
    { name: 'bundle', alias: 'b', type: 'string' },
    { name: 'detach', alias: 'd', type: 'bool' },
    { name: 'pid-file', type: 'string' },
    { name: 'console-socket', type: 'string' },
  ]);
  const [id] = expectPositionals(p, 'resume', ['container-id']) as [string];
  const engine = await ctx.engine();
  await engine.attach(id);
  await engine.resume(id);
  return 0;
}
