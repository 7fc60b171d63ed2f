import { assign, cancel, emit, enqueueActions, fromPromise, setup, spawnChild } from 'xstate';
import type { FailureInfo } from './types';
import { toFailureInfo } from './types';
import { backoffDelay } from './restart-policy';

/**
 * A warm pool: keeps `size` sandboxes created (paddock-init up, root container planned
 * but not started) so that an acquire costs only the start. The machine is the
 * bookkeeping — which members are idle, who is waiting, when to refill, when to back
 * off, when a member is too old — and hands members out by emitting `member.handedOut`;
 * creating and destroying members are the injected actors `createMember` and
 * `destroyMember`. Starting a handed-out member is the acquirer's business
 * (actors/supervision/pool.ts), because from then on the sandbox is theirs.
 *
 * Refills are serial: one launch in flight at a time, so a pool never competes with
 * itself for the host's cores and a broken bundle costs one failed launch per backoff
 * step, never a burst.
 */

export interface PoolBackoff {
  /** Delay after the first failed launch, ms. */
  readonly initialMs: number;
  /** Cap of the delay, ms. */
  readonly maxMs: number;
  /** Growth per further consecutive failure. */
  readonly factor: number;
}

export interface PoolInput {
  readonly name: string;
  readonly size: number;
  /** Idle members older than this are destroyed and replaced; null: never. */
  readonly maxAgeMs: number | null;
  readonly backoff: PoolBackoff;
  /** First sequence number of member ids (`<name>-<seq>`), past any id already in use. */
  readonly firstSeq?: number;
}

/** What the pool knows of an idle member (plain JSON; streams stay in actors/supervision/pool.ts). */
export interface PoolMember {
  readonly id: string;
  /** Host pid of the member's paddock-init. */
  readonly pid: number;
}

export interface PoolContext extends Omit<PoolInput, 'firstSeq'> {
  seq: number;
  /** Idle members, oldest first: the oldest is handed out first, as it has the least life left. */
  idle: PoolMember[];
  /** Acquire requests waiting for a member, in arrival order. */
  waiters: string[];
  /** Member id of the launch in flight. */
  launching?: string;
  /** Members being destroyed (recycled, lost or drained). */
  retiring: string[];
  /** Consecutive failed launches; the backoff grows with it and a success resets it. */
  failures: number;
  lastError?: FailureInfo;
  launches: number;
  handedOut: number;
  recycled: number;
}

export type PoolEvent =
  | { type: 'acquire'; requestId: string }
  /** A waiting acquirer gave up (its timeout): it leaves the queue. */
  | { type: 'acquire.cancel'; requestId: string }
  /** An idle member's sandbox stopped or vanished under the pool. */
  | { type: 'member.lost'; memberId: string }
  | { type: 'member.expired'; memberId: string }
  | { type: 'drain' }
  // What the spawned effect actors report (they are spawned, not invoked, so a launch
  // outlives the state that began it and drain can destroy what it produced).
  | { type: 'xstate.done.actor.launch'; output: PoolMember }
  | { type: 'xstate.error.actor.launch'; error: unknown }
  | { type: `xstate.done.actor.retire.${string}`; actorId: string }
  | { type: `xstate.error.actor.retire.${string}`; actorId: string; error: unknown };

export type PoolEmitted =
  | { type: 'member.handedOut'; requestId: string; member: PoolMember }
  | { type: 'acquire.rejected'; requestId: string }
  | { type: 'refill.failed'; memberId: string; attempt: number; retryInMs: number; error: FailureInfo }
  | { type: 'drained' };

const expiryId = (memberId: string) => `expire.${memberId}`;
const retireId = (memberId: string) => `retire.${memberId}`;

