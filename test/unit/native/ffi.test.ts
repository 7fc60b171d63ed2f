/**
 * FfiNative over a spy binding: argument validation happens before any native call,
 * native failures become NativeError with C's step. No native build needed.
 */
import { isPaddockError, PaddockError } from '../../../base/errors';
import { Fd, NativeError } from '../../../native/facade';
import { ALL_NAMESPACES, FfiNative, NativeBinding, openBinding, parseWatchRecords } from '../../../native/ffi';

type Spy = { [K in keyof NativeBinding]: jest.Mock };

function spyBinding(overrides: Partial<Record<keyof NativeBinding, (...a: never[]) => unknown>> = {}): Spy {
  const names: Array<keyof NativeBinding> = [
    'pd_launch_init', 'pd_init_image', 'pd_last_pidfd', 'pd_last_ready_fd', 'pd_last_step', 'pd_last_detail',
    'pd_watch_open', 'pd_watch_close', 'pd_watch', 'pd_watch_readable', 'pd_unwatch', 'pd_pidfd_open', 'pd_pidfd_send_signal',
    'pd_close', 'pd_mkfifo', 'pd_kvm_probe', 'pd_kvm_extension', 'pd_oom_eventfd', 'pd_mknod_char', 'pd_bind_into', 'pd_console_listen', 'pd_console_accept', 'pd_send_fd', 'pd_ns_type',
    'pd_userns_maps', 'pd_last_uid_map', 'pd_last_gid_map',
  ];
  const spy = {} as Spy;
  for (const n of names) {
    const impl = overrides[n] ?? (n === 'pd_last_step' || n === 'pd_last_detail' ? () => '' : () => 0);
    spy[n] = jest.fn(impl as (...a: unknown[]) => unknown);
  }
  return spy;
}

function nativeCalls(spy: Spy): number {
  return Object.values(spy).reduce((n, m) => n + m.mock.calls.length, 0);
}

const good = {
  initPath: '/usr/lib/paddock/paddock-init',
  sandboxDir: '/var/lib/paddock/sb1',
  cloneFlags: ALL_NAMESPACES,
  uidMap: '0 100000 65536\n',
  gidMap: '0 100000 65536\n',
};

function expectInvalid(fn: () => unknown, field: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isPaddockError(err, 'EINVALID_ARGUMENT')).toBe(true);
  expect((err as PaddockError).context.field).toBe(field);
}

