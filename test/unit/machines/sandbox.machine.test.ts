import { createActor, initialTransition, transition, waitFor } from 'xstate';
import type { AnyActorRef, EventObject } from 'xstate';
import { sandboxMachine } from '../../../machines/sandbox.machine';
import type { StartedProcess } from '../../../machines/container.machine';
import {
  INPUT,
  LAUNCHED,
  child,
  deferred,
  flush,
  fromSnapshot,
  never,
  provideSandbox,
  runningSandbox,
  startSandbox,
  waitState,
} from './helpers';

const launchedEvent = { type: 'xstate.done.actor.launchSandbox', output: LAUNCHED } as unknown as Parameters<
  typeof sandboxMachine.transition
>[1];
const ev = (e: object) => e as Parameters<typeof sandboxMachine.transition>[1];

/** Pure snapshots along the happy path, built with transition() (nothing runs). */
function pureCreated() {
  const [s0] = initialTransition(sandboxMachine, INPUT);
  const [s1] = transition(sandboxMachine, s0, launchedEvent);
  return s1;
}
function pureWithRoot() {
  const [s] = transition(sandboxMachine, pureCreated(), { type: 'container.add', containerId: 'c1', bundleDir: '/b/c1' });
  return s;
}
function pureRunning() {
  const [s1] = transition(sandboxMachine, pureWithRoot(), { type: 'start' });
  const [s2] = transition(sandboxMachine, s1, ev({ type: 'container.started', containerId: 'c1' }));
  return s2;
}

const exited = (containerId: string, pid: number, kind: 'container' | 'exec', exitCode: number | null, signal: number | null) =>
  ({ type: 'process.exited', containerId, pid, kind, exit: { exitCode, signal } }) as const;

