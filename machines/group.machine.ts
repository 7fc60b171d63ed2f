import { assign, emit, enqueueActions, fromPromise, setup } from 'xstate';
import { exceedsIntensity, restartsInWindow, wantsRestart, type RestartPolicyName } from './restart-policy';
import type { ExitStatus, FailureInfo } from './types';
import { toFailureInfo } from './types';

/**
 * An OTP supervisor over an ordered group of children (sandboxes or nested groups).
 * On a child's failure it restarts that child (`one_for_one`), every child
 * (`one_for_all`), or that child and those started after it (`rest_for_one`); more
 * than `maxRestarts` restarts within `periodMs` and it stops all of its children and
 * ends `escalated`, which its parent group treats as the failure of one child.
 * Children start in order and stop in reverse order through the named actors
 * `startChildren`, `restartChildren` and `stopChildren`.
 *
 * Each child carries a generation, bumped when it is restarted: exits are tagged with
 * the generation of the instance that ended, so a late exit of a replaced instance is
 * never taken for a failure of its successor.
 */

export type GroupStrategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

export interface GroupChildSpec {
  readonly id: string;
  /** OTP restart type: always = permanent, on-failure = transient, never = temporary. Nested groups are always. */
  readonly policy: RestartPolicyName;
}

export interface GroupInput {
  readonly name: string;
  readonly strategy: GroupStrategy;
  readonly maxRestarts: number;
  readonly periodMs: number;
  readonly children: readonly GroupChildSpec[];
}

export interface ChildRef {
  readonly id: string;
  readonly generation: number;
}

export interface GroupContext extends GroupInput {
  generations: Record<string, number>;
  /** Children whose instance has ended and was not restarted (or is being stopped). */
  ended: Record<string, true>;
  restarts: number[];
  /** What the current restart stops (reverse start order) and starts (start order). */
  plan?: { stop: ChildRef[]; start: ChildRef[] };
  /** Exits that arrived while a restart was under way, answered once it is done. */
  pending: Array<{ childId: string; generation: number; exit: ExitStatus; at: number }>;
  reason?: string;
  error?: FailureInfo;
}

export type GroupEvent =
  | { type: 'child.exited'; childId: string; generation: number; exit: ExitStatus; at: number }
  | { type: 'stop' };

export type GroupEmitted =
  | { type: 'group.restarting'; group: string; childId: string; strategy: GroupStrategy; children: string[] }
  | { type: 'group.escalated'; group: string; reason: string }
  | { type: 'group.stopped'; group: string };

/** Which children a failure of `failed` restarts, in start order (pure; exported for tests). */
export function childrenToRestart(strategy: GroupStrategy, order: readonly string[], failed: string): string[] {
  if (strategy === 'one_for_one') return [failed];
  if (strategy === 'one_for_all') return [...order];
  const i = order.indexOf(failed);
  return i < 0 ? [failed] : order.slice(i);
}

const order = (c: GroupInput) => c.children.map((k) => k.id);

