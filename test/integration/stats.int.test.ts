import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Subject, filter, firstValueFrom, lastValueFrom, take, toArray, timeout } from 'rxjs';
import type { CommandOutput, EngineCommand, RuncStats } from '../../index';
import { detectLayout } from '../../actors/cgroups/sandbox-cgroup';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { CLI, runCli } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, testStateDir } from '../helpers/env';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/**
 * engine.stats$ and `paddock events` in runc's `events --stats` shape (issue 16), read
 * from the sandbox's real cgroup; engine.run's addContainer, logs, stats and stacks.
 */
const MEM = 64 << 20;
const v1 = detectLayout().mode !== 'v2';

describeIf(['root', 'busybox', 'cgroups'])('engine.stats$', () => {
  const fx = useEngine('stats');
  useSubreaper();
  const limited = (args: string[]) =>
    fx.bundle({
      args,
      extra: (c) => {
        c.linux!.resources = { ...(c.linux!.resources ?? {}), memory: { limit: MEM }, pids: { limit: 50 } };
      },
    });

  test('samples at once and every interval: cpu, memory, pids as runc reports them; completes when the sandbox stops', async () => {
    const sid = fx.id();
    // Busy for a while so cpu time grows between samples, then waits to be killed.
    await fx.engine.createSandbox(sid, limited(['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 60']), { stdio: 'ignore' });
    await fx.engine.startRoot(sid);
    const two = await firstValueFrom(fx.engine.stats$(sid, { intervalMs: 100 }).pipe(take(2), toArray(), timeout(10_000)));
    const [a, b] = two.map((s) => s.data) as [RuncStats, RuncStats];
    expect(two.map((s) => [s.type, s.id])).toEqual([['stats', sid], ['stats', sid]]);
    expect(a.memory.usage.limit).toBe(MEM);
    expect(a.memory.usage.usage).toBeGreaterThan(0);
    expect(a.memory.usage).toHaveProperty('failcnt');
    expect(a.memory.raw).toBeDefined();
    expect(a.pids).toMatchObject({ limit: 50 });
    expect(a.pids.current).toBeGreaterThanOrEqual(1);
    expect(a.cpu.usage.total).toBeGreaterThan(0);
    expect(b.cpu.usage.total).toBeGreaterThanOrEqual(a.cpu.usage.total);
    expect(a.cpu.throttling).toHaveProperty('periods');
    if (v1) expect(a.cpu.usage.percpu).toHaveLength(os.cpus().length);
    // The stream ends with the sandbox.
    const rest = lastValueFrom(fx.engine.stats$(sid, { intervalMs: 50 }).pipe(toArray(), timeout(15_000)));
    await fx.engine.signal(sid, sid, 'SIGKILL');
    expect((await rest).length).toBeGreaterThanOrEqual(1);
  });

  test('bad input: interval 0 or not an integer, an unknown sandbox or container: typed errors at once', async () => {
    const sid = fx.id();
    await fx.engine.createSandbox(sid, limited(['sleep', '60']), { stdio: 'ignore' });
    expect(() => fx.engine.stats$(sid, { intervalMs: 0 })).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT' }));
    expect(() => fx.engine.stats$(sid, { intervalMs: 1.5 })).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT' }));
    expect(() => fx.engine.stats$(sid, { intervl: 5 } as never)).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT' }));
    expect(() => fx.engine.stats$('no-such', { intervalMs: 100 })).toThrow(expect.objectContaining({ code: 'ESANDBOX_NOT_FOUND' }));
    expect(() => fx.engine.stats$(sid, { containerId: 'nope' })).toThrow(expect.objectContaining({ code: 'ECONTAINER_NOT_FOUND' }));
    expect(fx.engine.list().map((s) => s.status)).toEqual(['created']);
  });

  test('engine.run: addContainer, logs, stats and stacks as commands', async () => {
    const sid = fx.id();
    await fx.engine.createSandbox(sid, limited(['sh', '-c', 'echo hello-log; exec sleep 60']));
    await fx.engine.startRoot(sid);
    await poll(async () => {
      const chunks: Buffer[] = [];
      for await (const c of fx.engine.logs(sid, sid)) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString().includes('hello-log') || undefined;
    }, 10_000);
    const commands = new Subject<EngineCommand>();
    const out = firstValueFrom(fx.engine.run(commands).pipe(filter((o): o is Extract<CommandOutput, { commandId: string }> => o.type === 'command.result' || o.type === 'command.error'), take(5), toArray(), timeout(20_000)));
    commands.next({ id: 'a', type: 'addContainer', sandboxId: sid, containerId: 'side', bundle: fx.bundle({ args: ['true'] }) });
    commands.next({ id: 'l', type: 'logs', sandboxId: sid });
    commands.next({ id: 's', type: 'stats', sandboxId: sid });
    commands.next({ id: 'k', type: 'stacks', sandboxId: sid });
    commands.next({ id: 'f', type: 'logs', sandboxId: sid, options: { follow: true } as never });
    const by = new Map((await out).map((o) => [o.commandId, o]));
    expect(by.get('a')).toMatchObject({ type: 'command.result', value: { id: 'side', status: 'created' } });
    expect(by.get('l')).toMatchObject({ type: 'command.result', value: 'hello-log\n' });
    expect(by.get('s')).toMatchObject({ type: 'command.result', value: { memory: { usage: { limit: MEM } } } });
    expect(by.get('k')).toMatchObject({ type: 'command.result', value: { sandboxId: sid, containers: [expect.objectContaining({ containerId: sid })] } });
    expect(by.get('f')).toMatchObject({ type: 'command.error', error: { code: 'EINVALID_ARGUMENT' } });
  });
});

