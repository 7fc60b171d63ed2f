import { bool, expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { forgetContainer, forgetSandbox, resolveContainer } from '../container-index';
import { ociState, resolveAttached, retriesLostCall } from './common';
import { StateError } from '../../base/errors';

/**
 * `delete [--force] ID`: a running container needs --force (then it is killed). A
 * sandbox's root container takes the whole sandbox with it (and the index entries of
 * the containers added to it); an added container is destroyed alone.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', alias: 'f', type: 'bool' }]);
  const [id] = expectPositionals(p, 'delete', ['container-id']) as [string];
  const engine = await ctx.engine();
  let r;
  try {
    r = await resolveAttached(engine, ctx.root, id);
  } catch (e) {
    // As runc: `delete --force` of a container that is already gone succeeds
    // (containerd's shim and conmon both call it after a plain delete).
    // Asked again after a paddockd died during it, a delete that finds nothing was done by that one.
    if ((bool(p, 'force') || retriesLostCall(ctx)) && (e as { code?: string }).code === 'ESANDBOX_NOT_FOUND') {
      const ref = resolveContainer(ctx.root, id);
      if (ref.sub) forgetContainer(ctx.root, id);
      else forgetSandbox(ctx.root, id);
      return 0;
    }
    throw e;
  }
  const st = ociState(r.summary, r.containerId);
  if ((st.status === 'running' || st.status === 'paused') && !bool(p, 'force')) {
    throw new StateError('EINVALID_STATE', `cannot delete container ${id} that is not stopped: ${st.status}`);
  }
  if (!r.sub) {
    await engine.destroy(id);
    forgetSandbox(ctx.root, id);
    return 0;
  }
  // In a sandbox that has stopped, the container goes with the sandbox: only its entry is dropped.
  if (r.summary.status === 'running' || r.summary.status === 'paused') await engine.destroyContainer(r.sandboxId, r.containerId);
  forgetContainer(ctx.root, id);
  return 0;
}
