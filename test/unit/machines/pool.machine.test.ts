import { createActor, fromPromise, initialTransition } from 'xstate';
import { poolMachine, type PoolEmitted, type PoolInput, type PoolMember } from '../../../machines/pool.machine';
import { backoffDelay } from '../../../machines/restart-policy';
import { deferred, flush, type Deferred } from './helpers';

const BACKOFF = { initialMs: 100, maxMs: 400, factor: 2 };

interface Launch {
  memberId: string;
  at: number;
  d: Deferred<PoolMember>;
}

/**
 * The pool machine with fake effects: every launch waits for the test to settle it
 * (`land` / `fail`), destroys succeed at once and are recorded.
 */
function harness(input: Partial<PoolInput> = {}) {
  const launches: Launch[] = [];
  const destroyed: string[] = [];
  const emitted: PoolEmitted[] = [];
  const machine = poolMachine.provide({
    actors: {
      createMember: fromPromise<PoolMember, { pool: string; memberId: string }>(({ input: i }) => {
        const d = deferred<PoolMember>();
        launches.push({ memberId: i.memberId, at: Date.now(), d });
        return d.promise;
      }),
      destroyMember: fromPromise<void, { pool: string; memberId: string }>(async ({ input: i }) => {
        destroyed.push(i.memberId);
      }),
    },
  });
  const actor = createActor(machine, { input: { name: 'p', size: 2, maxAgeMs: null, backoff: BACKOFF, ...input } });
  actor.on('*', (e) => emitted.push(e as PoolEmitted));
  actor.start();
  let pid = 1000;
  const last = () => launches[launches.length - 1] as Launch;
  return {
    actor,
    launches,
    destroyed,
    emitted,
    /** Settles the launch in flight successfully. */
    async land() {
      const l = last();
      l.d.resolve({ id: l.memberId, pid: pid++ });
      await flush();
    },
    async fail(message = 'rootfs missing') {
      last().d.reject(Object.assign(new Error(message), { code: 'EROOTFS_MISSING' }));
      await flush();
    },
    async fill(n: number) {
      for (let i = 0; i < n; i++) await this.land();
    },
    handedOut: () => emitted.filter((e): e is Extract<PoolEmitted, { type: 'member.handedOut' }> => e.type === 'member.handedOut'),
    value: () => actor.getSnapshot().value,
    ctx: () => actor.getSnapshot().context,
  };
}

describe('poolMachine: pure', () => {
  test('starts by spawning one launch for the first member', () => {
    const [s, actions] = initialTransition(poolMachine, { name: 'p', size: 3, maxAgeMs: null, backoff: BACKOFF });
    expect(s.value).toEqual({ active: 'launching' });
    expect(s.context.launching).toBe('p-1');
    expect(actions.filter((a) => a.type === 'xstate.spawnChild')).toHaveLength(1);
  });

  test('member ids start past firstSeq', () => {
    const [s] = initialTransition(poolMachine, { name: 'web', size: 1, maxAgeMs: null, backoff: BACKOFF, firstSeq: 7 });
    expect(s.context.launching).toBe('web-7');
  });

  test('backoffDelay doubles from initialMs and stops at maxMs', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(BACKOFF, n))).toEqual([100, 200, 400, 400, 400, 400]);
    expect(backoffDelay({ initialMs: 10, maxMs: 1000, factor: 3 }, 3)).toBe(90);
  });
});