describe('sandboxMachine: pure transitions', () => {
  test('starts in creating and invokes launchSandbox', () => {
    const [s, actions] = initialTransition(sandboxMachine, INPUT);
    expect(s.value).toBe('creating');
    expect(s.context).toEqual({ ...INPUT, containers: {}, processes: {}, pendingExits: {} });
    expect(actions.some((a) => a.type === 'xstate.spawnChild')).toBe(true);
  });

  test('launch done → created with the launch facts', () => {
    const s = pureCreated();
    expect(s.value).toBe('created');
    expect(s.context).toMatchObject(LAUNCHED);
  });

  test('launch error → failed with the error info', () => {
    const [s0] = initialTransition(sandboxMachine, INPUT);
    const error = Object.assign(new Error('no userns'), { code: 'ELAUNCH', context: { step: 'unshare' } });
    const [s1] = transition(sandboxMachine, s0, ev({ type: 'xstate.error.actor.launchSandbox', error }));
    expect(s1.value).toBe('failed');
    expect(s1.context.error).toEqual({ code: 'ELAUNCH', message: 'no userns', step: 'unshare' });
  });

  test('start without a root container is not allowed', () => {
    const s = pureCreated();
    expect(s.can({ type: 'start' })).toBe(false);
    const [s1] = transition(sandboxMachine, s, { type: 'start' });
    expect(s1.value).toBe('created');
  });

  test('container.add in created records the root and spawns it; a second add is refused', () => {
    const s = pureWithRoot();
    expect(s.context.rootContainerId).toBe('c1');
    expect(s.context.containers).toEqual({ c1: { root: true, bundleDir: '/b/c1' } });
    expect(Object.keys(s.children)).toContain('c1');
    expect(s.can({ type: 'container.add', containerId: 'c2', bundleDir: '/b/c2' })).toBe(false);
  });

  test('start with a root container → starting, sending start to the root', () => {
    const s = pureWithRoot();
    expect(s.can({ type: 'start' })).toBe(true);
    const [s1, actions] = transition(sandboxMachine, s, { type: 'start' });
    expect(s1.value).toBe('starting');
    const send = actions.find((a) => a.type === 'xstate.sendTo');
    expect(send?.params).toMatchObject({ targetId: 'c1', event: { type: 'start' } });
  });

  test('starting: only the root container decides', () => {
    const [s1] = transition(sandboxMachine, pureWithRoot(), { type: 'start' });
    expect(s1.can(ev({ type: 'container.started', containerId: 'other' }))).toBe(false);
    const [failed] = transition(sandboxMachine, s1, ev({ type: 'container.startFailed', containerId: 'c1' }));
    expect(failed.value).toBe('created');
    const [ok] = transition(sandboxMachine, s1, ev({ type: 'container.started', containerId: 'c1' }));
    expect(ok.value).toBe('running');
  });

  test('running: guards refuse duplicates, unknown containers and removing the root', () => {
    const s = pureRunning();
    expect(s.can({ type: 'start' })).toBe(false);
    expect(s.can({ type: 'container.add', containerId: 'c1', bundleDir: '/x' })).toBe(false);
    expect(s.can({ type: 'container.add', containerId: 'c2', bundleDir: '/x' })).toBe(true);
    expect(s.can({ type: 'container.start', containerId: 'nope' })).toBe(false);
    expect(s.can({ type: 'container.remove', containerId: 'c1' })).toBe(false);
    expect(s.can({ type: 'container.remove', containerId: 'nope' })).toBe(false);
    expect(s.can({ type: 'process.add', containerId: 'nope', pid: 5, hostPid: 6 })).toBe(false);
    expect(s.can({ type: 'process.add', containerId: 'c1', pid: 5, hostPid: 6 })).toBe(true);
    expect(s.can({ type: 'destroy' })).toBe(true);
  });

  test('tags: alive in created/starting/running only', () => {
    const [creating] = initialTransition(sandboxMachine, INPUT);
    const [starting] = transition(sandboxMachine, pureWithRoot(), { type: 'start' });
    const [failed] = transition(sandboxMachine, creating, ev({ type: 'xstate.error.actor.launchSandbox', error: new Error('x') }));
    const [destroying] = transition(sandboxMachine, pureCreated(), { type: 'destroy' });
    expect(pureCreated().hasTag('alive')).toBe(true);
    expect(starting.hasTag('alive')).toBe(true);
    expect(pureRunning().hasTag('alive')).toBe(true);
    expect(creating.hasTag('alive')).toBe(false);
    expect(failed.hasTag('alive')).toBe(false);
    expect(destroying.hasTag('alive')).toBe(false);
  });
});

describe('sandboxMachine: launch', () => {
  test('creating → created on launch success with the launch facts', async () => {
    const calls: unknown[] = [];
    const actor = startSandbox({
      launch: async (input) => {
        calls.push(input);
        return LAUNCHED;
      },
    });
    expect(actor.getSnapshot().value).toBe('creating');
    await waitState(actor, 'created');
    expect(calls).toEqual([{ sandboxId: 'sb1' }]);
    expect(actor.getSnapshot().context).toEqual({ ...INPUT, ...LAUNCHED, containers: {}, processes: {}, pendingExits: {} });
  });

  test('launch failure → failed with code, message and step', async () => {
    const actor = startSandbox({
      launch: async () => {
        throw Object.assign(new Error('mount proc failed'), { code: 'EMOUNT', context: { step: 'mount-proc', errno: 1 } });
      },
    });
    await waitState(actor, 'failed');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'EMOUNT', message: 'mount proc failed', step: 'mount-proc', errno: 1 });
    expect(actor.getSnapshot().context.initPid).toBeUndefined();
    expect(actor.getSnapshot().hasTag('alive')).toBe(false);
  });
});

