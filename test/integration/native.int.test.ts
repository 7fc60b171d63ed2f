/**
 * libpaddock.so against the real kernel, as root: the launcher (clone3 + user
 * namespace maps + sealed memfd exec) with native/c/testbin/fake-init standing in for
 * paddock-init, the pidfd watcher, and the small syscalls.
 *
 * Needs: make -C native build/libpaddock.so build/testbin/fake-init
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Fd, NativeError, NativeFacade, WatchedExit } from '../../native/facade';
import { ALL_NAMESPACES, loadNative, parseWatchRecords } from '../../native/ffi';
import { testBinaryPath } from '../../native/paths';
import { detectLayout, SandboxCgroup } from '../../actors/cgroups/sandbox-cgroup';

const FAKE_INIT = testBinaryPath('fake-init');
const MAP = '0 100000 65536\n';
const NS = ['user', 'pid', 'net', 'uts', 'ipc', 'mnt', 'cgroup'] as const;

let native: NativeFacade;

// ---- exit channels ------------------------------------------------------------------

/** Reads one exit channel through libuv: its records by token, and its EOF. */
interface ChannelReader {
  readonly channel: Fd;
  readonly seen: Map<number, WatchedExit[]>;
  /** Total bytes read when the channel reached EOF (the watcher closed its end). */
  readonly eof: Promise<number>;
  waitExit(token: number, ms?: number): Promise<WatchedExit>;
  destroy(): void;
}

function openReader(channel: Fd = native.openWatchChannel()): ChannelReader {
  const sock = new net.Socket({ fd: channel, readable: true, writable: false });
  const seenHere = new Map<number, WatchedExit[]>();
  const waitersHere = new Map<number, (e: WatchedExit) => void>();
  let pending = Buffer.alloc(0);
  let total = 0;
  sock.on('data', (chunk: Buffer) => {
    total += chunk.length;
    pending = Buffer.concat([pending, chunk]);
    const whole = pending.length - (pending.length % 16);
    for (const e of parseWatchRecords(pending.subarray(0, whole))) {
      seenHere.set(e.token, [...(seenHere.get(e.token) ?? []), e]);
      waitersHere.get(e.token)?.(e);
    }
    pending = pending.subarray(whole);
  });
  const eof = new Promise<number>((resolve) => sock.on('end', () => resolve(total)));
  sock.on('error', () => undefined);
  return {
    channel,
    seen: seenHere,
    eof,
    waitExit(token, ms = 10000) {
      const have = seenHere.get(token)?.[0];
      if (have) return Promise.resolve(have);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waitersHere.delete(token);
          reject(new Error(`no exit record for token ${token} on channel ${channel} within ${ms} ms`));
        }, ms);
        waitersHere.set(token, (e) => {
          clearTimeout(timer);
          waitersHere.delete(token);
          resolve(e);
        });
      });
    },
    destroy: () => sock.destroy(),
  };
}

/** The file's main channel, read for the whole file. */
let main: ChannelReader;
let seen: Map<number, WatchedExit[]>;

function startReader(): void {
  main = openReader();
  seen = main.seen;
}

/** Watch on the main channel. */
function watch(pidfd: Fd): number {
  return native.watch(main.channel, pidfd);
}

function waitExit(token: number, ms = 10000): Promise<WatchedExit> {
  return main.waitExit(token, ms);
}

/**
 * A barrier on a channel: a fresh process exits and its record arrives. The watcher is
 * one thread over one level-triggered epoll set and writes each channel's records in
 * order, so any record still due for an earlier exit (a duplicate, a stray) has been
 * written by then: "nothing else arrived" is checked after this, not after a sleep.
 */
async function barrier(reader: ChannelReader = main): Promise<number> {
  const r = launch('exit:0');
  const token = native.watch(reader.channel, r.pidfd);
  await readAll(r.readyFd);
  await reader.waitExit(token);
  return token;
}

