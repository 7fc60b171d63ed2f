import type { Engine, SandboxSummary } from '../../actors/engine/api';
import { resolveContainer, type ContainerRef } from '../container-index';
import { bundleLabels } from '../../specs/load';
import { StateError } from '../../base/errors';

/** The OCI state document (runtime-spec "State"), as `runc state` prints it. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
  bundle: string;
  rootfs?: string;
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/**
 * The OCI state of a sandbox's root container, or of `containerId` added to it. As
 * runsc, an added container reports the sandbox's pid (paddock-init) while it is
 * created or running: it is the process that exists for as long as the container can.
 */
export function ociState(s: SandboxSummary, containerId?: string): OciState {
  if (containerId !== undefined && containerId !== s.id) {
    const c = s.containers.find((x) => x.id === containerId);
    if (!c) throw notFound(containerId);
    const cs = c.status === 'failed' ? 'stopped' : c.status;
    return { ociVersion: '1.0.2', id: c.id, status: cs, pid: cs === 'stopped' ? 0 : (s.pid ?? 0), bundle: c.bundle, ...bundleLabels(c.bundle), created: s.createdAt, owner: '' };
  }
  const status = s.status === 'failed' ? 'stopped' : s.status;
  return {
    ociVersion: '1.0.2',
    id: s.id,
    status,
    // The pid conmon/containerd wait on: paddock-init, which exits with the container's status.
    pid: status === 'stopped' ? 0 : (s.pid ?? 0),
    bundle: s.bundle,
    ...bundleLabels(s.bundle),
    created: s.createdAt,
    owner: '',
  };
}

function notFound(id: string): Error {
  return new StateError('ESANDBOX_NOT_FOUND', `container ${id} does not exist`);
}

/**
 * Resolves a CLI id to its sandbox (see container-index.ts), attaches that sandbox and
 * checks the container is in it. A stale index entry (sandbox gone) is "does not exist".
 */
export async function resolveAttached(engine: Engine, root: string, id: string): Promise<ContainerRef & { summary: SandboxSummary }> {
  const ref = resolveContainer(root, id);
  try {
    await engine.attach(ref.sandboxId);
  } catch (e) {
    if (ref.sub && (e as { code?: string }).code === 'ESANDBOX_NOT_FOUND') throw notFound(id);
    throw e;
  }
  const summary = engine.list().find((x) => x.id === ref.sandboxId);
  if (!summary || (ref.sub && !summary.containers.some((c) => c.id === ref.containerId))) throw notFound(id);
  return { ...ref, summary };
}

/**
 * The native client asks a call again when the paddockd that took it died before
 * answering (PADDOCK_LOST_CALL=1, decision 0044): the first paddockd may have done it.
 * Only verbs whose effect the state shows take this: start, kill, delete, which then
 * count "already done" as done instead of an error.
 */
export function retriesLostCall(ctx: { io: { env: NodeJS.ProcessEnv } }): boolean {
  return ctx.io.env.PADDOCK_LOST_CALL === '1';
}

/** runc's convention for a container killed by a signal: 128 + signal. */
export function exitCodeOf(exit: { exitCode: number | null; signal: number | null }): number {
  if (exit.signal !== null) return 128 + exit.signal;
  return exit.exitCode ?? 255;
}
