import { expectPositionals, parseArgs } from '../args';
import type { CliContext } from '../context';
import { resolveAttached } from './common';
import { StateError } from '../../base/errors';

/**
 * `pause ID`: freezes the container's sandbox (docs/decisions/0014), or a container
 * added to a pod sandbox alone, in its own cgroup (docs/decisions/0022). As runc, only
 * a running container can be paused ("container not running" otherwise).
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const [id] = expectPositionals(parseArgs(argv, []), 'pause', ['container-id']) as [string];
  return freezeVerb(ctx, id, 'pause');
}

export async function freezeVerb(ctx: CliContext, id: string, verb: 'pause' | 'resume'): Promise<number> {
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  const want = verb === 'pause' ? 'running' : 'paused';
  const status = r.sub ? r.summary.containers.find((c) => c.id === r.containerId)?.status : r.summary.status;
  if (status !== want) {
    // runc's words, which callers (podman, containerd's shim) show as they are.
    throw new StateError('EINVALID_STATE', `container not ${want}`);
  }
  if (r.sub && r.summary.status !== 'running') {
    throw new StateError('EINVALID_STATE', `cannot ${verb} container ${id} alone: its sandbox ${r.sandboxId} is ${r.summary.status}; ${verb === 'pause' ? 'it is paused with it' : 'resume the sandbox'}`);
  }
  if (r.sub) await engine[verb](r.sandboxId, r.containerId);
  else await engine[verb](r.sandboxId);
  return 0;
}
