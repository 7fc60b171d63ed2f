/**
 * `update` (runc's): new limits written into a running sandbox's cgroup (v1 or v2,
 * whatever the host has), read back from the cgroup files and felt from inside.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectLayout, SandboxCgroup, sandboxCgroupPath } from '../../actors/cgroups/sandbox-cgroup';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll, testStateDir } from '../helpers/env';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

const layout = detectLayout();
const v2 = layout.mode === 'v2';
const MiB = 1024 * 1024;
/** Holds ~50 MB in the shell (a command substitution is kept whole in memory). */
// The allocator offers itself to the OOM killer first (raising oom_score_adj needs no
// privilege): without it the killer sometimes also took the container's own process,
// and the next exec found no container to join (setns_pid: ESRCH).
const ALLOC = ['sh', '-c', 'echo 1000 > /proc/self/oom_score_adj; x=$(head -c 50000000 /dev/zero | tr "\\0" a); echo ${#x}'];

function fileOf(stateDir: string, sid: string, v1: 'memory' | 'pids' | 'cpu', v1File: string, v2File: string): string {
  const cg = new SandboxCgroup(layout, sandboxCgroupPath(stateDir, sid));
  return v2 ? path.join(cg.dirOf('unified') as string, v2File) : path.join(cg.dirOf(v1) as string, v1File);
}
const read = (f: string) => fs.readFileSync(f, 'utf8').trim();

describeIf(['root', 'busybox', 'cgroups'])('update (library)', () => {
  const fx = useEngine('upd');
  const start = async (resources: object) => {
    const sid = fx.id();
    const dir = fx.bundle({ userns: false, args: ['sleep', '60'], extra: (c) => { c.linux!.resources = resources as never; } });
    const h = await fx.engine.createSandbox(sid, dir);
    await fx.engine.startRoot(sid);
    return { sid, pid: h.pid };
  };
  const exec = async (sid: string, args: string[]) => {
    const ex = await fx.engine.execute(sid, sid, { args });
    const status = await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 20_000 });
    return { status, stdout: await readAll(ex.stdout!) };
  };

  test('memory, cpu and pids limits are rewritten in place; the lower memory limit is felt inside', async () => {
    const { sid, pid } = await start({ memory: { limit: 256 * MiB }, cpu: { shares: 512, quota: 50000, period: 100000 }, pids: { limit: 50 } });
    expect(await exec(sid, ALLOC)).toMatchObject({ status: { exitCode: 0 }, stdout: '50000000\n' });

    const applied = await fx.engine.update(sid, { memory: { limit: 32 * MiB }, cpu: { quota: 20000 }, pids: { limit: 20 } });
    expect(applied).toMatchObject({ memory: { limit: 32 * MiB }, pids: { limit: 20 } });
    expect(Number(read(fileOf(fx.stateDir, sid, 'memory', 'memory.limit_in_bytes', 'memory.max')))).toBe(32 * MiB);
    // The period stays what it was (v2 keeps both in cpu.max).
    if (v2) expect(read(fileOf(fx.stateDir, sid, 'cpu', '', 'cpu.max'))).toBe('20000 100000');
    else {
      expect(read(fileOf(fx.stateDir, sid, 'cpu', 'cpu.cfs_quota_us', ''))).toBe('20000');
      expect(read(fileOf(fx.stateDir, sid, 'cpu', 'cpu.cfs_period_us', ''))).toBe('100000');
    }
    // As at create, pids.limit counts the containers' tasks: init's are added.
    const initTasks = fs.readdirSync(`/proc/${pid}/task`).length;
    expect(read(fileOf(fx.stateDir, sid, 'pids', 'pids.max', 'pids.max'))).toBe(String(20 + initTasks));
    expect((await exec(sid, ALLOC)).status).toMatchObject({ signal: 9 });

    // -1 lifts a limit; what is not given stays.
    await fx.engine.update(sid, { memory: { limit: -1 } });
    expect(read(fileOf(fx.stateDir, sid, 'memory', 'memory.limit_in_bytes', 'memory.max'))).toMatch(/^(max|9223372036854\d+)$/);
    expect(read(fileOf(fx.stateDir, sid, 'pids', 'pids.max', 'pids.max'))).toBe(String(20 + initTasks));
    expect(await exec(sid, ALLOC)).toMatchObject({ status: { exitCode: 0 } });
  });

  test.each([
    ['a memory limit that is not a number', { memory: { limit: '32M' } }, 'memory.limit'],
    ['a cpu period out of range', { cpu: { period: 10 } }, 'cpu.period'],
    ['a resource that cannot be updated', { blockIO: { weight: 10 } }, 'blockIO'],
    ['not an object', [1], 'resources'],
  ])('%s: EINVALID_ARGUMENT naming the key, the cgroup unchanged', async (_n, resources, field) => {
    const { sid } = await start({ memory: { limit: 64 * MiB } });
    const file = fileOf(fx.stateDir, sid, 'memory', 'memory.limit_in_bytes', 'memory.max');
    const err = await fx.engine.update(sid, resources as never).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field } });
    expect((err as Error).message).toMatch(new RegExp(`^${field.replace('.', '\\.')}: `));
    expect(Number(read(file))).toBe(64 * MiB);
  });

  test('a stopped sandbox cannot be updated', async () => {
    const sid = fx.id();
    const h = await fx.engine.createSandbox(sid, fx.bundle({ userns: false, args: ['true'] }));
    await fx.engine.startRoot(sid);
    await fx.engine.wait(sid, sid, { timeoutMs: 20_000 });
    expect(h.pid).toBeGreaterThan(0);
    await expect(fx.engine.update(sid, { pids: { limit: 5 } })).rejects.toMatchObject({ code: 'EINVALID_STATE' });
  });
});

