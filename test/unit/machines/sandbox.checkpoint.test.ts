import { createActor, waitFor } from 'xstate';
import type { CheckpointRequest } from '../../../machines/types';
import { child, deferred, fromSnapshot, never, provideSandbox, runningSandbox, startSandbox, waitState } from './helpers';

/**
 * Checkpoint and restore in the sandbox machine (docs/decisions/0040): CRIU's dump and
 * restore are the named effects `checkpointSandbox`/`restoreSandbox`, replaced here by
 * fakes, with jest's fake timers for the machine's own bounds.
 */

const request = (over: Partial<CheckpointRequest> = {}): CheckpointRequest => ({
  imagePath: '/img/a',
  leaveRunning: false,
  tcpEstablished: false,
  extUnixSk: false,
  shellJob: false,
  fileLocks: false,
  ...over,
});

const rootExit = (signal: number) =>
  ({ type: 'process.exited', containerId: 'c1', pid: 100, kind: 'container', exit: { exitCode: null, signal } }) as const;

describe('sandboxMachine: checkpoint', () => {
  afterEach(() => jest.useRealTimers());

  test('checkpoint is accepted in running only', async () => {
    const created = startSandbox();
    await waitState(created, 'created');
    expect(created.getSnapshot().can({ type: 'checkpoint', request: request() })).toBe(false);
    const running = await runningSandbox();
    expect(running.getSnapshot().can({ type: 'checkpoint', request: request() })).toBe(true);
    running.send({ type: 'pause' });
    await waitState(running, 'paused');
    expect(running.getSnapshot().can({ type: 'checkpoint', request: request() })).toBe(false);
    const stopped = await runningSandbox();
    stopped.send(rootExit(9));
    await waitState(stopped, 'stopped');
    expect(stopped.getSnapshot().can({ type: 'checkpoint', request: request() })).toBe(false);
  });

  test('a second checkpoint while one runs is refused; the request reaches checkpointSandbox', async () => {
    const inputs: unknown[] = [];
    const dump = deferred<void>();
    const actor = await runningSandbox({
      checkpoint: (input) => {
        inputs.push(input);
        return dump.promise;
      },
    });
    actor.send({ type: 'checkpoint', request: request({ leaveRunning: true, imagePath: '/img/b' }) });
    expect(actor.getSnapshot().value).toBe('checkpointing');
    expect(actor.getSnapshot().hasTag('alive')).toBe(true);
    expect(actor.getSnapshot().can({ type: 'checkpoint', request: request() })).toBe(false);
    expect(actor.getSnapshot().can({ type: 'pause' })).toBe(false);
    expect(inputs).toEqual([{ sandboxId: 'sb1', request: request({ leaveRunning: true, imagePath: '/img/b' }) }]);
    dump.resolve();
    await waitState(actor, 'running');
    expect(actor.getSnapshot().context.checkpoint).toBeUndefined();
    expect(child(actor, 'c1')?.value).toBe('running');
  });

  test('without leaveRunning the dump kills the tree: the root exit is kept and the sandbox stops when the dump is done', async () => {
    const dump = deferred<void>();
    const actor = await runningSandbox({ checkpoint: () => dump.promise });
    actor.send({ type: 'checkpoint', request: request() });
    actor.send(rootExit(9));
    // Still the dump's: nothing else may start on the sandbox meanwhile.
    expect(actor.getSnapshot().value).toBe('checkpointing');
    expect(actor.getSnapshot().context.exit).toEqual({ exitCode: null, signal: 9 });
    dump.resolve();
    await waitState(actor, 'stopped');
    expect(child(actor, 'c1')?.value).toBe('stopped');
  });

  test('a dump done before the exit arrives still stops the sandbox, and the exit is recorded later', async () => {
    const actor = await runningSandbox();
    actor.send({ type: 'checkpoint', request: request() });
    await waitState(actor, 'stopped');
    actor.send(rootExit(9));
    await waitFor(actor, (s) => s.context.exit !== undefined, { timeout: 1000 });
    expect(actor.getSnapshot().context.exit).toEqual({ exitCode: null, signal: 9 });
  });

  test('leaveRunning, but the root exited meanwhile: stopped, not running', async () => {
    const dump = deferred<void>();
    const actor = await runningSandbox({ checkpoint: () => dump.promise });
    actor.send({ type: 'checkpoint', request: request({ leaveRunning: true }) });
    actor.send({ type: 'init.exited' });
    dump.resolve();
    await waitState(actor, 'stopped');
    expect(child(actor, 'c1')?.context.exit).toEqual({ exitCode: null, signal: null });
  });

  test('a failed dump goes back to running with the error (CRIU resumed the tree)', async () => {
    const actor = await runningSandbox({
      checkpoint: async () => {
        throw Object.assign(new Error('criu dump failed'), { code: 'ECRIU_FAILED', context: { step: 'dump' } });
      },
    });
    actor.send({ type: 'checkpoint', request: request() });
    await waitState(actor, 'running');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'ECRIU_FAILED', message: 'criu dump failed', step: 'dump' });
    expect(child(actor, 'c1')?.value).toBe('running');
    // The next checkpoint starts clean.
    actor.send({ type: 'checkpoint', request: request({ leaveRunning: true }) });
    expect(actor.getSnapshot().context.error).toBeUndefined();
  });

  test('a dump that never ends is bounded by checkpointTimeout', async () => {
    jest.useFakeTimers();
    const actor = createActor(provideSandbox({ checkpoint: never }), { input: { sandboxId: 'sb1', bundleDir: '/b' } }).start();
    await jest.advanceTimersByTimeAsync(1);
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/b/c1' });
    actor.send({ type: 'start' });
    await jest.advanceTimersByTimeAsync(1);
    expect(actor.getSnapshot().value).toBe('running');
    actor.send({ type: 'checkpoint', request: request() });
    await jest.advanceTimersByTimeAsync(119_999);
    expect(actor.getSnapshot().value).toBe('checkpointing');
    await jest.advanceTimersByTimeAsync(1);
    expect(actor.getSnapshot().value).toBe('running');
    expect(actor.getSnapshot().context.error).toMatchObject({ code: 'ETIMEOUT', step: 'checkpoint' });
    actor.stop();
  });

  test('destroy during a checkpoint tears the sandbox down', async () => {
    const destroyed: string[] = [];
    const actor = await runningSandbox({ checkpoint: never, destroy: async ({ sandboxId }) => void destroyed.push(sandboxId) });
    actor.send({ type: 'checkpoint', request: request() });
    actor.send({ type: 'destroy' });
    await waitState(actor, 'destroyed');
    expect(destroyed).toEqual(['sb1']);
  });

  test('a checkpointing snapshot round-trips through JSON with its request', async () => {
    const actor = await runningSandbox({ checkpoint: never });
    actor.send({ type: 'checkpoint', request: request({ leaveRunning: true, workPath: '/w' }) });
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    const again = createActor(provideSandbox({ checkpoint: never }), fromSnapshot(persisted)).start();
    expect(again.getSnapshot().value).toBe('checkpointing');
    expect(again.getSnapshot().context.checkpoint).toEqual(request({ leaveRunning: true, workPath: '/w' }));
    again.stop();
  });
});