export const poolMachine = setup({
  types: {
    context: {} as PoolContext,
    input: {} as PoolInput,
    events: {} as PoolEvent,
    emitted: {} as PoolEmitted,
  },
  actors: {
    createMember: fromPromise<PoolMember, { pool: string; memberId: string }>(async () => {
      throw new Error('createMember not provided');
    }),
    destroyMember: fromPromise<void, { pool: string; memberId: string }>(async () => {
      throw new Error('destroyMember not provided');
    }),
  },
  delays: {
    refillBackoff: ({ context }) => backoffDelay(context.backoff, context.failures),
    maxAge: ({ context }) => context.maxAgeMs ?? 0,
  },
  guards: {
    needsMember: ({ context }) => context.launching === undefined && context.idle.length < context.size,
    hasIdle: ({ context }) => context.idle.length > 0,
    isWaiting: ({ context, event }) => event.type === 'acquire.cancel' && context.waiters.includes(event.requestId),
    isIdleMember: ({ context, event }) =>
      (event.type === 'member.expired' || event.type === 'member.lost') && context.idle.some((m) => m.id === event.memberId),
    nothingInFlight: ({ context }) => context.launching === undefined && context.retiring.length === 0,
  },
  actions: {
    launchMember: enqueueActions(({ context, enqueue }) => {
      const memberId = `${context.name}-${context.seq}`;
      enqueue.assign({ launching: memberId, seq: context.seq + 1, launches: context.launches + 1 });
      enqueue(spawnChild('createMember', { id: 'launch', input: { pool: context.name, memberId } }));
    }),
    /** A launched member joins the idle list (with its expiry), or goes straight to the oldest waiter. */
    admitMember: enqueueActions(({ context, enqueue }, member: PoolMember) => {
      enqueue.assign({ launching: undefined, failures: 0, lastError: undefined });
      const [waiter, ...rest] = context.waiters;
      if (waiter !== undefined) {
        enqueue.assign({ waiters: rest, handedOut: context.handedOut + 1 });
        enqueue.emit({ type: 'member.handedOut', requestId: waiter, member });
        return;
      }
      enqueue.assign({ idle: [...context.idle, member] });
      if (context.maxAgeMs !== null) {
        enqueue.raise({ type: 'member.expired', memberId: member.id }, { id: expiryId(member.id), delay: 'maxAge' });
      }
    }),
    /** Counts a failed launch and says when the next one will be tried. */
    recordFailure: enqueueActions(({ context, enqueue }, failed: { error: unknown }) => {
      const failures = context.failures + 1;
      const info = toFailureInfo(failed.error);
      enqueue.assign({ launching: undefined, failures, lastError: info });
      enqueue.emit({
        type: 'refill.failed',
        memberId: context.launching ?? '',
        attempt: failures,
        retryInMs: backoffDelay(context.backoff, failures),
        error: info,
      });
    }),
    handOut: enqueueActions(({ context, enqueue }, requestId: string) => {
      const [member, ...rest] = context.idle;
      if (!member) return;
      enqueue(cancel(expiryId(member.id)));
      enqueue.assign({ idle: rest, handedOut: context.handedOut + 1 });
      enqueue.emit({ type: 'member.handedOut', requestId, member });
    }),
    enqueueWaiter: assign(({ context }, requestId: string) => ({ waiters: [...context.waiters, requestId] })),
    dropWaiter: assign(({ context }, requestId: string) => ({ waiters: context.waiters.filter((w) => w !== requestId) })),
    /** Takes an idle member out of service and destroys it; the refill replaces it. */
    retireIdle: enqueueActions(({ context, enqueue }, params: { memberId: string; recycled: boolean }) => {
      enqueue(cancel(expiryId(params.memberId)));
      enqueue.assign({
        idle: context.idle.filter((m) => m.id !== params.memberId),
        retiring: [...context.retiring, params.memberId],
        recycled: context.recycled + (params.recycled ? 1 : 0),
      });
      enqueue(spawnChild('destroyMember', { id: retireId(params.memberId), input: { pool: context.name, memberId: params.memberId } }));
    }),
    retireAll: enqueueActions(({ context, enqueue }) => {
      for (const m of context.idle) {
        enqueue(cancel(expiryId(m.id)));
        enqueue(spawnChild('destroyMember', { id: retireId(m.id), input: { pool: context.name, memberId: m.id } }));
      }
      enqueue.assign({ idle: [], retiring: [...context.retiring, ...context.idle.map((m) => m.id)] });
    }),
    /** A launch that finished after drain began: its member is destroyed at once. */
    retireLaunched: enqueueActions(({ context, enqueue }, member: PoolMember) => {
      enqueue.assign({ launching: undefined, retiring: [...context.retiring, member.id] });
      enqueue(spawnChild('destroyMember', { id: retireId(member.id), input: { pool: context.name, memberId: member.id } }));
    }),
    clearLaunching: assign({ launching: undefined }),
    forgetRetired: assign(({ context }, actorId: string) => ({
      retiring: context.retiring.filter((id) => retireId(id) !== actorId),
    })),
    rejectWaiters: enqueueActions(({ context, enqueue }) => {
      for (const requestId of context.waiters) enqueue.emit({ type: 'acquire.rejected', requestId });
      enqueue.assign({ waiters: [] });
    }),
    rejectAcquire: emit((_, requestId: string) => ({ type: 'acquire.rejected' as const, requestId })),
    emitDrained: emit({ type: 'drained' as const }),
  },
}).createMachine({
  id: 'pool',
  context: ({ input }) => ({
    name: input.name,
    size: input.size,
    maxAgeMs: input.maxAgeMs,
    backoff: input.backoff,
    seq: input.firstSeq ?? 1,
    idle: [],
    waiters: [],
    retiring: [],
    failures: 0,
    launches: 0,
    handedOut: 0,
    recycled: 0,
  }),
  initial: 'active',
  on: {
    // Destroys finish in any state; a failed one is forgotten too (the engine logs it).
    'xstate.done.actor.retire.*': { actions: { type: 'forgetRetired', params: ({ event }) => event.actorId } },
    'xstate.error.actor.retire.*': { actions: { type: 'forgetRetired', params: ({ event }) => event.actorId } },
  },
  states: {
    active: {
      initial: 'full',
      on: {
        acquire: [
          { guard: 'hasIdle', actions: { type: 'handOut', params: ({ event }) => event.requestId } },
          { actions: { type: 'enqueueWaiter', params: ({ event }) => event.requestId } },
        ],
        'acquire.cancel': { guard: 'isWaiting', actions: { type: 'dropWaiter', params: ({ event }) => event.requestId } },
        'member.expired': {
          guard: 'isIdleMember',
          actions: { type: 'retireIdle', params: ({ event }) => ({ memberId: event.memberId, recycled: true }) },
        },
        'member.lost': {
          guard: 'isIdleMember',
          actions: { type: 'retireIdle', params: ({ event }) => ({ memberId: event.memberId, recycled: false }) },
        },
        drain: 'draining',
      },
      states: {
        full: {
          description: 'No launch in flight; a launch begins as soon as fewer than `size` members are idle.',
          always: { guard: 'needsMember', target: 'launching' },
        },
        launching: {
          description: 'Creating one member (createMember); acquirers that find no idle member wait for it.',
          entry: 'launchMember',
          on: {
            'xstate.done.actor.launch': {
              target: 'full',
              actions: { type: 'admitMember', params: ({ event }) => event.output },
            },
            'xstate.error.actor.launch': {
              target: 'backingOff',
              actions: { type: 'recordFailure', params: ({ event }: { event: { error: unknown } }) => ({ error: event.error }) },
            },
          },
        },
        backingOff: {
          description: 'The last launch failed: wait the backoff for this many consecutive failures, then try again.',
          after: { refillBackoff: 'launching' },
        },
      },
    },
    draining: {
      description: 'drain(): waiters are rejected, idle members destroyed, a launch in flight is destroyed when it lands.',
      entry: ['rejectWaiters', 'retireAll'],
      always: { guard: 'nothingInFlight', target: 'drained' },
      on: {
        acquire: { actions: { type: 'rejectAcquire', params: ({ event }) => event.requestId } },
        'xstate.done.actor.launch': {
          actions: { type: 'retireLaunched', params: ({ event }) => event.output },
        },
        'xstate.error.actor.launch': { actions: 'clearLaunching' },
      },
    },
    drained: {
      description: 'Nothing idle, nothing in flight; every acquire is refused.',
      entry: 'emitDrained',
      type: 'final',
    },
  },
});

export type PoolMachine = typeof poolMachine;