/** Polls until `get()` equals `want` (bounded), then asserts it: settling, not sleeping. */
async function settlesTo<T>(get: () => T, want: T, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (JSON.stringify(get()) !== JSON.stringify(want) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(get()).toEqual(want);
}

// ---- bookkeeping so that afterEach can clean up even after a failed test -----------

interface Tracked {
  pid: number;
  pidfd: Fd;
  readyFd?: Fd;
}
let tracked: Tracked[] = [];
let strayPids: number[] = [];
let dirs: string[] = [];

function sandboxDir(mode: string, userns = true): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-native-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'fake-init.mode'), `${mode}\n`, { mode: 0o644 });
  // uid 0 inside is 100000 outside: it needs to own the dir to write fake-init.out.
  if (userns) fs.chownSync(dir, 100000, 100000);
  return dir;
}

function launch(mode: string, flags = ALL_NAMESPACES) {
  const userns = (flags & 0x10000000) !== 0;
  const dir = sandboxDir(mode, userns);
  const r = native.launchInit({
    initPath: FAKE_INIT,
    sandboxDir: dir,
    cloneFlags: flags,
    uidMap: userns ? MAP : undefined,
    gidMap: userns ? MAP : undefined,
  });
  tracked.push({ pid: r.pid, pidfd: r.pidfd, readyFd: r.readyFd });
  return { ...r, dir };
}

/** Reads a fd to EOF through libuv; the socket owns (and closes) the fd. */
function readAll(fd: Fd): Promise<Buffer> {
  for (const t of tracked) if (t.readyFd === fd) t.readyFd = undefined;
  return new Promise((resolve, reject) => {
    const sock = new net.Socket({ fd, readable: true, writable: false });
    const parts: Buffer[] = [];
    sock.on('data', (c: Buffer) => parts.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(parts)));
  });
}

/** Minimal decoder for the ready report: {type, fields: Map<tag, Buffer>}. */
function decodeReport(buf: Buffer): { type: number; fields: Map<number, Buffer> } {
  expect(buf.length).toBeGreaterThanOrEqual(12);
  expect(buf.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x44, 1, 0]));
  const len = buf.readUInt32LE(8);
  expect(buf.length).toBe(12 + len);
  const fields = new Map<number, Buffer>();
  for (let off = 12; off < buf.length; ) {
    const tag = buf.readUInt16LE(off);
    const flen = buf.readUInt32LE(off + 2);
    fields.set(tag, buf.subarray(off + 6, off + 6 + flen));
    off += 6 + flen;
  }
  return { type: buf.readUInt16LE(4), fields };
}

function readOut(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(dir, 'fake-init.out'), 'utf8').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out[k] = v;
  }
  return out;
}

function hostNs(name: string): string {
  return String(fs.statSync(`/proc/self/ns/${name}`).ino);
}

function openFds(): Set<string> {
  return new Set(fs.readdirSync('/proc/self/fd'));
}

/**
 * The fds open now that were not open at `before`: what a test leaked. Compared as sets,
 * not counts: the whole suite runs in one jest process, and an fd an earlier file left
 * to close in the background (a child's pipe, a socket being torn down) may close
 * during the test, which a count would take for a leak hidden or a leak found.
 */
function fdsOpenedSince(before: Set<string>): string[] {
  return [...openFds()].filter((fd) => !before.has(fd));
}

/**
 * Our children, zombies included, that were not there when this file began: one
 * jest process runs every file, and a child an earlier file left is that file's
 * failure (test/helpers/child-guard-environment.js), not this one's.
 */
function children(): number[] {
  const me = process.pid;
  const kids: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === me && !childrenBefore.has(Number(ent))) kids.push(Number(ent));
    } catch {
      // raced with an exit
    }
  }
  return kids;
}

function expectNativeError(fn: () => unknown, step: string, errnoName: string): NativeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NativeError);
    const ne = e as NativeError;
    expect({ step: ne.step, errnoName: ne.errnoName }).toEqual({ step, errnoName });
    return ne;
  }
  throw new Error(`expected NativeError ${step}: ${errnoName}`);
}

let childrenBefore = new Set<number>();
beforeAll(() => {
  childrenBefore = new Set(children());
  if (!fs.existsSync(FAKE_INIT)) {
    throw new Error(`${FAKE_INIT} missing: make -C native build/libpaddock.so build/testbin/fake-init`);
  }
  native = loadNative();
  startReader();
});