describeIf(['root', 'busybox', 'cgroups'])('paddock update (CLI)', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cliupd');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('flags and -r FILE write the cgroup; a bad flag value is one line naming the flag, nothing changed', () => {
    const b = makeBundle({ userns: false, args: ['sleep', '60'], extra: (c) => { c.linux!.resources = { memory: { limit: 256 * MiB }, pids: { limit: 50 } }; } });
    bundles.push(b);
    expect(cli('create', '--bundle', b.dir, 'u1')).toMatchObject({ code: 0 });
    expect(cli('start', 'u1')).toMatchObject({ code: 0 });
    const mem = fileOf(root, 'u1', 'memory', 'memory.limit_in_bytes', 'memory.max');
    const pids = fileOf(root, 'u1', 'pids', 'pids.max', 'pids.max');
    const pidsBefore = Number(read(pids)) - 50;

    expect(cli('update', '--memory', '48m', '--pids-limit', '7', '--cpu-shares', '256', 'u1')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(Number(read(mem))).toBe(48 * MiB);
    expect(read(pids)).toBe(String(7 + pidsBefore));

    const file = path.join(b.dir, 'resources.json');
    fs.writeFileSync(file, JSON.stringify({ memory: { limit: 40 * MiB, kernel: MiB } }));
    // The flag wins over the file.
    expect(cli('update', '-r', file, '--pids-limit', '9', 'u1')).toMatchObject({ code: 0, stderr: '' });
    expect(Number(read(mem))).toBe(40 * MiB);
    expect(read(pids)).toBe(String(9 + pidsBefore));

    for (const [args, flag] of [
      [['--memory', 'lots'], '--memory'],
      [['--cpu-period', '10'], '--cpu-period'],
      [['-r', path.join(b.dir, 'missing.json')], '--resources'],
    ] as const) {
      const r = cli('update', ...args, 'u1');
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([expect.stringContaining(`${flag}: `)]);
    }
    expect(Number(read(mem))).toBe(40 * MiB);
    expect(cli('update', '--memory', '1m', 'nosuch').code).toBe(1);
  });
});
