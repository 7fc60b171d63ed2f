import type { AnyActorRef } from 'xstate';
import type { ExitStatus, LifecycleStatus } from '../../machines/types';
import type { ContainerSummary, SandboxSummary } from '../engine/api';
import type { PodSandboxView } from '../pod/namespaces';
import type { Runtime } from './runtime';

/* What a sandbox's machines say about it, as the engine reports it (list, addContainer, pod namespaces). */

export function sandboxSummary(rt: Runtime): SandboxSummary {
  const snap = rt.actor.getSnapshot();
  const containers: ContainerSummary[] = [];
  for (const cid of Object.keys(snap.context.containers)) {
    const ref = snap.children[cid] as AnyActorRef | undefined;
    const cs = ref?.getSnapshot() as { value: string; context: { pid?: number; hostPid?: number; exit?: ExitStatus } } | undefined;
    containers.push({
      id: cid,
      status: toStatus(cs?.value ?? 'stopped'),
      ...(cs?.context.pid !== undefined ? { pid: cs.context.pid } : {}),
      ...(cs?.context.hostPid !== undefined ? { hostPid: cs.context.hostPid } : {}),
      ...(cs?.context.exit ? { exit: cs.context.exit } : {}),
      bundle: snap.context.containers[cid]?.bundleDir ?? '',
    });
  }
  return {
    id: rt.id,
    status: toStatus(String(snap.value)),
    ...(snap.context.initHostPid !== undefined ? { pid: snap.context.initHostPid } : {}),
    bundle: snap.context.bundleDir,
    createdAt: rt.createdAt,
    ...(snap.context.rootContainerId ? { rootContainerId: snap.context.rootContainerId } : {}),
    containers,
    ...(snap.context.exit ? { exit: snap.context.exit } : {}),
  };
}

/** What podNamespaces needs to know of a sandbox: its init and its containers with a process, root first. */
export function podView(rt: Runtime): PodSandboxView {
  const s = sandboxSummary(rt);
  const rootId = rt.actor.getSnapshot().context.rootContainerId;
  const live = s.containers.filter((c) => c.hostPid !== undefined && c.status !== 'stopped' && c.status !== 'failed');
  const ordered = [...live.filter((c) => c.id === rootId), ...live.filter((c) => c.id !== rootId)];
  return { sandboxId: rt.id, initPid: s.pid ?? 0, containers: ordered.map((c) => ({ id: c.id, hostPid: c.hostPid as number })) };
}

/** The OCI status word for a machine state: transient states report the stable state they leave or enter. */
export function toStatus(value: string): LifecycleStatus {
  switch (value) {
    case 'creating':
    case 'created':
    case 'running':
    case 'paused':
    case 'stopped':
    case 'failed':
      return value;
    case 'starting':
      return 'created';
    case 'pausing':
    case 'checkpointing':
      return 'running';
    case 'restoring':
      return 'created';
    case 'resuming':
      return 'paused';
    case 'exited':
    case 'destroying':
    case 'destroyed':
      return 'stopped';
    default:
      return 'failed';
  }
}