describe('sandboxMachine: containers', () => {
  test('container.add spawns the root container child and records rootContainerId', async () => {
    const actor = startSandbox();
    await waitState(actor, 'created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/bundles/c1' });
    const s = actor.getSnapshot();
    expect(s.context.rootContainerId).toBe('c1');
    expect(s.context.containers).toEqual({ c1: { root: true, bundleDir: '/bundles/c1' } });
    expect(child(actor, 'c1')?.value).toBe('created');
    expect(child(actor, 'c1')?.context).toEqual({ sandboxId: 'sb1', containerId: 'c1', root: true, signalsSent: 0, execs: 0 });
  });

  test('start → starting → running when startContainer resolves', async () => {
    const d = deferred<StartedProcess>();
    const calls: unknown[] = [];
    const actor = startSandbox({
      start: (input) => {
        calls.push(input);
        return d.promise;
      },
    });
    await waitState(actor, 'created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/bundles/c1' });
    actor.send({ type: 'start' });
    expect(actor.getSnapshot().value).toBe('starting');
    expect(child(actor, 'c1')?.value).toBe('starting');
    d.resolve({ pid: 1, hostPid: 31337 });
    await waitState(actor, 'running');
    expect(calls).toEqual([{ sandboxId: 'sb1', containerId: 'c1' }]);
    expect(child(actor, 'c1')?.value).toBe('running');
    expect(child(actor, 'c1')?.context).toMatchObject({ pid: 1, hostPid: 31337 });
  });

  test('a start that rejects returns sandbox and container to created, error on the container only', async () => {
    let attempt = 0;
    const actor = startSandbox({
      start: async () => {
        if (++attempt === 1) throw Object.assign(new Error('execve: ENOENT'), { code: 'ESTART', context: { step: 'execve', errno: 2 } });
        return { pid: 1, hostPid: 77 };
      },
    });
    await waitState(actor, 'created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/bundles/c1' });
    const before = actor.getSnapshot().context;
    actor.send({ type: 'start' });
    await waitFor(actor, (s) => s.value === 'created' && child(actor, 'c1')?.value === 'created', { timeout: 1000 });
    expect(actor.getSnapshot().context).toEqual(before);
    expect(child(actor, 'c1')?.context).toEqual({
      sandboxId: 'sb1',
      containerId: 'c1',
      root: true,
      signalsSent: 0,
      execs: 0,
      error: { code: 'ESTART', message: 'execve: ENOENT', step: 'execve', errno: 2 },
    });
    // It can be retried.
    actor.send({ type: 'start' });
    await waitState(actor, 'running');
    expect(child(actor, 'c1')?.context.error).toBeUndefined();
  });

  test('a second start in running is not accepted', async () => {
    let starts = 0;
    const actor = await runningSandbox({
      start: async () => {
        starts++;
        return { pid: 1, hostPid: 2 };
      },
    });
    expect(actor.getSnapshot().can({ type: 'start' })).toBe(false);
    actor.send({ type: 'start' });
    await flush();
    expect(actor.getSnapshot().value).toBe('running');
    expect(starts).toBe(1);
  });

  test('a second container can be added and started while running', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
    expect(actor.getSnapshot().context.containers.c2).toEqual({ root: false, bundleDir: '/bundles/c2' });
    expect(actor.getSnapshot().context.rootContainerId).toBe('c1');
    expect(child(actor, 'c2')?.value).toBe('created');
    expect(child(actor, 'c2')?.context.root).toBe(false);
    actor.send({ type: 'container.start', containerId: 'c2' });
    await waitFor(actor, () => child(actor, 'c2')?.value === 'running', { timeout: 1000 });
    expect(child(actor, 'c2')?.context).toMatchObject({ pid: 101, hostPid: 50101 });
    expect(actor.getSnapshot().value).toBe('running');
  });

  test('a failing start of a second container leaves the sandbox running', async () => {
    let n = 0;
    const actor = await runningSandbox({
      start: async () => {
        if (n++ === 0) return { pid: 1, hostPid: 2 };
        throw new Error('no such bundle');
      },
    });
    actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
    actor.send({ type: 'container.start', containerId: 'c2' });
    await waitFor(actor, () => child(actor, 'c2')?.context.error !== undefined, { timeout: 1000 });
    expect(child(actor, 'c2')?.value).toBe('created');
    expect(actor.getSnapshot().value).toBe('running');
    expect(actor.getSnapshot().context.error).toBeUndefined();
  });

  test('container.remove of a non-root container stops it and drops its processes', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
    actor.send({ type: 'container.start', containerId: 'c2' });
    await waitFor(actor, () => child(actor, 'c2')?.value === 'running', { timeout: 1000 });
    const c2 = actor.getSnapshot().children.c2 as AnyActorRef;
    actor.send({ type: 'process.add', containerId: 'c2', pid: 20, hostPid: 2020 });
    actor.send({ type: 'process.add', containerId: 'c1', pid: 10, hostPid: 1010 });
    actor.send({ type: 'container.remove', containerId: 'c2' });
    const s = actor.getSnapshot();
    expect(Object.keys(s.children).sort()).toEqual(['c1', 'pid-10']);
    expect(s.context.containers).toEqual({ c1: { root: true, bundleDir: '/bundles/c1' } });
    expect(s.context.processes).toEqual({ 'pid-10': { containerId: 'c1' } });
    expect(c2.getSnapshot().status).toBe('stopped');
    // Late facts for what was removed are ignored.
    actor.send(exited('c2', 101, 'container', 0, null));
    actor.send(exited('c2', 20, 'exec', 0, null));
    expect(actor.getSnapshot().status).toBe('active');
    expect(actor.getSnapshot().value).toBe('running');
  });

  test('container.remove of the root container is refused', async () => {
    const actor = await runningSandbox();
    expect(actor.getSnapshot().can({ type: 'container.remove', containerId: 'c1' })).toBe(false);
    actor.send({ type: 'container.remove', containerId: 'c1' });
    expect(child(actor, 'c1')?.value).toBe('running');
    expect(actor.getSnapshot().context.containers.c1).toBeDefined();
  });
});

