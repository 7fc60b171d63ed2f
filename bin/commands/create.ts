import * as fs from 'node:fs';
import * as path from 'node:path';
import { bool, expectPositionals, parseArgs, str, UsageError, type FlagSpec } from '../args';
import { isIndexed, recordContainer, resolveContainer } from '../container-index';
import { InProcessOnly, resolvePath, writePidFile, type CliContext } from '../context';
import { ownConsole, type OwnConsole } from '../terminal';
import { loadBundle, type Bundle } from '../../specs/load';
import { PaddockError, StateError } from '../../base/errors';
import { processParent } from '../../actors/sandbox/state-store';
import { ociState, retriesLostCall } from './common';

export const CREATE_FLAGS = [
  { name: 'bundle', alias: 'b', type: 'string' },
  { name: 'pid-file', type: 'string' },
  { name: 'console-socket', type: 'string' },
  { name: 'no-pivot', type: 'bool' },
  { name: 'no-new-keyring', type: 'bool' },
  { name: 'preserve-fds', type: 'string' },
] as const;

/** CRI's annotations (containerd, CRI-O): which containers share one sandbox (pod). */
export const CONTAINER_TYPE = 'io.kubernetes.cri.container-type';
export const SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';

/**
 * Where the bundle's container goes: a new sandbox (no annotation, or container-type
 * `sandbox`), or the existing sandbox named by `sandbox-id` (container-type `container`).
 */
function targetSandbox(config: Bundle['config']): string | undefined {
  const annotations = config.annotations as Readonly<Record<string, unknown>> | undefined;
  const type = annotations?.[CONTAINER_TYPE];
  if (type === undefined || type === 'sandbox') return undefined;
  if (type !== 'container') throw new UsageError(`annotation ${CONTAINER_TYPE}: ${JSON.stringify(type)} is neither sandbox nor container`);
  const sid = annotations?.[SANDBOX_ID];
  if (typeof sid !== 'string' || sid === '') throw new UsageError(`annotation ${CONTAINER_TYPE}=container needs ${SANDBOX_ID}`);
  return sid;
}

/**
 * `create`: launches the sandbox process (paddock-init) in the bundle's namespaces
 * and plans the container; `start` runs it. The pid file gets init's pid, which
 * exits with the container's status (what conmon and containerd-shim wait on).
 *
 * With the CRI annotations naming an existing sandbox, no sandbox is launched: the
 * container is registered (created, not started) in that sandbox, its output goes to
 * log files in the sandbox's state folder, and the pid file gets the sandbox's init pid
 * (as runsc does for a subcontainer).
 */