describe('validation rejects bad input without calling C', () => {
  const spy = spyBinding();
  const n = new FfiNative(spy as unknown as NativeBinding);
  afterEach(() => expect(nativeCalls(spy)).toBe(0));

  test.each([
    ['initPath', { ...good, initPath: 'relative/init' }],
    ['initPath', { ...good, initPath: '/bin/in\0it' }],
    ['initPath', { ...good, initPath: 42 }],
    ['initPath', { ...good, initPath: '/' + 'a'.repeat(5000) }],
    ['sandboxDir', { ...good, sandboxDir: '' }],
    ['sandboxDir', { ...good, sandboxDir: undefined }],
    ['cloneFlags', { ...good, cloneFlags: 0x00000100 /* CLONE_VM */ }],
    ['cloneFlags', { ...good, cloneFlags: -1 }],
    ['cloneFlags', { ...good, cloneFlags: 1.5 }],
    ['cloneFlags', { ...good, cloneFlags: '0' }],
    ['uidMap', { ...good, uidMap: '0 0 1\0' }],
    ['uidMap', { ...good, uidMap: 7 }],
    ['gidMap', { ...good, gidMap: 'x'.repeat(5000) }],
    ['stdio', { ...good, stdio: [1, 2] }],
    ['stdio', { ...good, stdio: 'abc' }],
    ['stdio[1]', { ...good, stdio: [undefined, -1, undefined] }],
    ['stdio[2]', { ...good, stdio: [0, 1, 2.5] }],
    ['stdio[0]', { ...good, stdio: ['0', 1, 2] }],
    ['joinNamespaces', { ...good, joinNamespaces: 'x' }],
    ['joinNamespaces[0].type', { ...good, cloneFlags: 0, joinNamespaces: [{ type: 0x00008000 /* NEWTIME */, fd: 3 }] }],
    ['joinNamespaces[0].type', { ...good, cloneFlags: ALL_NAMESPACES, joinNamespaces: [{ type: 0x40000000, fd: 3 }] }],
    ['joinNamespaces[1].type', { ...good, cloneFlags: 0, joinNamespaces: [{ type: 0x40000000, fd: 3 }, { type: 0x40000000, fd: 4 }] }],
    ['joinNamespaces[0].fd', { ...good, cloneFlags: 0, joinNamespaces: [{ type: 0x08000000, fd: -1 }] }],
    ['cgroup', { ...good, cgroup: 'x' }],
    ['cgroup', { ...good, cgroup: { dir: '/sys/fs/cgroup/a' } }],
    ['cgroup.tasks[1]', { ...good, cgroup: { tasks: ['/sys/fs/cgroup/memory/a/tasks', 'tasks'] } }],
    ['cgroup.tasks', { ...good, cgroup: { tasks: ['/sys/fs/cgroup/memory/a\nb/tasks'] } }],
    ['cgroup.tasks', { ...good, cgroup: { tasks: Array.from({ length: 13 }, (_, i) => `/c${i}/tasks`) } }],
    ['cgroup.dir', { ...good, cgroup: { tasks: [], dir: 'relative' } }],
  ])('launchInit %s', (field, req) => {
    expectInvalid(() => n.launchInit(req as never), field);
  });

  test('launchInit of a non-object', () => {
    expectInvalid(() => n.launchInit(null as never), 'request');
  });

  test.each([0, -3, 1.5, NaN, 4194305, '12', undefined])('pidfdOpen(%p)', (pid) => {
    expectInvalid(() => n.pidfdOpen(pid as never), 'pid');
  });

  test.each([0, 65, -9, 9.5, '9', undefined])('pidfdSendSignal signal %p', (sig) => {
    expectInvalid(() => n.pidfdSendSignal(3 as Fd, sig as never), 'signal');
  });

  test.each([-1, 1.2, '3', null, 2 ** 31])('fd %p', (fd) => {
    expectInvalid(() => n.pidfdSendSignal(fd as never, 9), 'pidfd');
    expectInvalid(() => n.closeFd(fd as never), 'fd');
    expectInvalid(() => n.watch(3 as Fd, fd as never), 'pidfd');
    expectInvalid(() => n.watch(fd as never, 3 as Fd), 'channel');
    expectInvalid(() => n.closeWatchChannel(fd as never), 'channel');
  });

  test.each([-1, 2 ** 32, 0.5, '1'])('token %p', (token) => {
    expectInvalid(() => n.unwatch(token as never), 'token');
  });

  test('mkfifo path and mode', () => {
    expectInvalid(() => n.mkfifo('fifo', 0o600), 'path');
    expectInvalid(() => n.mkfifo('/a\0b', 0o600), 'path');
    expectInvalid(() => n.mkfifo('/tmp/f', 0o10000), 'mode');
    expectInvalid(() => n.mkfifo('/tmp/f', -1), 'mode');
  });

  test('console hand-off: socket paths fit sun_path, ids, pids, timeouts and names are checked', () => {
    expectInvalid(() => n.consoleListen('rel.sock', 0, 0), 'path');
    expectInvalid(() => n.consoleListen('/' + 'a'.repeat(107), 0, 0), 'path');
    expectInvalid(() => n.consoleListen('/s.sock', -1, 0), 'uid');
    expectInvalid(() => n.consoleAccept(3 as Fd, 0, 1000), 'expectPid');
    expectInvalid(() => n.consoleAccept(3 as Fd, 10, -5), 'timeoutMs');
    expectInvalid(() => n.sendFd('/s.sock', 3 as Fd, ''), 'name');
    expectInvalid(() => n.sendFd('/s.sock', -1 as Fd, '/dev/ptmx'), 'fd');
  });
});

describe('console hand-off calls', () => {
  test('pass exact values; a failure names C\'s step', () => {
    const spy = spyBinding({ pd_console_listen: () => 40, pd_console_accept: () => 41, pd_send_fd: () => -111, pd_last_step: () => 'console_socket' });
    const n = new FfiNative(spy as unknown as NativeBinding);
    expect(n.consoleListen('/run/p/sb/console-1.sock', 100000, 100000)).toBe(40);
    expect(spy.pd_console_listen).toHaveBeenCalledWith('/run/p/sb/console-1.sock', 100000, 100000);
    expect(n.consoleAccept(40 as Fd, 4321, 5000)).toBe(41);
    expect(spy.pd_console_accept).toHaveBeenCalledWith(40, 4321, 5000);
    expect(() => n.sendFd('/tmp/cs.sock', 41 as Fd, '/dev/ptmx')).toThrow(/^console_socket: ECONNREFUSED/);
  });
});

