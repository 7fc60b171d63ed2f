import { createActor, fromPromise } from 'xstate';
import { childrenToRestart, groupMachine, type ChildRef, type GroupEmitted, type GroupInput, type GroupStrategy } from '../../../machines/group.machine';
import type { ExitStatus } from '../../../machines/types';

const FAIL: ExitStatus = { exitCode: 1, signal: null };
const OK: ExitStatus = { exitCode: 0, signal: null };

type Call = { kind: 'start' | 'restart' | 'stop'; stop: string[]; start: string[] };
const fmt = (refs: ChildRef[]) => refs.map((r) => `${r.id}@${r.generation}`);

function harness(over: Partial<GroupInput> = {}, fail: { start?: boolean; restart?: boolean } = {}) {
  const calls: Call[] = [];
  const emitted: GroupEmitted[] = [];
  const machine = groupMachine.provide({
    actors: {
      startChildren: fromPromise<void, { group: string; start: ChildRef[] }>(async ({ input }) => {
        calls.push({ kind: 'start', stop: [], start: fmt(input.start) });
        if (fail.start) throw new Error('launch failed');
      }),
      restartChildren: fromPromise<void, { group: string; stop: ChildRef[]; start: ChildRef[] }>(async ({ input }) => {
        calls.push({ kind: 'restart', stop: fmt(input.stop), start: fmt(input.start) });
        if (fail.restart) throw new Error('relaunch failed');
      }),
      stopChildren: fromPromise<void, { group: string; stop: ChildRef[] }>(async ({ input }) => {
        calls.push({ kind: 'stop', stop: fmt(input.stop), start: [] });
      }),
    },
  });
  const actor = createActor(machine, {
    input: {
      name: 'g',
      strategy: 'one_for_one',
      maxRestarts: 10,
      periodMs: 60_000,
      children: [
        { id: 'a', policy: 'always' },
        { id: 'b', policy: 'always' },
        { id: 'c', policy: 'always' },
      ],
      ...over,
    },
  });
  for (const t of ['group.restarting', 'group.escalated', 'group.stopped'] as const) actor.on(t, (e) => emitted.push(e));
  actor.start();
  let now = 1000;
  const exit = (childId: string, generation = 0, e: ExitStatus = FAIL) => actor.send({ type: 'child.exited', childId, generation, exit: e, at: (now += 10) });
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const value = () => String(actor.getSnapshot().value);
  return { actor, calls, emitted, exit, settle, value };
}

describe('childrenToRestart', () => {
  const order = ['a', 'b', 'c', 'd'];
  test.each([
    ['one_for_one', 'c', ['c']],
    ['one_for_all', 'c', ['a', 'b', 'c', 'd']],
    ['rest_for_one', 'b', ['b', 'c', 'd']],
    ['rest_for_one', 'd', ['d']],
    ['rest_for_one', 'a', ['a', 'b', 'c', 'd']],
  ] as const)('%s after %s fails: %j', (strategy, failed, expected) => {
    expect(childrenToRestart(strategy as GroupStrategy, order, failed)).toEqual(expected);
  });
});