export async function createFromArgs(ctx: CliContext, argv: string[], cmd: string, extra: readonly FlagSpec[] = []) {
  const p = parseArgs(argv, [...CREATE_FLAGS, ...extra]);
  const [id] = expectPositionals(p, cmd, ['container-id']) as [string];
  const cs = str(p, 'console-socket');
  const consoleSocket = cs === undefined ? undefined : resolvePath(ctx, cs);
  // runc's rule: only a detached container hands its terminal to a console socket.
  if (consoleSocket !== undefined && cmd === 'run' && !bool(p, 'detach')) {
    throw new PaddockError('ECONSOLE', '--console-socket needs --detach: a container in the foreground keeps its terminal');
  }
  const bundle = resolvePath(ctx, str(p, 'bundle') ?? '.');
  // Read and checked once here; the engine's own load of the same text reuses this parse.
  const { config } = await loadBundle(bundle);
  const target = targetSandbox(config);
  if (isIndexed(ctx.root, id)) {
    throw new StateError('ECONTAINER_EXISTS', `container ${id} already exists in sandbox ${resolveContainer(ctx.root, id).sandboxId}`);
  }
  const engine = await ctx.engine();
  const pidFile = str(p, 'pid-file');
  if (target !== undefined) {
    if (fs.existsSync(path.join(ctx.root, id))) throw new StateError('ESANDBOX_EXISTS', `container ${id} already exists (a sandbox)`);
    const sandboxId = resolveContainer(ctx.root, target).sandboxId;
    try {
      await engine.attach(sandboxId);
    } catch (e) {
      if ((e as { code?: string }).code === 'ESANDBOX_NOT_FOUND') {
        throw new StateError('ESANDBOX_NOT_FOUND', `sandbox ${target} of container ${id} does not exist`);
      }
      throw e;
    }
    if (bool(p, 'no-pivot')) throw new UsageError('--no-pivot is for a sandbox\'s root container only');
    // As runc: create builds the container (createContainer hooks run now); start only execs it.
    await engine.addContainer(sandboxId, id, bundle, { stdio: 'pipe', ...(consoleSocket ? { consoleSocket } : { prepare: true }) });
    try {
      recordContainer(ctx.root, id, sandboxId);
    } catch (e) {
      await engine.destroyContainer(sandboxId, id).catch(() => undefined);
      throw e;
    }
    const pid = engine.list().find((s) => s.id === sandboxId)?.pid ?? 0;
    if (pidFile) writePidFile(resolvePath(ctx, pidFile), pid);
    return { engine, id, sandboxId, sub: true, parsed: p };
  }
  // `run` in the foreground relays a terminal itself, as runc does.
  const ownsTerminal = cmd === 'run' && !bool(p, 'detach') && consoleSocket === undefined && config.process?.terminal === true;
  if (ownsTerminal && ctx.resident) throw new InProcessOnly('run relays a terminal');
  const own: OwnConsole | undefined = ownsTerminal ? ownConsole() : undefined;
  let h;
  try {
    h = await engine.createSandbox(id, bundle, {
      // With a terminal the container's stdio is its pty: init keeps none of the
      // caller's fds, which a caller may read until EOF (containerd's shim does).
      stdio: consoleSocket ?? own ? 'ignore' : 'inherit',
      // As runc: create builds the container (createContainer hooks run now); start only
      // execs it. `run` starts at once, so preparing would only add a round trip.
      ...(cmd === 'create' ? { prepare: true } : {}),
      ...(bool(p, 'no-pivot') ? { noPivot: true } : {}),
      ...(consoleSocket ?? own ? { consoleSocket: consoleSocket ?? own?.socket } : {}),
    });
  } catch (e) {
    own?.close();
    throw e;
  }
  if (pidFile) writePidFile(resolvePath(ctx, pidFile), h.pid);
  const master = own?.take();
  return { engine, id, sandboxId: id, sub: false, parsed: p, ...(master !== undefined ? { master } : {}) };
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  if (await lostCreateDone(ctx, argv)) return 0;
  await createFromArgs(ctx, argv, 'create');
  return 0;
}

/**
 * A create asked again after the paddockd that took it died (PADDOCK_LOST_CALL=1,
 * decision 0044): it is done if that paddockd persisted the sandbox as created with an
 * init that this very client launched (its child, so no other caller's create). Only
 * the pid file may be missing. A create cut short before that is removed when the
 * sandbox is attached, and made again by the call as usual.
 */
async function lostCreateDone(ctx: CliContext, argv: string[]): Promise<boolean> {
  if (!retriesLostCall(ctx) || !ctx.resident) return false;
  const p = parseArgs(argv, CREATE_FLAGS);
  const [id] = expectPositionals(p, 'create', ['container-id']) as [string];
  if (isIndexed(ctx.root, id)) return false;
  const engine = await ctx.engine();
  try {
    await engine.attach(id);
  } catch {
    return false;
  }
  const summary = engine.list().find((s) => s.id === id);
  const pid = summary?.pid;
  if (!summary || pid === undefined || ociState(summary, id).status !== 'created' || processParent(pid) !== ctx.resident.callerPid) return false;
  const pidFile = str(p, 'pid-file');
  if (pidFile) writePidFile(resolvePath(ctx, pidFile), pid);
  return true;
}
