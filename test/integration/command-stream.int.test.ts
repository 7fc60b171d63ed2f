import { Subject, filter, firstValueFrom, toArray, timeout } from 'rxjs';
import type { CommandOutput, EngineCommand } from '../../index';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';

/** engine.run(commands$) against real sandboxes: a stream in, results and events out. */
describeIf(['root', 'busybox'])('engine.run(commands$)', () => {
  const t = useEngine('cs');
  useSubreaper();

  test('create, start, wait and destroy by stream; a bad command is an error output and the rest goes on', async () => {
    const commands = new Subject<EngineCommand>();
    const outputs: CommandOutput[] = [];
    const sub = t.engine.run(commands).subscribe((o) => outputs.push(o));
    const results = async (ids: string[]) => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        if (ids.every((id) => outputs.some((o) => (o.type === 'command.result' || o.type === 'command.error') && o.commandId === id))) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no result for ${ids.join(',')}: ${JSON.stringify(outputs.map((o) => o.type))}`);
    };
    const a = t.id();
    const b = t.id();
    commands.next({ id: '1', type: 'createSandbox', sandboxId: a, bundle: t.bundle({ args: ['sh', '-c', 'exit 3'] }) });
    commands.next({ id: '2', type: 'start', sandboxId: a });
    commands.next({ id: '3', type: 'wait', sandboxId: a, timeoutMs: 10_000 });
    commands.next({ id: '4', type: 'start', sandboxId: a });
    commands.next({ id: '5', type: 'createSandbox', sandboxId: b, bundle: '/nonexistent/bundle' });
    commands.next({ id: '6', type: 'destroy', sandboxId: a });
    await results(['1', '2', '3', '4', '5', '6']);
    sub.unsubscribe();
    const byId = (id: string) => outputs.find((o) => 'commandId' in o && o.commandId === id);
    expect(byId('1')).toMatchObject({ type: 'command.result', value: { id: a, rootContainerId: a } });
    expect(byId('2')).toMatchObject({ type: 'command.result', value: { containerId: a } });
    expect(byId('3')).toMatchObject({ type: 'command.result', value: { exitCode: 3, signal: null } });
    expect(byId('4')).toMatchObject({ type: 'command.error', error: { code: 'EINVALID_STATE' } });
    expect(byId('5')).toMatchObject({ type: 'command.error', error: { code: 'EBUNDLE_NOT_FOUND' } });
    expect(byId('6')).toMatchObject({ type: 'command.result' });
    // The engine's own events came through the same stream, the exit among them.
    expect(outputs).toContainEqual(expect.objectContaining({ type: 'exit', sandboxId: a, exit: expect.objectContaining({ exitCode: 3 }) }));
    expect(t.engine.list()).toEqual([]);
  });

  test('the output completes once the input has and every command has settled', async () => {
    const commands = new Subject<EngineCommand>();
    const all = firstValueFrom(t.engine.run(commands).pipe(filter((o) => o.type.startsWith('command.')), toArray(), timeout(20_000)));
    commands.next({ id: 'l', type: 'list' });
    commands.complete();
    expect(await all).toEqual([{ type: 'command.result', commandId: 'l', command: 'list', value: [] }]);
  });
});
