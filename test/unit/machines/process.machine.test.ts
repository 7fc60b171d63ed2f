import { createActor, initialTransition, transition } from 'xstate';
import { processMachine } from '../../../machines/process.machine';
import { fromSnapshot } from './helpers';

const INPUT = { sandboxId: 'sb1', containerId: 'c1', pid: 7, hostPid: 70007 };

describe('processMachine', () => {
  test('starts running with its input as context and the alive tag', () => {
    const [s] = initialTransition(processMachine, INPUT);
    expect(s.value).toBe('running');
    expect(s.context).toEqual({ ...INPUT, signalsSent: 0 });
    expect(s.hasTag('alive')).toBe(true);
  });

  // XState v5's snapshot.can() reports a targetless transition without actions
  // (`signal: {}`) as not allowed; the machine counts signals so `can` is true.
  test('signal is allowed while running (can) and counted', () => {
    const [s0] = initialTransition(processMachine, INPUT);
    expect(s0.can({ type: 'signal' })).toBe(true);
    const [s1] = transition(processMachine, s0, { type: 'signal' });
    const [s2] = transition(processMachine, s1, { type: 'signal' });
    expect(s2.value).toBe('running');
    expect(s2.context.signalsSent).toBe(2);
  });

  test('its own exit moves it to exited with the status', () => {
    const [s0] = initialTransition(processMachine, INPUT);
    const [s1] = transition(processMachine, s0, { type: 'process.exited', pid: 7, exit: { exitCode: 3, signal: null } });
    expect(s1.value).toBe('exited');
    expect(s1.context.exit).toEqual({ exitCode: 3, signal: null });
    expect(s1.hasTag('alive')).toBe(false);
    expect(s1.can({ type: 'signal' })).toBe(false);
  });

  test("another pid's exit is ignored", () => {
    const [s0] = initialTransition(processMachine, INPUT);
    const other = { type: 'process.exited', pid: 8, exit: { exitCode: 0, signal: null } } as const;
    expect(s0.can(other)).toBe(false);
    const [s1] = transition(processMachine, s0, other);
    expect(s1.value).toBe('running');
    expect(s1.context.exit).toBeUndefined();
  });

  test('sandbox.lost ends it with an unknown status', () => {
    const [s0] = initialTransition(processMachine, INPUT);
    const [s1] = transition(processMachine, s0, { type: 'sandbox.lost' });
    expect(s1.value).toBe('exited');
    expect(s1.context.exit).toEqual({ exitCode: null, signal: null });
  });

  test('a real status after sandbox.lost replaces the unknown one', () => {
    const [s0] = initialTransition(processMachine, INPUT);
    const [s1] = transition(processMachine, s0, { type: 'sandbox.lost' });
    const [s2] = transition(processMachine, s1, { type: 'process.exited', pid: 7, exit: { exitCode: null, signal: 9 } });
    expect(s2.value).toBe('exited');
    expect(s2.context.exit).toEqual({ exitCode: null, signal: 9 });
  });

  test('sandbox.lost after a real exit keeps the real status', () => {
    const [s0] = initialTransition(processMachine, INPUT);
    const [s1] = transition(processMachine, s0, { type: 'process.exited', pid: 7, exit: { exitCode: 0, signal: null } });
    const [s2] = transition(processMachine, s1, { type: 'sandbox.lost' });
    expect(s2.context.exit).toEqual({ exitCode: 0, signal: null });
  });

  test('a duplicate exit fact leaves the status as recorded', () => {
    const exit = { exitCode: 1, signal: null, at: '2024-01-01T00:00:00.000Z' };
    const [s0] = initialTransition(processMachine, INPUT);
    const [s1] = transition(processMachine, s0, { type: 'process.exited', pid: 7, exit });
    const [s2] = transition(processMachine, s1, { type: 'process.exited', pid: 7, exit });
    expect(s2.value).toBe('exited');
    expect(s2.context.exit).toEqual(exit);
    // Another pid's exit does not touch an exited process either.
    const [s3] = transition(processMachine, s2, { type: 'process.exited', pid: 9, exit: { exitCode: 5, signal: null } });
    expect(s3.context.exit).toEqual(exit);
  });

  test('persisted snapshot round-trips through JSON and still reacts', () => {
    const actor = createActor(processMachine, { input: INPUT }).start();
    actor.send({ type: 'signal' });
    const snapshot = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    const restored = createActor(processMachine, fromSnapshot(snapshot)).start();
    expect(restored.getSnapshot().value).toBe('running');
    expect(restored.getSnapshot().context).toEqual({ ...INPUT, signalsSent: 1 });
    restored.send({ type: 'process.exited', pid: 7, exit: { exitCode: 2, signal: null } });
    expect(restored.getSnapshot().value).toBe('exited');
    expect(restored.getSnapshot().context.exit).toEqual({ exitCode: 2, signal: null });
  });
});