describe('poolMachine: filling and handing out', () => {
  test('fills to size one launch at a time, then rests', async () => {
    const h = harness({ size: 3 });
    expect(h.launches.map((l) => l.memberId)).toEqual(['p-1']);
    await h.land();
    expect(h.launches.map((l) => l.memberId)).toEqual(['p-1', 'p-2']);
    await h.fill(2);
    expect(h.launches).toHaveLength(3);
    expect(h.value()).toEqual({ active: 'full' });
    expect(h.ctx().idle.map((m) => m.id)).toEqual(['p-1', 'p-2', 'p-3']);
    expect(h.ctx().launching).toBeUndefined();
  });

  test('acquire hands out the oldest idle member and refills', async () => {
    const h = harness({ size: 2 });
    await h.fill(2);
    h.actor.send({ type: 'acquire', requestId: 'r1' });
    expect(h.handedOut()).toEqual([{ type: 'member.handedOut', requestId: 'r1', member: { id: 'p-1', pid: 1000 } }]);
    expect(h.ctx().idle.map((m) => m.id)).toEqual(['p-2']);
    expect(h.ctx().launching).toBe('p-3');
  });

  test('concurrent acquires beyond the idle members queue and are served in order as refills land; no member twice', async () => {
    const h = harness({ size: 2 });
    await h.fill(2);
    for (let i = 1; i <= 7; i++) h.actor.send({ type: 'acquire', requestId: `r${i}` });
    expect(h.handedOut().map((e) => e.requestId)).toEqual(['r1', 'r2']);
    expect(h.ctx().waiters).toEqual(['r3', 'r4', 'r5', 'r6', 'r7']);
    for (let i = 0; i < 5; i++) await h.land();
    const out = h.handedOut();
    expect(out.map((e) => e.requestId)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    expect(new Set(out.map((e) => e.member.id)).size).toBe(7);
    expect(h.ctx().waiters).toEqual([]);
    // The pool goes on to refill its own idle members.
    await h.fill(2);
    expect(h.ctx().idle).toHaveLength(2);
    expect(h.value()).toEqual({ active: 'full' });
    expect(h.ctx().handedOut).toBe(7);
  });

  test('a cancelled acquire leaves the queue and is not served', async () => {
    const h = harness({ size: 1 });
    h.actor.send({ type: 'acquire', requestId: 'r1' });
    h.actor.send({ type: 'acquire', requestId: 'r2' });
    h.actor.send({ type: 'acquire.cancel', requestId: 'r1' });
    await h.land();
    expect(h.handedOut().map((e) => e.requestId)).toEqual(['r2']);
  });

  test('an idle member lost under the pool is destroyed and replaced, never handed out', async () => {
    const h = harness({ size: 2 });
    await h.fill(2);
    h.actor.send({ type: 'member.lost', memberId: 'p-1' });
    await flush();
    expect(h.destroyed).toEqual(['p-1']);
    expect(h.ctx().idle.map((m) => m.id)).toEqual(['p-2']);
    expect(h.ctx().launching).toBe('p-3');
    h.actor.send({ type: 'acquire', requestId: 'r1' });
    expect(h.handedOut()[0]?.member.id).toBe('p-2');
    // A member that is no longer idle is not the pool's to destroy.
    h.actor.send({ type: 'member.lost', memberId: 'p-2' });
    await flush();
    expect(h.destroyed).toEqual(['p-1']);
  });
});

describe('poolMachine: backoff (fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  test('failed launches are retried on the exact backoff schedule, never sooner', async () => {
    const h = harness({ size: 1 });
    const t0 = Date.now();
    await h.fail();
    expect(h.value()).toEqual({ active: 'backingOff' });
    for (const delay of [100, 200, 400, 400]) {
      const before = h.launches.length;
      jest.advanceTimersByTime(delay - 1);
      expect(h.launches).toHaveLength(before);
      jest.advanceTimersByTime(1);
      expect(h.launches).toHaveLength(before + 1);
      await h.fail();
    }
    expect(h.launches.map((l) => l.at - t0)).toEqual([0, 100, 300, 700, 1100]);
    const failures = h.emitted.filter((e) => e.type === 'refill.failed');
    expect(failures.map((e) => (e.type === 'refill.failed' ? [e.memberId, e.attempt, e.retryInMs] : []))).toEqual([
      ['p-1', 1, 100],
      ['p-2', 2, 200],
      ['p-3', 3, 400],
      ['p-4', 4, 400],
      ['p-5', 5, 400],
    ]);
    expect(h.ctx().lastError).toEqual({ code: 'EROOTFS_MISSING', message: 'rootfs missing' });
  });

  test('a success resets the backoff', async () => {
    const h = harness({ size: 2 });
    await h.fail();
    jest.advanceTimersByTime(100);
    await h.fail();
    jest.advanceTimersByTime(200);
    await h.land();
    expect(h.ctx().failures).toBe(0);
    await h.fail();
    const before = h.launches.length;
    jest.advanceTimersByTime(100);
    expect(h.launches).toHaveLength(before + 1);
  });

  test('waiters keep waiting through failures and are served by the first success', async () => {
    const h = harness({ size: 1 });
    h.actor.send({ type: 'acquire', requestId: 'r1' });
    await h.fail();
    jest.advanceTimersByTime(100);
    await h.land();
    expect(h.handedOut().map((e) => [e.requestId, e.member.id])).toEqual([['r1', 'p-2']]);
  });
});

