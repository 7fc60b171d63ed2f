import { assign, createActor, fromPromise, initialTransition, setup, transition, waitFor } from 'xstate';
import type { AnyActorRef, EventObject } from 'xstate';
import { containerMachine } from '../../../machines/container.machine';
import type { ContainerEvent, StartedProcess } from '../../../machines/container.machine';
import { deferred, fromSnapshot, never } from './helpers';

const INPUT = { sandboxId: 'sb1', containerId: 'c1', root: true };

type Start = (input: { sandboxId: string; containerId: string }) => Promise<StartedProcess>;

function provided(start: Start) {
  return containerMachine.provide({
    actors: { startContainer: fromPromise<StartedProcess, { sandboxId: string; containerId: string }>(({ input }) => start(input)) },
  });
}

/**
 * The container sends `container.*` notifications to its parent (sendParent fails
 * without one), so it runs under a minimal parent that records what it receives.
 */
function parentMachine(start: Start, delays?: { startTimeout: number }) {
  const machine = delays ? provided(start).provide({ delays }) : provided(start);
  return setup({
    types: { context: {} as { received: EventObject[] } },
    actors: { container: machine },
  }).createMachine({
    context: { received: [] },
    invoke: { id: 'c1', src: 'container', input: INPUT },
    on: { '*': { actions: assign({ received: ({ context, event }) => [...context.received, event] }) } },
  });
}

function harness(start: Start, delays?: { startTimeout: number }, snapshot?: any) {
  const actor = createActor(parentMachine(start, delays), snapshot ? { snapshot } : {}).start();
  const container = () => actor.getSnapshot().children.c1 as AnyActorRef;
  const snap = () => container().getSnapshot();
  const received = () => actor.getSnapshot().context.received.map((e) => e.type);
  return { actor, container, snap, received, send: (e: ContainerEvent) => container().send(e) };
}

const waitValue = (ref: AnyActorRef, value: string) => waitFor(ref, (s) => s.value === value, { timeout: 1000 });

describe('containerMachine: pure transitions', () => {
  test('created: start leads to starting and invokes startContainer', () => {
    const [s0] = initialTransition(containerMachine, INPUT);
    expect(s0.value).toBe('created');
    expect(s0.context).toEqual({ ...INPUT, signalsSent: 0, execs: 0 });
    const [s1, actions] = transition(containerMachine, s0, { type: 'start' });
    expect(s1.value).toBe('starting');
    expect(actions.some((a) => a.type === 'xstate.spawnChild')).toBe(true);
  });

  test('exec and signal are not accepted before the container runs (nothing is held)', () => {
    const [s0] = initialTransition(containerMachine, INPUT);
    expect(s0.can({ type: 'exec' })).toBe(false);
    expect(s0.can({ type: 'signal' })).toBe(false);
  });

  // Note: entering `stopped` runs sendParent, which XState resolves even in the pure
  // transition() API and throws without a parent; those paths are tested under a parent.
  test('pure transition into stopped needs a parent (sendParent resolves eagerly)', () => {
    const [s0] = initialTransition(containerMachine, INPUT);
    expect(() => transition(containerMachine, s0, { type: 'destroy' })).toThrow(/Unable to send event/);
  });
});

