import { createActor, fromPromise } from 'xstate';
import { restartMachine, type RelaunchInput, type RestartEmitted } from '../../../machines/restart.machine';
import type { ExitStatus } from '../../../machines/types';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from '../../../machines/restart-policy';

const FAIL: ExitStatus = { exitCode: 1, signal: null };
const OK: ExitStatus = { exitCode: 0, signal: null };

function policy(over: Partial<Omit<RestartPolicy, 'backoff'>> & { backoff?: Partial<RestartPolicy['backoff']> } = {}): RestartPolicy {
  return {
    ...DEFAULT_RESTART_POLICY,
    maxRestarts: 100,
    periodMs: 1_000_000,
    ...over,
    backoff: { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0, ...(over.backoff ?? {}) },
  } as RestartPolicy;
}

/** A restart machine whose relaunch is recorded (and can be made to fail or hang). */
function harness(p: RestartPolicy, opts: { relaunch?: (i: RelaunchInput) => Promise<void>; snapshot?: unknown } = {}) {
  const calls: RelaunchInput[] = [];
  const emitted: RestartEmitted[] = [];
  const machine = restartMachine.provide({
    actors: {
      relaunch: fromPromise<void, RelaunchInput>(async ({ input }) => {
        calls.push(input);
        await opts.relaunch?.(input);
      }),
    },
  });
  const actor = createActor(machine, opts.snapshot ? { snapshot: opts.snapshot as never, input: undefined as never } : { input: { childId: 'sb1', policy: p } });
  for (const t of ['restart.scheduled', 'restart.launched', 'restart.gaveUp', 'restart.stopped'] as const) actor.on(t, (e) => emitted.push(e));
  actor.start();
  const value = () => String(actor.getSnapshot().value);
  const exit = (exit = FAIL, random = 0) => actor.send({ type: 'child.exited', exit, at: Date.now(), random });
  return { actor, calls, emitted, value, exit };
}

