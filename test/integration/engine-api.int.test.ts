import type { Engine } from '../../index';
import { useEngine, useSuccessiveEngines } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';

/**
 * Engine calls that had no test of their own (issue 19): signal to one process by pid,
 * attachAll called directly, and the whole text of stacks.
 */
describeIf(['root', 'busybox'])('engine API on real sandboxes', () => {
  const fx = useEngine('api');
  let engine: Engine;
  beforeEach(() => {
    engine = fx.engine;
  });

  test('signal({ pid }) reaches that exec alone; an unknown pid is EPROCESS_NOT_FOUND, an exited one EINVALID_STATE', async () => {
    const sid = fx.id();
    await engine.createSandbox(sid, fx.bundle({ args: ['sleep', '600'] }));
    const root = await engine.startRoot(sid);
    const a = await engine.execute(sid, sid, { args: ['sleep', '600'] });
    const b = await engine.execute(sid, sid, { args: ['sleep', '600'] });

    await engine.signal(sid, sid, 'SIGKILL', { pid: a.pid });
    expect(await engine.waitPid(sid, a.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: null, signal: 9 });
    // b and the root were not touched: b's own exit, later, is from the signal sent to it.
    expect((await engine.processes(sid, sid)).map((p) => p.pid).filter((p) => p !== undefined).sort()).toEqual([root.pid, b.pid].sort());
    await engine.signal(sid, sid, 'SIGTERM', { pid: b.pid });
    expect(await engine.waitPid(sid, b.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: null, signal: 15 });
    expect(engine.list().find((s) => s.id === sid)?.status).toBe('running');

    await expect(engine.signal(sid, sid, 'SIGKILL', { pid: 4242 })).rejects.toMatchObject({ code: 'EPROCESS_NOT_FOUND' });
    await expect(engine.signal(sid, sid, 'SIGKILL', { pid: a.pid })).rejects.toMatchObject({ code: 'EINVALID_STATE' });
    // Neither refusal changed anything: the root still runs and answers.
    const probe = await engine.execute(sid, sid, { args: ['true'] });
    expect(await engine.waitPid(sid, probe.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    await engine.signal(sid, sid, 'SIGKILL');
    expect(await engine.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });

  test('stacks lists init and every process it started, with state and exit', async () => {
    const sid = fx.id();
    await engine.createSandbox(sid, fx.bundle({ args: ['sleep', '600'] }));
    const root = await engine.startRoot(sid);
    const done = await engine.execute(sid, sid, { args: ['sh', '-c', 'exit 3'] });
    expect(await engine.waitPid(sid, done.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 3 });
    const live = await engine.execute(sid, sid, { args: ['sleep', '600'] });
    const stacks = await engine.stacks(sid);
    // init's own table, as it reports it; the kernel stacks beside it are stacks.int's.
    const lines = stacks.init.table.trimEnd().split('\n');
    expect(lines[0]).toBe(`paddock-init pid=1 root=${sid}`);
    // One line per process init started (in its table order), nothing else.
    expect([...lines.slice(1)].sort()).toEqual(
      [
        `${sid} pid=${root.pid} host_pid=${root.hostPid} kind=container state=running`,
        `${sid} pid=${done.pid} host_pid=${done.hostPid} kind=exec state=exited exit_code=3 signal=0`,
        `${sid} pid=${live.pid} host_pid=${live.hostPid} kind=exec state=running`,
      ].sort(),
    );
    // The live processes, grouped under their container; the exited exec is not there.
    expect(stacks.containers.map((c) => c.containerId)).toEqual([sid]);
    expect(stacks.containers[0]!.processes.map((p) => p.hostPid).sort()).toEqual([root.hostPid, live.hostPid].sort());
  });
});

describeIf(['root', 'busybox'])('attachAll', () => {
  const t = useSuccessiveEngines('attachall');
  useSubreaper();

  test('a supervisor opened without reattach adopts every sandbox of the state dir, once, and can drive them', async () => {
    const a = await t.open();
    for (const id of ['aa', 'bb']) {
      await a.createSandbox(id, t.bundle(['sleep', '600']), { stdio: 'ignore' });
      await a.startRoot(id);
    }
    await a.createSandbox('cc', t.bundle(['true']), { stdio: 'ignore' });
    const pids = Object.fromEntries(a.list().map((s) => [s.id, s.pid]));
    await a.close();

    const b = await t.open({ reattach: false });
    expect(b.list()).toEqual([]);
    expect(await b.attachAll()).toEqual(['aa', 'bb', 'cc']);
    expect(Object.fromEntries(b.list().map((s) => [s.id, s.pid]))).toEqual(pids);
    expect(Object.fromEntries(b.list().map((s) => [s.id, s.status]))).toEqual({ aa: 'running', bb: 'running', cc: 'created' });
    // Called again it adopts nothing twice.
    expect(await b.attachAll()).toEqual(['aa', 'bb', 'cc']);
    expect(b.list()).toHaveLength(3);
    // The adopted sandboxes are driven through b.
    const ex = await b.execute('aa', 'aa', { args: ['sh', '-c', 'exit 6'] });
    expect(await b.waitPid('aa', ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 6 });
    await b.signal('bb', 'bb', 'SIGKILL');
    expect(await b.wait('bb', 'bb', { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });
});
