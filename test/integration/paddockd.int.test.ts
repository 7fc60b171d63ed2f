import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { CLIENT, daemonPid, sandboxEntries, stopDaemon } from '../helpers/cli';
import { describeIf, quietLogger, testStateDir } from '../helpers/env';
import { createEngine } from '../../index';
import { paddockInitPids, parentPid } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

const REPO = path.resolve(__dirname, '..', '..');

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * The native client and its resident paddockd (issue 18, decision 0044), whatever mode
 * PADDOCK_TEST_CLI picks for the other CLI tests: the warm path, the process tree
 * conmon relies on, and the bad input of the issue (a stale socket, another user's
 * socket or peer, a daemon that answers garbage or hangs, a client killed mid-call, a
 * killed daemon, a daemon of another build).
 */
describeIf(['root', 'busybox'])('paddockd and the native client', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  const servers: net.Server[] = [];
  const conns: net.Socket[] = [];
  const closeServers = async () => {
    for (const c of conns.splice(0)) c.destroy();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  };
  const daemons = new Set<number>();
  const bundle = (args: string[]) => {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  };
  const call = (args: readonly string[], opts: { env?: NodeJS.ProcessEnv; client?: string; uid?: number } = {}): Result => {
    const io = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cli-io-'));
    const fds = [fs.openSync(path.join(io, 'out'), 'w+'), fs.openSync(path.join(io, 'err'), 'w+')] as const;
    const t0 = Date.now();
    try {
      const r = spawnSync(opts.client ?? CLIENT, ['--root', root, ...args], {
        stdio: ['ignore', fds[0], fds[1]],
        timeout: 40_000,
        env: { ...process.env, PADDOCK_DAEMON_IDLE_MS: '2000', ...opts.env },
        ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid, cwd: '/' } : {}),
      });
      const pid = daemonPid(root);
      if (pid !== undefined) daemons.add(pid);
      return { code: r.status, stdout: fs.readFileSync(path.join(io, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(io, 'err'), 'utf8'), ms: Date.now() - t0 };
    } finally {
      fs.closeSync(fds[0]);
      fs.closeSync(fds[1]);
      fs.rmSync(io, { recursive: true, force: true });
    }
  };
  const oneLine = (r: Pick<Result, 'code' | 'stderr'>, code: RegExp) => {
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^paddock: [^\n]+\n$/);
    expect(r.stderr).toMatch(code);
  };
  const sock = () => path.join(root, 'paddockd.sock');
  /** A stand-in for paddockd at the socket path, doing `onConn` with each connection. */
  const fakeDaemon = async (onConn: (s: net.Socket) => void): Promise<net.Server> => {
    fs.mkdirSync(root, { recursive: true });
    const srv = net.createServer((c) => {
      conns.push(c);
      onConn(c);
    });
    servers.push(srv);
    await new Promise<void>((resolve) => srv.listen(sock(), resolve));
    fs.chmodSync(sock(), 0o600);
    return srv;
  };
  const callAsync = (args: readonly string[], client = CLIENT) => {
    const child = spawn(client, ['--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PADDOCK_DAEMON_IDLE_MS: '2000' } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', (code, signal) => {
        clearTimeout(t);
        resolve({ code, signal, stderr });
      });
    });
    return { child, done };
  };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('pdd');
  });
  afterEach(async () => {
    await closeServers();
    for (const id of sandboxEntries(root)) call(['delete', '--force', id]);
    for (const pid of daemons) stopDaemon(root, pid);
    daemons.clear();
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('the first call starts paddockd, later calls reuse it; paddock-init is the child of the create call', async () => {
    const b = bundle(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    const first = call(['run', '--bundle', b, 'r1']);
    expect(first).toMatchObject({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    const pid = daemonPid(root);
    expect(pid).toBeDefined();
    expect(fs.statSync(sock()).mode & 0o777).toBe(0o600);
    expect(call(['run', '--bundle', b, 'r2'])).toMatchObject({ code: 7, stdout: 'out\n' });
    expect(daemonPid(root)).toBe(pid);

    // While the client waits for its `run`, paddock-init is its child (conmon's view).
    const long = callAsync(['run', '--bundle', bundle(['sleep', '2']), 'r3']);
    const deadline = Date.now() + 10_000;
    let inits: number[] = [];
    while (inits.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      inits = paddockInitPids().filter((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${root}/r3`));
    }
    expect(inits.map((p) => parentPid(p))).toEqual([long.child.pid]);
    expect(await long.done).toMatchObject({ code: 0 });
    expect(sandboxEntries(root)).toEqual([]);
  });

  test('a paddockd a call starts leaves that call\'s cgroups: the caller\'s cgroup (conmon\'s scope) can go while paddockd serves', () => {
    // The caller's own cgroup in every hierarchy, as podman gives conmon a scope.
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => / - cgroup2? /.test(l) && l.split(' ')[3] === '/')
      .map((l) => l.split(' ')[4] ?? '');
    const name = `paddock-caller-${process.pid}`;
    const made: string[] = [];
    try {
      for (const m of mounts) {
        const dir = path.join(m, name);
        try {
          fs.mkdirSync(dir);
        } catch (e) {
          // One hierarchy mounted twice: made through its other mount already.
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
          throw e;
        }
        made.push(dir);
        // A v1 cpuset cgroup takes no task until it has cpus and mems.
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          if (fs.existsSync(path.join(m, f))) fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(m, f), 'utf8').trim() || '0');
        }
      }
      expect(made.length).toBeGreaterThan(0);
      const enter = made.map((d) => `echo $$ > ${d}/cgroup.procs`).join('; ');
      const r = spawnSync('sh', ['-c', `${enter}; exec "$0" --root "$1" list`, CLIENT, root], { encoding: 'utf8', timeout: 40_000, env: { ...process.env, PADDOCK_DAEMON_IDLE_MS: '60000' } });
      expect({ code: r.status, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const pid = daemonPid(root);
      expect(pid).toBeDefined();
      daemons.add(pid!);
      // Every hierarchy: paddockd is at its root, not in the caller's cgroup.
      const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
      expect(lines.filter((l) => !l.endsWith(':/'))).toEqual([]);
      // So the caller's cgroup is empty once the call is gone, and can be removed.
      for (const d of made.splice(0)) fs.rmdirSync(d);
      expect(call(['list']).code).toBe(0);
      expect(daemonPid(root)).toBe(pid);
    } finally {
      // Failed above: paddockd may still be inside; it goes first, then the cgroups.
      if (made.length > 0) stopDaemon(root);
      for (const d of made) fs.rmdirSync(d);
    }
  });

  test('create / start / state / kill / delete through paddockd; the pid file names init, which exits with the container', async () => {
    const pidFile = path.join(root, '..', `pid-${path.basename(root)}`);
    expect(call(['create', '--bundle', bundle(['sleep', '60']), '--pid-file', pidFile, 'c1'])).toMatchObject({ code: 0, stderr: '' });
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    fs.rmSync(pidFile);
    // The client is gone: its child init was reparented to us, the subreaper (as to conmon).
    expect(parentPid(pid)).toBe(process.pid);
    expect(call(['start', 'c1']).code).toBe(0);
    expect(JSON.parse(call(['state', 'c1']).stdout)).toMatchObject({ id: 'c1', status: 'running', pid });
    expect(call(['kill', 'c1', 'KILL']).code).toBe(0);
    const deadline = Date.now() + 10_000;
    let st;
    do st = JSON.parse(call(['state', 'c1']).stdout);
    while (st.status !== 'stopped' && Date.now() < deadline);
    expect(st.status).toBe('stopped');
    expect(call(['delete', 'c1']).code).toBe(0);
    oneLine(call(['state', 'c1']), /does not exist/);
  });

  test('exec --tty in the foreground of a container paddockd holds: paddockd lets the sandbox go, the client relays the terminal, and paddockd takes it up again', () => {
    expect(call(['run', '--detach', '--bundle', bundle(['sleep', '60']), 'e1'])).toMatchObject({ code: 0, stderr: '' });
    const held = daemonPid(root);
    expect(held).toBeDefined();
    // Runs in the client's own process (it relays its terminal): it needs the sandbox's
    // lock, which paddockd held since the run (an ELOCKED after 10 s before the hand-over).
    const fg = call(['exec', '--tty', 'e1', 'sh', '-c', 'tty; exit 6']);
    expect(fg).toMatchObject({ code: 6, stderr: '' });
    expect(fg.stdout).toMatch(/^\/dev\/pts\/\d+\r\n$/);
    // The same paddockd serves the next calls on it, from the state dir.
    expect(JSON.parse(call(['state', 'e1']).stdout)).toMatchObject({ id: 'e1', status: 'running' });
    expect(call(['kill', 'e1', 'KILL']).code).toBe(0);
    expect(daemonPid(root)).toBe(held);
  });

  test('--no-daemon and PADDOCK_NO_DAEMON=1 run the call in-process: no paddockd', () => {
    const b = bundle(['true']);
    expect(call(['--no-daemon', 'run', '--bundle', b, 'n1'])).toMatchObject({ code: 0, stderr: '' });
    expect(call(['run', '--bundle', b, 'n2'], { env: { PADDOCK_NO_DAEMON: '1' } })).toMatchObject({ code: 0, stderr: '' });
    expect(fs.existsSync(sock())).toBe(false);
    expect(daemonPid(root)).toBeUndefined();
  });

  test('a sandbox paddockd holds: --no-daemon and a library engine get ELOCKED naming paddockd, and change nothing', async () => {
    expect(call(['run', '-d', '--bundle', bundle(['sleep', '60']), 'h1'])).toMatchObject({ code: 0, stderr: '' });
    const pid = daemonPid(root);
    const owned = new RegExp(`sandbox h1 is owned by process ${pid}, the paddockd serving ${root}: drive it with the paddock CLI, or stop that paddockd \\(SIGTERM\\) first`);
    const engine = await createEngine({ stateDir: root, reattach: false, lockTimeoutMs: 100, logger: quietLogger() });
    try {
      await expect(engine.attach('h1')).rejects.toMatchObject({ code: 'ELOCKED', message: expect.stringMatching(owned) });
    } finally {
      await engine.close();
    }
    // The in-process CLI waits its 10 s for the lock, as for any other owner.
    expect(call(['--no-daemon', 'kill', 'h1', 'KILL']).stderr).toMatch(owned);
    // Nothing changed: paddockd still holds it, running.
    expect(JSON.parse(call(['state', 'h1']).stdout)).toMatchObject({ status: 'running' });
    expect(daemonPid(root)).toBe(pid);
  });

  test('a stale socket file (nobody listens) and a stale lock: a new paddockd replaces them', async () => {
    // What a SIGKILLed daemon leaves: a socket file nobody listens on (a clean close would unlink it).
    fs.mkdirSync(root, { recursive: true });
    const script = `require('net').createServer().listen(${JSON.stringify(sock())}, () => process.kill(process.pid, 'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
    expect(fs.statSync(sock()).isSocket()).toBe(true);
    fs.writeFileSync(path.join(root, 'paddockd.lock'), '999999 1\n');
    expect(call(['list', '-q'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const pid = daemonPid(root);
    expect(pid).not.toBe(999999);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('paddockd.js');
  });

  test("a socket owned by another user is refused before connecting; another user's call is refused by paddockd", async () => {
    expect(call(['list', '-q']).code).toBe(0);
    fs.chownSync(sock(), 1000, 1000);
    oneLine(call(['list', '-q']), /belongs to uid 1000.*\(EPERM\)$/m);
    fs.chownSync(sock(), 0, 0);
    // Past the socket's mode (opened for the test), paddockd's SO_PEERCRED check. The
    // other user's client is a copy in a package-shaped folder it can reach, whose dist/
    // is ours (so its version is the daemon's), calling a root it can reach.
    fs.chmodSync(sock(), 0o666);
    for (let d = root; d !== '/'; d = path.dirname(d)) if ((fs.statSync(d).mode & 0o001) === 0) fs.chmodSync(d, fs.statSync(d).mode | 0o011);
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-pkg-'));
    try {
      fs.mkdirSync(path.join(pkg, 'native', 'build'), { recursive: true });
      fs.mkdirSync(path.join(pkg, 'dist', 'cli'), { recursive: true });
      // A copy, not a link to ours: a checkout in a closed folder (mktemp -d) is out of
      // that user's reach. Same size and mtime, so the client's version is the daemon's.
      const daemonJs = path.join(REPO, 'dist', 'cli', 'paddockd.js');
      const copy = path.join(pkg, 'dist', 'cli', 'paddockd.js');
      fs.copyFileSync(daemonJs, copy);
      fs.utimesSync(copy, fs.statSync(daemonJs).atime, fs.statSync(daemonJs).mtime);
      fs.copyFileSync(CLIENT, path.join(pkg, 'native', 'build', 'paddock'));
      for (const d of [pkg, path.join(pkg, 'native'), path.join(pkg, 'native', 'build'), path.join(pkg, 'dist'), path.join(pkg, 'dist', 'cli')]) fs.chmodSync(d, 0o755);
      oneLine(call(['list', '-q'], { uid: 1000, client: path.join(pkg, 'native', 'build', 'paddock') }), /serves uid 0, not 1000 \(EPERM\)$/m);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });

  test('a paddockd that dies after taking start / kill / delete: the client asks again, and "already done" is done; other verbs say the outcome is unknown', async () => {
    const status = (id = 'l1') => (JSON.parse(call(['state', id]).stdout || '{}') as { status?: string }).status;
    /** `args` through a stand-in that takes the call (H) and dies; the real paddockd, started again, answers the retry. */
    const lost = async (args: string[]) => {
      stopDaemon(root);
      const srv = await fakeDaemon((c) => {
        c.on('error', () => undefined);
        c.once('data', () => {
          c.end(Buffer.from([0x48, 0, 0, 0, 0]));
          // Node unlinks a unix socket's path on close: the client finds no paddockd, and starts one.
          srv.close();
        });
      });
      const r = await callAsync(args).done;
      const pid = daemonPid(root);
      if (pid !== undefined) daemons.add(pid);
      return r;
    };
    // create that the dead one did nothing of: made by the retry, pid file and all.
    const pidFile = path.join(root, '..', `pid-${path.basename(root)}-l1`);
    expect(await lost(['create', '--bundle', bundle(['sleep', '60']), '--pid-file', pidFile, 'l1'])).toMatchObject({ code: 0, stderr: '' });
    expect(status()).toBe('created');
    expect(Number(fs.readFileSync(pidFile, 'utf8'))).toBeGreaterThan(0);
    fs.rmSync(pidFile);
    // A sandbox of that name whose init is not the caller's child is another caller's: still refused.
    oneLine(await lost(['create', '--bundle', bundle(['sleep', '60']), 'l1']), /already exists/);
    expect(call(['start', 'l1']).code).toBe(0);
    // start of a running container: the dead one started it.
    expect(await lost(['start', 'l1'])).toMatchObject({ code: 0, stderr: '' });
    expect(status()).toBe('running');
    // Not asked again, a second start is still refused.
    oneLine(call(['start', 'l1']), /EINVALID_STATE/);
    // pause changes state that the next paddockd cannot tell was asked for: not asked again.
    const paused = await lost(['pause', 'l1']);
    expect(paused).toMatchObject({ code: 1, stderr: expect.stringMatching(/^paddock: paddockd for \S+ ended during the call; its outcome is unknown \(paddock state tells\) \(EDAEMON\)\n$/) });
    expect(status()).toBe('running');
    // kill of a running container is sent again; of a stopped one, it is done.
    expect(await lost(['kill', 'l1', 'KILL'])).toMatchObject({ code: 0, stderr: '' });
    const deadline = Date.now() + 10_000;
    while (status() !== 'stopped' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(status()).toBe('stopped');
    expect(await lost(['kill', 'l1', 'KILL'])).toMatchObject({ code: 0, stderr: '' });
    oneLine(call(['kill', 'l1', 'KILL']), /not running|stopped/);
    // delete: done by the retry, or found done.
    expect(await lost(['delete', 'l1'])).toMatchObject({ code: 0, stderr: '' });
    expect(sandboxEntries(root)).toEqual([]);
    expect(await lost(['delete', 'l1'])).toMatchObject({ code: 0, stderr: '' });
    oneLine(call(['delete', 'l1']), /ESANDBOX_NOT_FOUND|does not exist|no sandbox/);
  });

  test('a paddockd that answers garbage, or nothing: one line, bounded, never a hang', async () => {
    await fakeDaemon((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    });
    // Asynchronously: the stand-in answers from this process's event loop.
    const garbage = await callAsync(['list', '-q']).done;
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toMatch(/^paddock: [^\n]+not paddock's protocol \(EPROTOCOL\)\n$/);
    await closeServers();

    await fakeDaemon((s) => s.on('error', () => undefined));
    const t0 = Date.now();
    const silent = await callAsync(['state', 'x']).done;
    expect(silent.code).toBe(1);
    expect(silent.stderr).toMatch(/^paddock: [^\n]+did not answer within 5 s \(ETIMEOUT\)\n$/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  test('a client killed mid-call: paddockd finishes the call, answers the next ones, and the run cleans up after itself', async () => {
    const b = bundle(['sleep', '1']);
    expect(call(['list', '-q']).code).toBe(0);
    const pid = daemonPid(root);
    const victim = callAsync(['run', '--bundle', b, 'k1']);
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(path.join(root, 'k1', 'state.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    victim.child.kill('SIGKILL');
    expect((await victim.done).signal).toBe('SIGKILL');
    expect(call(['list', '-q'])).toMatchObject({ code: 0, stderr: '' });
    // The run goes on inside paddockd: the container exits and is deleted, as `run` does.
    const gone = Date.now() + 15_000;
    while (sandboxEntries(root).includes('k1') && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
    expect(sandboxEntries(root)).toEqual([]);
    expect(daemonPid(root)).toBe(pid);
  });

  test('a SIGKILLed paddockd loses nothing: the next call starts another, which attaches the running container', async () => {
    expect(call(['run', '-d', '--bundle', bundle(['sleep', '60']), 'd1']).code).toBe(0);
    const first = daemonPid(root) as number;
    process.kill(first, 'SIGKILL');
    while (fs.existsSync(`/proc/${first}/status`) && !/State:\s+Z/.test(fs.readFileSync(`/proc/${first}/status`, 'utf8'))) await new Promise((r) => setTimeout(r, 10));
    reapZombies();
    expect(JSON.parse(call(['state', 'd1']).stdout)).toMatchObject({ status: 'running' });
    expect(daemonPid(root)).not.toBe(first);
    expect(call(['kill', 'd1', 'KILL']).code).toBe(0);
    expect(call(['delete', '--force', 'd1']).code).toBe(0);
    expect(sandboxEntries(root)).toEqual([]);
  });

  test('a client of another build: the old paddockd drains and a new one takes the call', () => {
    // A package of our own whose paddockd.js can change: the version is its size and mtime.
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-pkg-'));
    try {
      fs.mkdirSync(path.join(pkg, 'native', 'build'), { recursive: true });
      fs.mkdirSync(path.join(pkg, 'dist', 'cli'), { recursive: true });
      fs.copyFileSync(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
      fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'));
      for (const f of ['libpaddock.so', 'paddock-init']) fs.symlinkSync(path.join(REPO, 'native', 'build', f), path.join(pkg, 'native', 'build', f));
      fs.copyFileSync(CLIENT, path.join(pkg, 'native', 'build', 'paddock'));
      for (const f of ['paddockd.js', 'paddock.js', 'paddock-cli.js']) fs.copyFileSync(path.join(REPO, 'dist', 'cli', f), path.join(pkg, 'dist', 'cli', f));
      const client = path.join(pkg, 'native', 'build', 'paddock');
      expect(call(['list', '-q'], { client }).code).toBe(0);
      const old = daemonPid(root) as number;
      const later = new Date(Date.now() + 5000);
      fs.utimesSync(path.join(pkg, 'dist', 'cli', 'paddockd.js'), later, later);
      expect(call(['list', '-q'], { client })).toMatchObject({ code: 0, stderr: '' });
      const now = daemonPid(root);
      expect(now).toBeDefined();
      expect(now).not.toBe(old);
      stopDaemon(root, now);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });
});