describe('sandboxMachine: processes and exits', () => {
  test('process.add spawns a process child pid-<pid>', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    expect(actor.getSnapshot().context.processes).toEqual({ 'pid-12': { containerId: 'c1' } });
    expect(child(actor, 'pid-12')?.value).toBe('running');
    expect(child(actor, 'pid-12')?.context).toEqual({ sandboxId: 'sb1', containerId: 'c1', pid: 12, hostPid: 5012, signalsSent: 0 });
  });

  test('a reused pid after an exit replaces the exited process child', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    actor.send(exited('c1', 12, 'exec', 0, null));
    const old = actor.getSnapshot().children['pid-12'] as AnyActorRef;
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 6012 });
    expect(child(actor, 'pid-12')?.value).toBe('running');
    expect(child(actor, 'pid-12')?.context.hostPid).toBe(6012);
    // XState overwrites the children entry; the old actor is not stopped, just dropped.
    expect(actor.getSnapshot().children['pid-12']).not.toBe(old);
  });

  test("an exec exit reaches that process only", async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    actor.send({ type: 'process.add', containerId: 'c1', pid: 13, hostPid: 5013 });
    actor.send(exited('c1', 12, 'exec', 3, null));
    expect(child(actor, 'pid-12')?.value).toBe('exited');
    expect(child(actor, 'pid-12')?.context.exit).toEqual({ exitCode: 3, signal: null });
    expect(child(actor, 'pid-13')?.value).toBe('running');
    expect(child(actor, 'c1')?.value).toBe('running');
    expect(actor.getSnapshot().value).toBe('running');
  });

  test('a non-root container exit stops that container; the sandbox keeps running', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
    actor.send({ type: 'container.start', containerId: 'c2' });
    await waitFor(actor, () => child(actor, 'c2')?.value === 'running', { timeout: 1000 });
    actor.send(exited('c2', 101, 'container', 7, null));
    expect(child(actor, 'c2')?.value).toBe('stopped');
    expect(child(actor, 'c2')?.context.exit).toEqual({ exitCode: 7, signal: null });
    await flush();
    expect(actor.getSnapshot().value).toBe('running');
    expect(actor.getSnapshot().context.exit).toBeUndefined();
  });

  test('the root container stopping moves the sandbox to stopped with its status', async () => {
    const actor = await runningSandbox();
    actor.send(exited('c1', 100, 'container', null, 9));
    expect(child(actor, 'c1')?.value).toBe('stopped');
    expect(child(actor, 'c1')?.context.exit).toEqual({ exitCode: null, signal: 9 });
    await waitState(actor, 'stopped');
    expect(actor.getSnapshot().context.exit).toEqual({ exitCode: null, signal: 9 });
    expect(actor.getSnapshot().hasTag('alive')).toBe(false);
  });

  test('exits for unknown containers are ignored; unknown exec pids are kept for a later process.add', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    const before = actor.getSnapshot().context;
    actor.send(exited('c1', 999, 'exec', 0, null));
    actor.send(exited('ghost', 5, 'container', 0, null));
    actor.send(exited('c1', 555, 'container', 1, null)); // known container, not its root pid
    await flush();
    expect(errors).toEqual([]);
    expect(actor.getSnapshot().status).toBe('active');
    expect(actor.getSnapshot().value).toBe('running');
    expect(actor.getSnapshot().context).toEqual({ ...before, pendingExits: { 'pid-999': { exitCode: 0, signal: null } } });
    expect(child(actor, 'c1')?.value).toBe('running');
    expect(child(actor, 'pid-12')?.value).toBe('running');
  });

  test('duplicate exit facts keep the recorded status', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    const fromProcess: string[] = [];
    actor.system.inspect((e) => {
      if (e.type === '@xstate.event' && e.actorRef === actor && (e.sourceRef as AnyActorRef | undefined)?.id === 'pid-12') {
        fromProcess.push((e.event as EventObject).type);
      }
    });
    actor.send(exited('c1', 12, 'exec', 1, null));
    actor.send(exited('c1', 12, 'exec', 1, null));
    expect(child(actor, 'pid-12')?.value).toBe('exited');
    expect(child(actor, 'pid-12')?.context.exit).toEqual({ exitCode: 1, signal: null });
    actor.send(exited('c1', 100, 'container', 0, null));
    actor.send(exited('c1', 100, 'container', 0, null));
    await flush();
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(actor.getSnapshot().context.exit).toEqual({ exitCode: 0, signal: null });
    expect(child(actor, 'c1')?.context.exit).toEqual({ exitCode: 0, signal: null });
    // The process machine never notifies the sandbox, so an exec exit (duplicate or not)
    // produces no stopped notification at all; context.processes keeps the entry.
    expect(fromProcess).toEqual([]);
    expect(actor.getSnapshot().context.processes['pid-12']).toEqual({ containerId: 'c1' });
  });

  test('init.exited loses every child: alive ones end with an unknown status, ended ones keep theirs', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    actor.send({ type: 'process.add', containerId: 'c1', pid: 13, hostPid: 5013 });
    actor.send(exited('c1', 13, 'exec', 0, null));
    actor.send({ type: 'init.exited' });
    await waitState(actor, 'stopped');
    const lost = { exitCode: null, signal: null };
    expect(child(actor, 'c1')?.value).toBe('stopped');
    expect(child(actor, 'c1')?.context.exit).toEqual(lost);
    expect(child(actor, 'c2')?.value).toBe('stopped');
    expect(child(actor, 'c2')?.context.exit).toEqual(lost);
    expect(child(actor, 'pid-12')?.value).toBe('exited');
    expect(child(actor, 'pid-12')?.context.exit).toEqual(lost);
    expect(child(actor, 'pid-13')?.context.exit).toEqual({ exitCode: 0, signal: null });
    await flush();
    expect(actor.getSnapshot().context.exit).toEqual(lost);
  });

  test('a real status arriving after init.exited still updates the container and sandbox', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    actor.send({ type: 'init.exited' });
    await waitState(actor, 'stopped');
    actor.send(exited('c1', 100, 'container', 137, null));
    actor.send(exited('c1', 12, 'exec', null, 15));
    expect(child(actor, 'c1')?.context.exit).toEqual({ exitCode: 137, signal: null });
    expect(child(actor, 'pid-12')?.context.exit).toEqual({ exitCode: null, signal: 15 });
    await waitFor(actor, (s) => s.context.exit?.exitCode === 137, { timeout: 1000 });
  });

  test('init.exited in created stops the sandbox and its unstarted root container', async () => {
    const actor = startSandbox();
    await waitState(actor, 'created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/bundles/c1' });
    actor.send({ type: 'init.exited' });
    await waitState(actor, 'stopped');
    expect(child(actor, 'c1')?.value).toBe('stopped');
  });

  // RACE: exec replies with the pid, then the engine sends process.add; the exit fact
  // for that pid can be delivered first (short-lived command, separate event channel).
  test('an exec exit delivered before process.add is not lost', async () => {
    const actor = await runningSandbox();
    actor.send(exited('c1', 12, 'exec', 0, null));
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    expect(child(actor, 'pid-12')?.value).toBe('exited');
  });
});

