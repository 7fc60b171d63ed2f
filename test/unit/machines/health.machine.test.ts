import { createActor, fromPromise } from 'xstate';
import { healthMachine } from '../../../machines/health.machine';
import type { HealthEmitted } from '../../../machines/health.machine';
import { never } from './helpers';

const INPUT = { sandboxId: 's1', intervalMs: 1000, timeoutMs: 200, failureThreshold: 3 };

/** A health actor whose pings answer as `answer` says (called once per probe). */
function startHealth(answer: (probe: number) => Promise<void>, input = INPUT) {
  let probe = 0;
  const pings: number[] = [];
  const machine = healthMachine.provide({
    actors: {
      ping: fromPromise(async () => {
        pings.push(Date.now());
        return answer(++probe);
      }),
    },
  });
  const actor = createActor(machine, { input });
  const unhealthy: HealthEmitted[] = [];
  actor.on('unhealthy', (e) => unhealthy.push(e));
  actor.start();
  return { actor, pings, unhealthy };
}

/** Lets settled promises deliver their results to the actor. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('health machine', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('pings every intervalMs, to the millisecond, while init answers', async () => {
    const { actor, pings } = startHealth(async () => undefined);
    await jest.advanceTimersByTimeAsync(999);
    expect(pings).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(pings).toEqual([1000]);
    await jest.advanceTimersByTimeAsync(3000);
    expect(pings).toEqual([1000, 2000, 3000, 4000]);
    expect(actor.getSnapshot().value).toBe('waiting');
    expect(actor.getSnapshot().context.failures).toBe(0);
    actor.stop();
  });

  it('a ping that never answers fails after timeoutMs; threshold failures in a row make it unhealthy', async () => {
    const { actor, pings, unhealthy } = startHealth(() => never());
    // probe 1 at 1000, fails at 1200; probe 2 at 2200, fails at 2400; probe 3 at 3400, fails at 3600.
    await jest.advanceTimersByTimeAsync(3599);
    expect(pings).toEqual([1000, 2200, 3400]);
    expect(unhealthy).toEqual([]);
    expect(actor.getSnapshot().context.failures).toBe(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(actor.getSnapshot().value).toBe('unhealthy');
    expect(actor.getSnapshot().status).toBe('done');
    expect(unhealthy).toEqual([{ type: 'unhealthy', sandboxId: 's1', failures: 3, reason: 'no answer within 200 ms' }]);
  });

  it('an answer between failures resets the count', async () => {
    // fail, fail, answer, fail, fail: never three in a row.
    const { actor, unhealthy } = startHealth(async (n) => {
      if (n === 3) return;
      throw new Error(`ECONTROL probe ${n}`);
    });
    for (let i = 0; i < 5; i++) {
      await jest.advanceTimersByTimeAsync(1000);
      await settle();
    }
    expect(actor.getSnapshot().context.probes).toBe(5);
    expect(actor.getSnapshot().context.failures).toBe(2);
    expect(actor.getSnapshot().context.lastError).toBe('ECONTROL probe 5');
    expect(unhealthy).toEqual([]);
    actor.stop();
  });

  it('a rejected ping counts at once, without waiting for the timeout', async () => {
    const { actor, unhealthy } = startHealth(async () => {
      throw new Error('sandbox s1 is not running');
    }, { ...INPUT, failureThreshold: 1 });
    await jest.advanceTimersByTimeAsync(1000);
    await settle();
    expect(actor.getSnapshot().value).toBe('unhealthy');
    expect(unhealthy[0]?.reason).toBe('sandbox s1 is not running');
  });

  it('stop ends the watch: no further probes', async () => {
    const { actor, pings } = startHealth(async () => undefined);
    await jest.advanceTimersByTimeAsync(1000);
    actor.send({ type: 'stop' });
    expect(actor.getSnapshot().value).toBe('stopped');
    await jest.advanceTimersByTimeAsync(5000);
    expect(pings).toEqual([1000]);
  });
});