describeIf(['root', 'busybox', 'cgroups'])('paddock events', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  useSubreaper();
  beforeEach(() => {
    root = testStateDir('evcli');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) runCli(root, ['delete', '--force', id]);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('--stats prints one line in runc shape; the stream prints stats, an oom line at an OOM, and ends with the container', async () => {
    const b = makeBundle({
      args: ['sleep', '60'],
      extra: (c) => {
        c.linux!.resources = { ...(c.linux!.resources ?? {}), memory: { limit: 24 << 20, swap: 24 << 20 }, pids: { limit: 20 } };
      },
    });
    bundles.push(b);
    expect(runCli(root, ['run', '-d', '--bundle', b.dir, 'ev'])).toMatchObject({ code: 0 });
    const one = runCli(root, ['events', '--stats', 'ev']);
    expect(one.code).toBe(0);
    const line = JSON.parse(one.stdout) as { type: string; id: string; data: RuncStats };
    expect(line).toMatchObject({ type: 'stats', id: 'ev', data: { memory: { usage: { limit: 24 << 20 } }, pids: { current: 1, limit: 20 } } });
    expect(runCli(root, ['events', '--interval', '0s', 'ev']).code).not.toBe(0);

    const outFile = path.join(root, '..', `ev-${process.pid}.out`);
    const fd = fs.openSync(outFile, 'w');
    const child = spawn(process.execPath, [CLI, '--root', root, 'events', '--interval', '200ms', 'ev'], { stdio: ['ignore', fd, 'inherit'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const lines = () => fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; id: string });
      await poll(() => lines().some((l) => l.type === 'stats') || undefined, 10_000, 'a stats line');
      // An exec'd dd past the limit: the OOM killer takes it (the biggest).
      const dd = runCli(root, ['exec', 'ev', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
      expect(dd.code).toBe(137); // SIGKILL: the OOM killer, not a refusal
      await poll(() => lines().some((l) => l.type === 'oom') || undefined, 10_000, 'an oom line');
      expect(lines().find((l) => l.type === 'oom')).toEqual({ type: 'oom', id: 'ev' });
      expect(runCli(root, ['kill', 'ev', 'KILL']).code).toBe(0);
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))])).toBe(0);
    } finally {
      child.kill('SIGKILL');
      fs.closeSync(fd);
      fs.rmSync(outFile, { force: true });
    }
  });
});