describe('sandboxMachine: destroy', () => {
  async function inState(state: 'created' | 'running' | 'stopped' | 'failed', destroy: () => Promise<void>) {
    if (state === 'failed') {
      const a = startSandbox({ launch: async () => Promise.reject(new Error('x')), destroy });
      await waitState(a, 'failed');
      return a;
    }
    if (state === 'created') {
      const a = startSandbox({ destroy });
      await waitState(a, 'created');
      return a;
    }
    const a = await runningSandbox({ destroy });
    if (state === 'stopped') {
      a.send(exited('c1', 100, 'container', 0, null));
      await waitState(a, 'stopped');
    }
    return a;
  }

  test.each(['created', 'running', 'stopped', 'failed'] as const)('from %s: destroying → destroyed (final)', async (state) => {
    const d = deferred<void>();
    const calls: unknown[] = [];
    const actor = await inState(state, () => {
      calls.push(1);
      return d.promise;
    });
    expect(actor.getSnapshot().can({ type: 'destroy' })).toBe(true);
    actor.send({ type: 'destroy' });
    expect(actor.getSnapshot().value).toBe('destroying');
    expect(calls).toHaveLength(1);
    d.resolve();
    await waitState(actor, 'destroyed');
    expect(actor.getSnapshot().status).toBe('done');
  });

  test('destroy while starting goes to destroying', async () => {
    // destroySandbox is held open so the machine has to sit in destroying, observably.
    let release!: () => void;
    const destroyed: { sandboxId: string }[] = [];
    const actor = startSandbox({
      start: () => never(),
      destroy: (input) => {
        destroyed.push(input);
        return new Promise<void>((r) => (release = r));
      },
    });
    const seen: unknown[] = [];
    actor.subscribe((s) => seen.push(s.value));
    await waitState(actor, 'created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/b' });
    actor.send({ type: 'start' });
    expect(actor.getSnapshot().value).toBe('starting');
    actor.send({ type: 'destroy' });
    await waitState(actor, 'destroying');
    expect(destroyed).toEqual([{ sandboxId: actor.getSnapshot().context.sandboxId }]);
    release();
    await waitState(actor, 'destroyed');
    expect(seen.filter((v, i) => v !== seen[i - 1]).slice(-3)).toEqual(['starting', 'destroying', 'destroyed']);
  });

  test('destroySandbox rejecting → failed with the error; destroy can be retried', async () => {
    let n = 0;
    const actor = await runningSandbox({
      destroy: async () => {
        if (n++ === 0) throw Object.assign(new Error('kill failed'), { code: 'EKILL', context: { step: 'kill' } });
      },
    });
    actor.send({ type: 'destroy' });
    await waitState(actor, 'failed');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'EKILL', message: 'kill failed', step: 'kill' });
    actor.send({ type: 'destroy' });
    await waitState(actor, 'destroyed');
    expect(n).toBe(2);
  });

  test('destroy is not accepted while destroying or creating', async () => {
    const actor = startSandbox({ launch: () => never() });
    expect(actor.getSnapshot().can({ type: 'destroy' })).toBe(false);
    const b = startSandbox({ destroy: () => never() });
    await waitState(b, 'created');
    b.send({ type: 'destroy' });
    expect(b.getSnapshot().can({ type: 'destroy' })).toBe(false);
    actor.stop();
    b.stop();
  });
});

