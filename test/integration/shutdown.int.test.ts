import * as fs from 'node:fs';
import type { EngineEvent } from '../../index';
import { useSuccessiveEngines } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { useSubreaper } from '../helpers/subreaper';

/** engine.shutdown(): 'stop' ends every sandbox (gracefully or by SIGKILL), 'detach' leaves them for a reattach. */
describeIf(['root', 'busybox'])('engine.shutdown', () => {
  const t = useSuccessiveEngines('shutdown');
  useSubreaper();

  test("stop: a process that honours SIGTERM exits in the grace period; one that ignores it is killed; nothing is left", async () => {
    const e = await t.open();
    const exits: Extract<EngineEvent, { type: 'exit' }>[] = [];
    e.events$.subscribe((ev) => {
      if (ev.type === 'exit') exits.push(ev);
    });
    await e.createSandbox('polite', t.bundle(['sh', '-c', "trap 'exit 7' TERM; while true; do sleep 0.05; done"]));
    await e.startRoot('polite');
    await e.createSandbox('stubborn', t.bundle(['sh', '-c', "trap '' TERM; while true; do sleep 0.05; done"]));
    await e.startRoot('stubborn');
    await e.createSandbox('idle', t.bundle(['true']));
    // A paused sandbox is thawed first, so it too can act on SIGTERM.
    await e.createSandbox('frozen', t.bundle(['sh', '-c', "trap 'exit 8' TERM; while true; do sleep 0.05; done"]));
    await e.startRoot('frozen');
    await e.pause('frozen');
    const initPids = e.list().map((s) => s.pid as number);

    // The grace is what a loaded machine needs to thaw a sandbox and run a TERM trap, not a
    // speed claim; 'stubborn' is killed when it ends.
    const report = await e.shutdown({ mode: 'stop', graceMs: 5_000 });
    expect(report).toEqual({ stopped: ['frozen', 'idle', 'polite'], killed: ['stubborn'], detached: [] });
    const byId = Object.fromEntries(exits.map((x) => [x.sandboxId, x]));
    expect(byId.polite).toMatchObject({ containerId: 'polite', exit: { exitCode: 7, signal: null } });
    expect(byId.frozen).toMatchObject({ containerId: 'frozen', exit: { exitCode: 8, signal: null } });
    // Killed through init after the grace period, so init reaped it and recorded the signal.
    expect(byId.stubborn).toMatchObject({ containerId: 'stubborn', exit: { exitCode: null, signal: 9 } });
    expect(exits.filter((x) => x.type === 'exit' && x.lost)).toEqual([]);
    expect(byId.idle).toBeUndefined();
    expect(fs.readdirSync(t.stateDir).filter((n) => !n.startsWith('.'))).toEqual([]);
    const alive = paddockInitPids();
    for (const pid of initPids) expect(alive).not.toContain(pid);
    await expect(e.createSandbox('late', t.bundle(['true']))).rejects.toMatchObject({ code: 'EENGINE_CLOSED' });
  });

  test('detach: sandboxes keep running and a new engine reattaches to them', async () => {
    const e = await t.open();
    await e.createSandbox('keep', t.bundle(['sleep', '60']));
    await e.startRoot('keep');
    expect(await e.shutdown({ mode: 'detach' })).toEqual({ stopped: [], killed: [], detached: ['keep'] });
    const n = await t.open();
    expect(n.isRunning('keep')).toBe(true);
    await n.signal('keep', 'keep', 'SIGKILL');
    expect(await n.wait('keep', 'keep', { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });

  test.each([
    [{ mode: 'halt' }, 'mode'],
    [{ mode: 'stop', graceMs: -5 }, 'graceMs'],
    [{ mode: 'stop', graceMs: Number.NaN }, 'graceMs'],
  ])('bad options %j: EINVALID_ARGUMENT naming %s, the engine stays open', async (opts, field) => {
    const e = await t.open();
    await expect(e.shutdown(opts as never)).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field } });
    expect(e.list()).toEqual([]);
    await e.createSandbox('still', t.bundle(['true']));
    await e.destroy('still');
  });
});