afterEach(async () => {
  // Kill, reap (a fresh watch reaps an exited child at once) and close everything the
  // test started, whether it passed or not.
  const list = tracked;
  tracked = [];
  await Promise.all(
    list.map(async (t) => {
      try {
        native.pidfdSendSignal(t.pidfd, 9);
      } catch {
        // already gone
      }
      try {
        await waitExit(watch(t.pidfd), 5000);
      } catch {
        // nothing left to reap
      }
      native.closeFd(t.pidfd);
      if (t.readyFd !== undefined) native.closeFd(t.readyFd);
    }),
  );
  for (const pid of strayPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  strayPids = [];
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
  // Every test leaves no child behind, checked here rather than by a last test that
  // would depend on the order (and on every earlier test having cleaned up).
  await settlesTo(children, []);
});

afterAll(() => {
  native.closeWatchChannel(main.channel);
  main.destroy();
});

// ---- the launcher --------------------------------------------------------------------

test('fake-init runs as pid 1 and uid 0 in fresh namespaces and reports ready', async () => {
  const r = launch('exit:7');
  const token = watch(r.pidfd);
  const report = decodeReport(await readAll(r.readyFd));
  expect(report.type).toBe(0x8000);
  expect(report.fields.get(2)?.readInt32LE(0)).toBe(1); // PID 1 in its namespace

  const out = readOut(r.dir);
  expect(out).toMatchObject({ uid: '0', gid: '0', pid: '1', ppid: '0', fd3: 'open' });
  for (const ns of NS) {
    expect(out[`ns_${ns}`]).toMatch(/^\d+$/);
    expect(out[`ns_${ns}`]).not.toBe(hostNs(ns));
  }
  // Seen from the host, uid 0 inside is 100000.
  expect(fs.statSync(path.join(r.dir, 'fake-init.out')).uid).toBe(100000);

  expect(await waitExit(token)).toEqual({ token, reaped: true, exitCode: 7, signal: 0 });
});

test('the sandbox executes a sealed memfd copy, never the host binary', async () => {
  const r = launch('sleep');
  await readAll(r.readyFd);
  expect(fs.readlinkSync(`/proc/${r.pid}/exe`)).toMatch(/^\/memfd:paddock-init/);
  // CVE-2019-5736: the executable reachable from inside is not the host file, and it
  // cannot be opened for writing.
  expect(() => fs.openSync(`/proc/${r.pid}/exe`, 'r+')).toThrow(/ETXTBSY|EPERM|EACCES/);
  // Even idle, the supervisor's cached copy refuses writes: it is sealed.
  const cached = fs
    .readdirSync('/proc/self/fd')
    .find((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:paddock-init');
      } catch {
        return false;
      }
    });
  expect(cached).toBeDefined();
  native.pidfdSendSignal(r.pidfd, 9);
  const token = watch(r.pidfd);
  await waitExit(token);
  const rw = fs.openSync(`/proc/self/fd/${cached}`, 'r+');
  try {
    expect(() => fs.writeSync(rw, 'x', 0)).toThrow(/EPERM/);
    expect(() => fs.ftruncateSync(rw, 0)).toThrow(/EPERM/);
  } finally {
    fs.closeSync(rw);
  }
});

test('a launch without a user namespace keeps host uid 0', async () => {
  const r = launch('exit:0', ALL_NAMESPACES & ~0x10000000);
  const token = watch(r.pidfd);
  await readAll(r.readyFd);
  const out = readOut(r.dir);
  expect(out).toMatchObject({ uid: '0', pid: '1' });
  expect(out.ns_user).toBe(hostNs('user'));
  expect(out.ns_pid).not.toBe(hostNs('pid'));
  expect(await waitExit(token)).toMatchObject({ reaped: true, exitCode: 0 });
});

test('an ERROR ready report comes through and the exit is reaped', async () => {
  const r = launch('fail-ready');
  const token = watch(r.pidfd);
  const report = decodeReport(await readAll(r.readyFd));
  expect(report.type).toBe(0x8001);
  expect(report.fields.get(10)?.readUInt32LE(0)).toBe(3); // CODE=LAUNCH
  expect(report.fields.get(12)?.toString()).toBe('fake_step');
  expect(await waitExit(token)).toMatchObject({ reaped: true, exitCode: 1, signal: 0 });
});

