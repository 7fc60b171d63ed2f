import { bool, expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { summaryOf } from './common';

/** `delete [--force] ID`: a running container needs --force (then it is killed). */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', alias: 'f', type: 'bool' }]);
  const [id] = expectPositionals(p, 'delete', ['container-id']) as [string];
  const engine = await ctx.engine();
  let s;
  try {
    s = await summaryOf(engine, id);
  } catch (e) {
    // As runc: `delete --force` of a container that is already gone succeeds
    // (containerd's shim and conmon both call it after a plain delete).
    if (bool(p, 'force') && (e as { code?: string }).code === 'ESANDBOX_NOT_FOUND') return 0;
    throw e;
  }
  if (s.status === 'running' && !bool(p, 'force')) {
    throw Object.assign(new Error(`cannot delete container ${id} that is not stopped: running`), { code: 'EINVALID_STATE' });
  }
  await engine.destroy(id);
  return 0;
}