describe('calls and results', () => {
  test('launchInit passes exact values and maps absent ones to "" and -1', () => {
    const spy = spyBinding({ pd_launch_init: () => 4321, pd_last_pidfd: () => 30, pd_last_ready_fd: () => 31 });
    const n = new FfiNative(spy as unknown as NativeBinding);
    const r = n.launchInit({ initPath: '/i', sandboxDir: '/s', cloneFlags: 0, stdio: [undefined, 5, undefined] });
    expect(r).toEqual({ pid: 4321, pidfd: 30, readyFd: 31 });
    expect(spy.pd_launch_init).toHaveBeenCalledWith('/i', '/s', 0, '', '', -1, 5, -1, -1, -1, -1, -1, -1, -1, '', '');
  });

  test('launchInit passes the birthplace: v1 tasks files one a line, and the cgroup2 directory', () => {
    const spy = spyBinding({ pd_launch_init: () => 4321 });
    const n = new FfiNative(spy as unknown as NativeBinding);
    n.launchInit({ initPath: '/i', sandboxDir: '/s', cloneFlags: 0, cgroup: { tasks: ['/m/a/tasks', '/p/a/tasks'], dir: '/u/a' } });
    expect(spy.pd_launch_init).toHaveBeenCalledWith('/i', '/s', 0, '', '', -1, -1, -1, -1, -1, -1, -1, -1, -1, '/m/a/tasks\n/p/a/tasks', '/u/a');
  });

  test('initImage returns the cached image fd, or throws with the step', () => {
    const spy = spyBinding({ pd_init_image: () => 27 });
    expect(new FfiNative(spy as unknown as NativeBinding).initImage('/i')).toBe(27);
    expect(spy.pd_init_image).toHaveBeenCalledWith('/i');
    const bad = new FfiNative(spyBinding({ pd_init_image: () => -2, pd_last_step: () => 'open_init' }) as unknown as NativeBinding);
    expect(() => bad.initImage('/nope')).toThrow('open_init: ENOENT');
    expectInvalid(() => bad.initImage(''), 'initPath');
  });

  test('launchInit passes joined namespaces as net, ipc, uts, user, cgroup fds', () => {
    const spy = spyBinding({ pd_launch_init: () => 4321 });
    const n = new FfiNative(spy as unknown as NativeBinding);
    n.launchInit({ initPath: '/i', sandboxDir: '/s', cloneFlags: 0x20020000, joinNamespaces: [{ type: 0x04000000, fd: 7 }, { type: 0x40000000, fd: 9 }, { type: 0x02000000, fd: 11 }] });
    expect(spy.pd_launch_init).toHaveBeenCalledWith('/i', '/s', 0x20020000, '', '', -1, -1, -1, 9, -1, 7, -1, 11, -1, '', '');
  });

  test('launchInit passes a joined pid namespace last, and refuses it with CLONE_NEWPID', () => {
    const spy = spyBinding({ pd_launch_init: () => 4321 });
    const n = new FfiNative(spy as unknown as NativeBinding);
    n.launchInit({ initPath: '/i', sandboxDir: '/s', cloneFlags: 0x00020000, joinNamespaces: [{ type: 0x20000000, fd: 13 }] });
    expect(spy.pd_launch_init).toHaveBeenCalledWith('/i', '/s', 0x00020000, '', '', -1, -1, -1, -1, -1, -1, -1, -1, 13, '', '');
    expect(() => n.launchInit({ initPath: '/i', sandboxDir: '/s', cloneFlags: 0x20020000, joinNamespaces: [{ type: 0x20000000, fd: 13 }] })).toThrow(/a type not also in cloneFlags/);
  });

  test('launchInit refuses a cgroup namespace both joined and created', () => {
    const n = new FfiNative(spyBinding({ pd_launch_init: () => 4321 }) as unknown as NativeBinding);
    expect(() => n.launchInit({ initPath: '/i', sandboxDir: '/s', cloneFlags: 0x02000000, joinNamespaces: [{ type: 0x02000000, fd: 11 }] })).toThrow(/a type not also in cloneFlags/);
  });

  test('namespaceType returns the CLONE_NEW* type or throws with the step', () => {
    const ok = new FfiNative(spyBinding({ pd_ns_type: () => 0x40000000 }) as unknown as NativeBinding);
    expect(ok.namespaceType(5 as Fd)).toBe(0x40000000);
    const bad = new FfiNative(spyBinding({ pd_ns_type: () => -25, pd_last_step: () => 'ns_type' }) as unknown as NativeBinding);
    expect(() => bad.namespaceType(5 as Fd)).toThrow('ns_type: ENOTTY');
  });

  test('a -errno result becomes NativeError with the step and detail C recorded', () => {
    const spy = spyBinding({
      pd_launch_init: () => -22,
      pd_last_step: () => 'uid_map',
      pd_last_detail: () => '/proc/77/uid_map',
    });
    const n = new FfiNative(spy as unknown as NativeBinding);
    let err: unknown;
    try {
      n.launchInit(good);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ step: 'uid_map', errno: 22, errnoName: 'EINVAL' });
    expect((err as Error).message).toBe('uid_map: EINVAL (/proc/77/uid_map)');
  });

  test('unwatch ignores ENOENT but not other errors', () => {
    let ret = -2;
    const spy = spyBinding({ pd_unwatch: () => ret, pd_last_step: () => 'unwatch' });
    const n = new FfiNative(spy as unknown as NativeBinding);
    expect(() => n.unwatch(5)).not.toThrow();
    ret = -9;
    expect(() => n.unwatch(5)).toThrow(NativeError);
    expect(spy.pd_unwatch).toHaveBeenCalledWith(5);
  });

  test('watch channels, send signal, close, mkfifo, pidfdOpen pass through', () => {
    const spy = spyBinding({ pd_pidfd_open: () => 40, pd_watch_open: () => 12, pd_watch: () => 0xffffffff });
    const n = new FfiNative(spy as unknown as NativeBinding);
    expect(n.pidfdOpen(123)).toBe(40);
    expect(n.openWatchChannel()).toBe(12);
    expect(n.watch(12 as Fd, 40 as Fd)).toBe(0xffffffff); // a u32 token comes back whole
    n.closeWatchChannel(12 as Fd);
    n.pidfdSendSignal(40 as Fd, 64);
    n.closeFd(40 as Fd);
    n.mkfifo('/tmp/x', 0o600);
    expect(spy.pd_watch).toHaveBeenCalledWith(12, 40);
    expect(spy.pd_watch_close).toHaveBeenCalledWith(12);
    expect(spy.pd_pidfd_send_signal).toHaveBeenCalledWith(40, 64);
    expect(spy.pd_close).toHaveBeenCalledWith(40);
    expect(spy.pd_mkfifo).toHaveBeenCalledWith('/tmp/x', 0o600);
  });

  test('watch channel failures become NativeError', () => {
    const spy = spyBinding({
      pd_watch_open: () => -24,
      pd_watch: () => -2,
      pd_watch_close: () => -2,
      pd_last_step: () => '',
    });
    const n = new FfiNative(spy as unknown as NativeBinding);
    expect(() => n.openWatchChannel()).toThrow(/^watch_open: EMFILE/);
    expect(() => n.watch(12 as Fd, 40 as Fd)).toThrow(/^watch: ENOENT/);
    expect(() => n.closeWatchChannel(12 as Fd)).toThrow(/^watch_close: ENOENT/);
  });

  test('kvmProbe reports availability without throwing', () => {
    let ret = 12;
    const spy = spyBinding({ pd_kvm_probe: () => ret, pd_last_step: () => 'open_kvm', pd_last_detail: () => '/dev/kvm' });
    const n = new FfiNative(spy as unknown as NativeBinding);
    expect(n.kvmProbe()).toEqual({
      available: true,
      apiVersion: 12,
      extensions: { irqchip: 0, hlt: 0, userMemory: 0, setTssAddr: 0, extCpuid: 0, nrVcpus: 0, nrMemslots: 0, maxVcpus: 0, immediateExit: 0 },
    });
    expect(spy.pd_kvm_probe.mock.calls[0]).toEqual(['/dev/kvm']);
    ret = -2;
    expect(n.kvmProbe()).toEqual({ available: false, reason: 'open_kvm: ENOENT (/dev/kvm)' });
  });
});

