import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll } from '../helpers/env';
import { runCli } from '../helpers/cli';
import type { SandboxStacks } from '../../index';

/**
 * engine.stacks (runsc's debug --stacks): processes blocked in known syscalls are found
 * in the dump with that wchan, syscall and kernel stack, grouped by container.
 */
describeIf(['root', 'busybox'])('engine.stacks', () => {
  const fx = useEngine('stacks');

  const find = (s: SandboxStacks, cmd: string) => s.containers.flatMap((c) => c.processes.map((p) => ({ ...p, containerId: c.containerId }))).find((p) => p.command === cmd);

  test('a read on a pipe and a nanosleep are found with their wchan and stack; init is there with its table; CLI debug stacks prints the same', async () => {
    const sid = fx.id();
    // cat blocks in read(2) on the pipe that sleep never writes to.
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sh', '-c', 'sleep 1000 | cat'] }), { stdio: 'ignore' });
    await fx.engine.startRoot(sid);
    // Both are blocked once their wchan says so (they start asynchronously).
    const s = await poll(async () => {
      const d = await fx.engine.stacks(sid);
      const cat = find(d, 'cat');
      const sleep = find(d, 'sleep');
      return cat?.threads[0]?.wchan.includes('pipe_read') && sleep?.threads[0]?.wchan.includes('nanosleep') ? d : undefined;
    }, 10_000);
    expect(s.sandboxId).toBe(sid);
    expect(s.init.command).toBe('paddock-init');
    expect(s.init.threads.length).toBeGreaterThan(0);
    expect(s.init.table).toContain(sid);
    expect(s.containers.map((c) => c.containerId)).toEqual([sid]);
    const cat = find(s, 'cat')!;
    expect(cat.kind).toBe('descendant');
    expect(cat.threads[0]).toMatchObject({ state: expect.stringMatching(/^S/), syscall: '0' });
    expect(cat.threads[0]!.stack.some((f) => /pipe_read/.test(f))).toBe(true);
    expect(cat.threads[0]!.stack.some((f) => /ksys_read/.test(f))).toBe(true);
    const sleep = find(s, 'sleep')!;
    expect(sleep.threads[0]!.stack.some((f) => /nanosleep/.test(f))).toBe(true);
    expect(find(s, 'sh')?.kind).toBe('container');

    // The CLI over the same state dir (the engine of the test holds the lock: release it).
    fx.engine.release(sid);
    const r = runCli(fx.stateDir, ['debug', 'stacks', sid]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^paddock-init pid \d+$/m);
    expect(r.stdout).toMatch(/ descendant cat\n\s+thread \d+ \(cat\) state=S \(sleeping\) wchan=\S*pipe_read syscall=0\n/);
    const json = runCli(fx.stateDir, ['debug', 'stacks', '--format', 'json', sid]);
    expect((JSON.parse(json.stdout) as SandboxStacks).containers[0]!.containerId).toBe(sid);
    expect(runCli(fx.stateDir, ['debug', 'nope', sid]).code).not.toBe(0);
    // Released above: the engine no longer owns it, so the CLI deletes it.
    expect(runCli(fx.stateDir, ['delete', '--force', sid]).code).toBe(0);
  });

  test('an unknown id is ESANDBOX_NOT_FOUND', async () => {
    await expect(fx.engine.stacks('no-such')).rejects.toMatchObject({ code: 'ESANDBOX_NOT_FOUND' });
  });
});
