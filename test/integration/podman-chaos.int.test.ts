import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLIENT, sandboxEntries } from '../helpers/cli';
import { describeIf } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { IMAGE, PodmanFixture, type PodmanResult } from '../helpers/podman';
import { seededRandom } from '../helpers/prng';
import { startDaemonKiller, type DaemonKiller } from '../helpers/daemon-killer';

/**
 * Issue 18's chaos loop under podman itself: podman drives the native client, whose
 * paddockd is SIGKILLed at random moments while `podman run --rm`, `run -d`, `stop` and
 * `rm` go on. podman does not retry a failed runtime call, so a call that paddockd's
 * death cuts short may fail, with paddock's one line in podman's error. What must hold:
 * - a container that ran reports its own exit status to podman, whatever became of the
 *   paddockd that started it (conmon waits for init, the child of the `create` call);
 * - every podman call ends within its bound;
 * - after `rm --all --force`, nothing of paddock's is left: no state, no paddock-init.
 */
describeIf(['root', 'busybox', 'podman'])('podman chaos: paddockd SIGKILLed under podman run --rm / run -d / stop / rm', () => {
  const fx = new PodmanFixture(CLIENT, 'podchaos', { PADDOCK_DAEMON_IDLE_MS: '1000' });
  const RUN = ['--uidmap', '0:100000:65536', '--gidmap', '0:100000:65536', '--network', 'none'];
  let killer: DaemonKiller | undefined;
  let marks = '';

  const stopKiller = async (): Promise<number> => {
    const k = killer;
    killer = undefined;
    return (await k?.stop()) ?? 0;
  };

  beforeAll(() => {
    fx.setup();
    // The containers say they ran by a file here (uid 100000 in their user namespace).
    marks = path.join(fx.dir, 'marks');
    fs.mkdirSync(marks, { mode: 0o777 });
    fs.chmodSync(marks, 0o777);
  });
  afterAll(async () => {
    await stopKiller();
    expect(fx.teardown()).toEqual({ mounts: [], cgroups: [], inits: [] });
  });

  test('a container that ran reports its exit status; every call is bounded; nothing is left', async () => {
    const seed = Number(process.env.PADDOCK_CHAOS_SEED ?? Date.now() % 100_000);
    // eslint-disable-next-line no-console
    console.log(`podman chaos seed ${seed} (PADDOCK_CHAOS_SEED replays it)`);
    const rnd = seededRandom(seed);
    // Beside podman: every 150-1500 ms, SIGKILL the paddockd that holds the root's lock then.
    killer = startDaemonKiller(path.join(fx.state, 'paddockd.lock'), seed, 150, 1500);

    const failures: string[] = [];
    /** A podman call that failed: paddock's one-line error must be what podman shows. */
    const failed = (what: string, r: PodmanResult) => {
      failures.push(`${what}: ${r.code} ${r.stderr.trim().split('\n').pop()}`);
      expect(r.code).not.toBeNull(); // ended within its bound, not killed by the timeout
    };
    let ran = 0;
    const rounds = 8;
    for (let i = 0; i < rounds; i++) {
      // run --rm: the status is podman's exit code.
      const want = 10 + i;
      const nap = (rnd() * 0.5).toFixed(2);
      const r = fx.run(['run', '--rm', ...RUN, '-v', `${marks}:/m`, IMAGE, 'sh', '-c', `touch /m/r${i}; sleep ${nap}; exit ${want}`]);
      if (fs.existsSync(path.join(marks, `r${i}`))) {
        ran++;
        // podman's error, if any, says which runtime call failed.
        expect({ round: i, code: r.code, stderr: r.code === want ? '' : r.stderr }).toEqual({ round: i, code: want, stderr: '' });
      } else {
        expect(r.code).not.toBe(0);
        failed(`run --rm r${i}`, r);
      }

      // run -d, then stop: the TERM trap's status, or SIGKILL's after the timeout.
      const name = `d${i}`;
      const d = fx.run(['run', '-d', '--name', name, ...RUN, '-v', `${marks}:/m`, IMAGE, 'sh', '-c', `trap "exit 3" TERM; touch /m/${name}; while :; do sleep 0.1; done`]);
      if (d.code === 0) {
        // Started: it says so within a bound (touch runs first).
        const deadline = Date.now() + 15_000;
        while (!fs.existsSync(path.join(marks, name)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
        expect(fs.existsSync(path.join(marks, name))).toBe(true);
        ran++;
        const stop = fx.run(['stop', '--time', '10', name]);
        if (stop.code === 0) {
          const st = fx.run(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name]);
          expect({ name, out: st.stdout }).toEqual({ name, out: 'exited 3\n' });
        } else {
          failed(`stop ${name}`, stop);
        }
      } else {
        failed(`run -d ${name}`, d);
      }
      // rm --force: whatever state the container is in; retried as a user would.
      let rm = fx.run(['rm', '--force', '--time', '0', name]);
      for (let k = 0; k < 5 && rm.code !== 0 && !/no such container/.test(rm.stderr); k++) rm = fx.run(['rm', '--force', '--time', '0', name]);
      if (rm.code !== 0 && !/no such container/.test(rm.stderr)) failed(`rm ${name}`, rm);
    }
    const kills = await stopKiller();
    // eslint-disable-next-line no-console
    console.log(`podman chaos: ${rounds} rounds, ${ran} containers ran, ${kills} paddockd killed, ${failures.length} calls failed${failures.length ? `:\n  ${failures.join('\n  ')}` : ''}`);
    // The loop ran against dying supervisors, and most containers still ran.
    expect(kills).toBeGreaterThan(0);
    expect(ran).toBeGreaterThan(rounds);

    // A user's clean-up, with nobody killing paddockd: everything goes.
    expect(fx.run(['rm', '--all', '--force', '--time', '0']).code).toBe(0);
    expect(fx.run(['ps', '--all', '--quiet']).stdout).toBe('');
    const left = sandboxEntries(fx.state);
    if (left.length > 0) {
      // What was left, for the report: its files, its state, paddockd's last words.
      const show = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').slice(-3000) : `${f}: none`);
      // eslint-disable-next-line no-console
      console.log(left.map((id) => `${id}: ${fs.readdirSync(path.join(fx.state, id)).join(' ')}\n${show(path.join(fx.state, id, 'state.json'))}`).join('\n') + `\n${show(path.join(fx.state, 'paddockd.log'))}`);
    }
    expect(left).toEqual([]);
    expect(paddockInitPids([fx.state]).filter((p) => (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') || '').includes(fx.state))).toEqual([]);
  }, 600_000);
});