describe('sandboxMachine: restore', () => {
  afterEach(() => jest.useRealTimers());

  async function createdWithRoot(effects: Parameters<typeof startSandbox>[0] = {}) {
    const actor = startSandbox(effects);
    await waitState(actor, 'created');
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/bundles/c1' });
    return actor;
  }

  test('restore needs a created sandbox with its root container planned', async () => {
    const bare = startSandbox();
    await waitState(bare, 'created');
    expect(bare.getSnapshot().can({ type: 'restore', imagePath: '/img' })).toBe(false);
    const withRoot = await createdWithRoot();
    expect(withRoot.getSnapshot().can({ type: 'restore', imagePath: '/img' })).toBe(true);
    const running = await runningSandbox();
    expect(running.getSnapshot().can({ type: 'restore', imagePath: '/img' })).toBe(false);
  });

  test('restoring → running; the root container runs with the restored pids, and a start is refused meanwhile', async () => {
    const inputs: unknown[] = [];
    const restored = deferred<{ pid: number; hostPid: number }>();
    const actor = await createdWithRoot({
      restore: (input) => {
        inputs.push(input);
        return restored.promise;
      },
    });
    actor.send({ type: 'restore', imagePath: '/img/r' });
    expect(actor.getSnapshot().value).toBe('restoring');
    expect(actor.getSnapshot().can({ type: 'start' })).toBe(false);
    expect(actor.getSnapshot().can({ type: 'checkpoint', request: request() })).toBe(false);
    expect(inputs).toEqual([{ sandboxId: 'sb1', containerId: 'c1', imagePath: '/img/r' }]);
    restored.resolve({ pid: 12, hostPid: 61012 });
    await waitState(actor, 'running');
    await waitFor(actor, () => child(actor, 'c1')?.value === 'running', { timeout: 1000 });
    expect(child(actor, 'c1')?.context).toMatchObject({ pid: 12, hostPid: 61012 });
    // It is a sandbox like any other: its root's exit stops it with that status.
    actor.send({ type: 'process.exited', containerId: 'c1', pid: 12, kind: 'container', exit: { exitCode: 3, signal: null } });
    await waitState(actor, 'stopped');
    expect(actor.getSnapshot().context.exit).toEqual({ exitCode: 3, signal: null });
  });

  test('a failed restore → failed with the error; destroy still works', async () => {
    const actor = await createdWithRoot({
      restore: async () => {
        throw Object.assign(new Error('criu restore failed'), { code: 'ECRIU_FAILED', context: { step: 'restore' } });
      },
    });
    actor.send({ type: 'restore', imagePath: '/img/r' });
    await waitState(actor, 'failed');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'ECRIU_FAILED', message: 'criu restore failed', step: 'restore' });
    expect(child(actor, 'c1')?.value).toBe('created');
    actor.send({ type: 'destroy' });
    await waitState(actor, 'destroyed');
  });

  test('a restore that never ends is bounded by restoreTimeout', async () => {
    jest.useFakeTimers();
    const actor = createActor(provideSandbox({ restore: never }), { input: { sandboxId: 'sb1', bundleDir: '/b' } }).start();
    await jest.advanceTimersByTimeAsync(1);
    actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/b/c1' });
    actor.send({ type: 'restore', imagePath: '/img' });
    await jest.advanceTimersByTimeAsync(120_000);
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.error).toMatchObject({ code: 'ETIMEOUT', step: 'restore' });
    actor.stop();
  });

  test('init exiting while restoring stops the sandbox', async () => {
    const actor = await createdWithRoot({ restore: never });
    actor.send({ type: 'restore', imagePath: '/img/r' });
    actor.send({ type: 'init.exited' });
    await waitState(actor, 'stopped');
    expect(child(actor, 'c1')?.value).toBe('stopped');
  });

  test('a restoring snapshot round-trips through JSON and restores from the same images', async () => {
    const inputs: unknown[] = [];
    const actor = await createdWithRoot({ restore: never });
    actor.send({ type: 'restore', imagePath: '/img/r' });
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
    const again = createActor(
      provideSandbox({
        restore: async (input) => {
          inputs.push(input);
          return { pid: 5, hostPid: 50005 };
        },
      }),
      fromSnapshot(persisted),
    ).start();
    await waitState(again, 'running');
    expect(inputs).toEqual([{ sandboxId: 'sb1', containerId: 'c1', imagePath: '/img/r' }]);
    again.stop();
  });
});
