import { Subject, lastValueFrom, toArray } from 'rxjs';
import { runCommands } from '../../../actors/engine/command-stream';
import type { CommandOutput, Engine, EngineCommand, EngineEvent } from '../../../actors/engine/api';
import { PaddockError } from '../../../base/errors';

/** Just enough of an engine: each call is logged and settles when the test says so. */
function fakeEngine() {
  const events = new Subject<EngineEvent>();
  const calls: string[] = [];
  const gates = new Map<string, () => void>();
  const gate = (name: string) =>
    new Promise<void>((resolve) => {
      gates.set(name, resolve);
    });
  const engine = {
    events$: events.asObservable(),
    async createSandbox(id: string) {
      calls.push(`create ${id}`);
      await gate(`create ${id}`);
      calls.push(`created ${id}`);
      return { id, pid: 42, rootContainerId: id, stdio: { stdout: 'a stream' } };
    },
    async startRoot(id: string) {
      calls.push(`start ${id}`);
      if (id === 'ghost') throw new PaddockError('ESANDBOX_NOT_FOUND', `no sandbox ${id}`, { sandboxId: id });
      return { sandboxId: id, containerId: id, pid: 1, hostPid: 4242 };
    },
    list() {
      calls.push('list');
      return [];
    },
  } as unknown as Engine;
  const open = (name: string) => gates.get(name)?.();
  return { engine, events, calls, open };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('engine.run(commands$)', () => {
  it('keeps each sandbox in order, runs different sandboxes concurrently, and correlates results by id', async () => {
    const { engine, calls, open } = fakeEngine();
    const commands = new Subject<EngineCommand>();
    const outputs: CommandOutput[] = [];
    const done = lastValueFrom(runCommands(engine, commands).pipe(toArray())).then((o) => outputs.push(...o));
    commands.next({ id: 'c1', type: 'createSandbox', sandboxId: 'a', bundle: '/b' });
    commands.next({ id: 's1', type: 'start', sandboxId: 'a' });
    commands.next({ id: 'c2', type: 'createSandbox', sandboxId: 'b', bundle: '/b' });
    await flush();
    // b's create started while a's is still pending; a's start waits for a's create.
    expect(calls).toEqual(['create a', 'create b']);
    open('create b');
    await flush();
    open('create a');
    await flush();
    expect(calls).toEqual(['create a', 'create b', 'created b', 'created a', 'start a']);
    commands.complete();
    await done;
    expect(outputs).toEqual([
      { type: 'command.result', commandId: 'c2', command: 'createSandbox', sandboxId: 'b', value: { id: 'b', pid: 42, rootContainerId: 'b' } },
      { type: 'command.result', commandId: 'c1', command: 'createSandbox', sandboxId: 'a', value: { id: 'a', pid: 42, rootContainerId: 'a' } },
      { type: 'command.result', commandId: 's1', command: 'start', sandboxId: 'a', value: { containerId: 'a', pid: 1, hostPid: 4242 } },
    ]);
  });

  it('errors are outputs with the typed error, and the stream goes on', async () => {
    const { engine } = fakeEngine();
    const commands = new Subject<EngineCommand>();
    const out = lastValueFrom(runCommands(engine, commands).pipe(toArray()));
    commands.next({ id: 'x', type: 'start', sandboxId: 'ghost' });
    commands.next({ id: 'y', type: 'reboot', sandboxId: 'a' } as unknown as EngineCommand);
    commands.next({ id: '', type: 'list' } as EngineCommand);
    commands.next({ id: 'z', type: 'start', sandboxId: '' });
    commands.next({ id: 'l', type: 'list' });
    commands.complete();
    const outputs = await out;
    const summary = outputs.map((o) =>
      o.type === 'command.error' ? [o.commandId, o.error.code, o.error.context.field ?? o.error.message] : [o.type, (o as { commandId?: string }).commandId],
    );
    expect(summary).toEqual(
      expect.arrayContaining([
        ['x', 'ESANDBOX_NOT_FOUND', 'no sandbox ghost'],
        ['y', 'EINVALID_ARGUMENT', 'type'],
        ['', 'EINVALID_ARGUMENT', 'id'],
        ['z', 'EINVALID_ARGUMENT', 'sandboxId'],
        ['command.result', 'l'],
      ]),
    );
    expect(summary).toHaveLength(5);
  });

  it('passes the engine events through while commands run', async () => {
    const { engine, events } = fakeEngine();
    const commands = new Subject<EngineCommand>();
    const out = lastValueFrom(runCommands(engine, commands).pipe(toArray()));
    events.next({ type: 'state', sandboxId: 'a', status: 'running' });
    commands.next({ id: 'l', type: 'list' });
    commands.complete();
    expect((await out).map((o) => o.type)).toEqual(['state', 'command.result']);
  });
});

describe('engine.run(commands$) with a template', () => {
  it('hands a template (an object) to createSandbox as is; a bundle that is neither is an error output', async () => {
    const got: unknown[] = [];
    const engine = {
      events$: new Subject<EngineEvent>().asObservable(),
      async createSandbox(id: string, bundle: unknown, opts: unknown) {
        got.push([id, bundle, opts]);
        return { id, pid: 7, rootContainerId: id };
      },
    } as unknown as Engine;
    const commands = new Subject<EngineCommand>();
    const out = lastValueFrom(runCommands(engine, commands).pipe(toArray()));
    const template = { rootfs: '/r', args: ['true'] };
    commands.next({ id: 't', type: 'createSandbox', sandboxId: 'a', bundle: template, options: { userns: 'auto' } });
    commands.next({ id: 'n', type: 'createSandbox', sandboxId: 'b', bundle: 5 } as unknown as EngineCommand);
    commands.complete();
    const outputs = await out;
    expect(got).toEqual([['a', template, { stdio: 'ignore', userns: 'auto' }]]);
    expect(outputs).toContainEqual(expect.objectContaining({ type: 'command.error', commandId: 'n', error: expect.objectContaining({ code: 'EINVALID_ARGUMENT' }) }));
  });
});
