import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { keyValues, readRuncStats } from '../../../actors/observe/runc-stats';
import { readOomKills } from '../../../actors/observe/oom';

/** runc-shaped stats from cgroup files, v1 and v2, on temp trees (the v2 path is not this host's). */
describe('readRuncStats', () => {
  let dir: string;
  const write = (sub: string, files: Record<string, string>) => {
    const d = path.join(dir, sub);
    fs.mkdirSync(d, { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
    return d;
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-stats-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('v2: cpu.stat in µs → ns, memory.max "max" → 0, io.stat per device, swap as memory + swap', () => {
    const u = write('unified', {
      'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 7\n',
      'memory.current': '4096\n',
      'memory.max': 'max\n',
      'memory.peak': '8192\n',
      'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n',
      'memory.stat': 'anon 1024\nfile 2048\n',
      'memory.swap.current': '100\n',
      'memory.swap.max': '0\n',
      'pids.current': '3\n',
      'pids.max': '50\n',
      'io.stat': '8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n',
    });
    const s = readRuncStats({ v2: true, unified: u });
    expect(s.cpu).toEqual({ usage: { total: 1_500_000, kernel: 500_000, user: 1_000_000 }, throttling: { periods: 10, throttledPeriods: 2, throttledTime: 7000 } });
    expect(s.memory).toMatchObject({ cache: 2048, usage: { limit: 0, usage: 4096, max: 8192, failcnt: 3 }, swap: { limit: 0, usage: 4196 }, raw: { anon: 1024, file: 2048 } });
    expect(s.pids).toEqual({ current: 3, limit: 50 });
    expect(s.blkio.ioServiceBytesRecursive).toEqual([
      { major: 8, minor: 0, op: 'Read', value: 10 },
      { major: 8, minor: 0, op: 'Write', value: 20 },
    ]);
    expect(readOomKills(path.join(u, 'memory.events'))).toBe(1);
  });

  test('v1: per-cpu figures, cpuacct.stat ticks → ns, memsw as swap, a missing controller leaves runc\'s empty value', () => {
    const memory = write('memory', {
      'memory.usage_in_bytes': '4096\n',
      'memory.limit_in_bytes': '67108864\n',
      'memory.max_usage_in_bytes': '9000\n',
      'memory.failcnt': '4\n',
      'memory.memsw.usage_in_bytes': '5000\n',
      'memory.memsw.limit_in_bytes': '67108864\n',
      'memory.stat': 'cache 123\nrss 456\n',
      'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    });
    const cpuacct = write('cpuacct', { 'cpuacct.usage': '300\n', 'cpuacct.usage_percpu': '100 200 \n', 'cpuacct.stat': 'user 3\nsystem 1\n' });
    const cpu = write('cpu', { 'cpu.stat': 'nr_periods 5\nnr_throttled 1\nthrottled_time 99\n' });
    const s = readRuncStats({ v2: false, memory, cpuacct, cpu });
    expect(s.cpu.usage).toEqual({ total: 300, percpu: [100, 200], kernel: 10_000_000, user: 30_000_000 });
    expect(s.cpu.throttling).toEqual({ periods: 5, throttledPeriods: 1, throttledTime: 99 });
    expect(s.memory).toMatchObject({ cache: 123, usage: { limit: 67108864, usage: 4096, max: 9000, failcnt: 4 }, swap: { usage: 5000, limit: 67108864 } });
    expect(s.pids).toEqual({ current: 0, limit: 0 });
    expect(s.blkio).toEqual({});
    expect(s.hugetlb).toEqual({});
    expect(readOomKills(path.join(memory, 'memory.oom_control'))).toBe(2);
    expect(readOomKills(path.join(dir, 'gone', 'memory.oom_control'))).toBeUndefined();
  });

  test('keyValues skips lines that are not "key number"', () => {
    expect(keyValues('a 1\nb x\n\nc 3 4\n')).toEqual({ a: 1, c: 3 });
  });
});