describe('groupMachine', () => {
  test('starts children in order, and stop stops them in reverse order', async () => {
    const h = harness();
    await h.settle();
    expect(h.value()).toBe('running');
    expect(h.calls).toEqual([{ kind: 'start', stop: [], start: ['a@0', 'b@0', 'c@0'] }]);
    h.actor.send({ type: 'stop' });
    await h.settle();
    expect(h.calls[1]).toEqual({ kind: 'stop', stop: ['c@0', 'b@0', 'a@0'], start: [] });
    expect(h.value()).toBe('stopped');
    expect(h.emitted.at(-1)).toEqual({ type: 'group.stopped', group: 'g' });
  });

  test('one_for_one restarts exactly the failed child', async () => {
    const h = harness({ strategy: 'one_for_one' });
    await h.settle();
    h.exit('b');
    await h.settle();
    expect(h.calls[1]).toEqual({ kind: 'restart', stop: [], start: ['b@1'] });
    expect(h.value()).toBe('running');
    expect(h.emitted[0]).toEqual({ type: 'group.restarting', group: 'g', childId: 'b', strategy: 'one_for_one', children: ['b'] });
  });

  test('one_for_all stops the others newest first and starts all in order', async () => {
    const h = harness({ strategy: 'one_for_all' });
    await h.settle();
    h.exit('b');
    await h.settle();
    expect(h.calls[1]).toEqual({ kind: 'restart', stop: ['c@0', 'a@0'], start: ['a@1', 'b@1', 'c@1'] });
  });

  test('rest_for_one restarts the failed child and those started after it', async () => {
    const h = harness({ strategy: 'rest_for_one' });
    await h.settle();
    h.exit('b');
    await h.settle();
    expect(h.calls[1]).toEqual({ kind: 'restart', stop: ['c@0'], start: ['b@1', 'c@1'] });
    h.exit('a');
    await h.settle();
    expect(h.calls[2]).toEqual({ kind: 'restart', stop: ['c@1', 'b@1'], start: ['a@1', 'b@2', 'c@2'] });
  });

  test('a late exit of a replaced instance is ignored', async () => {
    const h = harness({ strategy: 'one_for_all' });
    await h.settle();
    h.exit('a');
    await h.settle();
    // c@0 was stopped by the restart; its exit arrives afterwards.
    h.exit('c', 0);
    await h.settle();
    expect(h.calls).toHaveLength(2);
    h.exit('c', 1);
    await h.settle();
    expect(h.calls).toHaveLength(3);
  });

  test('an exit of a new instance during the restart is answered afterwards', async () => {
    const h = harness({ strategy: 'one_for_one' });
    await h.settle();
    h.exit('a');
    expect(h.value()).toBe('restarting');
    h.exit('c');
    await h.settle();
    await h.settle();
    expect(h.calls.slice(1)).toEqual([
      { kind: 'restart', stop: [], start: ['a@1'] },
      { kind: 'restart', stop: [], start: ['c@1'] },
    ]);
  });

  test('temporary and transient children that end normally are not restarted, nor stopped again', async () => {
    const h = harness({
      children: [
        { id: 'a', policy: 'never' },
        { id: 'b', policy: 'on-failure' },
        { id: 'c', policy: 'always' },
      ],
    });
    await h.settle();
    h.exit('a', 0, FAIL);
    h.exit('b', 0, OK);
    await h.settle();
    expect(h.calls).toHaveLength(1);
    h.actor.send({ type: 'stop' });
    await h.settle();
    expect(h.calls[1]).toEqual({ kind: 'stop', stop: ['c@0'], start: [] });
  });

  test('more than maxRestarts within periodMs: stops every child and escalates', async () => {
    const h = harness({ strategy: 'one_for_one', maxRestarts: 2 });
    await h.settle();
    h.exit('a');
    await h.settle();
    h.exit('a', 1);
    await h.settle();
    h.exit('b');
    await h.settle();
    expect(h.calls.at(-1)).toEqual({ kind: 'stop', stop: ['c@0', 'a@2'], start: [] });
    expect(h.value()).toBe('escalated');
    expect(h.emitted.at(-1)).toEqual({
      type: 'group.escalated',
      group: 'g',
      reason: 'group g: child b failed and the group made more than 2 restarts within 60000 ms',
    });
  });

  test('a child that cannot be started stops the started ones and escalates', async () => {
    const h = harness({}, { start: true });
    await h.settle();
    expect(h.value()).toBe('escalated');
    expect(h.actor.getSnapshot().context.reason).toMatch(/could not be started \(launch failed\)/);
  });

  test('persisted snapshot round-trips through JSON', async () => {
    const h = harness({ strategy: 'rest_for_one' });
    await h.settle();
    h.exit('b');
    await h.settle();
    const saved = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
    const r = createActor(groupMachine, { snapshot: saved, input: undefined as never });
    expect(r.getSnapshot().value).toBe('running');
    expect(r.getSnapshot().context.generations).toEqual({ a: 0, b: 1, c: 1 });
  });
});
