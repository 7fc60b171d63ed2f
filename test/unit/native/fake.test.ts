import * as net from 'net';
import { isPaddockError } from '../../../base/errors';
import { Fd, NativeError, WatchedExit } from '../../../native/facade';
import { encodeWatchRecord, FakeNative } from '../../../native/fake';
import { parseWatchRecords } from '../../../native/ffi';

const req = { initPath: '/init', sandboxDir: '/sb', cloneFlags: 0 };

test('pids count from 1000, fds from a counter; every call is recorded', () => {
  const f = new FakeNative();
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  expect(a).toEqual({ pid: 1000, pidfd: 100, readyFd: 101 });
  expect(b).toEqual({ pid: 1001, pidfd: 102, readyFd: 103 });
  f.closeFd(a.readyFd);
  expect(f.calls).toEqual([
    { fn: 'launchInit', args: [req] },
    { fn: 'launchInit', args: [req] },
    { fn: 'closeFd', args: [101] },
  ]);
  expect([...f.openFds]).toEqual([100, 102, 103]);
  expect(f.launchedPids()).toEqual([1000, 1001]);
});

test('failNext scripts NativeErrors, `times` in a row, per function', () => {
  const f = new FakeNative();
  f.failNext('launchInit', 'pivot_root', 22, 2);
  for (let i = 0; i < 2; i++) {
    expect(() => f.launchInit(req)).toThrow(NativeError);
  }
  expect(f.launchInit(req).pid).toBe(1000);
  f.failNext('launchInit', 'uid_map', 1);
  let thrown: unknown;
  try {
    f.launchInit(req);
  } catch (e) {
    thrown = e;
  }
  // Outside the catch: a launchInit that did not throw fails here.
  expect(thrown).toBeInstanceOf(NativeError);
  expect(thrown).toMatchObject({ step: 'uid_map', errno: 1, errnoName: 'EPERM', message: 'uid_map: EPERM' });
  expect(f.calls.filter((c) => c.fn === 'launchInit')).toHaveLength(4);
  f.failNext('kvmProbe', 'open_kvm', 2);
  expect(f.kvmProbe()).toEqual({ available: false, reason: 'open_kvm: ENOENT' });
  expect(f.kvmProbe()).toEqual({ available: true, apiVersion: 12 });
});

test('namespaceType answers from namespaceTypes, ENOTTY otherwise, and can be made to fail', () => {
  const f = new FakeNative();
  f.namespaceTypes.set(7, 0x40000000);
  expect(f.namespaceType(7 as Fd)).toBe(0x40000000);
  expect(() => f.namespaceType(8 as Fd)).toThrow('ns_type: ENOTTY');
  f.failNext('namespaceType', 'ns_type', 9);
  expect(() => f.namespaceType(7 as Fd)).toThrow(NativeError);
  expect(() => f.launchInit({ ...req, cloneFlags: 0x40000000, joinNamespaces: [{ type: 0x40000000, fd: 7 }] })).toThrow(/joinNamespaces\[0\]\.type/);
});

test('validates like FfiNative', () => {
  const f = new FakeNative();
  const bad = [
    () => f.launchInit({ ...req, initPath: 'rel' }),
    () => f.pidfdSendSignal(100 as Fd, 0),
    () => f.watch(-1 as Fd, 100 as Fd),
    () => f.watch(3 as Fd, -1 as Fd),
    () => f.closeWatchChannel(-1 as Fd),
    () => f.unwatch(-1),
    () => f.mkfifo('x', 0o600),
  ];
  for (const b of bad) {
    let err: unknown;
    try {
      b();
    } catch (e) {
      err = e;
    }
    expect(isPaddockError(err, 'EINVALID_ARGUMENT')).toBe(true);
  }
});

