import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { cliCommand, runCli, sandboxEntries } from '../helpers/cli';
import { describeIf, poll, testStateDir } from '../helpers/env';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/**
 * CLI behaviour that had no test of its own (issue 19): `kill --all`, `events`
 * streaming with `--interval`, and `ps`'s table.
 */
describeIf(['root', 'busybox'])('paddock CLI: kill --all, events, ps table', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const bundle = (args: string[]) => {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  };
  const pids = (id: string) => JSON.parse(cli('ps', '--format', 'json', id).stdout || '[]') as number[];

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cliv');
  });
  afterEach(() => {
    for (const id of sandboxEntries(root)) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('kill --all signals the execs too; the root that ignores the signal keeps running', async () => {
    // `trap '' TERM` is inherited through exec: the root ignores SIGTERM, a fresh exec does not.
    expect(cli('run', '-d', '--bundle', bundle(['sh', '-c', "trap '' TERM; exec sleep 600"]), 'ka').code).toBe(0);
    const [rootPid] = pids('ka');
    expect(cli('exec', '-d', 'ka', 'sleep', '600').code).toBe(0);
    const both = await poll(() => (pids('ka').length === 2 ? pids('ka') : undefined), 10_000, 'the exec in ps');
    const execPid = both.find((p) => p !== rootPid) as number;
    expect(cli('kill', '--all', 'ka', 'TERM')).toMatchObject({ code: 0, stderr: '' });
    await poll(() => (fs.existsSync(`/proc/${execPid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${execPid}/status`, 'utf8')) ? undefined : true), 10_000, 'the exec gone');
    expect(pids('ka')).toEqual([rootPid]);
    expect(JSON.parse(cli('state', 'ka').stdout)).toMatchObject({ status: 'running' });
    // Without --all only the root is signalled: KILL ends it (and with it the sandbox).
    expect(cli('kill', 'ka', 'KILL').code).toBe(0);
    await poll(() => (JSON.parse(cli('state', 'ka').stdout).status === 'stopped' ? true : undefined), 10_000, 'stopped');
  });

  test('ps prints a table: a header, then host pid, parent, kind and command per process', async () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '600']), 'pt').code).toBe(0);
    expect(cli('exec', '-d', 'pt', 'sleep', '601').code).toBe(0);
    await poll(() => (pids('pt').length === 2 ? true : undefined), 10_000, 'the exec in ps');
    const r = cli('ps', 'pt');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header).toBe(`${'PID'.padEnd(12)}${'PPID'.padEnd(12)}${'KIND'.padEnd(12)}CMD`);
    const parsed = rows.map((l) => /^(\d+) +(\d+) +(container|exec|descendant) +(.+)$/.exec(l)?.slice(1));
    expect(parsed.every((x) => x !== undefined)).toBe(true);
    expect(parsed.map((x) => Number(x![0])).sort()).toEqual(pids('pt').sort());
    // CMD is the process's name (comm), as runc's table shows it.
    expect(parsed.map((x) => [x![2], x![3]]).sort()).toEqual([['container', 'sleep'], ['exec', 'sleep']]);
    for (const x of parsed) expect(Number(x![1])).toBeGreaterThan(0);
    expect(cli('ps', '--format', 'yaml', 'pt')).toMatchObject({ code: 1, stderr: expect.stringContaining('invalid format option yaml') });
  });

  test('events streams a stats line per --interval until the container stops, then exits 0', async () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '600']), 'ev').code).toBe(0);
    const interval = 300;
    const started = Date.now();
    const ec = cliCommand(['--root', root, 'events', '--interval', `${interval}ms`, 'ev']);
    const child = spawn(ec.file, ec.args, { stdio: ['ignore', 'pipe', 'pipe'], env: ec.env });
    const arrivals: { at: number; line: string }[] = [];
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        arrivals.push({ at: Date.now() - started, line: buf.slice(0, i) });
        buf = buf.slice(i + 1);
      }
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await poll(() => (arrivals.length >= 3 ? true : undefined), 20_000, 'three stats lines');
      for (const a of arrivals) expect(JSON.parse(a.line)).toMatchObject({ type: 'stats', id: 'ev', data: { pids: { current: expect.any(Number) } } });
      // Line k comes after k-1 waits of the interval since the process started (a lower
      // bound: a slow machine only makes it later).
      arrivals.slice(0, 3).forEach((a, k) => expect(a.at).toBeGreaterThanOrEqual(k * interval));
      expect(cli('kill', 'ev', 'KILL').code).toBe(0);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('still running'), 20_000)))]);
      clearTimeout(timer);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      child.kill('SIGKILL');
    }
    // --stats: one line and exit; a bad interval is a usage error.
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '600']), 'ev2').code).toBe(0);
    const one = cli('events', '--stats', 'ev2');
    expect(one.code).toBe(0);
    expect(one.stdout.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ type: 'stats', id: 'ev2' })]);
    expect(cli('events', '--interval', 'soon', 'ev2')).toMatchObject({ code: 1, stderr: expect.stringContaining('invalid --interval soon') });
    expect(cli('events', '--interval', '0', 'ev2')).toMatchObject({ code: 1, stderr: expect.stringContaining('--interval must be positive') });
  });
});