export const groupMachine = setup({
  types: {
    context: {} as GroupContext,
    input: {} as GroupInput,
    events: {} as GroupEvent,
    emitted: {} as GroupEmitted,
  },
  actors: {
    startChildren: fromPromise<void, { group: string; start: ChildRef[] }>(async () => {
      throw new Error('startChildren not provided');
    }),
    restartChildren: fromPromise<void, { group: string; stop: ChildRef[]; start: ChildRef[] }>(async () => {
      throw new Error('restartChildren not provided');
    }),
    stopChildren: fromPromise<void, { group: string; stop: ChildRef[] }>(async () => {
      throw new Error('stopChildren not provided');
    }),
  },
  actions: {
    markEnded: assign(({ context, event }) => (event.type === 'child.exited' ? { ended: { ...context.ended, [event.childId]: true as const } } : {})),
    planRestart: assign(({ context, event }) => {
      if (event.type !== 'child.exited') return {};
      const ids = childrenToRestart(context.strategy, order(context), event.childId);
      const ended = { ...context.ended, [event.childId]: true as const };
      // Stop what still runs of the set, newest first; the failed one has ended already.
      const stop = [...ids].reverse().filter((id) => !ended[id]).map((id) => ({ id, generation: context.generations[id] ?? 0 }));
      const generations = { ...context.generations };
      for (const id of ids) generations[id] = (generations[id] ?? 0) + 1;
      const rest = { ...ended };
      for (const id of ids) delete rest[id];
      return {
        generations,
        ended: rest,
        restarts: [...restartsInWindow(context.restarts, event.at, context.periodMs), event.at],
        plan: { stop, start: ids.map((id) => ({ id, generation: generations[id] as number })) },
      };
    }),
    keepPending: assign(({ context, event }) =>
      event.type === 'child.exited' ? { pending: [...context.pending, { childId: event.childId, generation: event.generation, exit: event.exit, at: event.at }] } : {},
    ),
    replayPending: enqueueActions(({ context, enqueue }) => {
      if (context.pending.length === 0) return;
      for (const p of context.pending) enqueue.raise({ type: 'child.exited', ...p });
      enqueue.assign({ pending: [] });
    }),
    clearPlan: assign({ plan: undefined }),
    recordFailure: assign((_, error: unknown) => ({ error: toFailureInfo(error) })),
    giveUp: assign(({ context, event }) => ({
      reason:
        event.type === 'child.exited'
          ? `group ${context.name}: child ${event.childId} failed and the group made more than ${context.maxRestarts} restarts within ${context.periodMs} ms`
          : `group ${context.name} gave up`,
    })),
    failedToStart: assign(({ context }) => ({
      reason: `group ${context.name}: a child could not be started${context.error ? ` (${context.error.message})` : ''}`,
    })),
    emitRestarting: emit(({ context, event }) => ({
      type: 'group.restarting' as const,
      group: context.name,
      childId: event.type === 'child.exited' ? event.childId : '',
      strategy: context.strategy,
      children: (context.plan?.start ?? []).map((c) => c.id),
    })),
    emitEscalated: emit(({ context }) => ({ type: 'group.escalated' as const, group: context.name, reason: context.reason ?? 'escalated' })),
    emitStopped: emit(({ context }) => ({ type: 'group.stopped' as const, group: context.name })),
  },
  guards: {
    isStaleOrUnknown: ({ context, event }) =>
      event.type === 'child.exited' && (context.generations[event.childId] === undefined || context.generations[event.childId] !== event.generation || context.ended[event.childId] === true),
    isNotRestarted: ({ context, event }) => {
      if (event.type !== 'child.exited') return false;
      const spec = context.children.find((c) => c.id === event.childId);
      return !spec || !wantsRestart(spec.policy, event.exit);
    },
    isIntensityExceeded: ({ context, event }) => event.type === 'child.exited' && exceedsIntensity(context.restarts, event.at, context.maxRestarts, context.periodMs),
  },
}).createMachine({
  id: 'group',
  context: ({ input }) => ({
    ...input,
    generations: Object.fromEntries(input.children.map((c) => [c.id, 0])),
    ended: {},
    restarts: [],
    pending: [],
  }),
  initial: 'starting',
  states: {
    starting: {
      description: 'Starting the children in order; a failure stops those started and escalates.',
      invoke: {
        src: 'startChildren',
        input: ({ context }) => ({ group: context.name, start: context.children.map((c) => ({ id: c.id, generation: 0 })) }),
        onDone: 'running',
        onError: { target: 'escalating', actions: [{ type: 'recordFailure', params: ({ event }: { event: { error: unknown } }) => event.error }, 'failedToStart'] },
      },
      on: {
        'child.exited': { actions: 'keepPending' },
        stop: 'stopping',
      },
    },
    running: {
      entry: 'replayPending',
      on: {
        'child.exited': [
          { guard: 'isStaleOrUnknown' },
          { guard: 'isNotRestarted', actions: 'markEnded' },
          { guard: 'isIntensityExceeded', target: 'escalating', actions: ['markEnded', 'giveUp'] },
          { target: 'restarting', actions: ['planRestart', 'emitRestarting'] },
        ],
        stop: 'stopping',
      },
    },
    restarting: {
      description: 'Stopping (newest first) and starting again (in order) the children the strategy picked.',
      invoke: {
        src: 'restartChildren',
        input: ({ context }) => ({ group: context.name, stop: context.plan?.stop ?? [], start: context.plan?.start ?? [] }),
        onDone: { target: 'running', actions: 'clearPlan' },
        onError: {
          target: 'escalating',
          actions: [{ type: 'recordFailure', params: ({ event }: { event: { error: unknown } }) => event.error }, 'failedToStart', 'clearPlan'],
        },
      },
      on: {
        'child.exited': [{ guard: 'isStaleOrUnknown' }, { actions: 'keepPending' }],
        stop: 'stopping',
      },
    },
    escalating: {
      description: 'Intensity exceeded or a start failed: stopping every child before reporting to the parent.',
      invoke: {
        src: 'stopChildren',
        input: ({ context }) => ({
          group: context.name,
          stop: [...context.children].reverse().filter((c) => !context.ended[c.id]).map((c) => ({ id: c.id, generation: context.generations[c.id] ?? 0 })),
        }),
        onDone: 'escalated',
        onError: 'escalated',
      },
    },
    escalated: {
      description: 'The group gave up; its parent applies its own strategy to it as one child.',
      type: 'final',
      entry: 'emitEscalated',
    },
    stopping: {
      invoke: {
        src: 'stopChildren',
        input: ({ context }) => ({
          group: context.name,
          stop: [...context.children].reverse().filter((c) => !context.ended[c.id]).map((c) => ({ id: c.id, generation: context.generations[c.id] ?? 0 })),
        }),
        onDone: 'stopped',
        onError: 'stopped',
      },
    },
    stopped: {
      type: 'final',
      entry: 'emitStopped',
    },
  },
});

export type GroupMachine = typeof groupMachine;
