import * as fs from 'node:fs';
import { createEngine, type Engine, type EngineEvent } from '../../index';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { describeIf, quietLogger, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/** engine.shutdown(): 'stop' ends every sandbox (gracefully or by SIGKILL), 'detach' leaves them for a reattach. */
describeIf(['root', 'busybox'])('engine.shutdown', () => {
  let stateDir: string;
  const engines: Engine[] = [];
  const bundles: TestBundle[] = [];
  const bundle = (args: string[]) => {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  };
  const open = async () => {
    const e = await createEngine({ stateDir, logger: quietLogger() });
    engines.push(e);
    return e;
  };

  useSubreaper();
  beforeEach(() => {
    stateDir = testStateDir('shutdown');
  });
  afterEach(async () => {
    // A failed test may leave an engine open with sandboxes: stop them the hard way.
    for (const e of engines.splice(0)) await e.shutdown({ mode: 'stop', graceMs: 0 }).catch(() => undefined);
    const last = await createEngine({ stateDir, logger: quietLogger() });
    await last.shutdown({ mode: 'stop', graceMs: 0 });
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(stateDir, { recursive: true, force: true });
    reapZombies();
  });

  test("stop: a process that honours SIGTERM exits in the grace period; one that ignores it is killed; nothing is left", async () => {
    const e = await open();
    const exits: Extract<EngineEvent, { type: 'exit' }>[] = [];
    e.events$.subscribe((ev) => {
      if (ev.type === 'exit') exits.push(ev);
    });
    await e.createSandbox('polite', bundle(['sh', '-c', "trap 'exit 7' TERM; while true; do sleep 0.05; done"]));
    await e.startRoot('polite');
    await e.createSandbox('stubborn', bundle(['sh', '-c', "trap '' TERM; while true; do sleep 0.05; done"]));
    await e.startRoot('stubborn');
    await e.createSandbox('idle', bundle(['true']));
    // A paused sandbox is thawed first, so it too can act on SIGTERM.
    await e.createSandbox('frozen', bundle(['sh', '-c', "trap 'exit 8' TERM; while true; do sleep 0.05; done"]));
    await e.startRoot('frozen');
    await e.pause('frozen');
    const initPids = e.list().map((s) => s.pid as number);

    const report = await e.shutdown({ mode: 'stop', graceMs: 1_500 });
    expect(report).toEqual({ stopped: ['frozen', 'idle', 'polite'], killed: ['stubborn'], detached: [] });
    const byId = Object.fromEntries(exits.map((x) => [x.sandboxId, x]));
    expect(byId.polite).toMatchObject({ containerId: 'polite', exit: { exitCode: 7, signal: null } });
    expect(byId.frozen).toMatchObject({ containerId: 'frozen', exit: { exitCode: 8, signal: null } });
    // Killed through init after the grace period, so init reaped it and recorded the signal.
    expect(byId.stubborn).toMatchObject({ containerId: 'stubborn', exit: { exitCode: null, signal: 9 } });
    expect(exits.filter((x) => x.type === 'exit' && x.lost)).toEqual([]);
    expect(byId.idle).toBeUndefined();
    expect(fs.readdirSync(stateDir).filter((n) => !n.startsWith('.'))).toEqual([]);
    const alive = paddockInitPids();
    for (const pid of initPids) expect(alive).not.toContain(pid);
    await expect(e.createSandbox('late', bundle(['true']))).rejects.toMatchObject({ code: 'EENGINE_CLOSED' });
  });

  test('detach: sandboxes keep running and a new engine reattaches to them', async () => {
    const e = await open();
    await e.createSandbox('keep', bundle(['sleep', '60']));
    await e.startRoot('keep');
    expect(await e.shutdown({ mode: 'detach' })).toEqual({ stopped: [], killed: [], detached: ['keep'] });
    const n = await open();
    expect(n.isRunning('keep')).toBe(true);
    await n.signal('keep', 'keep', 'SIGKILL');
    expect(await n.wait('keep', 'keep', { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });

  test.each([
    [{ mode: 'halt' }, 'mode'],
    [{ mode: 'stop', graceMs: -5 }, 'graceMs'],
    [{ mode: 'stop', graceMs: Number.NaN }, 'graceMs'],
  ])('bad options %j: EINVALID_ARGUMENT naming %s, the engine stays open', async (opts, field) => {
    const e = await open();
    await expect(e.shutdown(opts as never)).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field } });
    expect(e.list()).toEqual([]);
    await e.createSandbox('still', bundle(['true']));
    await e.destroy('still');
  });
});