describe('poolMachine: max age (fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  test('idle members older than maxAgeMs are destroyed and replaced', async () => {
    const h = harness({ size: 2, maxAgeMs: 1000 });
    await h.land(); // p-1 idle at t=0
    jest.advanceTimersByTime(300);
    await h.land(); // p-2 idle at t=300
    jest.advanceTimersByTime(699);
    await flush();
    expect(h.destroyed).toEqual([]);
    jest.advanceTimersByTime(1);
    await flush();
    expect(h.destroyed).toEqual(['p-1']);
    expect(h.ctx().recycled).toBe(1);
    expect(h.ctx().launching).toBe('p-3');
    await h.land();
    jest.advanceTimersByTime(300);
    await flush();
    expect(h.destroyed).toEqual(['p-1', 'p-2']);
    expect(h.ctx().idle.map((m) => m.id)).toEqual(['p-3']);
  });

  test('a handed-out member is never recycled', async () => {
    const h = harness({ size: 1, maxAgeMs: 1000 });
    await h.land();
    jest.advanceTimersByTime(500);
    h.actor.send({ type: 'acquire', requestId: 'r1' });
    jest.advanceTimersByTime(5000);
    await flush();
    expect(h.destroyed).toEqual([]);
    expect(h.handedOut()[0]?.member.id).toBe('p-1');
  });
});

describe('poolMachine: drain', () => {
  test('rejects waiters, destroys idle members, then is drained and refuses acquires', async () => {
    const h = harness({ size: 3 });
    await h.fill(3);
    h.actor.send({ type: 'acquire', requestId: 'r1' }); // served: p-1
    await h.land(); // refill p-4
    h.actor.send({ type: 'drain' });
    await flush();
    expect(h.destroyed.sort()).toEqual(['p-2', 'p-3', 'p-4']);
    expect(h.actor.getSnapshot().status).toBe('done');
    expect(h.value()).toBe('drained');
    expect(h.emitted.at(-1)).toEqual({ type: 'drained' });
  });

  test('waiting acquirers are rejected and a launch in flight is destroyed when it lands', async () => {
    const h = harness({ size: 1 });
    h.actor.send({ type: 'acquire', requestId: 'r1' });
    h.actor.send({ type: 'acquire', requestId: 'r2' });
    h.actor.send({ type: 'drain' });
    expect(h.emitted).toEqual([
      { type: 'acquire.rejected', requestId: 'r1' },
      { type: 'acquire.rejected', requestId: 'r2' },
    ]);
    expect(h.value()).toBe('draining');
    h.actor.send({ type: 'acquire', requestId: 'r3' });
    expect(h.emitted.at(-1)).toEqual({ type: 'acquire.rejected', requestId: 'r3' });
    await h.land();
    await flush();
    expect(h.destroyed).toEqual(['p-1']);
    expect(h.value()).toBe('drained');
    expect(h.handedOut()).toEqual([]);
  });

  test('a failed launch in flight ends the drain without anything to destroy', async () => {
    const h = harness({ size: 1 });
    h.actor.send({ type: 'drain' });
    await h.fail();
    expect(h.value()).toBe('drained');
    expect(h.destroyed).toEqual([]);
  });

  test('drain while backing off cancels the retry', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] });
    try {
      const h = harness({ size: 1 });
      await h.fail();
      h.actor.send({ type: 'drain' });
      expect(h.value()).toBe('drained');
      jest.advanceTimersByTime(10_000);
      expect(h.launches).toHaveLength(1);
    } finally {
      jest.useRealTimers();
    }
  });
});