describe('init born in its cgroup (LaunchInitRequest.cgroup)', () => {
  const layout = detectLayout();
  const made: SandboxCgroup[] = [];
  afterEach(async () => {
    // Inner hooks run first: kill the inits here (the outer afterEach reaps them), then
    // remove the cgroups once the kernel has taken the dead out of them.
    for (const t of tracked) {
      try {
        native.pidfdSendSignal(t.pidfd, 9);
      } catch {
        // already gone
      }
    }
    for (const cg of made.splice(0)) await cg.remove(5000);
  });

  function cgroup(): SandboxCgroup {
    const cg = new SandboxCgroup(layout, `paddock-native-test/${process.pid}-${made.length}`);
    made.push(cg);
    cg.create(undefined);
    return cg;
  }

  test('the child enters the v1 tasks files and is cloned into the cgroup2 directory: nothing left to move, no fd of them inside', async () => {
    const cg = cgroup();
    const dir = sandboxDir('sleep');
    const r = native.launchInit({ initPath: FAKE_INIT, sandboxDir: dir, cloneFlags: ALL_NAMESPACES, uidMap: MAP, gidMap: MAP, cgroup: cg.birthplace() });
    tracked.push({ pid: r.pid, pidfd: r.pidfd, readyFd: r.readyFd });
    await readAll(r.readyFd);
    expect(cg.paths.length).toBeGreaterThan(0);
    expect(cg.missing(fs.readFileSync(`/proc/${r.pid}/cgroup`, 'utf8'))).toEqual([]);
    // Written by nobody: a thread that moves itself leaves no trace but the move.
    const links = fs.readdirSync(`/proc/${r.pid}/fd`).map((f) => fs.readlinkSync(`/proc/${r.pid}/fd/${f}`));
    expect(links.filter((l) => l.includes('cgroup'))).toEqual([]);
  });

  test('a tasks file that does not open is skipped: the launch succeeds and place() moves init there', async () => {
    const cg = cgroup();
    const born = cg.birthplace();
    const dir = sandboxDir('sleep');
    const r = native.launchInit({ initPath: FAKE_INIT, sandboxDir: dir, cloneFlags: ALL_NAMESPACES, uidMap: MAP, gidMap: MAP, cgroup: { tasks: ['/nonexistent/tasks', ...born.tasks.slice(1)] } });
    tracked.push({ pid: r.pid, pidfd: r.pidfd, readyFd: r.readyFd });
    await readAll(r.readyFd);
    const missed = path.dirname(born.tasks[0] as string);
    expect(cg.missing(fs.readFileSync(`/proc/${r.pid}/cgroup`, 'utf8'))).toContain(missed);
    cg.place(r.pid);
    expect(cg.missing(fs.readFileSync(`/proc/${r.pid}/cgroup`, 'utf8'))).toEqual([]);
  });
});

test('stdio fds become init 0..2, /dev/null where not given', async () => {
  const dir = sandboxDir('exit:0');
  const fd = fs.openSync(path.join(dir, 'stdout'), 'w');
  try {
    const r = native.launchInit({
      initPath: FAKE_INIT,
      sandboxDir: dir,
      cloneFlags: ALL_NAMESPACES,
      uidMap: MAP,
      gidMap: MAP,
      stdio: [undefined, fd as Fd, fd as Fd],
    });
    tracked.push({ pid: r.pid, pidfd: r.pidfd, readyFd: r.readyFd });
    const token = watch(r.pidfd);
    await readAll(r.readyFd);
    const id = (st: fs.Stats) => `${st.dev}:${st.ino}`;
    const out = readOut(dir);
    expect(out.stdio0).toBe(id(fs.statSync('/dev/null')));
    expect(out.stdio1).toBe(id(fs.fstatSync(fd)));
    expect(out.stdio2).toBe(id(fs.fstatSync(fd)));
    await waitExit(token);
  } finally {
    fs.closeSync(fd);
  }
});

// ---- launcher failures -----------------------------------------------------------------