test('a missing library is ENATIVE_UNAVAILABLE naming the path and the fix', () => {
  let err: unknown;
  try {
    openBinding('/nonexistent/libpaddock.so');
  } catch (e) {
    err = e;
  }
  expect(isPaddockError(err, 'ENATIVE_UNAVAILABLE')).toBe(true);
  expect((err as Error).message).toContain('/nonexistent/libpaddock.so');
  expect((err as Error).message).toContain('run npm run build:native');
});

test('a file that is not a shared library is ENATIVE_UNAVAILABLE too', () => {
  expect(() => openBinding(__filename)).toThrow(/run npm run build:native/);
});

test('watch records parse little-endian, whole records only', () => {
  const b = Buffer.alloc(36);
  b.writeUInt32LE(0xfffffffe, 0);
  b.writeInt32LE(1, 4);
  b.writeInt32LE(-1, 8);
  b.writeInt32LE(9, 12);
  b.writeUInt32LE(7, 16);
  b.writeInt32LE(0, 20);
  b.writeInt32LE(3, 24);
  b.writeInt32LE(0, 28);
  expect(parseWatchRecords(b)).toEqual([
    { token: 0xfffffffe, reaped: true, exitCode: -1, signal: 9 },
    { token: 7, reaped: false, exitCode: 3, signal: 0 },
  ]);
});
