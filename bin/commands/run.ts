import { bool } from '../args';
import type { CliContext } from '../context';
import { exitCodeOf } from './common';
import { createFromArgs } from './create';

/**
 * `run`: create + start; without --detach, wait and exit with the container's
 * status (128+signal for a signal), then delete it as runc does (--keep keeps it).
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const { engine, id, parsed } = await createFromArgs(ctx, argv, 'run', [
    { name: 'detach', alias: 'd', type: 'bool' },
    { name: 'keep', type: 'bool' },
  ]);
  try {
    await engine.startRoot(id);
  } catch (e) {
    await engine.destroy(id).catch(() => undefined);
    throw e;
  }
  if (bool(parsed, 'detach')) return 0;
  const exit = await engine.wait(id, id);
  if (!bool(parsed, 'keep')) await engine.destroy(id);
  return exitCodeOf(exit);
}