test('a missing init binary fails with open_init: ENOENT naming the path', () => {
  const e = expectNativeError(
    () =>
      native.launchInit({
        initPath: '/nonexistent/paddock-init',
        sandboxDir: '/tmp',
        cloneFlags: ALL_NAMESPACES,
        uidMap: MAP,
        gidMap: MAP,
      }),
    'open_init',
    'ENOENT',
  );
  expect(e.errno).toBe(2);
  expect(e.message).toContain('/nonexistent/paddock-init');
});

test('a bad uid map fails with uid_map: EINVAL and leaves no child', () => {
  const before = children().length;
  expectNativeError(
    () =>
      native.launchInit({
        initPath: FAKE_INIT,
        sandboxDir: '/tmp',
        cloneFlags: ALL_NAMESPACES,
        uidMap: 'not a map\n',
        gidMap: MAP,
      }),
    'uid_map',
    'EINVAL',
  );
  expectNativeError(
    () =>
      native.launchInit({
        initPath: FAKE_INIT,
        sandboxDir: '/tmp',
        cloneFlags: ALL_NAMESPACES,
        uidMap: MAP,
        gidMap: '0 100000 1\n0 200000 1\n', // overlapping ranges
      }),
    'gid_map',
    'EINVAL',
  );
  expect(children().length).toBe(before);
});

test('a binary the kernel cannot execute fails in the child with execveat: ENOEXEC', () => {
  const dir = sandboxDir('exit:0');
  const junk = path.join(dir, 'not-elf');
  fs.writeFileSync(junk, 'definitely not an ELF file\n', { mode: 0o755 });
  const before = children().length;
  expectNativeError(
    () =>
      native.launchInit({
        initPath: junk,
        sandboxDir: dir,
        cloneFlags: ALL_NAMESPACES,
        uidMap: MAP,
        gidMap: MAP,
      }),
    'execveat',
    'ENOEXEC',
  );
  expect(children().length).toBe(before);
});

test('a user namespace without maps fails in the child at setgroups', () => {
  expectNativeError(
    () => native.launchInit({ initPath: FAKE_INIT, sandboxDir: '/tmp', cloneFlags: ALL_NAMESPACES }),
    'setgroups',
    'EPERM',
  );
});

test('a closed stdio fd fails before cloning', () => {
  expectNativeError(
    () =>
      native.launchInit({
        initPath: FAKE_INIT,
        sandboxDir: '/tmp',
        cloneFlags: 0,
        stdio: [987654, undefined, undefined],
      }),
    'stdio',
    'EBADF',
  );
});

// ---- the watcher ----------------------------------------------------------------------

test('SIGKILL through pidfd_send_signal is reported as signal 9', async () => {
  const r = launch('sleep');
  await readAll(r.readyFd);
  const token = watch(r.pidfd);
  native.pidfdSendSignal(r.pidfd, 9);
  expect(await waitExit(token)).toEqual({ token, reaped: true, exitCode: -1, signal: 9 });
  expectNativeError(() => native.pidfdSendSignal(r.pidfd, 9), 'pidfd_send_signal', 'ESRCH');
});

test('50 concurrent launches each get exactly one record with their own status', async () => {
  const runs = Array.from({ length: 50 }, (_, i) => {
    const r = launch(`exit:${i + 10}`);
    const token = watch(r.pidfd);
    return { ...r, token, code: i + 10 };
  });
  const reports = await Promise.all(runs.map((r) => readAll(r.readyFd)));
  expect(reports.every((b) => decodeReport(b).type === 0x8000)).toBe(true);
  const exits = await Promise.all(runs.map((r) => waitExit(r.token)));
  exits.forEach((e, i) => expect(e).toEqual({ token: runs[i]!.token, reaped: true, exitCode: runs[i]!.code, signal: 0 }));
  await barrier(); // a duplicate would have been written before the barrier's record
  for (const r of runs) expect(seen.get(r.token)).toHaveLength(1);
  expect(new Set(runs.map((r) => r.pid)).size).toBe(50);
});

