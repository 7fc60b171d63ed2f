import { assign, emit, fromPromise, setup } from 'xstate';
import { backoffDelay, exceedsIntensity, restartsInWindow, wantsRestart, type RestartPolicy } from './restart-policy';
import type { ExitStatus, FailureInfo } from './types';
import { toFailureInfo } from './types';

/**
 * The restart policy of one supervised child (a sandbox, or a container inside one).
 * It learns of the child's end from the fact `child.exited`, decides by policy and
 * intensity, waits out the backoff as the named delay `backoffDelay`, and relaunches
 * through the named actor `relaunch`. It never does I/O and has no clock: times come
 * in on the events (`at`, `now`) and randomness for jitter on `child.exited`.
 */

export interface RestartInput {
  /** `<sandboxId>` or `<sandboxId>/<containerId>`. */
  readonly childId: string;
  readonly policy: RestartPolicy;
}

export interface RestartContext extends RestartInput {
  /** Restarts since the last healthy run of `resetAfterMs`: the backoff exponent. */
  attempt: number;
  /** Times (ms since the epoch) of restarts decided within the intensity window. */
  restarts: number[];
  lastExit?: ExitStatus;
  /** When the last exit was seen: a relaunch treats any instance created after it as its own. */
  lastExitAt?: number;
  /** Jitter draw of the last exit, reused when a relaunch fails (that failure has no draw). */
  random: number;
  delayMs?: number;
  /** Absolute time the backoff ends, so a restored machine waits only what is left. */
  deadline?: number;
  /** An exit of the new instance seen while its relaunch was still being confirmed. */
  pendingExit?: { exit: ExitStatus; at: number; random: number };
  /** Why supervision ended (`stopped` or `failed`). */
  reason?: string;
  error?: FailureInfo;
}

export interface RelaunchInput {
  readonly childId: string;
  readonly attempt: number;
  /** Time of the exit being answered: an instance created after it is this restart's. */
  readonly since: number;
}

export type RestartEvent =
  | { type: 'child.exited'; exit: ExitStatus; at: number; random?: number }
  /** The user destroyed or killed the child through the API: never restart it. */
  | { type: 'stop' }
  /** A restored machine is running again (after a supervisor restart): re-arm timers. */
  | { type: 'supervisor.resumed'; now: number };

export type RestartEmitted =
  | { type: 'restart.scheduled'; childId: string; attempt: number; delayMs: number; exit: ExitStatus }
  | { type: 'restart.launched'; childId: string; attempt: number }
  | { type: 'restart.gaveUp'; childId: string; reason: string; restarts: number }
  | { type: 'restart.stopped'; childId: string; reason: string };

function describeExit(e: ExitStatus | undefined): string {
  if (!e) return 'an unknown status';
  if (e.signal !== null) return `signal ${e.signal}`;
  if (e.exitCode !== null) return `exit code ${e.exitCode}`;
  return 'a lost status';
}

