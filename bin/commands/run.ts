import { bool } from '../args';
import type { CliContext } from '../context';
import { forgetContainer } from '../container-index';
import { exitCodeOf } from './common';
import { createFromArgs } from './create';
import { relayTerminal } from '../terminal';

/**
 * `run`: create + start; without --detach, wait and exit with the container's
 * status (128+signal for a signal), then delete it as runc does (--keep keeps it).
 * A container put into an existing sandbox (CRI annotations) is started, waited for
 * and deleted alone.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const created = await createFromArgs(ctx, argv, 'run', [
    { name: 'detach', alias: 'd', type: 'bool' },
    { name: 'keep', type: 'bool' },
  ]);
  const { engine, id, sandboxId, sub, parsed } = created;
  const relay = 'master' in created && created.master !== undefined ? relayTerminal(created.master) : undefined;
  const remove = async () => {
    if (!sub) return engine.destroy(id);
    await engine.destroyContainer(sandboxId, id);
    forgetContainer(ctx.root, id);
  };
  try {
    if (sub) await engine.startContainer(sandboxId, id);
    else await engine.startRoot(id);
  } catch (e) {
    await relay?.finish();
    await remove().catch(() => undefined);
    throw e;
  }
  if (bool(parsed, 'detach')) return 0;
  const exit = await engine.wait(sandboxId, id);
  await relay?.finish();
  if (!bool(parsed, 'keep')) await remove();
  return exitCodeOf(exit);
}
