import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { resolveAttached } from './common';

/**
 * `pause ID`: freezes the container's sandbox (docs/decisions/0014). As runc, only a
 * running container can be paused ("container not running" otherwise). A container
 * added to a pod sandbox shares the sandbox's processes' freezer, so pausing it alone is
 * refused with ENOT_SUPPORTED rather than pausing its neighbours too.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'pause', ['container-id']) as [string];
  return freezeVerb(ctx, id, 'pause');
}

export async function freezeVerb(ctx: CliContext, id: string, verb: 'pause' | 'resume'): Promise<number> {
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  if (r.sub) {
    throw Object.assign(new Error(`cannot ${verb} container ${id} alone: it shares the freezer of sandbox ${r.sandboxId}; ${verb} the sandbox`), { code: 'ENOT_SUPPORTED' });
  }
  const want = verb === 'pause' ? 'running' : 'paused';
  if (r.summary.status !== want) {
    // runc's words, which callers (podman, containerd's shim) show as they are.
    throw Object.assign(new Error(`container not ${want}`), { code: 'EINVALID_STATE' });
  }
  await engine[verb](r.sandboxId);
  return 0;
}
