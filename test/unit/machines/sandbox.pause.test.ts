import { createActor, transition, waitFor, type AnyActorRef } from 'xstate';
import { sandboxMachine } from '../../../machines/sandbox.machine';
import { child, deferred, fromSnapshot, provideSandbox, runningSandbox, startSandbox, waitState } from './helpers';

/**
 * Pause and resume in the sandbox machine (docs/decisions/0014): the freezer is the
 * named effect `freezeSandbox`/`thawSandbox`, replaced here by fakes.
 */

const exited = (containerId: string, pid: number, exitCode: number | null, signal: number | null) =>
  ({ type: 'process.exited', containerId, pid, kind: 'container', exit: { exitCode, signal } }) as const;

/** A running sandbox with a second container c2 running and a third c3 only added. */
async function podSandbox(effects: Parameters<typeof runningSandbox>[0] = {}) {
  const actor = await runningSandbox(effects);
  actor.send({ type: 'container.add', containerId: 'c2', bundleDir: '/bundles/c2' });
  actor.send({ type: 'container.start', containerId: 'c2' });
  await waitStateOf(actor, 'c2', 'running');
  actor.send({ type: 'container.add', containerId: 'c3', bundleDir: '/bundles/c3' });
  return actor;
}

async function waitStateOf(actor: ReturnType<typeof startSandbox>, id: string, value: string) {
  await waitFor(actor, () => child(actor, id)?.value === value, { timeout: 1000 });
}