test('exit by pid or token reaches every watcher synchronously', () => {
  const f = new FakeNative();
  const ch = f.openWatchChannel();
  const got: WatchedExit[] = [];
  const off = f.onExit((e) => got.push(e));
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  expect(f.watch(ch, a.pidfd)).toBe(1);
  expect(f.watch(ch, b.pidfd)).toBe(2);
  f.exit(a.pid, { exitCode: 7 });
  f.exit(2, { signal: 15 });
  expect(got).toEqual([
    { token: 1, reaped: true, exitCode: 7, signal: 0 },
    { token: 2, reaped: true, exitCode: -1, signal: 15 },
  ]);
  expect(f.isAlive(a.pid)).toBe(false);
  expect(() => f.pidfdSendSignal(a.pidfd, 9)).toThrow(/ESRCH/);
  expect(() => f.exit(a.pid)).toThrow(/already exited/);
  off();
  f.dispose();
});

test('unwatch suppresses; a process reached by pidfdOpen is not reaped', () => {
  const f = new FakeNative();
  const got: WatchedExit[] = [];
  f.onExit((e) => got.push(e));
  const ch = f.openWatchChannel();
  const a = f.launchInit(req);
  const t = f.watch(ch, a.pidfd);
  f.unwatch(t);
  f.unwatch(t);
  f.exit(a.pid, { exitCode: 0 });
  const fd = f.pidfdOpen(4242);
  const t2 = f.watch(ch, fd);
  f.exit(4242, { exitCode: 3 });
  expect(got).toEqual([{ token: t2, reaped: false, exitCode: -1, signal: 0 }]);
  expect(() => f.pidfdOpen(4242)).toThrow(/ESRCH/);
  f.dispose();
});

test('SIGKILL and watching a dead process report in a microtask, not inside the call', async () => {
  const f = new FakeNative();
  const got: WatchedExit[] = [];
  f.onExit((e) => got.push(e));
  const ch = f.openWatchChannel();
  const a = f.launchInit(req);
  f.watch(ch, a.pidfd);
  f.pidfdSendSignal(a.pidfd, 9);
  expect(got).toEqual([]);
  await Promise.resolve();
  expect(got).toEqual([{ token: 1, reaped: true, exitCode: -1, signal: 9 }]);
  f.watch(ch, a.pidfd);
  expect(got).toHaveLength(1);
  await Promise.resolve();
  expect(got[1]).toEqual({ token: 2, reaped: true, exitCode: -1, signal: 9 });
  f.dispose();

  const quiet = new FakeNative({ killExits: false });
  const b = quiet.launchInit(req);
  quiet.pidfdSendSignal(b.pidfd, 9);
  await Promise.resolve();
  expect(quiet.isAlive(b.pid)).toBe(true);
});

test('watch errors: unknown pidfd EBADF, unknown channel ENOENT; closeFd twice EBADF', () => {
  const f = new FakeNative();
  const ch = f.openWatchChannel();
  const a = f.launchInit(req);
  expect(() => f.watch(ch, 5 as Fd)).toThrow(/watch: EBADF/);
  expect(() => f.watch(a.pidfd, a.pidfd)).toThrow(/watch: ENOENT/);
  expect(() => f.closeWatchChannel(a.pidfd)).toThrow(/watch_close: ENOENT/);
  f.dispose();
  f.closeFd(a.pidfd);
  expect(() => f.closeFd(a.pidfd)).toThrow(/close: EBADF/);
  f.mkfifo('/x', 0o600);
  expect(() => f.mkfifo('/x', 0o600)).toThrow(/mkfifo: EEXIST/);
  expect(f.fifos.get('/x')).toBe(0o600);
});

