import { createActor, fromPromise } from 'xstate';
import type { Actor } from 'xstate';
import type { healthMachine, HealthEmitted } from '../../machines/health.machine';
import { PaddockError } from '../../base/errors';
import type { HealthOptions } from '../engine/api';

/** Defaults: a probe every 10 s, 2 s to answer, 3 misses in a row (Kubernetes' liveness probe's shape). */
export const HEALTH_DEFAULTS = { intervalMs: 10_000, timeoutMs: 2_000, failureThreshold: 3 } as const;

export type ResolvedHealth = { readonly intervalMs: number; readonly timeoutMs: number; readonly failureThreshold: number };

/** Checks `createSandbox({ health })`; bad values are EINVALID_ARGUMENT naming the field, before anything is created. */
export function resolveHealth(opts: HealthOptions | boolean | undefined): ResolvedHealth | undefined {
  if (opts === undefined || opts === false) return undefined;
  if (opts === true) return { ...HEALTH_DEFAULTS };
  if (typeof opts !== 'object' || opts === null) {
    throw new PaddockError('EINVALID_ARGUMENT', 'health: must be true, false or an object', { field: 'health' });
  }
  const out = { ...HEALTH_DEFAULTS, ...opts };
  const check = (name: keyof ResolvedHealth, min: number, integer: boolean) => {
    const v = out[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      throw new PaddockError('EINVALID_ARGUMENT', `health.${name}: must be ${integer ? 'an integer' : 'a number'} >= ${min}`, {
        field: `health.${name}`,
      });
    }
  };
  check('intervalMs', 1, false);
  check('timeoutMs', 1, false);
  check('failureThreshold', 1, true);
  return { intervalMs: out.intervalMs, timeoutMs: out.timeoutMs, failureThreshold: out.failureThreshold };
}

export type HealthActor = Actor<typeof healthMachine>;

/**
 * Starts watching one sandbox: `ping` is one control request bounded by the probe's
 * timeout, `onUnhealthy` is what the engine does with a sandbox that stopped answering.
 */
export function startHealthCheck(
  sandboxId: string,
  health: ResolvedHealth,
  ping: (timeoutMs: number) => Promise<void>,
  onUnhealthy: (e: HealthEmitted) => void,
  inspect?: (event: unknown) => void,
): HealthActor {
  const machine = healthMachineDef().provide({
    actors: { ping: fromPromise(() => ping(health.timeoutMs)) },
  });
  const actor = createActor(machine, {
    input: { sandboxId, ...health },
    id: `health:${sandboxId}`,
    systemId: `health:${sandboxId}`,
    ...(inspect ? { inspect: inspect as never } : {}),
  });
  actor.on('unhealthy', onUnhealthy);
  actor.start();
  return actor;
}

/** Built at its first use: a call whose sandboxes have no health check never builds it (docs/decisions/0007). */
function healthMachineDef(): typeof healthMachine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../machines/health.machine') as typeof import('../../machines/health.machine')).healthMachine;
}
