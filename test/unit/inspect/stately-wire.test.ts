import * as fs from 'node:fs';
import * as path from 'node:path';
import { createActor, type InspectionEvent } from 'xstate';
import { STATELY_INSPECT_VERSION, StatelyWire } from '../../../actors/inspect/stately-wire';
import { restartMachine } from '../../../machines/restart.machine';
import { supervisorMachine } from '../../../machines/supervisor.machine';

/** @statelyai/inspect's own package.json (its exports map hides it from require). */
function installedVersion(): string {
  const dir = path.dirname(require.resolve('@statelyai/inspect'));
  return (JSON.parse(fs.readFileSync(path.join(dir, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

describe("inspect: { url }'s wire format", () => {
  test('is the pinned @statelyai/inspect version', () => {
    const pinned = (JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['@statelyai/inspect'];
    expect(pinned).toBe(STATELY_INSPECT_VERSION);
    expect(installedVersion()).toBe(STATELY_INSPECT_VERSION);
  });

  test("says what @statelyai/inspect's own WebSocket inspector says about the same actors, message for message", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createInspector } = require('@statelyai/inspect') as typeof import('@statelyai/inspect');
    const theirs: Array<Record<string, unknown>> = [];
    const lib = createInspector({ send: (e: unknown) => theirs.push(JSON.parse(JSON.stringify(e)) as Record<string, unknown>) } as never);
    const ours: Array<Record<string, unknown>> = [];
    const wire = new StatelyWire((ms) => ours.push(...(JSON.parse(JSON.stringify(ms)) as Array<Record<string, unknown>>)));
    const both = (e: InspectionEvent) => {
      lib.inspect.next?.(e);
      wire.next(e);
    };
    const a = createActor(restartMachine, { id: 'restart:web1', input: { childId: 'web1', policy: { policy: 'on-failure', maxRestarts: 1, periodMs: 1000, resetAfterMs: 1000, backoff: { initialMs: 10, maxMs: 10, factor: 2, jitter: 0 } } } as never, inspect: both });
    a.start();
    // Another tick: within one, paddock folds context-only snapshots (below).
    await new Promise((r) => setTimeout(r, 20));
    a.send({ type: 'stop' });
    await new Promise((r) => setTimeout(r, 50));
    const shape = (m: Record<string, unknown>) => ({
      type: m.type,
      keys: Object.keys(m).filter((k) => m[k] !== undefined).sort(),
      name: m.name,
      sessionId: m.sessionId,
      _version: m._version,
      value: (m.snapshot as { value?: unknown } | undefined)?.value,
      event: (m.event as { type?: string } | undefined)?.type,
    });
    expect(ours.map(shape)).toEqual(theirs.map(shape));
    const def = (ms: Array<Record<string, unknown>>) => JSON.parse(ms.find((m) => m.type === '@xstate.actor')?.definition as string) as { id: string; states: Record<string, unknown> };
    expect(def(ours).id).toBe('restart');
    // (The library writes keys sorted; JSON readers do not care.)
    expect(Object.keys(def(ours).states).sort()).toEqual(Object.keys(def(theirs).states).sort());
  });

  test("within one tick, snapshots that only move an actor's context on are folded into the next; every state and every event goes", async () => {
    const ours: Array<Record<string, unknown>> = [];
    const wire = new StatelyWire((ms) => ours.push(...(JSON.parse(JSON.stringify(ms)) as Array<Record<string, unknown>>)));
    const a = createActor(supervisorMachine, { id: 'supervisor', inspect: wire.next }).start();
    for (let i = 0; i < 100; i++) a.send({ type: 'sandbox.register', sandboxId: `s${i}` });
    await new Promise((r) => setImmediate(r));
    expect(ours.filter((m) => m.type === '@xstate.snapshot')).toHaveLength(1);
    expect(ours.filter((m) => m.type === '@xstate.event' && (m.event as { type: string }).type === 'sandbox.register')).toHaveLength(100);
    const snap = ours.find((m) => m.type === '@xstate.snapshot') as { snapshot: { context: { sandboxes: object } } };
    expect(Object.keys(snap.snapshot.context.sandboxes)).toHaveLength(100);
    // The snapshot comes after the events it sums up.
    expect(ours.indexOf(snap)).toBe(ours.length - 1);
    // A change of state in the same tick is sent: the snapshot before it and the one after.
    ours.length = 0;
    a.send({ type: 'sandbox.register', sandboxId: 'last' });
    a.send({ type: 'close' });
    await new Promise((r) => setImmediate(r));
    expect(ours.filter((m) => m.type === '@xstate.snapshot').map((m) => (m.snapshot as { value: string }).value)).toEqual(['supervising', 'closed']);
    a.stop();
  });
});
