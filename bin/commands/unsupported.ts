import { expectPositionals, parseArgs } from '../args';
import type { CliContext, Command } from '../context';

/**
 * Verbs that exist so callers get a clear answer (the engine rejects them with
 * ENOT_SUPPORTED) until their issue lands: they accept runc's flags, check the id.
 */
export function notSupported(verb: 'checkpoint' | 'restore'): Command {
  return async (ctx: CliContext, argv: string[]) => {
    const p = parseArgs(argv, [
      { name: 'image-path', type: 'string' },
      { name: 'work-path', type: 'string' },
      { name: 'leave-running', type: 'bool' },
      { name: 'bundle', alias: 'b', type: 'string' },
      { name: 'detach', alias: 'd', type: 'bool' },
      { name: 'pid-file', type: 'string' },
      { name: 'console-socket', type: 'string' },
    ]);
    const [id] = expectPositionals(p, verb, ['container-id']) as [string];
    const engine = await ctx.engine();
    await engine.attach(id);
    await engine[verb](id, '');
    return 0;
  };
}