describe('containerMachine: under a parent', () => {
  test('destroy in created stops it with no status and notifies container.stopped', async () => {
    const h = harness(() => never());
    h.send({ type: 'destroy' });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toBeUndefined();
    await waitFor(h.actor, (s) => s.context.received.length === 1, { timeout: 1000 });
    expect(h.actor.getSnapshot().context.received[0]).toEqual({ type: 'container.stopped', containerId: 'c1', exit: undefined });
  });

  test('sandbox.lost in created stops it with an unknown status', () => {
    const h = harness(() => never());
    h.send({ type: 'sandbox.lost' });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toEqual({ exitCode: null, signal: null });
  });

  test('start resolving moves it to running with pid/hostPid and notifies container.started', async () => {
    const d = deferred<StartedProcess>();
    const calls: unknown[] = [];
    const h = harness((input) => {
      calls.push(input);
      return d.promise;
    });
    h.send({ type: 'start' });
    expect(h.snap().value).toBe('starting');
    expect(calls).toEqual([{ sandboxId: 'sb1', containerId: 'c1' }]);
    d.resolve({ pid: 1, hostPid: 4321 });
    await waitValue(h.container(), 'running');
    expect(h.snap().context).toMatchObject({ pid: 1, hostPid: 4321 });
    expect(h.snap().hasTag('alive')).toBe(true);
    expect(h.received()).toEqual(['container.started']);
    expect(h.actor.getSnapshot().context.received[0]).toEqual({ type: 'container.started', containerId: 'c1' });
  });

  test('start rejecting returns it to created with the error, and a retry clears the error', async () => {
    let attempt = 0;
    const h = harness(async () => {
      attempt++;
      if (attempt === 1) throw Object.assign(new Error('pivot_root failed'), { code: 'ESTART', context: { step: 'pivot_root', errno: 22 } });
      return { pid: 1, hostPid: 99 };
    });
    h.send({ type: 'start' });
    await waitFor(h.actor, (s) => s.context.received.length === 1, { timeout: 1000 });
    expect(h.snap().value).toBe('created');
    expect(h.snap().context.error).toEqual({ code: 'ESTART', message: 'pivot_root failed', step: 'pivot_root', errno: 22 });
    expect(h.snap().context.pid).toBeUndefined();
    expect(h.actor.getSnapshot().context.received[0]).toEqual({ type: 'container.startFailed', containerId: 'c1' });
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    expect(h.snap().context.error).toBeUndefined();
    expect(h.snap().context.pid).toBe(1);
  });

  test('its own root exit stops it with the status; other pids are ignored', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    h.send({ type: 'process.exited', pid: 2, exit: { exitCode: 0, signal: null } });
    expect(h.snap().value).toBe('running');
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: 7, signal: null } });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toEqual({ exitCode: 7, signal: null });
    expect(h.snap().hasTag('alive')).toBe(false);
    await waitFor(h.actor, (s) => s.context.received.length === 2, { timeout: 1000 });
    expect(h.actor.getSnapshot().context.received[1]).toEqual({
      type: 'container.stopped',
      containerId: 'c1',
      exit: { exitCode: 7, signal: null },
    });
  });

  test('a late real status after sandbox.lost replaces the unknown one and is re-notified', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    h.send({ type: 'sandbox.lost' });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toEqual({ exitCode: null, signal: null });
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: null, signal: 9 } });
    expect(h.snap().context.exit).toEqual({ exitCode: null, signal: 9 });
    await waitFor(h.actor, (s) => s.context.received.length === 3, { timeout: 1000 });
    const stops = h.actor.getSnapshot().context.received.filter((e) => e.type === 'container.stopped');
    expect(stops.map((e) => (e as { exit?: unknown }).exit)).toEqual([
      { exitCode: null, signal: null },
      { exitCode: null, signal: 9 },
    ]);
  });

  test('sandbox.lost after a real exit keeps the real status', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: 0, signal: null } });
    h.send({ type: 'sandbox.lost' });
    expect(h.snap().context.exit).toEqual({ exitCode: 0, signal: null });
  });

  // The event channel and exits.log both report every exit.
  test('an identical duplicate exit fact is notified to the parent only once', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    const exit = { exitCode: 7, signal: null };
    h.send({ type: 'process.exited', pid: 1, exit });
    h.send({ type: 'process.exited', pid: 1, exit });
    await new Promise((r) => setImmediate(r));
    expect(h.snap().context.exit).toEqual(exit);
    expect(h.received().filter((t) => t === 'container.stopped')).toHaveLength(1);
  });

  // XState v5's snapshot.can() reports a targetless transition without actions
  // (`exec: {}`) as not allowed, and engine.ts gates exec/signal on `can`; the machine
  // counts them so they are real transitions.
  test('exec and signal are allowed (and counted) only while running', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    expect(h.snap().can({ type: 'exec' })).toBe(true);
    expect(h.snap().can({ type: 'signal' })).toBe(true);
    h.send({ type: 'exec' });
    h.send({ type: 'signal' });
    h.send({ type: 'signal' });
    expect(h.snap().context).toMatchObject({ execs: 1, signalsSent: 2 });
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: 0, signal: null } });
    expect(h.snap().can({ type: 'exec' })).toBe(false);
    expect(h.snap().can({ type: 'signal' })).toBe(false);
  });

  // RACE: the root process can exit before the start reply arrives (the event channel
  // and the control channel are separate sockets).
  test('an exit fact that arrives before the start reply is not lost', async () => {
    const d = deferred<StartedProcess>();
    const h = harness(() => d.promise);
    h.send({ type: 'start' });
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: 127, signal: null } });
    d.resolve({ pid: 1, hostPid: 99 });
    await waitFor(h.container(), (s) => s.value !== 'starting', { timeout: 1000 });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toEqual({ exitCode: 127, signal: null });
  });
});