export const restartMachine = setup({
  types: {
    context: {} as RestartContext,
    input: {} as RestartInput,
    events: {} as RestartEvent,
    emitted: {} as RestartEmitted,
  },
  actors: {
    relaunch: fromPromise<void, RelaunchInput>(async () => {
      throw new Error('relaunch not provided');
    }),
  },
  actions: {
    recordExit: assign(({ event }) =>
      event.type === 'child.exited' ? { lastExit: event.exit, lastExitAt: event.at, random: event.random ?? 0 } : {},
    ),
    keepPendingExit: assign(({ event }) =>
      event.type === 'child.exited' ? { pendingExit: { exit: event.exit, at: event.at, random: event.random ?? 0 } } : {},
    ),
    applyPendingExit: assign(({ context }) =>
      context.pendingExit
        ? { lastExit: context.pendingExit.exit, lastExitAt: context.pendingExit.at, random: context.pendingExit.random, pendingExit: undefined }
        : {},
    ),
    /** A relaunch that fails is one more failure of the child, seen when the backoff ended. */
    recordLaunchFailure: assign(({ context }, error: unknown) => ({
      lastExit: { exitCode: null, signal: null },
      lastExitAt: context.deadline ?? context.lastExitAt ?? 0,
      error: toFailureInfo(error),
    })),
    scheduleRestart: assign(({ context }) => {
      const at = context.lastExitAt ?? 0;
      const attempt = context.attempt + 1;
      const delayMs = backoffDelay(context.policy.backoff, attempt, context.random);
      return {
        attempt,
        restarts: [...restartsInWindow(context.restarts, at, context.policy.periodMs), at],
        delayMs,
        deadline: at + delayMs,
      };
    }),
    remainingDelay: assign(({ context, event }) =>
      event.type === 'supervisor.resumed' && context.deadline !== undefined ? { delayMs: Math.max(0, context.deadline - event.now) } : {},
    ),
    resetAttempts: assign({ attempt: 0 }),
    clearError: assign({ error: undefined }),
    giveUp: assign(({ context }) => ({
      reason:
        `${context.childId} ended with ${describeExit(context.lastExit)}` +
        `${context.error ? ` (${context.error.message})` : ''}: more than ${context.policy.maxRestarts} restarts ` +
        `within ${context.policy.periodMs} ms`,
    })),
    endByPolicy: assign(({ context }) => ({
      reason: `${context.childId} ended with ${describeExit(context.lastExit)}; policy ${context.policy.policy} does not restart it`,
    })),
    endByUser: assign(({ context }) => ({ reason: `${context.childId} was stopped through the API` })),
    emitScheduled: emit(({ context }) => ({
      type: 'restart.scheduled' as const,
      childId: context.childId,
      attempt: context.attempt,
      delayMs: context.delayMs ?? 0,
      exit: context.lastExit ?? { exitCode: null, signal: null },
    })),
    emitLaunched: emit(({ context }) => ({ type: 'restart.launched' as const, childId: context.childId, attempt: context.attempt })),
    emitGaveUp: emit(({ context }) => ({
      type: 'restart.gaveUp' as const,
      childId: context.childId,
      reason: context.reason ?? 'gave up',
      restarts: context.restarts.length,
    })),
    emitStopped: emit(({ context }) => ({ type: 'restart.stopped' as const, childId: context.childId, reason: context.reason ?? 'stopped' })),
  },
  guards: {
    isNotRestarted: ({ context }) => !wantsRestart(context.policy.policy, context.lastExit ?? { exitCode: null, signal: null }),
    isIntensityExceeded: ({ context }) =>
      exceedsIntensity(context.restarts, context.lastExitAt ?? 0, context.policy.maxRestarts, context.policy.periodMs),
    hasPendingExit: ({ context }) => context.pendingExit !== undefined,
  },
  delays: {
    backoffDelay: ({ context }) => context.delayMs ?? 0,
    resetAfter: ({ context }) => context.policy.resetAfterMs,
  },
}).createMachine({
  id: 'restart',
  context: ({ input }) => ({ ...input, attempt: 0, restarts: [], random: 0 }),
  initial: 'running',
  states: {
    running: {
      description: 'The child runs; after resetAfterMs of it the backoff starts over from initialMs.',
      after: { resetAfter: { actions: 'resetAttempts' } },
      on: {
        'child.exited': { target: 'exited', actions: 'recordExit' },
        stop: { target: 'stopped', actions: 'endByUser' },
        'supervisor.resumed': { target: 'running', reenter: true },
      },
    },
    exited: {
      description: 'Deciding: not restarted by policy, given up by intensity, or a backoff.',
      always: [
        { guard: 'isNotRestarted', target: 'stopped', actions: 'endByPolicy' },
        { guard: 'isIntensityExceeded', target: 'failed', actions: 'giveUp' },
        { target: 'backoff', actions: ['scheduleRestart', 'emitScheduled'] },
      ],
    },
    backoff: {
      description: 'Waiting out the backoff (named delay backoffDelay, from context.delayMs).',
      after: { backoffDelay: 'restarting' },
      on: {
        stop: { target: 'stopped', actions: 'endByUser' },
        'supervisor.resumed': { target: 'backoff', reenter: true, actions: 'remainingDelay' },
      },
    },
    restarting: {
      description: 'The relaunch actor replaces the exited instance with a new one.',
      entry: ['clearError', 'emitLaunched'],
      invoke: {
        src: 'relaunch',
        input: ({ context }) => ({ childId: context.childId, attempt: context.attempt, since: context.lastExitAt ?? 0 }),
        onDone: [
          { guard: 'hasPendingExit', target: 'exited', actions: 'applyPendingExit' },
          { target: 'running' },
        ],
        onError: { target: 'exited', actions: { type: 'recordLaunchFailure', params: ({ event }: { event: { error: unknown } }) => event.error } },
      },
      on: {
        // The new instance may end before its start is confirmed; its exit is answered after.
        'child.exited': { actions: 'keepPendingExit' },
        stop: { target: 'stopped', actions: 'endByUser' },
      },
    },
    stopped: {
      description: 'Not supervised any more: the policy said so, or the user stopped the child.',
      type: 'final',
      entry: 'emitStopped',
    },
    failed: {
      description: 'Given up: more than maxRestarts restarts within periodMs; context.reason says why.',
      type: 'final',
      entry: 'emitGaveUp',
    },
  },
});

export type RestartMachine = typeof restartMachine;
