import { assign, emit, fromPromise, setup } from 'xstate';

/**
 * Liveness of one sandbox: paddock-init is pinged over its control channel every
 * `intervalMs`; an answer that does not come within `timeoutMs` counts as a failure,
 * and `failureThreshold` failures in a row make the sandbox `unhealthy`. The machine
 * only decides; what happens to an unhealthy sandbox (kill it, so its restart policy
 * restarts it or marks it failed) is the `reportUnhealthy` action the engine supplies.
 *
 * The timeout is the machine's own named delay rather than the ping's: a ping that
 * hangs for any reason (a stopped init, a wedged socket) still ends the probe.
 */

export interface HealthInput {
  readonly sandboxId: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly failureThreshold: number;
}

export interface HealthContext extends HealthInput {
  /** Failed probes in a row; reset by any answer. */
  failures: number;
  /** Probes sent so far (the inspector shows it; tests count on it). */
  probes: number;
  lastError?: string;
}

export type HealthEvent = { type: 'stop' };

export type HealthEmitted = { type: 'unhealthy'; sandboxId: string; failures: number; reason: string };

export const healthMachine = setup({
  types: {
    context: {} as HealthContext,
    input: {} as HealthInput,
    events: {} as HealthEvent,
    emitted: {} as HealthEmitted,
  },
  actors: {
    // Supplied by the engine: one PING request to paddock-init.
    ping: fromPromise<void, { sandboxId: string }>(async () => {
      throw new Error('ping actor not provided');
    }),
  },
  delays: {
    healthInterval: ({ context }) => context.intervalMs,
    healthTimeout: ({ context }) => context.timeoutMs,
  },
  actions: {
    countProbe: assign(({ context }) => ({ probes: context.probes + 1 })),
    recordAnswer: assign({ failures: 0, lastError: undefined }),
    recordFailure: assign(({ context }, reason: string) => ({ failures: context.failures + 1, lastError: reason })),
    reportUnhealthy: emit(({ context }) => ({
      type: 'unhealthy' as const,
      sandboxId: context.sandboxId,
      failures: context.failures,
      reason: context.lastError ?? 'no answer',
    })),
  },
  guards: {
    thresholdReached: ({ context }) => context.failures >= context.failureThreshold,
  },
}).createMachine({
  id: 'health',
  context: ({ input }) => ({ ...input, failures: 0, probes: 0 }),
  initial: 'waiting',
  on: { stop: '.stopped' },
  states: {
    waiting: {
      after: { healthInterval: 'probing' },
    },
    probing: {
      entry: 'countProbe',
      invoke: {
        src: 'ping',
        input: ({ context }) => ({ sandboxId: context.sandboxId }),
        onDone: { target: 'waiting', actions: 'recordAnswer' },
        onError: {
          target: 'judging',
          actions: {
            type: 'recordFailure',
            params: ({ event }) => (event.error instanceof Error ? event.error.message : String(event.error)),
          },
        },
      },
      after: {
        healthTimeout: {
          target: 'judging',
          actions: { type: 'recordFailure', params: ({ context }) => `no answer within ${context.timeoutMs} ms` },
        },
      },
    },
    judging: {
      always: [{ guard: 'thresholdReached', target: 'unhealthy' }, { target: 'waiting' }],
    },
    unhealthy: {
      description: 'The sandbox stopped answering; the engine kills it and its restart policy takes over.',
      entry: 'reportUnhealthy',
      type: 'final',
    },
    stopped: {
      description: 'The sandbox exited or was destroyed: nothing left to watch.',
      type: 'final',
    },
  },
});

export type HealthMachine = typeof healthMachine;