describe('containerMachine: start timeout', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  test('a start that never settles goes back to created with ETIMEOUT after exactly 10 s', () => {
    const h = harness(() => never());
    h.send({ type: 'start' });
    jest.advanceTimersByTime(9_999);
    expect(h.snap().value).toBe('starting');
    jest.advanceTimersByTime(1);
    expect(h.snap().value).toBe('created');
    expect(h.snap().context.error).toEqual({ code: 'ETIMEOUT', message: 'container start timed out', step: 'start' });
    expect(h.received()).toEqual(['container.startFailed']);
  });

  test('a start that resolves after the timeout does not revive it', async () => {
    const d = deferred<StartedProcess>();
    const h = harness(() => d.promise);
    h.send({ type: 'start' });
    jest.advanceTimersByTime(10_000);
    d.resolve({ pid: 1, hostPid: 2 });
    await new Promise((r) => setImmediate(r));
    expect(h.snap().value).toBe('created');
    expect(h.snap().context.pid).toBeUndefined();
  });

  test('startTimeout can be changed with provide({ delays })', () => {
    const h = harness(() => never(), { startTimeout: 50 });
    h.send({ type: 'start' });
    jest.advanceTimersByTime(49);
    expect(h.snap().value).toBe('starting');
    jest.advanceTimersByTime(1);
    expect(h.snap().value).toBe('created');
    expect(h.snap().context.error?.code).toBe('ETIMEOUT');
  });
});

describe('containerMachine: persistence', () => {
  test('a running container round-trips through JSON (as a spawned child) and still stops on its exit', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    h.send({ type: 'signal' });
    const snapshot = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    h.actor.stop();
    const r = harness(async () => ({ pid: 5, hostPid: 5 }), undefined, snapshot);
    expect(r.snap().value).toBe('running');
    expect(r.snap().context).toEqual({ ...INPUT, pid: 1, hostPid: 99, signalsSent: 1, execs: 0 });
    expect(r.snap().hasTag('alive')).toBe(true);
    r.send({ type: 'process.exited', pid: 1, exit: { exitCode: 0, signal: null } });
    expect(r.snap().value).toBe('stopped');
    expect(r.snap().context.exit).toEqual({ exitCode: 0, signal: null });
    // sendParent from the restored child reaches the restored parent.
    await waitFor(r.actor, (s) => s.context.received.some((e) => e.type === 'container.stopped'), { timeout: 1000 });
  });

  test('a running container restored as a root actor errors when it notifies (no parent)', () => {
    const [s0] = initialTransition(containerMachine, INPUT);
    const snapshot = JSON.parse(
      JSON.stringify({ ...containerMachine.getPersistedSnapshot(s0), value: 'running', context: { ...s0.context, pid: 1, hostPid: 99 } }),
    );
    const restored = createActor(provided(() => never()), fromSnapshot(snapshot));
    const errors: unknown[] = [];
    restored.subscribe({ error: (e) => errors.push(e) });
    restored.start();
    expect(restored.getSnapshot().value).toBe('running');
    restored.send({ type: 'process.exited', pid: 1, exit: { exitCode: 0, signal: null } });
    expect(restored.getSnapshot().status).toBe('error');
    expect(errors).toHaveLength(1);
  });

  // XState v5 does not persist `after` timers (they live in the actor system's
  // scheduler, which getPersistedSnapshot leaves out), and a pending fromPromise child
  // is re-run on restore. So a container restored in `starting` calls startContainer a
  // second time and has no start timeout any more.
  test('restored in starting: startContainer is invoked again', async () => {
    const calls: unknown[] = [];
    const start: Start = (input) => {
      calls.push(input);
      return never();
    };
    const h = harness(start);
    h.send({ type: 'start' });
    const snapshot = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    h.actor.stop();
    expect(snapshot.children.c1.snapshot.children.startContainer.snapshot).toEqual({
      status: 'active',
      input: { sandboxId: 'sb1', containerId: 'c1' },
    });
    const r = harness(start, undefined, snapshot);
    await new Promise((res) => setImmediate(res));
    expect(r.snap().value).toBe('starting');
    expect(calls).toEqual([
      { sandboxId: 'sb1', containerId: 'c1' },
      { sandboxId: 'sb1', containerId: 'c1' },
    ]);
  });
});