test('watching one pidfd twice gives two tokens, each reported once', async () => {
  const r = launch('sleep');
  const a = watch(r.pidfd);
  const b = watch(r.pidfd);
  expect(a).not.toBe(b);
  native.pidfdSendSignal(r.pidfd, 9);
  const exits = await Promise.all([waitExit(a), waitExit(b)]);
  // One of the two reaps; the other finds the child gone (ECHILD): reaped false.
  expect(exits.filter((e) => e.reaped)).toEqual([{ token: expect.any(Number), reaped: true, exitCode: -1, signal: 9 }]);
  await barrier();
  expect(seen.get(a)).toHaveLength(1);
  expect(seen.get(b)).toHaveLength(1);
});

test('watch refuses an fd that is not a pidfd, and a channel that is not open', () => {
  expectNativeError(() => native.watch(main.channel, 0 as Fd), 'watch', 'EBADF');
  const r = launch('sleep');
  expectNativeError(() => native.watch(987654 as Fd, r.pidfd), 'watch', 'ENOENT');
  expectNativeError(() => native.watch(r.pidfd, r.pidfd), 'watch', 'ENOENT'); // a pidfd is no channel
  expectNativeError(() => native.closeWatchChannel(987654 as Fd), 'watch_close', 'ENOENT');
});

test('unwatch suppresses the record', async () => {
  const r = launch('sleep');
  await readAll(r.readyFd);
  const token = watch(r.pidfd);
  native.unwatch(token);
  native.unwatch(token); // idempotent
  // A second watch on the same pidfd is handled by the same wakeup as the first: once
  // its record is here, the unwatched token's would be too.
  const witness = watch(r.pidfd);
  native.pidfdSendSignal(r.pidfd, 9);
  expect(await waitExit(witness)).toMatchObject({ token: witness, signal: 9 });
  expect(seen.has(token)).toBe(false);
});

test('a process that is not our child is reported with reaped: false', async () => {
  // sh backgrounds sleep and exits: sleep's parent becomes some reaper, not us.
  const pid = Number(
    execFileSync('sh', ['-c', 'sleep 30 >/dev/null 2>&1 </dev/null & echo $!'], { encoding: 'utf8' }).trim(),
  );
  strayPids.push(pid);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])).not.toBe(process.pid);

  const pidfd = native.pidfdOpen(pid);
  try {
    const token = watch(pidfd);
    native.pidfdSendSignal(pidfd, 9);
    expect(await waitExit(token)).toEqual({ token, reaped: false, exitCode: -1, signal: 0 });
  } finally {
    native.closeFd(pidfd);
  }
});

test('an exit before watch() is still reported', async () => {
  const r = launch('exit:5');
  await readAll(r.readyFd);
  // Watch only once it has exited and is a zombie (state Z in /proc/<pid>/stat).
  await settlesTo(() => /\) Z /.test(fs.readFileSync(`/proc/${r.pid}/stat`, 'utf8')), true, 10_000);
  const token = watch(r.pidfd);
  expect(await waitExit(token)).toEqual({ token, reaped: true, exitCode: 5, signal: 0 });
});

// ---- exit channels ---------------------------------------------------------------------

test('two channels open at once each get only their own exits', async () => {
  const other = openReader();
  try {
    expect(other.channel).not.toBe(main.channel);
    const r1 = launch('exit:21');
    const r2 = launch('exit:22');
    const t1 = watch(r1.pidfd);
    const t2 = native.watch(other.channel, r2.pidfd);
    expect(await waitExit(t1)).toEqual({ token: t1, reaped: true, exitCode: 21, signal: 0 });
    expect(await other.waitExit(t2)).toEqual({ token: t2, reaped: true, exitCode: 22, signal: 0 });
    await barrier();
    const late = await barrier(other);
    expect(seen.has(t2)).toBe(false);
    expect([...other.seen.keys()]).toEqual([t2, late]);
  } finally {
    native.closeWatchChannel(other.channel);
    other.destroy();
  }
});

