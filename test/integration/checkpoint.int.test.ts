import * as fs from 'node:fs';
import * as path from 'node:path';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, readAll, TEST_ROOT } from '../helpers/env';
import { filter, firstValueFrom, of } from 'rxjs';
import type { CommandOutput, EngineCommand, EngineEvent } from '../../index';

/**
 * Checkpoint and restore with CRIU on real sandboxes (docs/decisions/0040). The counter
 * keeps its state in memory: a busybox sh loop counting in a shell variable, printing
 * each number and writing it into /dev/shm (a tmpfs of the container's own, carried in
 * the images). After a restore it must go on from where it was, which the test reads
 * from inside the restored container (exec) and from its output.
 */
describeIf(['root', 'busybox', 'fixture-rootfs', 'criu'])('checkpoint / restore (CRIU)', () => {
  const fx = useEngine('ckpt');
  const images: string[] = [];
  afterEach(() => {
    for (const d of images.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  const imageDir = () => {
    const d = path.join(TEST_ROOT, `ckpt-img-${process.pid}-${images.length}`);
    images.push(d);
    return d;
  };

  const COUNTER = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i; echo $i > /dev/shm/n; sleep 0.05; done'];

  /** The numbers a sandbox's root has printed so far. */
  const printed = (sid: string) => fs.readFileSync(path.join(fx.stateDir, sid, 'logs', `${sid}.stdout`), 'utf8').split('\n').filter(Boolean).map(Number);
  const last = (sid: string) => printed(sid).at(-1) ?? 0;

  async function counting(sid: string, bundle: string) {
    await fx.engine.createSandbox(sid, bundle);
    await fx.engine.startRoot(sid);
    await poll(() => (last(sid) >= 5 ? true : undefined), 10_000, 'the counter to reach 5');
  }

  /** What the container itself says its counter is: exec'd inside it. */
  async function insideCount(sid: string): Promise<number> {
    const r = await fx.engine.execute(sid, sid, { args: ['cat', '/dev/shm/n'] });
    const out = await readAll(r.stdout!);
    await fx.engine.waitPid(sid, r.pid, { timeoutMs: 10_000 });
    return Number(out.trim());
  }

  test('checkpoint stops the sandbox; restore brings the counter back where it was, as a sandbox like any other', async () => {
    const sid = fx.id();
    const bundle = fx.bundle({ args: COUNTER, userns: false });
    const seen: EngineEvent[] = [];
    const sub = fx.engine.events$.subscribe((e) => seen.push(e));
    await counting(sid, bundle);
    const img = imageDir();
    const r = await fx.engine.checkpoint(sid, { imagePath: img });
    expect(r).toEqual({ imagePath: img, state: 'stopped' });
    expect(fs.existsSync(path.join(img, 'inventory.img'))).toBe(true);
    expect(fs.existsSync(path.join(img, 'paddock-checkpoint.json'))).toBe(true);
    // The dump killed the tree: the sandbox stopped with it, its exit reported.
    const status = await fx.engine.wait(sid, sid, { timeoutMs: 10_000 });
    expect(status.signal).toBe(9);
    const before = last(sid);
    await new Promise((res) => setTimeout(res, 300));
    expect(last(sid)).toBe(before);
    await fx.engine.destroy(sid);

    // The same id again, from the images.
    const h = await fx.engine.restore(sid, bundle, { imagePath: img });
    expect(h.id).toBe(sid);
    expect(fx.engine.list().find((s) => s.id === sid)?.status).toBe('running');
    await poll(() => (printed(sid).length >= 3 ? true : undefined), 10_000, 'the restored counter to print');
    // It went on from its own memory: the first number it printed follows the last one.
    expect(printed(sid)[0]).toBeGreaterThan(before);
    expect(printed(sid)[0]).toBeLessThanOrEqual(before + 2);
    const inside = await insideCount(sid);
    expect(inside).toBeGreaterThan(before);
    // Its rootfs is read-only again, as the bundle asks (the default spec's root.readonly).
    const w = await fx.engine.execute(sid, sid, { args: ['sh', '-c', 'touch /restored-was-here 2>&1; awk \'$5 == "/" { print "root " $6 }\' /proc/self/mountinfo'] });
    const wOut = await readAll(w.stdout!);
    await fx.engine.waitPid(sid, w.pid, { timeoutMs: 10_000 });
    expect(wOut).toMatch(/Read-only file system/);
    expect(wOut).toMatch(/^root ro[,\n]/m);
    // A restored sandbox can be checkpointed again, and restored from that.
    // Its output file is appended to (criu reopened it with the dumped pipe's flags).
    const hp = fx.engine.list().find((x) => x.id === sid)?.containers[0]?.hostPid;
    expect(Number(/^flags:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${hp}/fdinfo/1`, 'utf8'))?.[1]) & 0o2000).toBe(0o2000);
    const again = imageDir();
    await fx.engine.checkpoint(sid, { imagePath: again, leaveRunning: true });
    const copy = fx.id();
    await fx.engine.restore(copy, bundle, { imagePath: again });
    await poll(() => (printed(copy).length >= 1 ? true : undefined), 10_000, 'the second-generation copy to print');
    expect(printed(copy)[0]).toBeGreaterThan(inside);
    await fx.engine.destroy(copy);
    // Its process is init's child and the sandbox's root: signal, wait and the exit status work.
    const states = seen.flatMap((e) => (e.type === 'state' && e.sandboxId === sid && e.containerId === undefined ? [e.status] : []));
    expect(states).toEqual(expect.arrayContaining(['checkpointing', 'stopped', 'restoring', 'running']));
    // (sh is pid 1 of its pid namespace: only SIGKILL ends it.)
    await fx.engine.signal(sid, sid, 'KILL');
    const end = await fx.engine.wait(sid, sid, { timeoutMs: 10_000 });
    expect(end).toMatchObject({ exitCode: null, signal: 9 });
    expect(fx.engine.list().find((s) => s.id === sid)?.status).toBe('stopped');
    sub.unsubscribe();
  }, 60_000);

  test('leaveRunning keeps the original counting; a second sandbox restored from the images counts on from the checkpoint', async () => {
    const a = fx.id();
    const b = fx.id();
    const bundle = fx.bundle({ args: COUNTER, userns: false });
    await counting(a, bundle);
    const img = imageDir();
    expect(await fx.engine.checkpoint(a, { imagePath: img, leaveRunning: true })).toEqual({ imagePath: img, state: 'running' });
    const at = last(a);
    await poll(() => (last(a) > at + 5 ? true : undefined), 10_000, 'the original to go on counting');
    expect(fx.engine.list().find((s) => s.id === a)?.status).toBe('running');

    await fx.engine.restore(b, bundle, { imagePath: img });
    await poll(() => (printed(b).length >= 2 ? true : undefined), 10_000, 'the restored copy to print');
    // The copy starts at the checkpoint, not at 1 and not where the original is now.
    expect(printed(b)[0]).toBeGreaterThan(1);
    expect(printed(b)[0]).toBeLessThanOrEqual(at + 2);
    expect(await insideCount(b)).toBeGreaterThan(1);
    // Two sandboxes, each its own: destroying the copy leaves the original running.
    await fx.engine.destroy(b);

    // The same through engine.run's commands: a checkpoint, then (once it is done; commands
    // on different sandboxes run side by side) a restore as a third sandbox.
    const c = fx.id();
    const img2 = imageDir();
    const runOne = (cmd: EngineCommand) =>
      firstValueFrom(fx.engine.run(of(cmd)).pipe(filter((o): o is Extract<CommandOutput, { commandId: string }> => o.type === 'command.result' || o.type === 'command.error')));
    const k = await runOne({ id: 'k1', type: 'checkpoint', sandboxId: a, options: { imagePath: img2, leaveRunning: true } });
    expect(k).toMatchObject({ type: 'command.result', commandId: 'k1', value: { imagePath: img2, state: 'running' } });
    const r = await runOne({ id: 'r1', type: 'restore', sandboxId: c, bundle, options: { imagePath: img2 } });
    expect(r).toMatchObject({ type: 'command.result', commandId: 'r1', value: { id: c, rootContainerId: c } });
    await poll(() => (printed(c).length >= 1 ? true : undefined), 10_000, 'the third sandbox to print');
    expect(printed(c)[0]).toBeGreaterThan(1);
    await fx.engine.destroy(c);
    const now = last(a);
    await poll(() => (last(a) > now ? true : undefined), 10_000, 'the original to keep counting');
  }, 60_000);

  test('a pipe between two processes and an open file are carried across', async () => {
    const sid = fx.id();
    // The producer writes each number to a file it holds open (fd 3) and into a pipe the
    // consumer reads; the consumer's lines are the container's output.
    const bundle = fx.bundle({
      args: ['sh', '-c', 'exec 3>>/dev/shm/log; i=0; while :; do i=$((i+1)); echo $i >&3; echo $i; sleep 0.05; done | while read l; do echo "got $l"; done'],
      userns: false,
    });
    await fx.engine.createSandbox(sid, bundle);
    await fx.engine.startRoot(sid);
    const got = () => fs.readFileSync(path.join(fx.stateDir, sid, 'logs', `${sid}.stdout`), 'utf8').split('\n').filter(Boolean);
    await poll(() => (got().length >= 5 ? true : undefined), 10_000, 'the consumer to print');
    const img = imageDir();
    await fx.engine.checkpoint(sid, { imagePath: img });
    await fx.engine.wait(sid, sid, { timeoutMs: 10_000 });
    const before = Number(got().at(-1)?.replace('got ', ''));
    await fx.engine.destroy(sid);

    await fx.engine.restore(sid, bundle, { imagePath: img });
    await poll(() => (got().length >= 3 ? true : undefined), 10_000, 'the restored consumer to print');
    const after = got().map((l) => Number(l.replace('got ', '')));
    // Through the same pipe: the consumer goes on with the producer's next numbers.
    expect(after[0]).toBeGreaterThan(before);
    expect(after[1]).toBe((after[0] as number) + 1);
    // And the file the producer held open goes on growing from where it was.
    // One read of the file (the producer appends every 50 ms: a `tail` and a `wc` apart
    // could see two lengths): its last number is its number of lines, none lost or doubled.
    const r = await fx.engine.execute(sid, sid, { args: ['cat', '/dev/shm/log'] });
    const content = (await readAll(r.stdout!)).trim().split('\n');
    const lastLine = Number(content.at(-1));
    const lines = content.length;
    await fx.engine.waitPid(sid, r.pid, { timeoutMs: 10_000 });
    expect(lastLine).toBeGreaterThan(before);
    expect(lines).toBe(lastLine);
    await fx.engine.signal(sid, sid, 'KILL');
    await fx.engine.wait(sid, sid, { timeoutMs: 10_000 });
  }, 60_000);

  test('a restore by a fresh engine, and the restored sandbox reattached by the next one', async () => {
    const { createEngine } = await import('../../index');
    const { quietLogger, testStateDir } = await import('../helpers/env');
    const sid = fx.id();
    const bundle = fx.bundle({ args: COUNTER, userns: false });
    await counting(sid, bundle);
    const img = imageDir();
    await fx.engine.checkpoint(sid, { imagePath: img });
    const before = last(sid);
    await fx.engine.destroy(sid);
    await fx.engine.close();

    const dir = testStateDir('ckpt-next');
    const log = () => fs.readFileSync(path.join(dir, sid, 'logs', `${sid}.stdout`), 'utf8').split('\n').filter(Boolean).map(Number);
    const e2 = await createEngine({ stateDir: dir, logger: quietLogger() });
    let e3: Awaited<ReturnType<typeof createEngine>> | undefined;
    try {
      await e2.restore(sid, bundle, { imagePath: img });
      await poll(() => (log().length >= 1 ? true : undefined), 10_000, 'the restored counter to print');
      expect(log()[0]).toBeGreaterThan(before);
      // This supervisor goes; the sandbox lives on and the next one takes it over.
      await e2.close();
      e3 = await createEngine({ stateDir: dir, logger: quietLogger() });
      expect(e3.list().find((s) => s.id === sid)?.status).toBe('running');
      const r = await e3.execute(sid, sid, { args: ['cat', '/dev/shm/n'] });
      expect(Number((await readAll(r.stdout!)).trim())).toBeGreaterThan(before);
      await e3.waitPid(sid, r.pid, { timeoutMs: 10_000 });
      await e3.signal(sid, sid, 'KILL');
      expect(await e3.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
      await e3.destroy(sid);
    } finally {
      await e2.close().catch(() => undefined);
      if (e3) {
        for (const s of e3.list()) await e3.destroy(s.id).catch(() => undefined);
        await e3.close();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('bad input gets a typed error and changes nothing', async () => {
    const sid = fx.id();
    const bundle = fx.bundle({ args: COUNTER, userns: false });
    await expect(fx.engine.checkpoint('no-such', { imagePath: imageDir() })).rejects.toMatchObject({ code: 'ESANDBOX_NOT_FOUND' });
    await counting(sid, bundle);
    const img = imageDir();
    await expect(fx.engine.checkpoint(sid, { imagePath: img, leaveRuning: true } as never)).rejects.toMatchObject({
      code: 'EINVALID_ARGUMENT',
      message: expect.stringContaining('"leaveRuning" (did you mean "leaveRunning"?)'),
    });
    await expect(fx.engine.checkpoint(sid, { imagePath: 'relative/dir' })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'imagePath' } });
    await expect(fx.engine.checkpoint(sid, { imagePath: img, manageCgroupsMode: 'some' as never })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT' });
    fs.mkdirSync(img, { recursive: true });
    fs.writeFileSync(path.join(img, 'keep'), 'x');
    await expect(fx.engine.checkpoint(sid, { imagePath: img })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', message: expect.stringContaining('not empty') });
    expect(fs.readdirSync(img)).toEqual(['keep']);
    // No dirty-page tracking on this kernel: a pre-dump is refused, clearly.
    await expect(fx.engine.checkpoint(sid, { imagePath: imageDir(), preDump: true })).rejects.toMatchObject({ code: 'ENOT_SUPPORTED', context: { field: 'preDump' } });
    // A restore from a folder that holds no checkpoint, and over an id in use.
    await expect(fx.engine.restore(fx.id(), bundle, { imagePath: img })).rejects.toMatchObject({ code: 'ECHECKPOINT_INVALID' });
    await expect(fx.engine.restore(sid, bundle, { imagePath: img })).rejects.toMatchObject({ code: 'ESANDBOX_EXISTS' });
    // A checkpoint of a sandbox with a user namespace (as a record says) is refused before anything is made.
    const usern = imageDir();
    fs.mkdirSync(usern);
    fs.writeFileSync(path.join(usern, 'inventory.img'), '');
    fs.writeFileSync(path.join(usern, 'paddock-checkpoint.json'), JSON.stringify({ version: 1, sandboxId: 'x', containerId: 'x', createdAt: '', rootfs: '/', mounts: [], stdio: [], otherFiles: [], userns: true }));
    await expect(fx.engine.restore(fx.id(), bundle, { imagePath: usern })).rejects.toMatchObject({ code: 'ENOT_SUPPORTED' });
    expect(fx.engine.list().map((s) => s.id)).toEqual([sid]);

    // A sandbox with a user namespace: refused before anything is dumped (decision 0040).
    const u = fx.id();
    await fx.engine.createSandbox(u, fx.bundle({ args: COUNTER }));
    await fx.engine.startRoot(u);
    const uimg = imageDir();
    await expect(fx.engine.checkpoint(u, { imagePath: uimg })).rejects.toMatchObject({ code: 'ENOT_SUPPORTED', message: expect.stringContaining('user namespace') });
    expect(fs.existsSync(uimg)).toBe(false);
    expect(fx.engine.list().find((s) => s.id === u)?.status).toBe('running');
    await fx.engine.destroy(u);

    // A second checkpoint while one runs is refused; the first goes through.
    const img2 = imageDir();
    const first = fx.engine.checkpoint(sid, { imagePath: img2, leaveRunning: true });
    await expect(fx.engine.checkpoint(sid, { imagePath: imageDir() })).rejects.toMatchObject({ code: 'EINVALID_STATE', context: { state: 'checkpointing' } });
    await expect(first).resolves.toMatchObject({ state: 'running' });
    // A stopped sandbox cannot be checkpointed.
    await fx.engine.signal(sid, sid, 'KILL');
    await fx.engine.wait(sid, sid, { timeoutMs: 10_000 });
    await expect(fx.engine.checkpoint(sid, { imagePath: imageDir() })).rejects.toMatchObject({ code: 'EINVALID_STATE', context: { state: 'stopped' } });
  }, 60_000);

  test('without a working criu: ECRIU_UNAVAILABLE naming the set-up script, and nothing is made', async () => {
    const { createEngine } = await import('../../index');
    const { quietLogger } = await import('../helpers/env');
    const e = await createEngine({ stateDir: fx.stateDir, logger: quietLogger(), criuPath: '/nonexistent/criu', reattach: false });
    try {
      const sid = fx.id();
      const bundle = fx.bundle({ args: COUNTER, userns: false });
      await e.createSandbox(sid, bundle);
      await e.startRoot(sid);
      const img = imageDir();
      await expect(e.checkpoint(sid, { imagePath: img })).rejects.toMatchObject({ code: 'ECRIU_UNAVAILABLE', message: expect.stringContaining('scripts/setup-criu.sh') });
      expect(fs.existsSync(img)).toBe(false);
      expect(e.list().find((s) => s.id === sid)?.status).toBe('running');
      await e.destroy(sid);
    } finally {
      await e.close();
    }
  }, 30_000);
});