describe('containerMachine: pause', () => {
  test('pause only from running, resume only from paused; exec refused while paused, signal counted', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    expect(h.snap().can({ type: 'pause' })).toBe(false);
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    expect(h.snap().can({ type: 'resume' })).toBe(false);
    h.send({ type: 'pause' });
    expect(h.snap().value).toBe('paused');
    expect(h.snap().hasTag('alive')).toBe(true);
    expect(h.snap().can({ type: 'exec' })).toBe(false);
    expect(h.snap().can({ type: 'pause' })).toBe(false);
    h.send({ type: 'signal' });
    expect(h.snap().context.signalsSent).toBe(1);
    h.send({ type: 'resume' });
    expect(h.snap().value).toBe('running');
    expect(h.snap().can({ type: 'exec' })).toBe(true);
  });

  test('its root exit while paused stops it and notifies the parent; sandbox.lost too', async () => {
    const h = harness(async () => ({ pid: 1, hostPid: 99 }));
    h.send({ type: 'start' });
    await waitValue(h.container(), 'running');
    h.send({ type: 'pause' });
    h.send({ type: 'process.exited', pid: 2, exit: { exitCode: 0, signal: null } });
    expect(h.snap().value).toBe('paused');
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: null, signal: 9 } });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toEqual({ exitCode: null, signal: 9 });
    expect(h.received()).toContain('container.stopped');

    const l = harness(async () => ({ pid: 1, hostPid: 99 }));
    l.send({ type: 'start' });
    await waitValue(l.container(), 'running');
    l.send({ type: 'pause' });
    l.send({ type: 'sandbox.lost' });
    expect(l.snap().value).toBe('stopped');
    expect(l.snap().context.exit).toEqual({ exitCode: null, signal: null });
  });
});

describe('container machine: a prepared process (held before execve at create)', () => {
  it('takes signals only once prepared, and stops if the held process dies before start', () => {
    const h = harness(() => never());
    expect(h.snap().can({ type: 'signal' })).toBe(false);
    h.send({ type: 'prepared', pid: 1, hostPid: 4321 });
    expect(h.snap().value).toBe('created');
    expect(h.snap().context).toMatchObject({ prepared: { pid: 1, hostPid: 4321 }, pid: 1, hostPid: 4321 });
    expect(h.snap().can({ type: 'signal' })).toBe(true);
    // Another pid's exit is not this container's.
    h.send({ type: 'process.exited', pid: 7, exit: { exitCode: 0, signal: null } });
    expect(h.snap().value).toBe('created');
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: null, signal: 9 } });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context.exit).toEqual({ exitCode: null, signal: 9 });
    expect(h.received()).toContain('container.stopped');
  });

  it('a start that fails because the held process died meanwhile: stopped with that exit, not created again', async () => {
    let fail!: (e: Error) => void;
    const h = harness(() => new Promise((_, reject) => (fail = reject)));
    h.send({ type: 'prepared', pid: 1, hostPid: 4321 });
    h.send({ type: 'start' });
    expect(h.snap().value).toBe('starting');
    h.send({ type: 'process.exited', pid: 1, exit: { exitCode: null, signal: 9 } });
    fail(Object.assign(new Error('container c1 exited before its start'), { code: 'EINVALID_STATE' }));
    await waitValue(h.container(), 'stopped');
    expect(h.snap().context).toMatchObject({ pid: 1, exit: { exitCode: null, signal: 9 }, error: { code: 'EINVALID_STATE' } });
    expect(h.received()).toEqual(expect.arrayContaining(['container.startFailed', 'container.stopped']));
  });

  it('released (reattach found it running its program): running with the held pid, the parent told; ignored when nothing is held', () => {
    const h = harness(() => never());
    h.send({ type: 'released' });
    expect(h.snap().value).toBe('created');
    h.send({ type: 'prepared', pid: 1, hostPid: 4321 });
    h.send({ type: 'released' });
    expect(h.snap().value).toBe('running');
    expect(h.snap().context).toMatchObject({ pid: 1, hostPid: 4321 });
    expect(h.received()).toContain('container.started');
  });

  it('a failed start with no held process gone stays created (it can be retried)', async () => {
    let fail!: (e: Error) => void;
    const h = harness(() => new Promise((_, reject) => (fail = reject)));
    h.send({ type: 'prepared', pid: 1, hostPid: 4321 });
    h.send({ type: 'start' });
    h.send({ type: 'process.exited', pid: 7, exit: { exitCode: 0, signal: null } });
    fail(new Error('execve: ENOENT'));
    await waitValue(h.container(), 'created');
    expect(h.snap().context.exit).toBeUndefined();
  });

  it('an unprepared created container that gets an exit record stops: a start its supervisor died before recording', () => {
    const h = harness(() => never());
    h.send({ type: 'process.exited', pid: 15, exit: { exitCode: 3, signal: null } });
    expect(h.snap().value).toBe('stopped');
    expect(h.snap().context).toMatchObject({ pid: 15, exit: { exitCode: 3, signal: null } });
  });
});