describe('sandboxMachine: timeouts', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  test('a launch that never settles fails with ETIMEOUT after exactly 10 000 ms', () => {
    const actor = startSandbox({ launch: () => never() });
    jest.advanceTimersByTime(9_999);
    expect(actor.getSnapshot().value).toBe('creating');
    jest.advanceTimersByTime(1);
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'ETIMEOUT', message: 'sandbox launch timed out', step: 'launch' });
  });

  test('provide({ delays: { launchTimeout: 50 } }) shortens the launch timeout', () => {
    const machine = provideSandbox({ launch: () => never() }).provide({ delays: { launchTimeout: 50 } });
    const actor = createActor(machine, { input: INPUT }).start();
    jest.advanceTimersByTime(49);
    expect(actor.getSnapshot().value).toBe('creating');
    jest.advanceTimersByTime(1);
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.error?.code).toBe('ETIMEOUT');
  });

  test('a launch that succeeds after the timeout stays failed', async () => {
    const d = deferred<typeof LAUNCHED>();
    const actor = startSandbox({ launch: () => d.promise });
    jest.advanceTimersByTime(10_000);
    d.resolve(LAUNCHED);
    await flush();
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.initPid).toBeUndefined();
  });

  test('a container start that never settles returns container and sandbox to created with ETIMEOUT', async () => {
    const actor = startSandbox({ start: () => never() });
    await flush();
    expect(actor.getSnapshot().value).toBe('created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/b' });
    actor.send({ type: 'start' });
    jest.advanceTimersByTime(9_999);
    expect(actor.getSnapshot().value).toBe('starting');
    jest.advanceTimersByTime(1);
    expect(child(actor, 'c1')?.value).toBe('created');
    expect(child(actor, 'c1')?.context.error).toEqual({ code: 'ETIMEOUT', message: 'container start timed out', step: 'start' });
    expect(actor.getSnapshot().value).toBe('created');
  });

  test('a destroy that never settles fails with ETIMEOUT', async () => {
    const actor = startSandbox({ destroy: () => never() });
    await flush();
    actor.send({ type: 'destroy' });
    jest.advanceTimersByTime(9_999);
    expect(actor.getSnapshot().value).toBe('destroying');
    jest.advanceTimersByTime(1);
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'ETIMEOUT', message: 'sandbox destroy timed out', step: 'destroy' });
  });

  // XState v5 keeps `after` timers in the actor system's scheduler, which
  // getPersistedSnapshot() leaves out, and restarts a pending promise actor on restore.
  // That is why the engine persists only stable states (created/running/stopped/failed).
  test('restored in creating, launchSandbox is invoked again', async () => {
    let calls = 0;
    const machine = provideSandbox({
      launch: () => {
        calls++;
        return never();
      },
    });
    const a = createActor(machine, { input: INPUT }).start();
    const snapshot = JSON.parse(JSON.stringify(a.getPersistedSnapshot()));
    a.stop();
    createActor(machine, fromSnapshot(snapshot)).start();
    await flush();
    expect(calls).toBe(2);
  });
});