test('tokens are unique across channels, never 0', async () => {
  const others = [openReader(), openReader()];
  const r = launch('sleep');
  try {
    const tokens: number[] = [];
    for (let i = 0; i < 10; i++) {
      for (const ch of [main.channel, ...others.map((o) => o.channel)]) tokens.push(native.watch(ch, r.pidfd));
    }
    expect(new Set(tokens).size).toBe(tokens.length);
    for (const t of tokens) expect(t).toBeGreaterThan(0);
    for (const t of tokens) native.unwatch(t);
  } finally {
    for (const o of others) {
      native.closeWatchChannel(o.channel);
      o.destroy();
    }
  }
});

test('closeWatchChannel stops records and closes the watcher end: the reader hits EOF', async () => {
  const other = openReader();
  const r = launch('sleep');
  await readAll(r.readyFd);
  const token = native.watch(other.channel, r.pidfd);
  native.closeWatchChannel(other.channel);
  // Forgotten at once: a second close and a watch on it are refused.
  expectNativeError(() => native.closeWatchChannel(other.channel), 'watch_close', 'ENOENT');
  expectNativeError(() => native.watch(other.channel, r.pidfd), 'watch', 'ENOENT');
  native.pidfdSendSignal(r.pidfd, 9);
  expect(await other.eof).toBe(0); // EOF, and no record ever written
  expect(other.seen.size).toBe(0);
  other.destroy();
  // The token was unwatched with the channel: nothing left to unwatch, no error.
  native.unwatch(token);
  // Still a zombie (nobody reaped it): the main channel's watch reaps it now, and is
  // the barrier after which a stray record for the closed channel's token would show.
  expect(await waitExit(watch(r.pidfd))).toMatchObject({ reaped: true, signal: 9 });
  expect(seen.has(token)).toBe(false);
});

test('many watches across four channels: every exit on its own channel, once', async () => {
  const others = [openReader(), openReader(), openReader()];
  const readers = [main, ...others];
  try {
    const runs = Array.from({ length: 40 }, (_, i) => {
      const r = launch(`exit:${i + 30}`);
      const reader = readers[i % readers.length]!;
      return { ...r, reader, token: native.watch(reader.channel, r.pidfd), code: i + 30 };
    });
    await Promise.all(runs.map((r) => readAll(r.readyFd)));
    const exits = await Promise.all(runs.map((r) => r.reader.waitExit(r.token)));
    exits.forEach((e, i) => expect(e).toEqual({ token: runs[i]!.token, reaped: true, exitCode: runs[i]!.code, signal: 0 }));
    for (const rd of readers) await barrier(rd);
    for (const rd of readers) {
      const mine = runs.filter((r) => r.reader === rd).map((r) => r.token).sort((a, b) => a - b);
      const got = runs.map((r) => r.token).filter((t) => rd.seen.has(t)).sort((a, b) => a - b);
      expect(got).toEqual(mine);
      for (const t of mine) expect(rd.seen.get(t)).toHaveLength(1);
    }
  } finally {
    for (const o of others) {
      native.closeWatchChannel(o.channel);
      o.destroy();
    }
  }
});

test('opening and closing channels leaks no fds', async () => {
  // Warm up, so this test does not depend on which tests ran before it.
  native.closeFd(((ch) => (native.closeWatchChannel(ch), ch))(native.openWatchChannel()));
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    const ch = native.openWatchChannel();
    native.closeWatchChannel(ch);
    native.closeFd(ch);
  }
  // With watches still on them, too: the watcher's dups go with the channel.
  const r = launch('sleep');
  const withWatches = native.openWatchChannel();
  for (let i = 0; i < 5; i++) native.watch(withWatches, r.pidfd);
  native.closeWatchChannel(withWatches);
  native.closeFd(withWatches);
  tracked = tracked.filter((t) => t.pidfd !== r.pidfd);
  native.pidfdSendSignal(r.pidfd, 9);
  await waitExit(watch(r.pidfd));
  native.closeFd(r.pidfd);
  await readAll(r.readyFd);
  await settlesTo(() => fdsOpenedSince(before), []);
});

// ---- small syscalls -------------------------------------------------------------------

test('pidfdOpen of a pid that does not exist fails with ESRCH', () => {
  expectNativeError(() => native.pidfdOpen(4194303), 'pidfd_open', 'ESRCH');
});

