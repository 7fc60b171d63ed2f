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

const FAKE_INIT = testBinaryPath('fake-init');
const MAP = '0 100000 65536\n';
const NS = ['user', 'pid', 'net', 'uts', 'ipc', 'mnt', 'cgroup'] as const;

let native: NativeFacade;

// ---- the watcher pipe, read once for the whole file --------------------------------

let watcherSock: net.Socket;
let pendingBytes = Buffer.alloc(0);
const seen = new Map<number, WatchedExit[]>();
const waiters = new Map<number, (e: WatchedExit) => void>();
let nextToken = 1;

function startReader(): void {
  const fd = native.watcherFd();
  expect(native.watcherFd()).toBe(fd); // idempotent
  watcherSock = new net.Socket({ fd, readable: true, writable: false });
  watcherSock.on('data', (chunk: Buffer) => {
    pendingBytes = Buffer.concat([pendingBytes, chunk]);
    const whole = pendingBytes.length - (pendingBytes.length % 16);
    for (const e of parseWatchRecords(pendingBytes.subarray(0, whole))) {
      seen.set(e.token, [...(seen.get(e.token) ?? []), e]);
      waiters.get(e.token)?.(e);
    }
    pendingBytes = pendingBytes.subarray(whole);
  });
}

function waitExit(token: number, ms = 10000): Promise<WatchedExit> {
  const have = seen.get(token)?.[0];
  if (have) return Promise.resolve(have);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(token);
      reject(new Error(`no exit record for token ${token} within ${ms} ms`));
    }, ms);
    waiters.set(token, (e) => {
      clearTimeout(timer);
      waiters.delete(token);
      resolve(e);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Our children, zombies included. */
function children(): number[] {
  const me = process.pid;
  const kids: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === me) kids.push(Number(ent));
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

beforeAll(() => {
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
      const token = nextToken++;
      try {
        native.watch(t.pidfd, token);
        await waitExit(token, 5000);
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
});

afterAll(() => {
  watcherSock?.destroy();
});

// ---- the launcher --------------------------------------------------------------------

test('fake-init runs as pid 1 and uid 0 in fresh namespaces and reports ready', async () => {
  const r = launch('exit:7');
  const token = nextToken++;
  native.watch(r.pidfd, token);
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
  const token = nextToken++;
  native.watch(r.pidfd, token);
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
  const token = nextToken++;
  native.watch(r.pidfd, token);
  await readAll(r.readyFd);
  const out = readOut(r.dir);
  expect(out).toMatchObject({ uid: '0', pid: '1' });
  expect(out.ns_user).toBe(hostNs('user'));
  expect(out.ns_pid).not.toBe(hostNs('pid'));
  expect(await waitExit(token)).toMatchObject({ reaped: true, exitCode: 0 });
});

test('an ERROR ready report comes through and the exit is reaped', async () => {
  const r = launch('fail-ready');
  const token = nextToken++;
  native.watch(r.pidfd, token);
  const report = decodeReport(await readAll(r.readyFd));
  expect(report.type).toBe(0x8001);
  expect(report.fields.get(10)?.readUInt32LE(0)).toBe(3); // CODE=LAUNCH
  expect(report.fields.get(12)?.toString()).toBe('fake_step');
  expect(await waitExit(token)).toMatchObject({ reaped: true, exitCode: 1, signal: 0 });
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
    const token = nextToken++;
    native.watch(r.pidfd, token);
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
  const token = nextToken++;
  native.watch(r.pidfd, token);
  native.pidfdSendSignal(r.pidfd, 9);
  expect(await waitExit(token)).toEqual({ token, reaped: true, exitCode: -1, signal: 9 });
  expectNativeError(() => native.pidfdSendSignal(r.pidfd, 9), 'pidfd_send_signal', 'ESRCH');
});

test('50 concurrent launches each get exactly one record with their own status', async () => {
  const runs = Array.from({ length: 50 }, (_, i) => {
    const r = launch(`exit:${i + 10}`);
    const token = nextToken++;
    native.watch(r.pidfd, token);
    return { ...r, token, code: i + 10 };
  });
  const reports = await Promise.all(runs.map((r) => readAll(r.readyFd)));
  expect(reports.every((b) => decodeReport(b).type === 0x8000)).toBe(true);
  const exits = await Promise.all(runs.map((r) => waitExit(r.token)));
  exits.forEach((e, i) => expect(e).toEqual({ token: runs[i]!.token, reaped: true, exitCode: runs[i]!.code, signal: 0 }));
  await sleep(200); // a duplicate would have arrived by now
  for (const r of runs) expect(seen.get(r.token)).toHaveLength(1);
  expect(new Set(runs.map((r) => r.pid)).size).toBe(50);
});

test('watching the same token twice is refused', async () => {
  const r = launch('sleep');
  const token = nextToken++;
  native.watch(r.pidfd, token);
  expectNativeError(() => native.watch(r.pidfd, token), 'watch', 'EEXIST');
  native.pidfdSendSignal(r.pidfd, 9);
  expect(await waitExit(token)).toMatchObject({ signal: 9 });
});

test('watch refuses an fd that is not a pidfd', () => {
  expectNativeError(() => native.watch(0 as Fd, nextToken++), 'watch', 'EBADF');
});

test('unwatch suppresses the record', async () => {
  const r = launch('sleep');
  await readAll(r.readyFd);
  const token = nextToken++;
  native.watch(r.pidfd, token);
  native.unwatch(token);
  native.unwatch(token); // idempotent
  native.pidfdSendSignal(r.pidfd, 9);
  await sleep(300);
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
    const token = nextToken++;
    native.watch(pidfd, token);
    native.pidfdSendSignal(pidfd, 9);
    expect(await waitExit(token)).toEqual({ token, reaped: false, exitCode: -1, signal: 0 });
  } finally {
    native.closeFd(pidfd);
  }
});

test('an exit before watch() is still reported', async () => {
  const r = launch('exit:5');
  await readAll(r.readyFd);
  await sleep(100); // it has exited and is a zombie now
  const token = nextToken++;
  native.watch(r.pidfd, token);
  expect(await waitExit(token)).toEqual({ token, reaped: true, exitCode: 5, signal: 0 });
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
  const wt = nextToken++;
  native.watch(w.pidfd, wt);
  await readAll(w.readyFd);
  await waitExit(wt);
  await sleep(50);

  const before = fdCount();
  for (let i = 0; i < 10; i++) {
    const r = launch('exit:0');
    const token = nextToken++;
    native.watch(r.pidfd, token);
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
  await sleep(50);
  expect(fdCount()).toBe(before);
});

test('no process is left behind', async () => {
  await sleep(100);
  expect(children()).toEqual([]);
});