describe('sandboxMachine: persistence', () => {
  async function interesting() {
    const actor = await runningSandbox();
    actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
    actor.send({ type: 'container.start', containerId: 'c2' });
    await waitFor(actor, () => child(actor, 'c2')?.value === 'running', { timeout: 1000 });
    actor.send({ type: 'process.add', containerId: 'c1', pid: 12, hostPid: 5012 });
    actor.send({ type: 'process.add', containerId: 'c2', pid: 13, hostPid: 5013 });
    actor.send(exited('c2', 13, 'exec', 4, null));
    return actor;
  }

  function restore(actor: ReturnType<typeof startSandbox>) {
    const snapshot = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    return createActor(provideSandbox({ start: async () => ({ pid: 300, hostPid: 50300 }) }), fromSnapshot(snapshot)).start();
  }

  test('value, context and children survive a JSON round trip', async () => {
    const actor = await interesting();
    const context = actor.getSnapshot().context;
    const children = Object.fromEntries(
      Object.keys(actor.getSnapshot().children).map((id) => [id, { value: child(actor, id)?.value, context: child(actor, id)?.context }]),
    );
    const restored = restore(actor);
    const s = restored.getSnapshot();
    expect(s.value).toBe('running');
    expect(s.status).toBe('active');
    expect(s.context).toEqual(context);
    expect(Object.keys(s.children).sort()).toEqual(['c1', 'c2', 'pid-12', 'pid-13']);
    for (const [id, c] of Object.entries(children)) {
      expect({ id, value: child(restored, id)?.value, context: child(restored, id)?.context }).toEqual({ id, ...c });
    }
    expect(child(restored, 'c1')?.context).toMatchObject({ pid: 100, hostPid: 50100, root: true });
    expect(child(restored, 'pid-13')?.context.exit).toEqual({ exitCode: 4, signal: null });
  });

  test('the restored sandbox still routes exits to the right child and reacts to the root stopping', async () => {
    const restored = restore(await interesting());
    restored.send(exited('c1', 12, 'exec', null, 2));
    expect(child(restored, 'pid-12')?.value).toBe('exited');
    expect(child(restored, 'pid-12')?.context.exit).toEqual({ exitCode: null, signal: 2 });
    expect(child(restored, 'c1')?.value).toBe('running');
    restored.send(exited('c2', 101, 'container', 0, null));
    expect(child(restored, 'c2')?.value).toBe('stopped');
    expect(restored.getSnapshot().value).toBe('running');
    // A restored child's sendParent reaches the restored sandbox.
    restored.send(exited('c1', 100, 'container', 1, null));
    await waitState(restored, 'stopped');
    expect(restored.getSnapshot().context.exit).toEqual({ exitCode: 1, signal: null });
  });

  test('the restored sandbox can add, start and remove containers', async () => {
    const restored = restore(await interesting());
    restored.send({ type: 'container.add', containerId: 'c3', bundleDir: '/bundles/c3' });
    restored.send({ type: 'container.start', containerId: 'c3' });
    await waitFor(restored, () => child(restored, 'c3')?.value === 'running', { timeout: 1000 });
    expect(child(restored, 'c3')?.context).toMatchObject({ pid: 300, hostPid: 50300, root: false });
    restored.send({ type: 'container.remove', containerId: 'c2' });
    expect(Object.keys(restored.getSnapshot().children).sort()).toEqual(['c1', 'c3', 'pid-12']);
  });

  test('a restored sandbox handles init.exited and destroy', async () => {
    const restored = restore(await interesting());
    restored.send({ type: 'init.exited' });
    await waitState(restored, 'stopped');
    expect(child(restored, 'c2')?.context.exit).toEqual({ exitCode: null, signal: null });
    restored.send({ type: 'destroy' });
    await waitState(restored, 'destroyed');
    expect(restored.getSnapshot().status).toBe('done');
  });
});
