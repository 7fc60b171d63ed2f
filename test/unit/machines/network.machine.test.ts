import { createActor, fromCallback, fromPromise, initialTransition, transition } from 'xstate';
import { networkMachine, type HelperProcess, type NetworkEmitted, type NetworkEvent } from '../../../machines/network.machine';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from '../../../machines/restart-policy';

const POLICY: RestartPolicy = { ...DEFAULT_RESTART_POLICY, maxRestarts: 2, periodMs: 10_000, backoff: { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 } };

/** A network actor whose helper starts as `start` says; `exit()` ends the helper now watched. */
function startNetwork(input: { restart?: RestartPolicy; running?: HelperProcess }, start: (n: number) => Promise<HelperProcess> = async (n) => ({ pid: 100 + n, startTime: n })) {
  let starts = 0;
  let exitNow: ((reason: string) => void) | undefined;
  const watched: number[] = [];
  const machine = networkMachine.provide({
    actors: {
      startHelper: fromPromise(async () => start(++starts)),
      watchHelper: fromCallback<NetworkEvent, { sandboxId: string; helper: HelperProcess }>(({ input: i, sendBack }) => {
        watched.push(i.helper.pid);
        exitNow = (reason) => sendBack({ type: 'helper.exited', at: Date.now(), reason });
        return () => {
          exitNow = undefined;
        };
      }),
    },
  });
  const actor = createActor(machine, { input: { sandboxId: 's1', ...input } });
  const emitted: NetworkEmitted[] = [];
  for (const t of ['up', 'down', 'gaveUp'] as const) actor.on(t, (e) => emitted.push(e));
  actor.start();
  return { actor, emitted, watched, exit: (reason = 'killed') => exitNow?.(reason), starts: () => starts };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('network machine', () => {
  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  it('starts the helper, reports it up and watches it', async () => {
    const n = startNetwork({});
    await settle();
    expect(n.actor.getSnapshot().value).toBe('up');
    expect(n.emitted).toEqual([{ type: 'up', sandboxId: 's1', helper: { pid: 101, startTime: 1 }, restarts: 0 }]);
    expect(n.watched).toEqual([101]);
    n.actor.stop();
  });

  it('without a restart policy a helper that dies is given up at once', async () => {
    const n = startNetwork({});
    await settle();
    n.exit('pasta (pid 101) killed by signal 9');
    expect(n.actor.getSnapshot().value).toBe('gaveUp');
    expect(n.emitted.at(-1)).toEqual({ type: 'gaveUp', sandboxId: 's1', reason: 'pasta (pid 101) killed by signal 9' });
    expect(n.starts()).toBe(1);
  });

  it("a 'never' policy does not restart either", async () => {
    const n = startNetwork({ restart: { ...POLICY, policy: 'never' } });
    await settle();
    n.exit();
    expect(n.actor.getSnapshot().value).toBe('gaveUp');
  });

  it('with a policy: restarted after its backoff (doubling), then given up past its intensity', async () => {
    const n = startNetwork({ restart: POLICY });
    await settle();
    n.exit();
    expect(n.actor.getSnapshot().value).toBe('restarting');
    expect(n.emitted.at(-1)).toEqual({ type: 'down', sandboxId: 's1', reason: 'killed', restartInMs: 100 });
    await jest.advanceTimersByTimeAsync(99);
    expect(n.starts()).toBe(1);
    await jest.advanceTimersByTimeAsync(1);
    await settle();
    expect(n.starts()).toBe(2);
    expect(n.actor.getSnapshot().value).toBe('up');
    expect(n.emitted.at(-1)).toMatchObject({ type: 'up', helper: { pid: 102 }, restarts: 1 });
    n.exit();
    expect(n.emitted.at(-1)).toMatchObject({ type: 'down', restartInMs: 200 });
    await jest.advanceTimersByTimeAsync(200);
    await settle();
    expect(n.starts()).toBe(3);
    // A third death within periodMs: more than maxRestarts (2).
    n.exit('again');
    expect(n.actor.getSnapshot().value).toBe('gaveUp');
    expect(n.emitted.at(-1)).toEqual({ type: 'gaveUp', sandboxId: 's1', reason: 'again' });
  });

  it('restarts older than the period no longer count', async () => {
    const n = startNetwork({ restart: POLICY });
    await settle();
    for (let i = 0; i < 4; i++) {
      n.exit();
      await jest.advanceTimersByTimeAsync(20_000);
      await settle();
      expect(n.actor.getSnapshot().value).toBe('up');
    }
    expect(n.starts()).toBe(5);
  });

  it('a first start that fails is given up with its error; nothing is watched', async () => {
    const n = startNetwork({ restart: POLICY }, async () => {
      throw new Error('pasta exited with status 1: no such user namespace');
    });
    await settle();
    expect(n.actor.getSnapshot().value).toBe('gaveUp');
    expect(n.actor.getSnapshot().context.lastError).toMatch(/no such user namespace/);
    expect(n.watched).toEqual([]);
  });

  it('a helper found on reattach is watched, not started', async () => {
    const n = startNetwork({ running: { pid: 77, startTime: 5 } });
    await settle();
    expect(n.starts()).toBe(0);
    expect(n.watched).toEqual([77]);
    expect(n.actor.getSnapshot().value).toBe('up');
  });

  it('stop ends it from any state, and a stopped machine ignores an exit', () => {
    const [s0] = initialTransition(networkMachine, { sandboxId: 's1' });
    expect(s0.value).toBe('starting');
    const [s1] = transition(networkMachine, s0, { type: 'stop' });
    expect(s1.value).toBe('stopped');
    expect(s1.status).toBe('done');
    const [s2] = transition(networkMachine, s1, { type: 'helper.exited', at: 1, reason: 'x' });
    expect(s2.value).toBe('stopped');
  });

  it('its snapshot survives a JSON round trip', async () => {
    const n = startNetwork({ restart: POLICY });
    await settle();
    const persisted = JSON.parse(JSON.stringify(n.actor.getPersistedSnapshot()));
    n.actor.stop();
    const again = createActor(networkMachine.provide({ actors: { watchHelper: fromCallback(() => () => undefined) } }), { snapshot: persisted, input: { sandboxId: 's1' } }).start();
    expect(again.getSnapshot().value).toBe('up');
    expect(again.getSnapshot().context).toMatchObject({ sandboxId: 's1', helper: { pid: 101, startTime: 1 }, restart: POLICY });
    again.stop();
  });
});