test('console hand-off: a listener, an accepted fd, a recorded send; scripted failures', () => {
  const f = new FakeNative();
  const l = f.consoleListen('/run/p/sb/console-1.sock', 100000, 100000);
  const master = f.consoleAccept(l, 1234, 5000);
  f.sendFd('/tmp/cs.sock', master, '/dev/ptmx');
  expect(f.sentFds).toEqual([{ path: '/tmp/cs.sock', fd: master, name: '/dev/ptmx' }]);
  f.failNext('sendFd', 'console_socket', 111);
  expect(() => f.sendFd('/tmp/cs.sock', master, '/dev/ptmx')).toThrow(/console_socket: ECONNREFUSED/);
  f.closeFd(l);
  expect(() => f.consoleAccept(l, 1234, 5000)).toThrow(/console_accept: EBADF/);
  f.closeFd(master);
  f.dispose();
});

/** Reads a channel until EOF (or `count` records), through libuv. */
function readChannel(fd: Fd, count = Infinity): { records: Promise<WatchedExit[]>; sock: net.Socket } {
  const sock = new net.Socket({ fd, readable: true, writable: false });
  const records = new Promise<WatchedExit[]>((resolve) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= count * 16) resolve(parseWatchRecords(buf));
    });
    sock.on('end', () => resolve(parseWatchRecords(buf)));
  });
  return { records, sock };
}

test('records also arrive on the real channel pipe, in the wire format', async () => {
  const f = new FakeNative();
  const ch = f.openWatchChannel();
  const { records, sock } = readChannel(ch, 2);
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  const ta = f.watch(ch, a.pidfd);
  const tb = f.watch(ch, b.pidfd);
  f.exit(a.pid, { exitCode: 4 });
  f.exit(b.pid, { signal: 9 });
  expect(await records).toEqual([
    { token: ta, reaped: true, exitCode: 4, signal: 0 },
    { token: tb, reaped: true, exitCode: -1, signal: 9 },
  ]);
  sock.destroy();
  f.closeWatchChannel(ch);
  f.dispose();
});

test('two channels: each gets only its own exits; tokens unique across channels', async () => {
  const f = new FakeNative();
  const c1 = f.openWatchChannel();
  const c2 = f.openWatchChannel();
  expect(c1).not.toBe(c2);
  expect(f.openChannels()).toEqual([c1, c2]);
  const r1 = readChannel(c1);
  const r2 = readChannel(c2);
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  const tokens = [f.watch(c1, a.pidfd), f.watch(c2, b.pidfd), f.watch(c2, a.pidfd)];
  expect(new Set(tokens).size).toBe(3);
  f.exit(a.pid, { exitCode: 1 });
  f.exit(b.pid, { exitCode: 2 });
  f.closeWatchChannel(c1);
  f.closeWatchChannel(c2);
  expect(f.openChannels()).toEqual([]);
  expect(await r1.records).toEqual([{ token: tokens[0], reaped: true, exitCode: 1, signal: 0 }]);
  expect(await r2.records).toEqual([
    { token: tokens[2], reaped: true, exitCode: 1, signal: 0 },
    { token: tokens[1], reaped: true, exitCode: 2, signal: 0 },
  ]);
  r1.sock.destroy();
  r2.sock.destroy();
});

test('closeWatchChannel unwatches its tokens and ends the reader with EOF', async () => {
  const f = new FakeNative();
  const ch = f.openWatchChannel();
  const other = f.openWatchChannel();
  const r = readChannel(ch);
  const a = f.launchInit(req);
  f.watch(ch, a.pidfd);
  const kept = f.watch(other, a.pidfd);
  f.closeWatchChannel(ch);
  expect(f.watchedTokens()).toEqual([kept]);
  expect(() => f.closeWatchChannel(ch)).toThrow(/watch_close: ENOENT/);
  expect(() => f.watch(ch, a.pidfd)).toThrow(/watch: ENOENT/);
  f.exit(a.pid);
  expect(await r.records).toEqual([]);
  r.sock.destroy();
  f.dispose();
  expect(f.openChannels()).toEqual([]);
});

test('encodeWatchRecord is the inverse of parseWatchRecords', () => {
  const e = { token: 0xffffffff, reaped: false, exitCode: -1, signal: 0 };
  expect(parseWatchRecords(encodeWatchRecord(e))).toEqual([e]);
});
