import { assign, emit, fromCallback, fromPromise, setup } from 'xstate';
import { backoffDelay, exceedsIntensity, restartsInWindow, type RestartPolicy } from './restart-policy';

/**
 * The network helper of one sandbox (pasta, for `network: 'user'`; docs/decisions/0041):
 * started once init's namespaces exist, watched while it runs, and when it dies either
 * started again, per the sandbox's restart policy (its backoff and intensity), or given
 * up, so the engine fails the sandbox. The machine only decides; starting, watching
 * and stopping the process are the named actors the engine supplies, and each fact
 * (`up`, `down`, `gaveUp`) is emitted for the engine to publish.
 */

export interface NetworkInput {
  readonly sandboxId: string;
  /** The sandbox's restart policy; absent (or `never`): a helper that dies is not restarted. */
  readonly restart?: RestartPolicy;
  /** A helper found running on reattach: watch it instead of starting one. */
  readonly running?: HelperProcess;
}

export interface HelperProcess {
  readonly pid: number;
  readonly startTime: number;
}

export interface NetworkContext {
  readonly sandboxId: string;
  readonly restart?: RestartPolicy;
  helper?: HelperProcess;
  /** When each restart happened (ms), for the intensity window. */
  restarts: number[];
  lastError?: string;
}

export type NetworkEvent =
  | { type: 'stop' }
  /** The helper exited; `at` is the time it was seen (ms), given by the watcher so the machine keeps no clock. */
  | { type: 'helper.exited'; at: number; reason: string };

export type NetworkEmitted =
  | { type: 'up'; sandboxId: string; helper: HelperProcess; restarts: number }
  | { type: 'down'; sandboxId: string; reason: string; restartInMs?: number }
  | { type: 'gaveUp'; sandboxId: string; reason: string };

export const networkMachine = setup({
  types: {
    context: {} as NetworkContext,
    input: {} as NetworkInput,
    events: {} as NetworkEvent,
    emitted: {} as NetworkEmitted,
  },
  actors: {
    /** Starts the helper and resolves once the sandbox's network is configured. */
    startHelper: fromPromise<HelperProcess, { sandboxId: string }>(async () => {
      throw new Error('startHelper not provided');
    }),
    /** Sends `helper.exited` once the helper's process ends; the disposer stops watching. */
    watchHelper: fromCallback<NetworkEvent, { sandboxId: string; helper: HelperProcess }>(() => {
      throw new Error('watchHelper not provided');
    }),
  },
  delays: {
    restartDelay: ({ context }) => (context.restart ? backoffDelay(context.restart.backoff, context.restarts.length) : 0),
  },
  guards: {
    isFound: ({ context }) => context.helper !== undefined,
    mayRestart: ({ context, event }) => {
      const r = context.restart;
      if (!r || r.policy === 'never' || event.type !== 'helper.exited') return false;
      return !exceedsIntensity(context.restarts, event.at, r.maxRestarts, r.periodMs);
    },
  },
  actions: {
    recordHelper: assign((_, helper: HelperProcess) => ({ helper, lastError: undefined })),
    recordExit: assign(({ context, event }) => {
      if (event.type !== 'helper.exited') return {};
      const restarts = context.restart ? restartsInWindow([...context.restarts, event.at], event.at, context.restart.periodMs) : context.restarts;
      return { helper: undefined, lastError: event.reason, restarts };
    }),
    recordFailure: assign((_, reason: string) => ({ helper: undefined, lastError: reason })),
    reportUp: emit(({ context }) => ({ type: 'up' as const, sandboxId: context.sandboxId, helper: context.helper as HelperProcess, restarts: context.restarts.length })),
    reportRestarting: emit(({ context }) => ({
      type: 'down' as const,
      sandboxId: context.sandboxId,
      reason: context.lastError ?? 'the helper exited',
      restartInMs: context.restart ? backoffDelay(context.restart.backoff, context.restarts.length) : 0,
    })),
    reportGaveUp: emit(({ context }) => ({ type: 'gaveUp' as const, sandboxId: context.sandboxId, reason: context.lastError ?? 'the helper exited' })),
  },
}).createMachine({
  id: 'network',
  context: ({ input }) => ({ sandboxId: input.sandboxId, ...(input.restart ? { restart: input.restart } : {}), ...(input.running ? { helper: input.running } : {}), restarts: [] }),
  initial: 'deciding',
  on: { stop: '.stopped' },
  states: {
    deciding: {
      always: [{ guard: 'isFound', target: 'up' }, { target: 'starting' }],
    },
    starting: {
      description: 'The helper is starting and configuring the sandbox\'s interface and forwards.',
      invoke: {
        src: 'startHelper',
        input: ({ context }) => ({ sandboxId: context.sandboxId }),
        onDone: { target: 'up', actions: { type: 'recordHelper', params: ({ event }) => event.output } },
        onError: {
          target: 'gaveUp',
          actions: { type: 'recordFailure', params: ({ event }) => (event.error instanceof Error ? event.error.message : String(event.error)) },
        },
      },
    },
    up: {
      description: 'The helper runs: the sandbox has its network.',
      entry: 'reportUp',
      invoke: {
        src: 'watchHelper',
        input: ({ context }) => ({ sandboxId: context.sandboxId, helper: context.helper as HelperProcess }),
      },
      on: {
        'helper.exited': [
          { guard: 'mayRestart', target: 'restarting', actions: 'recordExit' },
          { target: 'gaveUp', actions: 'recordExit' },
        ],
      },
    },
    restarting: {
      description: 'The helper died; it is started again after the policy\'s backoff.',
      entry: 'reportRestarting',
      after: { restartDelay: 'starting' },
    },
    gaveUp: {
      description: 'The helper could not be kept running: the engine fails the sandbox.',
      entry: 'reportGaveUp',
      type: 'final',
    },
    stopped: {
      description: 'The sandbox is being destroyed or detached: nothing left to supervise.',
      type: 'final',
    },
  },
});

export type NetworkMachine = typeof networkMachine;
