import type { Message } from '../../protocols/messages';
import type { EngineCore } from '../engine/core';
import { startHealthCheck } from './health';
import type { Runtime } from './runtime';
import { stopNetwork } from '../network';

/*
 * What the engine hears from a sandbox's paddock-init: its events, its exit (its
 * pidfd), and its answers to the liveness probe.
 */

export function onEvent(core: EngineCore, rt: Runtime, m: Message): void {
  // init appends every exit to exits.log before it publishes it, so the log has it now.
  if (m.type === 'EV_EXITED') core.exits.readLog(rt);
}

/** init's pidfd fired: every status is in exits.log by now (init writes before it exits). */
export function onInitExit(core: EngineCore, rt: Runtime): void {
  rt.initAlive = false;
  rt.watchToken = undefined;
  core.exits.readLog(rt);
  core.detach(rt);
  rt.initExited.resolve();
  core.exits.reportLost(rt);
  if (rt.actor.getSnapshot().status === 'active') rt.actor.send({ type: 'init.exited' });
  // The sandbox's network ends with it: its forwards must not hold the host's ports.
  void stopNetwork(core, rt).catch((e: Error) => rt.log.warn({ err: e.message, step: 'network' }, 'could not stop the network helper'));
}

/** Starts the liveness probe of a sandbox whose init is alive (createSandbox's `health`). */
export function startHealth(core: EngineCore, rt: Runtime): void {
  if (!rt.health || rt.healthActor || !rt.initAlive) return;
  rt.healthActor = startHealthCheck(
    rt.id,
    rt.health,
    async (timeoutMs) => {
      await core.control(rt).request({ type: 'PING' }, timeoutMs);
    },
    (e) => {
      rt.healthActor = undefined;
      rt.log.warn({ failures: e.failures, reason: e.reason }, 'sandbox stopped answering; killing it');
      if (!core.closed) core.emit({ type: 'unhealthy', sandboxId: rt.id, failures: e.failures, reason: e.reason });
      // SIGKILL through the pidfd reaches init even when it is stopped or wedged; its exit
      // then arrives through the watcher like any other.
      if (rt.pidfd !== undefined && rt.initAlive) {
        try {
          core.native.pidfdSendSignal(rt.pidfd, 9);
        } catch (err) {
          rt.log.warn({ err }, 'could not kill the unresponsive sandbox');
        }
      }
    },
    core.inspect,
  );
}
