import type { AddressInfo } from 'node:net';
import { createActor, type InspectionEvent } from 'xstate';
import { WebSocketServer } from 'ws';
import { isPaddockError } from '../../../base/errors';
import { InspectionHub } from '../../../actors/inspect/hub';
import { checkInspectOption } from '../../../actors/inspect/inspect-option';
import { BoundedWebSocketAdapter, MAX_BUFFERED_BYTES } from '../../../actors/inspect/ws-adapter';
import { supervisorMachine } from '../../../machines/supervisor.machine';
import pino from 'pino';

const log = pino({ level: 'silent' });
const until = async (pred: () => boolean, what: string) => {
  const end = Date.now() + 5_000;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('the inspection hub', () => {
  test('fans events out to the caller and to views; a sink that throws is dropped, the actor carries on', () => {
    const seen: string[] = [];
    const hub = new InspectionHub((e: InspectionEvent) => seen.push(e.type), log);
    const bad = jest.fn(() => {
      throw new Error('viewer bug');
    });
    hub.attach(bad);
    const a = createActor(supervisorMachine, { id: 'supervisor', inspect: hub.observe }).start();
    a.send({ type: 'sandbox.register', sandboxId: 's1' });
    expect(seen).toEqual(expect.arrayContaining(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    expect(bad).toHaveBeenCalledTimes(1);
    expect(a.getSnapshot().context.sandboxes).toEqual({ s1: { status: 'creating' } });
    // Live actors, for a viewer that connects later; a stopped one is swept.
    expect(hub.liveActors().map((r) => r.id)).toEqual(['supervisor']);
    a.stop();
    expect(hub.liveActors()).toEqual([]);
    hub.close();
  });

  test("the caller's observer sees sanitised snapshots, and the actor's getSnapshot() answers the same", () => {
    const got: InspectionEvent[] = [];
    const hub = new InspectionHub({ next: (e: InspectionEvent) => got.push(e) }, log);
    const a = createActor(supervisorMachine, { inspect: hub.observe }).start();
    a.send({ type: 'sandbox.register', sandboxId: 'x', env: ['K=v'], pidfd: 3 } as never);
    const ev = got.find((e) => e.type === '@xstate.event' && (e.event as { type: string }).type === 'sandbox.register') as { event: object };
    expect(ev.event).toEqual({ type: 'sandbox.register', sandboxId: 'x' });
    const actorEv = got.find((e) => e.type === '@xstate.actor') as unknown as { actorRef: { getSnapshot(): unknown; id: string } };
    expect(actorEv.actorRef.getSnapshot()).toEqual({ status: 'active', value: 'supervising', context: { sandboxes: { x: { status: 'creating' } } } });
    a.stop();
    hub.close();
  });

  test('bad options are refused with EINVALID_ARGUMENT naming the field', () => {
    for (const [opt, field] of [
      [42, 'inspect'],
      [null, 'inspect'],
      [{ url: 'http://x' }, 'inspect.url'],
      [{ url: 'ws://x', retry: 1 }, 'createEngine options.inspect.retry'],
      [{ inspect: 3 }, 'inspect'],
      [{}, 'inspect'],
    ] as const) {
      let err: unknown;
      try {
        checkInspectOption(opt);
      } catch (e) {
        err = e;
      }
      expect(isPaddockError(err, 'EINVALID_ARGUMENT')).toBe(true);
      expect((err as { context: { field: string } }).context.field).toBe(field);
    }
    for (const ok of [undefined, () => undefined, { next: () => undefined }, { inspect: { next: () => undefined } }, { url: 'wss://example.invalid/x' }]) expect(() => checkInspectOption(ok)).not.toThrow();
  });
});

describe('the bounded WebSocket adapter of inspect: { url }', () => {
  test('an inspector that stops reading costs drops, never an unbounded queue', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => (ws as unknown as { _socket: { pause(): void } })._socket.pause());
    const adapter = new BoundedWebSocketAdapter(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, log);
    adapter.start();
    await until(() => (adapter as unknown as { open: boolean }).open, 'the connection');
    const big = { type: '@xstate.snapshot', blob: 'x'.repeat(64 * 1024) };
    for (let i = 0; i < 200; i++) adapter.send(big);
    const ws = (adapter as unknown as { ws: { bufferedAmount: number } }).ws;
    expect(adapter.dropped).toBeGreaterThan(0);
    expect(ws.bufferedAmount).toBeLessThanOrEqual(MAX_BUFFERED_BYTES + 70 * 1024);
    adapter.stop();
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  });

  test('with nobody listening: the newest 200 events wait, the rest are dropped; stop() ends the retries', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as AddressInfo).port;
    await new Promise((r) => wss.close(r));
    const adapter = new BoundedWebSocketAdapter(`ws://127.0.0.1:${port}`, log);
    adapter.start();
    for (let i = 0; i < 250; i++) adapter.send({ i });
    expect(adapter.dropped).toBe(50);
    await until(() => (adapter as unknown as { retryTimer?: unknown }).retryTimer !== undefined, 'a retry to be planned');
    adapter.stop();
    expect((adapter as unknown as { retryTimer?: unknown }).retryTimer).toBeUndefined();
  });
});
