import { createActor, type Actor, type AnyActorRef } from 'xstate';
import type { sandboxMachine } from '../../machines/sandbox.machine';
import type { EngineCore } from '../engine/core';
import { toStatus } from './summary';
import type { Runtime } from './runtime';

/**
 * Starts a sandbox's actor (new, or restored from its persisted snapshot) and turns
 * its transitions and its children's into the engine's `state` events, the supervisor
 * machine's registry and coalesced state writes.
 */
export function startSandboxActor(core: EngineCore, rt: Runtime, opts: { input: { sandboxId: string; bundleDir: string } } | { snapshot: unknown }): Actor<typeof sandboxMachine> {
  const actor = createActor(core.machine, {
    ...(opts as object),
    // Named after the sandbox, so inspectors show `web1`, not `x:3`.
    id: rt.id,
    systemId: rt.id,
    inspect: core.inspection.observe,
  } as Parameters<typeof createActor<typeof sandboxMachine>>[1]);
  rt.actor = actor;
  let last = '';
  let lastStatus: string | undefined;
  const lastChild = new Map<string, string>();
  actor.subscribe({
    next: (snap) => {
      const value = String(snap.value);
      if (value !== last) {
        last = value;
        rt.log.debug({ state: value }, 'sandbox state');
        // The supervisor's registry keeps the OCI status only: `starting` is still `created`.
        const status = toStatus(value);
        if (status !== lastStatus) {
          lastStatus = status;
          core.supervisor.send({ type: 'sandbox.statusChanged', sandboxId: rt.id, status });
        }
        core.emit({ type: 'state', sandboxId: rt.id, status: value });
      }
      for (const [cid, ref] of Object.entries(snap.children)) {
        // Invoked effect actors (launch, destroy) are children too; only machines we spawned have a status.
        if (snap.context.containers[cid] === undefined && snap.context.processes[cid] === undefined) continue;
        const child = (ref as AnyActorRef | undefined)?.getSnapshot();
        if (!child) continue;
        const v = String(child.value);
        if (lastChild.get(cid) !== v) {
          lastChild.set(cid, v);
          const ctx = child.context as { containerId: string; pid?: number };
          core.emit({
            type: 'state',
            sandboxId: rt.id,
            containerId: ctx.containerId,
            ...(cid.startsWith('pid-') && ctx.pid !== undefined ? { pid: ctx.pid } : {}),
            status: v,
          });
        }
      }
      core.persist(rt);
    },
    error: (err) => rt.log.error({ err }, 'sandbox actor failed'),
  });
  actor.start();
  return actor;
}
