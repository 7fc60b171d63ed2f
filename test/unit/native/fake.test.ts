import * as net from 'net';
import { isPaddockError } from '../../../actors/errors';
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
  try {
    f.launchInit(req);
  } catch (e) {
    expect(e).toMatchObject({ step: 'uid_map', errno: 1, errnoName: 'EPERM', message: 'uid_map: EPERM' });
  }
  expect(f.calls.filter((c) => c.fn === 'launchInit')).toHaveLength(4);
  f.failNext('kvmProbe', 'open_kvm', 2);
  expect(f.kvmProbe()).toEqual({ available: false, reason: 'open_kvm: ENOENT' });
  expect(f.kvmProbe()).toEqual({ available: true, apiVersion: 12 });
});

test('validates like FfiNative', () => {
  const f = new FakeNative();
  const bad = [
    () => f.launchInit({ ...req, initPath: 'rel' }),
    () => f.pidfdSendSignal(100 as Fd, 0),
    () => f.watch(-1 as Fd, 1),
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
  const got: WatchedExit[] = [];
  const off = f.onExit((e) => got.push(e));
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  f.watch(a.pidfd, 1);
  f.watch(b.pidfd, 2);
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
});

test('unwatch suppresses; a process reached by pidfdOpen is not reaped', () => {
  const f = new FakeNative();
  const got: WatchedExit[] = [];
  f.onExit((e) => got.push(e));
  const a = f.launchInit(req);
  f.watch(a.pidfd, 1);
  f.unwatch(1);
  f.unwatch(1);
  f.exit(a.pid, { exitCode: 0 });
  const fd = f.pidfdOpen(4242);
  f.watch(fd, 9);
  f.exit(4242, { exitCode: 3 });
  expect(got).toEqual([{ token: 9, reaped: false, exitCode: -1, signal: 0 }]);
  expect(() => f.pidfdOpen(4242)).toThrow(/ESRCH/);
});

test('SIGKILL and watching a dead process report in a microtask, not inside the call', async () => {
  const f = new FakeNative();
  const got: WatchedExit[] = [];
  f.onExit((e) => got.push(e));
  const a = f.launchInit(req);
  f.watch(a.pidfd, 1);
  f.pidfdSendSignal(a.pidfd, 9);
  expect(got).toEqual([]);
  await Promise.resolve();
  expect(got).toEqual([{ token: 1, reaped: true, exitCode: -1, signal: 9 }]);
  f.watch(a.pidfd, 2);
  expect(got).toHaveLength(1);
  await Promise.resolve();
  expect(got[1]).toEqual({ token: 2, reaped: true, exitCode: -1, signal: 9 });

  const quiet = new FakeNative({ killExits: false });
  const b = quiet.launchInit(req);
  quiet.pidfdSendSignal(b.pidfd, 9);
  await Promise.resolve();
  expect(quiet.isAlive(b.pid)).toBe(true);
});

test('watch errors: unknown pidfd EBADF, duplicate token EEXIST; closeFd twice EBADF', () => {
  const f = new FakeNative();
  const a = f.launchInit(req);
  expect(() => f.watch(5 as Fd, 1)).toThrow(/watch: EBADF/);
  f.watch(a.pidfd, 1);
  expect(() => f.watch(a.pidfd, 1)).toThrow(/watch: EEXIST/);
  f.closeFd(a.pidfd);
  expect(() => f.closeFd(a.pidfd)).toThrow(/close: EBADF/);
  f.mkfifo('/x', 0o600);
  expect(() => f.mkfifo('/x', 0o600)).toThrow(/mkfifo: EEXIST/);
  expect(f.fifos.get('/x')).toBe(0o600);
});

test('records also arrive on the real watcher pipe, in the wire format', async () => {
  const f = new FakeNative();
  const fd = f.watcherFd();
  expect(f.watcherFd()).toBe(fd);
  const sock = new net.Socket({ fd, readable: true, writable: false });
  const received = new Promise<WatchedExit[]>((resolve) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 32) resolve(parseWatchRecords(buf));
    });
  });
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  f.watch(a.pidfd, 11);
  f.watch(b.pidfd, 12);
  f.exit(a.pid, { exitCode: 4 });
  f.exit(b.pid, { signal: 9 });
  expect(await received).toEqual([
    { token: 11, reaped: true, exitCode: 4, signal: 0 },
    { token: 12, reaped: true, exitCode: -1, signal: 9 },
  ]);
  sock.destroy();
  f.dispose();
});

test('encodeWatchRecord is the inverse of parseWatchRecords', () => {
  const e = { token: 0xffffffff, reaped: false, exitCode: -1, signal: 0 };
  expect(parseWatchRecords(encodeWatchRecord(e))).toEqual([e]);
});
