import { createActor, fromPromise } from 'xstate';
import { chartOf } from '../../../actors/inspect/chart';
import { LiveFeed, type PageMessage } from '../../../actors/inspect/feed';
import { restartMachine } from '../../../machines/restart.machine';
import { sandboxMachine } from '../../../machines/sandbox.machine';
import { supervisorMachine } from '../../../machines/supervisor.machine';

const tick = () => new Promise((r) => setImmediate(r));

describe('the live view feed', () => {
  test("a machine's chart is read from its definition: top-level states, the initial one, and transitions named by event", () => {
    const c = chartOf(restartMachine);
    expect(c?.machine).toBe('restart');
    expect(c?.initial).toBe('running');
    expect(c?.states.map((s) => s.key)).toEqual(['running', 'exited', 'backoff', 'restarting', 'stopped', 'failed']);
    expect(c?.states.find((s) => s.key === 'failed')?.final).toBe(true);
    expect(c?.edges).toEqual(
      expect.arrayContaining([
        { from: 'running', to: 'exited', event: 'child.exited' },
        { from: 'backoff', to: 'restarting', event: 'after backoffDelay' },
        { from: 'exited', to: 'backoff', event: 'always' },
      ]),
    );
    const s = chartOf(sandboxMachine);
    expect(s?.states.map((x) => x.key)).toEqual(expect.arrayContaining(['creating', 'created', 'running', 'paused', 'stopped', 'failed', 'destroyed']));
    expect(chartOf(fromPromise(async () => 1))).toBeUndefined();
  });

  test('one frame per tick: a definition once per machine, then the actor, then its changes; present() gives a newcomer everything', async () => {
    const frames: PageMessage[][] = [];
    const feed = new LiveFeed((b) => frames.push(b));
    const a = createActor(supervisorMachine, { id: 'supervisor', inspect: feed.inspect });
    const b = createActor(supervisorMachine, { id: 'supervisor2', inspect: feed.inspect });
    a.start();
    b.start();
    await tick();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.map((m) => m.t)).toEqual(['def', 'actor', 'actor']);
    expect(frames[0]![1]).toMatchObject({ t: 'actor', name: 'supervisor', machine: 'supervisor', value: 'supervising', parent: null, status: 'active' });
    a.send({ type: 'sandbox.register', sandboxId: 's1' });
    a.send({ type: 'sandbox.statusChanged', sandboxId: 's1', status: 'running' });
    await tick();
    // Two transitions in one tick: one state message, with the outcome.
    expect(frames[1]).toEqual([{ t: 'state', id: a.sessionId, value: 'supervising', status: 'active', ctx: { sandboxes: { s1: { status: 'running' } } } }]);
    feed.event({ type: 'exit', sandboxId: 's1', containerId: 's1', pid: 1, kind: 'container', exit: { exitCode: 3, signal: null }, id: 'x' });
    feed.sample('s1', 1024, 5_000_000);
    const present = feed.present();
    expect(present.map((m) => m.t)).toEqual(['reset', 'def', 'actor', 'actor', 'event', 'stats']);
    // A stopped actor is shown stopped once, then forgotten.
    b.stop();
    feed.sweep();
    await tick();
    expect(frames.flat().filter((m) => m.t === 'state' && (m as { id: string }).id === b.sessionId).pop()).toMatchObject({ status: 'stopped' });
    expect(feed.present().filter((m) => m.t === 'actor')).toHaveLength(1);
    a.stop();
  });

  test('a big context is cut to its plain fields (and exit, error)', async () => {
    const frames: PageMessage[][] = [];
    const feed = new LiveFeed((b) => frames.push(b));
    const a = createActor(supervisorMachine, { inspect: feed.inspect });
    a.start();
    for (let i = 0; i < 200; i++) a.send({ type: 'sandbox.register', sandboxId: `sandbox-number-${i}` });
    await tick();
    const last = frames.flat().pop() as { ctx: Record<string, unknown> };
    expect(JSON.stringify(last.ctx).length).toBeLessThan(2_000);
    a.stop();
  });
});