beforeEach(() => {
  jest.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

/** Advances the fake clock and lets the relaunch promise settle. */
const advance = (ms: number) => jest.advanceTimersByTimeAsync(ms);

describe('restartMachine', () => {
  test('the backoff schedule, to the millisecond: 100, 200, 400, 800 then the 1000 ceiling', async () => {
    const h = harness(policy());
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      h.exit();
      expect(h.value()).toBe('backoff');
      const d = h.actor.getSnapshot().context.delayMs as number;
      delays.push(d);
      await advance(d - 1);
      expect(h.value()).toBe('backoff');
      expect(h.calls).toHaveLength(i);
      await advance(1);
      expect(h.calls).toHaveLength(i + 1);
      expect(h.value()).toBe('running');
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(h.emitted.filter((e) => e.type === 'restart.scheduled').map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(h.emitted.filter((e) => e.type === 'restart.launched')).toHaveLength(6);
    expect(h.calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('jitter from the injected draw: 0.5 × 20% lengthens 100 to exactly 110', async () => {
    const h = harness(policy({ backoff: { jitter: 0.2 } }));
    h.exit(FAIL, 0.5);
    expect(h.emitted[0]).toMatchObject({ type: 'restart.scheduled', delayMs: 110 });
    await advance(109);
    expect(h.calls).toHaveLength(0);
    await advance(1);
    expect(h.calls).toHaveLength(1);
  });

  test('jitter stays within [delay, delay × (1 + jitter)] for any draw', async () => {
    for (const r of [0, 0.3, 0.9999]) {
      const h = harness(policy({ backoff: { jitter: 1 } }));
      h.exit(FAIL, r);
      const d = h.actor.getSnapshot().context.delayMs as number;
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(200);
      h.actor.stop();
    }
  });

  test('gives up after more than maxRestarts within periodMs, saying why', async () => {
    const h = harness(policy({ maxRestarts: 3, periodMs: 60_000 }));
    for (let i = 0; i < 3; i++) {
      h.exit();
      await advance(h.actor.getSnapshot().context.delayMs as number);
      expect(h.value()).toBe('running');
    }
    h.exit();
    expect(h.value()).toBe('failed');
    expect(h.actor.getSnapshot().status).toBe('done');
    const gaveUp = h.emitted.find((e) => e.type === 'restart.gaveUp');
    expect(gaveUp).toEqual({ type: 'restart.gaveUp', childId: 'sb1', restarts: 3, reason: 'sb1 ended with exit code 1: more than 3 restarts within 60000 ms' });
    expect(h.calls).toHaveLength(3);
  });

  test('restarts older than periodMs no longer count', async () => {
    const h = harness(policy({ maxRestarts: 2, periodMs: 1000, backoff: { factor: 1 }, resetAfterMs: 1_000_000 }));
    h.exit();
    await advance(100);
    h.exit();
    await advance(100);
    await advance(1000);
    h.exit();
    expect(h.value()).toBe('backoff');
  });

  test('maxRestarts 0 gives up at the first failure', () => {
    const h = harness(policy({ maxRestarts: 0 }));
    h.exit();
    expect(h.value()).toBe('failed');
  });

  test('resetAfterMs of healthy running starts the backoff over', async () => {
    const h = harness(policy({ resetAfterMs: 5000 }));
    h.exit();
    await advance(100);
    h.exit();
    await advance(200);
    expect(h.actor.getSnapshot().context.attempt).toBe(2);
    await advance(4999);
    expect(h.actor.getSnapshot().context.attempt).toBe(2);
    await advance(1);
    expect(h.actor.getSnapshot().context.attempt).toBe(0);
    h.exit();
    expect(h.actor.getSnapshot().context.delayMs).toBe(100);
  });

  test('a crash before resetAfterMs keeps the doubling', async () => {
    const h = harness(policy({ resetAfterMs: 5000 }));
    h.exit();
    await advance(100);
    await advance(4999);
    h.exit();
    expect(h.actor.getSnapshot().context.delayMs).toBe(200);
  });

  test.each([
    ['never', FAIL],
    ['on-failure', OK],
  ] as const)('policy %s with %j: stopped, not restarted', async (p, exit) => {
    const h = harness(policy({ policy: p }));
    h.exit(exit);
    expect(h.value()).toBe('stopped');
    await advance(10_000);
    expect(h.calls).toHaveLength(0);
    expect(h.emitted.map((e) => e.type)).toEqual(['restart.stopped']);
    expect(h.actor.getSnapshot().context.reason).toMatch(new RegExp(`policy ${p} does not restart it`));
  });

  test("'always' restarts after exit 0, 'on-failure' after a signal", async () => {
    const a = harness(policy({ policy: 'always' }));
    a.exit(OK);
    expect(a.value()).toBe('backoff');
    const f = harness(policy({ policy: 'on-failure' }));
    f.exit({ exitCode: null, signal: 9 });
    expect(f.value()).toBe('backoff');
  });

  test('a stop from the user during backoff cancels the restart', async () => {
    const h = harness(policy());
    h.exit();
    await advance(50);
    h.actor.send({ type: 'stop' });
    expect(h.value()).toBe('stopped');
    await advance(10_000);
    expect(h.calls).toHaveLength(0);
    expect(h.emitted.at(-1)).toEqual({ type: 'restart.stopped', childId: 'sb1', reason: 'sb1 was stopped through the API' });
  });

  test('a stop while running ends supervision without a restart', () => {
    const h = harness(policy());
    h.actor.send({ type: 'stop' });
    h.exit();
    expect(h.value()).toBe('stopped');
  });

  test('a failed relaunch is one more failure: next backoff, then give up by intensity', async () => {
    const h = harness(policy({ maxRestarts: 2 }), { relaunch: async () => Promise.reject(Object.assign(new Error('bundle gone'), { code: 'EBUNDLE_NOT_FOUND' })) });
    h.exit();
    await advance(100);
    expect(h.value()).toBe('backoff');
    expect(h.actor.getSnapshot().context.delayMs).toBe(200);
    await advance(200);
    expect(h.value()).toBe('failed');
    expect(h.actor.getSnapshot().context.reason).toMatch(/lost status \(bundle gone\): more than 2 restarts/);
  });

  test('an exit of the new instance during its relaunch is answered after the relaunch', async () => {
    let finish!: () => void;
    const h = harness(policy(), { relaunch: () => new Promise<void>((r) => (finish = r)) });
    h.exit();
    await advance(100);
    expect(h.value()).toBe('restarting');
    h.exit();
    expect(h.value()).toBe('restarting');
    finish();
    await advance(0);
    expect(h.value()).toBe('backoff');
    expect(h.actor.getSnapshot().context.delayMs).toBe(200);
  });

  test('relaunch input: attempt and the exit time an instance must postdate', async () => {
    const h = harness(policy());
    const at = Date.now();
    h.exit();
    await advance(100);
    expect(h.calls).toEqual([{ childId: 'sb1', attempt: 1, since: at }]);
  });
});

describe('restartMachine: persisted snapshots', () => {
  test('backoff round-trips through JSON and waits only the remaining time', async () => {
    const h = harness(policy());
    h.exit();
    const deadline = h.actor.getSnapshot().context.deadline as number;
    await advance(70);
    const saved = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    h.actor.stop();
    // A new supervisor 10 ms later: 20 ms of the 100 ms backoff remain.
    jest.setSystemTime(deadline - 20);
    const r = harness(policy(), { snapshot: saved });
    expect(r.value()).toBe('backoff');
    r.actor.send({ type: 'supervisor.resumed', now: Date.now() });
    await advance(19);
    expect(r.calls).toHaveLength(0);
    await advance(1);
    expect(r.calls).toHaveLength(1);
    expect(r.value()).toBe('running');
  });

  test('a backoff that ended while no supervisor ran restarts at once, once', async () => {
    const h = harness(policy());
    h.exit();
    const saved = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    h.actor.stop();
    jest.setSystemTime(Date.now() + 60_000);
    const r = harness(policy(), { snapshot: saved });
    r.actor.send({ type: 'supervisor.resumed', now: Date.now() });
    await advance(0);
    expect(r.calls).toHaveLength(1);
    await advance(10_000);
    expect(r.calls).toHaveLength(1);
  });

  test('restored mid-relaunch, the relaunch runs again with the same since (the wiring makes it idempotent)', async () => {
    const h = harness(policy(), { relaunch: () => new Promise<void>(() => undefined) });
    h.exit();
    const since = Date.now();
    await advance(100);
    expect(h.value()).toBe('restarting');
    const saved = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    h.actor.stop();
    const r = harness(policy(), { snapshot: saved });
    await advance(0);
    expect(r.calls).toEqual([{ childId: 'sb1', attempt: 1, since }]);
    expect(r.value()).toBe('running');
    // Restoring does not replay entry actions: no second 'launched' fact.
    expect(r.emitted).toEqual([]);
  });

  test('a restored running machine re-arms resetAfter on supervisor.resumed', async () => {
    const h = harness(policy({ resetAfterMs: 1000 }));
    h.exit();
    await advance(100);
    const saved = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    h.actor.stop();
    const r = harness(policy(), { snapshot: saved });
    r.actor.send({ type: 'supervisor.resumed', now: Date.now() });
    await advance(1000);
    expect(r.actor.getSnapshot().context.attempt).toBe(0);
  });
});
