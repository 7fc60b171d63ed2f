import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { CLIENT, daemonPid, sandboxEntries, stopDaemon } from '../helpers/cli';
import { describeIf, testStateDir } from '../helpers/env';
import { cgroupDirs, mountPoints, newMounts, paddockInitPids } from '../helpers/leaks';
import { sandboxCgroupPath } from '../../actors/cgroups/sandbox-cgroup';
import { seededRandom } from '../helpers/prng';
import { startDaemonKiller, type DaemonKiller } from '../helpers/daemon-killer';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

interface Result {
  readonly code: number | null;
  readonly stderr: string;
}

/**
 * paddockd SIGKILLed at random moments while the native client runs create / start /
 * kill / delete loops (issue 18, "Chaos"): no call hangs past its bound, every failed
 * call is one line, a failed call is retried as a caller would, nothing leaks, and every
 * container's exit status reaches the process that waits for init: the test is the
 * subreaper (as conmon is), and init, the child of the `create` call, is reparented to it
 * whatever became of paddockd.
 */
describeIf(['root', 'busybox'])('paddockd chaos: SIGKILLed during create/start/kill/delete loops', () => {
  let root: string;
  let bundle: TestBundle;
  let killer: DaemonKiller | undefined;
  const daemons = new Set<number>();
  const call = (args: readonly string[]): Result => {
    const io = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cli-io-'));
    const err = fs.openSync(path.join(io, 'err'), 'w+');
    try {
      const r = spawnSync(CLIENT, ['--root', root, ...args], { stdio: ['ignore', 'ignore', err], timeout: 40_000, env: { ...process.env, PADDOCK_DAEMON_IDLE_MS: '1000' } });
      const pid = daemonPid(root);
      if (pid !== undefined) daemons.add(pid);
      if (r.error) throw r.error;
      return { code: r.status, stderr: fs.readFileSync(path.join(io, 'err'), 'utf8') };
    } finally {
      fs.closeSync(err);
      fs.rmSync(io, { recursive: true, force: true });
    }
  };
  /** A call retried after its failures, each of which must be one line (a caller reads it and tries again). */
  const trail: string[] = [];
  const until = (args: readonly string[], done: (r: Result) => boolean, what: string): Result => {
    // Bounded, but enough for a paddockd to outlive the killer's next shot now and then:
    // one starts in ~0.3-0.5 s on a loaded host, and the killer fires every 60-600 ms.
    for (let i = 0; i < 25; i++) {
      const r = call(args);
      trail.push(`${args.join(' ')} -> ${r.code} ${r.stderr.trim()}`);
      if (done(r)) return r;
      expect(r.stderr).toMatch(/^paddock: [^\n]+\n$/);
    }
    throw new Error(`${what}: no success after 25 calls:\n${trail.slice(-5).join('\n')}`);
  };
  /** `state`'s status, read through a file (the call's stdout). */
  const statusOf = (id: string): string | undefined => stateOf(id)?.status;
  const stateOf = (id: string): { status: string; pid: number } | undefined => {
    const out = path.join(os.tmpdir(), `paddock-chaos-state-${process.pid}`);
    const fd = fs.openSync(out, 'w+');
    try {
      const r = spawnSync(CLIENT, ['--root', root, 'state', id], { stdio: ['ignore', fd, 'ignore'], timeout: 40_000 });
      return r.status === 0 ? (JSON.parse(fs.readFileSync(out, 'utf8')) as { status: string; pid: number }) : undefined;
    } finally {
      fs.closeSync(fd);
      fs.rmSync(out, { force: true });
    }
  };
  /**
   * The wait status of our child `pid` once it is a zombie (field 52 of /proc/PID/stat,
   * the kernel's exit_code), without reaping it; undefined if it did not exit in time.
   */
  const zombieStatus = async (pid: number, timeoutMs: number): Promise<number | undefined> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') return Number(fields[fields.length - 1]);
      await new Promise((r) => setTimeout(r, 10));
    }
    return undefined;
  };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('pddchaos');
    bundle = makeBundle({ args: ['sleep', '60'] });
  });
  const stopKiller = async () => {
    const k = killer;
    killer = undefined;
    await k?.stop();
  };
  afterEach(async () => {
    await stopKiller();
    for (const id of sandboxEntries(root)) call(['delete', '--force', id]);
    for (const pid of daemons) stopDaemon(root, pid);
    daemons.clear();
    bundle.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('every exit status reaches the subreaper, every call ends in a bound, nothing is left', async () => {
    const seed = Number(process.env.PADDOCK_CHAOS_SEED ?? Date.now() % 100_000);
    // eslint-disable-next-line no-console
    console.log(`paddockd chaos seed ${seed} (PADDOCK_CHAOS_SEED replays it)`);
    const rnd = seededRandom(seed);
    const mountsBefore = mountPoints();
    fs.mkdirSync(root, { recursive: true });
    // The killer runs beside the calls (spawnSync blocks this process): every 60-600 ms
    // (PADDOCK_CHAOS_KILL_MS=MIN-MAX), SIGKILL whichever paddockd holds the root's lock then.
    const [minMs, maxMs] = (process.env.PADDOCK_CHAOS_KILL_MS ?? '60-600').split('-').map(Number) as [number, number];
    killer = startDaemonKiller(path.join(root, 'paddockd.lock'), seed, minMs, maxMs);
    const rounds = 10;
    let kills = 0;
    for (let i = 0; i < rounds; i++) {
      const id = `x${i}`;
      const pidFile = path.join(root, '..', `pid-${path.basename(root)}-${id}`);
      const before = daemons.size;
      // create: retried until the container exists (a create cut short is removed by the next attach, then made again).
      until(['create', '--bundle', bundle.dir, '--pid-file', pidFile, id], (r) => r.code === 0 || (/already exists/.test(r.stderr) && statusOf(id) === 'created'), `create ${id}`);
      // A create whose answer was lost wrote no pid file (as runc's, cut short): its caller asks state.
      const initPid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : (stateOf(id)?.pid ?? 0);
      trail.push(`init ${initPid} (${fs.existsSync(pidFile) ? 'pid file' : 'state'})`);
      // The cgroup check at the end looks for these names: they are the sandboxes' real ones.
      if (i === 0) expect(cgroupDirs().some((d) => d.endsWith(`/${sandboxCgroupPath(root, id)}`))).toBe(true);
      fs.rmSync(pidFile, { force: true });
      // A paddockd killed between writing the pid file's temp and renaming it leaves the
      // temp (as runc's own temp + rename does): the caller's folder, the caller's to clear.
      for (const f of fs.readdirSync(path.dirname(pidFile))) if (f.startsWith(`${path.basename(pidFile)}.tmp-`)) fs.rmSync(path.join(path.dirname(pidFile), f), { force: true });
      until(['start', id], (r) => r.code === 0 || statusOf(id) === 'running', `start ${id}`);
      // Sometimes a pause before the kill, so that paddockd dies at other moments too.
      if (rnd() < 0.5) await new Promise((r) => setTimeout(r, rnd() * 200));
      until(['kill', id, 'KILL'], (r) => r.code === 0 || statusOf(id) === 'stopped', `kill ${id}`);
      // What conmon gets: init, our child now, exits with the container's status (128+9).
      const status = await zombieStatus(initPid, 15_000);
      if (status !== 137 << 8) {
        // What happened, for the report: the calls of this round, paddockd's log, init's.
        const logs = [path.join(root, 'paddockd.log'), path.join(root, id, 'init.log')].map((f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').slice(-40).join('\n') : `${f}: none`));
        // eslint-disable-next-line no-console
        console.log(`round ${id}, init ${initPid}:\n${trail.join('\n')}\n${logs.join('\n---\n')}`);
      }
      expect({ id, status }).toEqual({ id, status: 137 << 8 });
      trail.length = 0;
      until(['delete', '--force', id], (r) => r.code === 0 || statusOf(id) === undefined, `delete ${id}`);
      expect(statusOf(id)).toBeUndefined();
      kills += daemons.size - before;
    }
    await stopKiller();
    // Settle: one last call through a paddockd nobody kills, then it goes.
    expect(call(['list', '-q']).code).toBe(0);
    expect(sandboxEntries(root)).toEqual([]);
    expect(paddockInitPids().filter((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(root))).toEqual([]);
    expect(newMounts(mountsBefore).filter((m) => m.startsWith(root))).toEqual([]);
    // No cgroup of this root's sandboxes in any hierarchy (a create cut short once left one behind).
    const ours = Array.from({ length: rounds }, (_, i) => `/${sandboxCgroupPath(root, `x${i}`)}`);
    expect(cgroupDirs().filter((d) => ours.some((c) => d.endsWith(c) || d.includes(`${c}/`)))).toEqual([]);
    // The loop really ran against dying supervisors (each new pid is one that replaced a killed one).
    // eslint-disable-next-line no-console
    console.log(`paddockd chaos: ${rounds} rounds, ${kills} paddockd replaced`);
    expect(kills).toBeGreaterThan(0);
  }, 600_000);
});
