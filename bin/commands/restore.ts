import { expectPositionals, parseArgs, str } from '../args';
import { isIndexed } from '../container-index';
import { InProcessOnly, resolvePath, writePidFile, type CliContext } from '../context';
import { CRIU_FLAGS, criuOptions } from './checkpoint';
import { PaddockError, StateError } from '../../base/errors';

/**
 * `restore [--image-path DIR] [--bundle B] [-d] [--pid-file F] ID` (docs/decisions/0040):
 * makes sandbox ID from the bundle and restores the checkpoint in DIR as its root
 * container. As with paddock's create, the sandbox outlives this call: -d is accepted,
 * and the pid file gets paddock-init's pid, which exits with the container's status.
 * The restored container's stdio is this call's own, as with runc.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    ...CRIU_FLAGS,
    { name: 'bundle', alias: 'b', type: 'string' },
    { name: 'detach', alias: 'd', type: 'bool' },
    { name: 'pid-file', type: 'string' },
    { name: 'console-socket', type: 'string' },
    { name: 'no-pivot', type: 'bool' },
    { name: 'no-subreaper', type: 'bool' },
  ]);
  const [id] = expectPositionals(p, 'restore', ['container-id']) as [string];
  if (str(p, 'console-socket') !== undefined) {
    throw new PaddockError('ENOT_SUPPORTED', '--console-socket: restoring a container with a terminal is not supported');
  }
  if (isIndexed(ctx.root, id)) throw new StateError('ECONTAINER_EXISTS', `container ${id} already exists`);
  // The restored tree must be the caller's (as a create's init is): CRIU runs in the caller's process.
  if (ctx.resident) throw new InProcessOnly('restore runs CRIU as the caller\'s child');
  const engine = await ctx.engine();
  const h = await engine.restore(id, resolvePath(ctx, str(p, 'bundle') ?? '.'), {
    ...criuOptions(ctx, p),
    // As runc (and as paddock's create): the container's stdio is the caller's.
    stdio: 'inherit',
  });
  const pidFile = str(p, 'pid-file');
  if (pidFile) writePidFile(resolvePath(ctx, pidFile), h.pid);
  return 0;
}