test('closeFd of a closed fd fails with EBADF', () => {
  expectNativeError(() => native.closeFd(987654 as Fd), 'close', 'EBADF');
});

test('mkfifo creates a FIFO with the exact mode, EEXIST the second time', () => {
  const dir = sandboxDir('exit:0', false);
  const p = path.join(dir, 'stdin');
  native.mkfifo(p, 0o620);
  const st = fs.statSync(p);
  expect(st.isFIFO()).toBe(true);
  expect(st.mode & 0o7777).toBe(0o620);
  expectNativeError(() => native.mkfifo(p, 0o600), 'mkfifo', 'EEXIST');
});

test('replaceFile puts the new file in place (first write and later ones), keeps the inode of the new file and leaves the old content at tmp', () => {
  const dir = sandboxDir('exit:0', false);
  const target = path.join(dir, 'state.json');
  const tmp = `${target}.tmp`;
  fs.writeFileSync(tmp, 'one');
  native.replaceFile(tmp, target); // no target yet: a plain rename
  expect(fs.readFileSync(target, 'utf8')).toBe('one');
  expect(fs.existsSync(tmp)).toBe(false);
  fs.writeFileSync(tmp, 'two');
  const ino = fs.statSync(tmp).ino;
  native.replaceFile(tmp, target); // exchanged: the old file is now tmp, for the next write
  expect(fs.readFileSync(target, 'utf8')).toBe('two');
  expect(fs.statSync(target).ino).toBe(ino);
  expect(fs.readFileSync(tmp, 'utf8')).toBe('one');
  expect(fs.readdirSync(dir).filter((f) => f.startsWith('state.json')).sort()).toEqual(['state.json', 'state.json.tmp']);
  fs.rmSync(tmp);
  expectNativeError(() => native.replaceFile(path.join(dir, 'missing'), target), 'replace_file', 'ENOENT');
  expect(fs.readFileSync(target, 'utf8')).toBe('two');
});

test('kvmProbe answers either way without throwing', () => {
  const k = native.kvmProbe();
  if (fs.existsSync('/dev/kvm')) {
    expect(k).toMatchObject({ available: true, apiVersion: 12 });
  } else {
    expect(k.available).toBe(false);
    expect(k.reason).toMatch(/^open_kvm: ENOENT/);
  }
});

// ---- hygiene ----------------------------------------------------------------------------

test('launches, failures and exits leak no fds', async () => {
  // Warm up: the init image cache and libuv state are allocated once.
  const w = launch('exit:0');
  const wt = watch(w.pidfd);
  await readAll(w.readyFd);
  await waitExit(wt);

  const before = openFds();
  for (let i = 0; i < 10; i++) {
    const r = launch('exit:0');
    const token = watch(r.pidfd);
    await readAll(r.readyFd);
    await waitExit(token);
    tracked = tracked.filter((t) => t.pidfd !== r.pidfd);
    native.closeFd(r.pidfd);
  }
  for (const uidMap of ['bad', MAP]) {
    try {
      native.launchInit({ initPath: FAKE_INIT, sandboxDir: '/tmp', cloneFlags: ALL_NAMESPACES, uidMap, gidMap: 'bad' });
    } catch {
      // expected
    }
  }
  try {
    native.launchInit({ initPath: '/nonexistent', sandboxDir: '/tmp', cloneFlags: 0 });
  } catch {
    // expected
  }
  await settlesTo(() => fdsOpenedSince(before), []);
});

test('no process is left behind: exits, kills, failed launches', async () => {
  // Its own work, not the earlier tests' (afterEach checks after every test as well).
  const ok = launch('exit:0');
  const killed = launch('sleep');
  const tokens = [watch(ok.pidfd), watch(killed.pidfd)];
  await Promise.all([readAll(ok.readyFd), readAll(killed.readyFd)]);
  native.pidfdSendSignal(killed.pidfd, 9);
  await Promise.all(tokens.map((t) => waitExit(t)));
  expect(() => native.launchInit({ initPath: FAKE_INIT, sandboxDir: '/tmp', cloneFlags: ALL_NAMESPACES, uidMap: 'bad', gidMap: 'bad' })).toThrow(NativeError);
  await settlesTo(children, []);
});