describe('sandboxMachine: pause', () => {
  test('pause is accepted in running only; resume in paused only', async () => {
    const created = startSandbox();
    await waitState(created, 'created');
    expect(created.getSnapshot().can({ type: 'pause' })).toBe(false);
    expect(created.getSnapshot().can({ type: 'resume' })).toBe(false);
    const running = await runningSandbox();
    expect(running.getSnapshot().can({ type: 'pause' })).toBe(true);
    expect(running.getSnapshot().can({ type: 'resume' })).toBe(false);
    running.send(exited('c1', 100, 0, null));
    await waitState(running, 'stopped');
    expect(running.getSnapshot().can({ type: 'pause' })).toBe(false);
    expect(running.getSnapshot().can({ type: 'resume' })).toBe(false);
  });

  test('pause → pausing (freezeSandbox gets the id and init\'s host pid) → paused; started containers follow, an added one stays created', async () => {
    const inputs: unknown[] = [];
    const freeze = deferred<void>();
    const actor = await podSandbox({
      freeze: (input) => {
        inputs.push(input);
        return freeze.promise;
      },
    });
    actor.send({ type: 'pause' });
    expect(actor.getSnapshot().value).toBe('pausing');
    expect(actor.getSnapshot().hasTag('alive')).toBe(true);
    // Nothing is paused until the freezer says so.
    expect(child(actor, 'c1')?.value).toBe('running');
    expect(actor.getSnapshot().can({ type: 'pause' })).toBe(false);
    freeze.resolve();
    await waitState(actor, 'paused');
    expect(inputs).toEqual([{ sandboxId: 'sb1', initHostPid: 4242 }]);
    expect(child(actor, 'c1')?.value).toBe('paused');
    expect(child(actor, 'c2')?.value).toBe('paused');
    expect(child(actor, 'c3')?.value).toBe('created');
    expect(actor.getSnapshot().hasTag('alive')).toBe(true);
  });

  test('a freeze that fails returns to running with the error; the containers never left running', async () => {
    const actor = await runningSandbox({
      freeze: async () => {
        throw Object.assign(new Error('freeze: ETIMEOUT'), { code: 'ETIMEOUT', context: { step: 'freeze' } });
      },
    });
    actor.send({ type: 'pause' });
    await waitState(actor, 'running');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'ETIMEOUT', message: 'freeze: ETIMEOUT', step: 'freeze' });
    expect(child(actor, 'c1')?.value).toBe('running');
    // The next pause starts clean.
    const again = deferred<void>();
    const a2 = await runningSandbox({ freeze: () => again.promise });
    a2.send({ type: 'pause' });
    expect(a2.getSnapshot().context.error).toBeUndefined();
    again.resolve();
    await waitState(a2, 'paused');
  });

  test('paused: exec and starting containers are refused, signal is accepted, adding a container is refused', async () => {
    const actor = await podSandbox();
    actor.send({ type: 'pause' });
    await waitState(actor, 'paused');
    const c1 = actor.getSnapshot().children.c1 as AnyActorRef;
    expect(c1.getSnapshot().can({ type: 'exec' })).toBe(false);
    expect(c1.getSnapshot().can({ type: 'signal' })).toBe(true);
    const s = actor.getSnapshot();
    expect(s.can({ type: 'container.start', containerId: 'c3' })).toBe(false);
    expect(s.can({ type: 'container.add', containerId: 'c4', bundleDir: '/b' })).toBe(false);
    expect(s.can({ type: 'container.remove', containerId: 'c2' })).toBe(false);
    expect(s.can({ type: 'start' })).toBe(false);
    expect(s.can({ type: 'destroy' })).toBe(true);
  });

  test('resume → resuming → running; paused containers run again', async () => {
    const thaw = deferred<void>();
    const actor = await podSandbox({ thaw: () => thaw.promise });
    actor.send({ type: 'pause' });
    await waitState(actor, 'paused');
    actor.send({ type: 'resume' });
    expect(actor.getSnapshot().value).toBe('resuming');
    thaw.resolve();
    await waitState(actor, 'running');
    expect(child(actor, 'c1')?.value).toBe('running');
    expect(child(actor, 'c2')?.value).toBe('running');
    expect(child(actor, 'c3')?.value).toBe('created');
    expect((actor.getSnapshot().children.c1 as AnyActorRef).getSnapshot().can({ type: 'exec' })).toBe(true);
  });

  test('a thaw that fails stays paused with the error', async () => {
    const actor = await runningSandbox({ thaw: async () => Promise.reject(Object.assign(new Error('thaw: EIO'), { code: 'EFREEZER' })) });
    actor.send({ type: 'pause' });
    await waitState(actor, 'paused');
    actor.send({ type: 'resume' });
    await waitState(actor, 'paused');
    expect(actor.getSnapshot().context.error).toMatchObject({ code: 'EFREEZER' });
    expect(child(actor, 'c1')?.value).toBe('paused');
  });

  test('the root container exiting while paused (SIGKILL on cgroup v2) stops the sandbox with its status', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'pause' });
    await waitState(actor, 'paused');
    actor.send(exited('c1', 100, null, 9));
    await waitState(actor, 'stopped');
    expect(actor.getSnapshot().context.exit).toEqual({ exitCode: null, signal: 9 });
    expect(child(actor, 'c1')?.value).toBe('stopped');
  });

  test('init.exited while paused loses the children; destroy while paused or pausing tears down', async () => {
    const lost = await runningSandbox();
    lost.send({ type: 'pause' });
    await waitState(lost, 'paused');
    lost.send({ type: 'init.exited' });
    await waitState(lost, 'stopped');
    expect(child(lost, 'c1')?.context.exit).toEqual({ exitCode: null, signal: null });

    const destroyed: string[] = [];
    const paused = await runningSandbox({ destroy: async ({ sandboxId }) => void destroyed.push(sandboxId) });
    paused.send({ type: 'pause' });
    await waitState(paused, 'paused');
    paused.send({ type: 'destroy' });
    await waitState(paused, 'destroyed');

    const pausing = await runningSandbox({ freeze: () => new Promise(() => undefined), destroy: async ({ sandboxId }) => void destroyed.push(sandboxId) });
    pausing.send({ type: 'pause' });
    pausing.send({ type: 'destroy' });
    await waitState(pausing, 'destroyed');
    expect(destroyed).toEqual(['sb1', 'sb1']);
  });

  test('a paused sandbox survives a JSON round trip as paused, with paused children, and can be resumed', async () => {
    const actor = await podSandbox();
    actor.send({ type: 'pause' });
    await waitState(actor, 'paused');
    const snapshot = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    const restored = createActor(provideSandbox(), fromSnapshot(snapshot)).start();
    expect(restored.getSnapshot().value).toBe('paused');
    expect(child(restored, 'c1')?.value).toBe('paused');
    expect(child(restored, 'c2')?.value).toBe('paused');
    restored.send({ type: 'resume' });
    await waitState(restored, 'running');
    expect(child(restored, 'c2')?.value).toBe('running');
  });

  test('pure: pause in running names the freezeSandbox invoke; resume in running changes nothing', async () => {
    const actor = await runningSandbox();
    const running = actor.getSnapshot();
    const [pausing, actions] = transition(sandboxMachine, running, { type: 'pause' });
    expect(pausing.value).toBe('pausing');
    expect(actions.map((a) => a.type)).toEqual(expect.arrayContaining(['xstate.spawnChild']));
    const [same] = transition(sandboxMachine, running, { type: 'resume' });
    expect(same.value).toBe('running');
    expect(same.context).toEqual(running.context);
  });
});
