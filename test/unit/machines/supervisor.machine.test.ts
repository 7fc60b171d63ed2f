import { createActor, initialTransition, transition } from 'xstate';
import { supervisorMachine } from '../../../machines/supervisor.machine';

describe('supervisorMachine', () => {
  test('starts supervising with no sandboxes', () => {
    const [s] = initialTransition(supervisorMachine);
    expect(s.value).toBe('supervising');
    expect(s.context).toEqual({ sandboxes: {} });
  });

  test('register adds the sandbox as creating; a duplicate is refused', () => {
    const [s0] = initialTransition(supervisorMachine);
    const [s1] = transition(supervisorMachine, s0, { type: 'sandbox.register', sandboxId: 'a' });
    expect(s1.context.sandboxes).toEqual({ a: { status: 'creating' } });
    const [s2] = transition(supervisorMachine, s1, { type: 'sandbox.statusChanged', sandboxId: 'a', status: 'running' });
    expect(s2.can({ type: 'sandbox.register', sandboxId: 'a' })).toBe(false);
    expect(s2.can({ type: 'sandbox.register', sandboxId: 'b' })).toBe(true);
    // A refused duplicate does not reset the existing status.
    const [s3] = transition(supervisorMachine, s2, { type: 'sandbox.register', sandboxId: 'a' });
    expect(s3.context.sandboxes).toEqual({ a: { status: 'running' } });
  });

  test('statusChanged updates a known sandbox and is refused for an unknown one', () => {
    const actor = createActor(supervisorMachine).start();
    actor.send({ type: 'sandbox.register', sandboxId: 'a' });
    actor.send({ type: 'sandbox.statusChanged', sandboxId: 'a', status: 'stopped' });
    expect(actor.getSnapshot().context.sandboxes.a).toEqual({ status: 'stopped' });
    const unknown = { type: 'sandbox.statusChanged', sandboxId: 'ghost', status: 'running' } as const;
    expect(actor.getSnapshot().can(unknown)).toBe(false);
    actor.send(unknown);
    expect(actor.getSnapshot().context.sandboxes).toEqual({ a: { status: 'stopped' } });
  });

  test('unregister removes a known sandbox; unknown is refused', () => {
    const actor = createActor(supervisorMachine).start();
    actor.send({ type: 'sandbox.register', sandboxId: 'a' });
    actor.send({ type: 'sandbox.register', sandboxId: 'b' });
    expect(actor.getSnapshot().can({ type: 'sandbox.unregister', sandboxId: 'zz' })).toBe(false);
    actor.send({ type: 'sandbox.unregister', sandboxId: 'a' });
    expect(actor.getSnapshot().context.sandboxes).toEqual({ b: { status: 'creating' } });
    // The id is free again.
    expect(actor.getSnapshot().can({ type: 'sandbox.register', sandboxId: 'a' })).toBe(true);
  });

  test('close is final and refuses further registrations', () => {
    const actor = createActor(supervisorMachine).start();
    actor.send({ type: 'sandbox.register', sandboxId: 'a' });
    actor.send({ type: 'close' });
    const s = actor.getSnapshot();
    expect(s.value).toBe('closed');
    expect(s.status).toBe('done');
    expect(s.can({ type: 'sandbox.register', sandboxId: 'b' })).toBe(false);
    // The registry is left as it was (existing sandboxes keep running).
    expect(s.context.sandboxes).toEqual({ a: { status: 'creating' } });
  });

  test('persisted snapshot round-trips through JSON and keeps working', () => {
    const actor = createActor(supervisorMachine).start();
    actor.send({ type: 'sandbox.register', sandboxId: 'a' });
    actor.send({ type: 'sandbox.statusChanged', sandboxId: 'a', status: 'running' });
    const snapshot = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    const restored = createActor(supervisorMachine, { snapshot }).start();
    expect(restored.getSnapshot().value).toBe('supervising');
    expect(restored.getSnapshot().context.sandboxes).toEqual({ a: { status: 'running' } });
    expect(restored.getSnapshot().can({ type: 'sandbox.register', sandboxId: 'a' })).toBe(false);
    restored.send({ type: 'sandbox.unregister', sandboxId: 'a' });
    expect(restored.getSnapshot().context.sandboxes).toEqual({});
  });
});
