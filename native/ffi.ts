/**
 * The real NativeFacade: libpaddock.so called through ffi-rs (libseccomp has a binding
 * of its own, seccomp-ffi.ts). ffi-rs is loaded lazily, so importing this module (for
 * the validators, or for FfiNative over an injected binding in unit tests) needs
 * neither the addon nor a native build.
 *
 * Every argument is checked here before it crosses into C: ffi-rs converts whatever
 * it is given, and a string where an int was expected, a negative fd or a NUL inside a
 * path turns into a crash or a wrong syscall far from its cause. Bad arguments throw
 * PaddockError EINVALID_ARGUMENT without any native call; native failures throw
 * NativeError(step, errno, errnoName).
 */
import * as fs from 'fs';
import { PaddockError } from '../base/errors';
import { errnoName } from '../base/errno';
import {
  Fd,
  HostPid,
  KvmInfo,
  KvmExtension,
  LaunchedInit,
  LaunchInitRequest,
  NativeError,
  NativeFacade,
  PeerCredentials,
  UserNamespaceMaps,
  WatchedExit,
  KVM_EXTENSIONS,
} from './facade';
import { libraryPath } from './paths';
import { ALL_NAMESPACES, CLONE } from '../protocols/messages';

/** CLONE_NEW* flags: the one table lives with the wire format. */
export { CLONE as CloneFlag, ALL_NAMESPACES } from '../protocols/messages';

const MAX_PID = 4194304; // PID_MAX_LIMIT on 64-bit
const MAX_FD = 0x7fffffff;
const MAX_PATH = 4095; // PATH_MAX - 1
const MAX_MAP = 4095; // the kernel takes one page per uid_map/gid_map write

// ---------------------------------------------------------------------------------
// Validators (shared with native/fake.ts so the fake rejects what the real one does)
// ---------------------------------------------------------------------------------

function bad(field: string, what: string, value: unknown): PaddockError {
  let shown: string;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    shown = typeof value;
  }
  return new PaddockError('EINVALID_ARGUMENT', `${field} must be ${what}, got ${shown}`, {
    field,
  });
}

function checkInt(field: string, v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(field, what, v);
  }
  return v;
}

export function checkFd(field: string, v: unknown): Fd {
  return checkInt(field, v, 0, MAX_FD, 'an integer fd >= 0') as Fd;
}

export function checkPid(field: string, v: unknown): number {
  return checkInt(field, v, 1, MAX_PID, `an integer pid in 1..${MAX_PID}`);
}

export function checkSignal(field: string, v: unknown): number {
  return checkInt(field, v, 1, 64, 'a signal number in 1..64');
}

export function checkToken(field: string, v: unknown): number {
  return checkInt(field, v, 0, 0xffffffff, 'a u32 token');
}

export function checkMode(field: string, v: unknown): number {
  return checkInt(field, v, 0, 0o7777, 'a mode in 0..0o7777');
}

export function checkCloneFlags(field: string, v: unknown): number {
  const flags = checkInt(field, v, 0, 0x7fffffff, 'CLONE_NEW* flags');
  if ((flags & ~ALL_NAMESPACES) !== 0) throw bad(field, 'only CLONE_NEW* flags', `0x${flags.toString(16)}`);
  return flags;
}

export function checkPath(field: string, v: unknown): string {
  if (typeof v !== 'string' || !v.startsWith('/')) throw bad(field, 'an absolute path', v);
  if (v.includes('\0')) throw bad(field, 'a path without NUL', v);
  if (Buffer.byteLength(v) > MAX_PATH) throw bad(field, `at most ${MAX_PATH} bytes`, v.length);
  return v;
}

/** sockaddr_un.sun_path holds 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;

export function checkSocketPath(field: string, v: unknown): string {
  checkPath(field, v);
  if (Buffer.byteLength(v as string) > MAX_SOCKET_PATH) throw bad(field, `a unix socket path of at most ${MAX_SOCKET_PATH} bytes`, v);
  return v as string;
}

export function checkId(field: string, v: unknown): number {
  return checkInt(field, v, 0, 0xfffffffe, 'a uid/gid in 0..2^32-2');
}

export function checkTimeout(field: string, v: unknown): number {
  return checkInt(field, v, 0, 600_000, 'a timeout in 0..600000 ms');
}

export function checkName(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '' || v.includes('\0') || Buffer.byteLength(v) > 255) throw bad(field, 'a name of 1..255 bytes without NUL', v);
  return v;
}

/** BPF_MAXINSNS: the most a program may have without the privileged limit. */
export const MAX_BPF_INSNS = 4096;

export function checkInsns(field: string, v: unknown): Buffer {
  if (!Buffer.isBuffer(v)) throw bad(field, 'a Buffer of struct bpf_insn', typeof v);
  if (v.length === 0 || v.length % 8 !== 0 || v.length / 8 > MAX_BPF_INSNS) throw bad(field, `1..${MAX_BPF_INSNS} instructions of 8 bytes`, `${v.length} bytes`);
  return v;
}

function checkMap(field: string, v: unknown): string {
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.includes('\0')) throw bad(field, 'a map string without NUL', v);
  if (Buffer.byteLength(v) > MAX_MAP) throw bad(field, `at most ${MAX_MAP} bytes`, v.length);
  return v;
}

/** The namespace types a sandbox can join, in pd_launch_init's argument order. */
const JOINABLE: readonly number[] = [CLONE.NEWNET, CLONE.NEWIPC, CLONE.NEWUTS, CLONE.NEWUSER, CLONE.NEWCGROUP, CLONE.NEWPID];

/** Validates a whole request; returns the exact values passed to C. */
export function checkLaunchRequest(req: unknown): {
  initPath: string;
  sandboxDir: string;
  cloneFlags: number;
  uidMap: string;
  gidMap: string;
  stdio: [number, number, number];
  /** fds to join, in pd_launch_init's order: net, ipc, uts, user, cgroup, pid (-1: none). */
  join: [number, number, number, number, number, number];
  /** The v1 `tasks` files, '\n'-separated, and the cgroup2 directory ("" for none). */
  cgroupTasks: string;
  cgroupDir: string;
} {
  if (typeof req !== 'object' || req === null) throw bad('request', 'an object', req);
  const r = req as Record<string, unknown>;
  const stdio: [number, number, number] = [-1, -1, -1];
  if (r.stdio !== undefined) {
    if (!Array.isArray(r.stdio) || r.stdio.length !== 3) {
      throw bad('stdio', 'a tuple of three fds or undefined', r.stdio);
    }
    for (let i = 0; i < 3; i++) {
      const fd: unknown = r.stdio[i];
      if (fd !== undefined) stdio[i] = checkFd(`stdio[${i}]`, fd);
    }
  }
  const cloneFlags = checkCloneFlags('cloneFlags', r.cloneFlags);
  const join: [number, number, number, number, number, number] = [-1, -1, -1, -1, -1, -1];
  if (r.joinNamespaces !== undefined) {
    if (!Array.isArray(r.joinNamespaces)) throw bad('joinNamespaces', 'an array', r.joinNamespaces);
    (r.joinNamespaces as unknown[]).forEach((j, i) => {
      const f = `joinNamespaces[${i}]`;
      if (typeof j !== 'object' || j === null) throw bad(f, 'an object', j);
      const { type, fd } = j as Record<string, unknown>;
      const slot = JOINABLE.indexOf(type as number);
      if (slot < 0) throw bad(`${f}.type`, 'CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWUSER, CLONE_NEWCGROUP or CLONE_NEWPID', type);
      if (join[slot] !== -1) throw bad(`${f}.type`, 'a namespace type given once', type);
      // A namespace is either joined or created, never both.
      if ((cloneFlags & (type as number)) !== 0) throw bad(`${f}.type`, 'a type not also in cloneFlags', type);
      join[slot] = checkFd(`${f}.fd`, fd);
    });
  }
  const uidMap = checkMap('uidMap', r.uidMap);
  const gidMap = checkMap('gidMap', r.gidMap);
  // A joined user namespace has its maps already (the C launcher refuses this too).
  if (join[3] !== -1 && (uidMap !== '' || gidMap !== '')) throw bad('uidMap', 'empty with a joined user namespace', r.uidMap ?? r.gidMap);
  let cgroupTasks = '';
  let cgroupDir = '';
  if (r.cgroup !== undefined) {
    const cg = r.cgroup as Record<string, unknown>;
    if (typeof cg !== 'object' || cg === null || !Array.isArray(cg.tasks)) throw bad('cgroup', 'an object with a tasks array', r.cgroup);
    if (cg.tasks.length > MAX_TASKS_FILES) throw bad('cgroup.tasks', `at most ${MAX_TASKS_FILES} files`, cg.tasks.length);
    const tasks = (cg.tasks as unknown[]).map((t, i) => checkPath(`cgroup.tasks[${i}]`, t));
    // One string for C, a file a line: a path with a newline of its own cannot be in it.
    if (tasks.some((t) => t.includes('\n'))) throw bad('cgroup.tasks', 'paths without a newline', tasks);
    cgroupTasks = tasks.join('\n');
    if (cg.dir !== undefined) cgroupDir = checkPath('cgroup.dir', cg.dir);
  }
  return {
    initPath: checkPath('initPath', r.initPath),
    sandboxDir: checkPath('sandboxDir', r.sandboxDir),
    cloneFlags,
    uidMap,
    gidMap,
    stdio,
    join,
    cgroupTasks,
    cgroupDir,
  };
}

/** PD_MAX_TASKS in native/c/lib/launch.c. */
const MAX_TASKS_FILES = 12;

// ---------------------------------------------------------------------------------
// The raw binding
// ---------------------------------------------------------------------------------

/** libpaddock.so's exports, one to one (see native/c/include/paddock_native.h). */
export interface NativeBinding {
  pd_launch_init(
    initPath: string,
    sandboxDir: string,
    cloneFlags: number,
    uidMap: string,
    gidMap: string,
    fd0: number,
    fd1: number,
    fd2: number,
    joinNet: number,
    joinIpc: number,
    joinUts: number,
    joinUser: number,
    joinCgroup: number,
    joinPid: number,
    cgroupTasks: string,
    cgroupDir: string,
  ): number;
  pd_last_pidfd(): number;
  pd_last_ready_fd(): number;
  pd_init_image(initPath: string): number;
  pd_last_step(): string;
  pd_last_detail(): string;
  pd_watch_open(): number;
  pd_watch_close(channelFd: number): number;
  pd_watch(channelFd: number, pidfd: number): number;
  pd_watch_readable(channelFd: number, fd: number): number;
  pd_unwatch(token: number): number;
  pd_pidfd_open(pid: number): number;
  pd_pidfd_getfd(pidfd: number, target: number): number;
  pd_wait_readable(fd: number, timeoutMs: number): number;
  pd_fd_set_append(fd: number): number;
  pd_pidfd_send_signal(pidfd: number, sig: number): number;
  pd_close(fd: number): number;
  pd_peer_cred(fd: number, which: number): number;
  pd_mkfifo(path: string, mode: number): number;
  pd_replace_file(tmp: string, target: string): number;
  pd_kvm_probe(path: string): number;
  pd_kvm_extension(path: string, cap: number): number;
  pd_oom_eventfd(memdir: string): number;
  pd_mknod_char(path: string, major: number, minor: number, mode: number, uid: number, gid: number): number;
  pd_bind_into(pidfd: number, source: string, target: string): number;
  pd_raise_rlimit(pid: number, resource: number, hardHi: number, hardLo: number): number;
  pd_console_listen(path: string, uid: number, gid: number): number;
  pd_console_accept(listenFd: number, expectPid: number, timeoutMs: number): number;
  pd_send_fd(path: string, fd: number, name: string): number;
  pd_ns_type(fd: number): number;
  pd_userns_maps(fd: number): number;
  pd_last_uid_map(): string;
  pd_last_gid_map(): string;
  pd_idmap_rootfs(pidfd: number, rootfs: string): number;
  pd_devbpf_attach(cgroupDir: string, insns: Buffer, insnCount: number): number;
  pd_devbpf_count(cgroupDir: string): number;
  pd_last_bpf_log(): string;
}

function unavailable(path: string, why: string, cause?: unknown): PaddockError {
  return new PaddockError(
    'ENATIVE_UNAVAILABLE',
    `cannot load ${path}: ${why}; run npm run build:native`,
    { path },
    cause,
  );
}

const opened = new Set<string>();

/**
 * ffi-rs chooses its glibc or musl addon by asking process.report.getReport() whether
 * glibc is there: a full diagnostic report (libuv handles, shared objects, env), about
 * 8 ms of every CLI call. The one fact it wants is which C library this process runs
 * on, which /proc/self/maps tells at once; process.report is shadowed only for the
 * duration of that require.
 */
function requireFfiRs(): typeof import('ffi-rs') {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const real = Object.getOwnPropertyDescriptor(process, 'report');
  let musl: boolean | undefined;
  try {
    if (process.platform === 'linux' && real?.configurable) musl = /\bld-musl-|\blibc\.musl-/.test(fs.readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    // No /proc: let ffi-rs ask the real report.
  }
  if (musl === undefined || !real) return require('ffi-rs') as typeof import('ffi-rs');
  const header = musl ? {} : { glibcVersionRuntime: 'present' };
  Object.defineProperty(process, 'report', { configurable: true, enumerable: real.enumerable ?? true, value: { getReport: () => ({ header }) } });
  try {
    return require('ffi-rs') as typeof import('ffi-rs');
  } finally {
    Object.defineProperty(process, 'report', real);
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** Opens libpaddock.so through ffi-rs. Throws PaddockError ENATIVE_UNAVAILABLE. */
export function openBinding(path: string = libraryPath()): NativeBinding {
  if (!fs.existsSync(path)) throw unavailable(path, 'no such file');
  let ffi: typeof import('ffi-rs');
  try {
    ffi = requireFfiRs();
  } catch (e) {
    throw unavailable(path, `ffi-rs does not load (${(e as Error).message})`, e);
  }
  const library = `paddock:${path}`;
  try {
    if (!opened.has(library)) {
      ffi.open({ library, path });
      opened.add(library);
    }
  } catch (e) {
    throw unavailable(path, (e as Error).message, e);
  }
  const { I32, I64, U32, String: Str, U8Array } = ffi.DataType;
  const fn = (retType: number, paramsType: number[]) => ({ library, retType, paramsType });
  const f = ffi.define({
    pd_launch_init: fn(I32, [Str, Str, I32, Str, Str, I32, I32, I32, I32, I32, I32, I32, I32, I32, Str, Str]),
    pd_last_pidfd: fn(I32, []),
    pd_last_ready_fd: fn(I32, []),
    pd_init_image: fn(I32, [Str]),
    pd_last_step: fn(Str, []),
    pd_last_detail: fn(Str, []),
    pd_watch_open: fn(I32, []),
    pd_watch_close: fn(I32, [I32]),
    pd_watch: fn(I64, [I32, I32]), // long: a u32 token or -errno
    pd_watch_readable: fn(I64, [I32, I32]),
    pd_unwatch: fn(I32, [U32]),
    pd_pidfd_open: fn(I32, [I32]),
    pd_pidfd_getfd: fn(I32, [I32, I32]),
    pd_wait_readable: fn(I32, [I32, I32]),
    pd_fd_set_append: fn(I32, [I32]),
    pd_pidfd_send_signal: fn(I32, [I32, I32]),
    pd_close: fn(I32, [I32]),
    pd_peer_cred: fn(I64, [I32, I32]),
    pd_mkfifo: fn(I32, [Str, I32]),
    pd_replace_file: fn(I32, [Str, Str]),
    pd_kvm_probe: fn(I32, [Str]),
    pd_kvm_extension: fn(I32, [Str, I32]),
    pd_oom_eventfd: fn(I32, [Str]),
    pd_mknod_char: fn(I32, [Str, I32, I32, I32, I32, I32]),
    pd_bind_into: fn(I32, [I32, Str, Str]),
    pd_raise_rlimit: fn(I32, [I32, I32, U32, U32]),
    pd_console_listen: fn(I32, [Str, I32, I32]),
    pd_console_accept: fn(I32, [I32, I32, I32]),
    pd_send_fd: fn(I32, [Str, I32, Str]),
    pd_ns_type: fn(I32, [I32]),
    pd_userns_maps: fn(I32, [I32]),
    pd_last_uid_map: fn(Str, []),
    pd_last_gid_map: fn(Str, []),
    pd_idmap_rootfs: fn(I32, [I32, Str]),
    pd_devbpf_attach: fn(I32, [Str, U8Array, U32]),
    pd_devbpf_count: fn(I32, [Str]),
    pd_last_bpf_log: fn(Str, []),
  } as Parameters<typeof ffi.define>[0]) as unknown as Record<
    keyof NativeBinding,
    (args: unknown[]) => unknown
  >;
  const binding = {} as Record<string, (...args: unknown[]) => unknown>;
  for (const name of Object.keys(f) as Array<keyof NativeBinding>) {
    const call = f[name];
    binding[name] = (...args: unknown[]) => call(args);
  }
  const b = binding as unknown as NativeBinding;
  // Resolve one symbol now, so a stale or foreign .so fails here and not mid-launch.
  try {
    b.pd_last_step();
  } catch (e) {
    throw unavailable(path, (e as Error).message, e);
  }
  return b;
}

// ---------------------------------------------------------------------------------
// The facade
// ---------------------------------------------------------------------------------

export class FfiNative implements NativeFacade {
  constructor(private readonly b: NativeBinding = openBinding()) {}

  /** The NativeError for a -errno result, with the step C recorded for it. */
  private failure(ret: number, fallbackStep: string): NativeError {
    const errno = -ret;
    const step = this.b.pd_last_step() || fallbackStep;
    const detail = this.b.pd_last_detail();
    return new NativeError(step, errno, errnoName(errno), detail || undefined);
  }

  launchInit(req: LaunchInitRequest): LaunchedInit {
    const r = checkLaunchRequest(req);
    const pid = this.b.pd_launch_init(
      r.initPath,
      r.sandboxDir,
      r.cloneFlags,
      r.uidMap,
      r.gidMap,
      r.stdio[0],
      r.stdio[1],
      r.stdio[2],
      r.join[0],
      r.join[1],
      r.join[2],
      r.join[3],
      r.join[4],
      r.join[5],
      r.cgroupTasks,
      r.cgroupDir,
    );
    if (pid < 0) throw this.failure(pid, 'launch');
    return {
      pid: pid as HostPid,
      pidfd: this.b.pd_last_pidfd() as Fd,
      readyFd: this.b.pd_last_ready_fd() as Fd,
    };
  }

  initImage(initPath: string): Fd {
    if (typeof initPath !== 'string' || initPath === '') throw bad('initPath', 'a non-empty string', initPath);
    const fd = this.b.pd_init_image(initPath);
    if (fd < 0) throw this.failure(fd, 'open_init');
    return fd as Fd;
  }

  pidfdOpen(pid: number): Fd {
    checkPid('pid', pid);
    const fd = this.b.pd_pidfd_open(pid);
    if (fd < 0) throw this.failure(fd, 'pidfd_open');
    return fd as Fd;
  }

  pidfdGetfd(pidfd: Fd, target: number): Fd {
    checkFd('pidfd', pidfd);
    checkFd('target', target);
    const fd = this.b.pd_pidfd_getfd(pidfd, target);
    if (fd < 0) throw this.failure(fd, 'pidfd_getfd');
    return fd as Fd;
  }

  fdSetAppend(fd: Fd): void {
    checkFd('fd', fd);
    const r = this.b.pd_fd_set_append(fd);
    if (r < 0) throw this.failure(r, 'fcntl');
  }

  waitReadable(fd: Fd, timeoutMs: number): boolean {
    checkFd('fd', fd);
    checkTimeout('timeoutMs', timeoutMs);
    const r = this.b.pd_wait_readable(fd, timeoutMs);
    if (r < 0) throw this.failure(r, 'poll');
    return r === 1;
  }

  pidfdSendSignal(pidfd: Fd, signal: number): void {
    checkFd('pidfd', pidfd);
    checkSignal('signal', signal);
    const r = this.b.pd_pidfd_send_signal(pidfd, signal);
    if (r < 0) throw this.failure(r, 'pidfd_send_signal');
  }

  closeFd(fd: Fd): void {
    checkFd('fd', fd);
    const r = this.b.pd_close(fd);
    if (r < 0) throw this.failure(r, 'close');
  }

  peerCredentials(fd: number): PeerCredentials {
    checkFd('fd', fd);
    const [pid, uid, gid] = [0, 1, 2].map((which) => {
      const r = this.b.pd_peer_cred(fd, which);
      if (r < 0) throw this.failure(r, 'peercred');
      return r;
    }) as [number, number, number];
    return { pid, uid, gid };
  }

  mkfifo(path: string, mode: number): void {
    checkPath('path', path);
    checkMode('mode', mode);
    const r = this.b.pd_mkfifo(path, mode);
    if (r < 0) throw this.failure(r, 'mkfifo');
  }

  replaceFile(tmp: string, target: string): void {
    checkPath('tmp', tmp);
    checkPath('target', target);
    const r = this.b.pd_replace_file(tmp, target);
    if (r < 0) throw this.failure(r, 'replace_file');
  }

  openWatchChannel(): Fd {
    const fd = this.b.pd_watch_open();
    if (fd < 0) throw this.failure(fd, 'watch_open');
    return fd as Fd;
  }

  watchReadable(channel: Fd, fd: Fd): number {
    checkFd('channel', channel);
    checkFd('fd', fd);
    const r = this.b.pd_watch_readable(channel, fd);
    if (r < 0) throw this.failure(r, 'watch');
    return r;
  }

  watch(channel: Fd, pidfd: Fd): number {
    checkFd('channel', channel);
    checkFd('pidfd', pidfd);
    const r = this.b.pd_watch(channel, pidfd);
    if (r < 0) throw this.failure(r, 'watch');
    return r;
  }

  /** Throws NativeError ENOENT for a channel that is not open (or already closed). */
  closeWatchChannel(channel: Fd): void {
    checkFd('channel', channel);
    const r = this.b.pd_watch_close(channel);
    if (r < 0) throw this.failure(r, 'watch_close');
  }

  /**
   * Idempotent: unwatching a token that is not watched (never was, or its exit has
   * already been reported) is not an error. A record that had already been written
   * to the pipe before this call can still be read; consumers drop unknown tokens.
   */
  unwatch(token: number): void {
    checkToken('token', token);
    const r = this.b.pd_unwatch(token);
    if (r < 0 && -r !== 2 /* ENOENT */) throw this.failure(r, 'unwatch');
  }

  namespaceType(fd: Fd): number {
    checkFd('fd', fd);
    const r = this.b.pd_ns_type(fd);
    if (r < 0) throw this.failure(r, 'ns_type');
    return r;
  }

  userNamespaceMaps(fd: Fd): UserNamespaceMaps {
    checkFd('fd', fd);
    const r = this.b.pd_userns_maps(fd);
    if (r < 0) throw this.failure(r, 'userns_maps');
    return { uidMap: this.b.pd_last_uid_map(), gidMap: this.b.pd_last_gid_map() };
  }

  idmapRootfs(pidfd: Fd, rootfs: string): void {
    checkFd('pidfd', pidfd);
    const r = this.b.pd_idmap_rootfs(pidfd, checkPath('rootfs', rootfs));
    if (r < 0) throw this.failure(r, 'idmap_rootfs');
  }

  raiseRlimit(pid: number, resource: number, hard: bigint): boolean {
    checkPid('pid', pid);
    if (!Number.isInteger(resource) || resource < 0 || resource > 15) throw new RangeError(`resource: ${resource} is not an RLIMIT_* number`);
    if (hard < 0n || hard > 0xffffffffffffffffn) throw new RangeError(`hard: ${hard} is not a u64`);
    const r = this.b.pd_raise_rlimit(pid, resource, Number(hard >> 32n), Number(hard & 0xffffffffn));
    if (r < 0) throw this.failure(r, 'prlimit');
    return r === 1;
  }

  kvmProbe(path = '/dev/kvm'): KvmInfo {
    const p = checkPath('path', path);
    const r = this.b.pd_kvm_probe(p);
    if (r < 0) return { available: false, reason: this.failure(r, 'kvm').message };
    const extensions = {} as Record<KvmExtension, number>;
    for (const [name, cap] of Object.entries(KVM_EXTENSIONS) as Array<[KvmExtension, number]>) {
      const v = this.b.pd_kvm_extension(p, cap);
      // The device opened a moment ago: a failure now (it went away) reads as absent.
      extensions[name] = v < 0 ? 0 : v;
    }
    return { available: true, apiVersion: r, extensions };
  }

  mknodChar(path: string, major: number, minor: number, mode: number, uid: number, gid: number): void {
    checkId('uid', uid);
    checkId('gid', gid);
    for (const [k, v] of [['major', major], ['minor', minor], ['mode', mode]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > (k === 'mode' ? 0o7777 : 0xfffff)) throw new PaddockError('EINVALID_ARGUMENT', `${k} out of range: ${v}`, { field: k });
    }
    const r = this.b.pd_mknod_char(checkPath('path', path), major, minor, mode, uid, gid);
    if (r < 0) throw this.failure(r, 'mknod');
  }

  oomEventfd(memoryCgroupDir: string): Fd {
    const r = this.b.pd_oom_eventfd(checkPath('memoryCgroupDir', memoryCgroupDir));
    if (r < 0) throw this.failure(r, 'oom_eventfd');
    return r as Fd;
  }

  bindInto(pidfd: Fd, source: string, target: string): void {
    checkFd('pidfd', pidfd);
    const r = this.b.pd_bind_into(pidfd, checkPath('source', source), checkPath('target', target));
    if (r < 0) throw this.failure(r, 'bind_into');
  }

  consoleListen(path: string, uid: number, gid: number): Fd {
    checkSocketPath('path', path);
    checkId('uid', uid);
    checkId('gid', gid);
    const fd = this.b.pd_console_listen(path, uid, gid);
    if (fd < 0) throw this.failure(fd, 'console_listen');
    return fd as Fd;
  }

  consoleAccept(listenFd: Fd, expectPid: number, timeoutMs: number): Fd {
    checkFd('listenFd', listenFd);
    checkPid('expectPid', expectPid);
    checkTimeout('timeoutMs', timeoutMs);
    const fd = this.b.pd_console_accept(listenFd, expectPid, timeoutMs);
    if (fd < 0) throw this.failure(fd, 'console_accept');
    return fd as Fd;
  }

  sendFd(path: string, fd: Fd, name: string): void {
    checkSocketPath('path', path);
    checkFd('fd', fd);
    checkName('name', name);
    const r = this.b.pd_send_fd(path, fd, name);
    if (r < 0) throw this.failure(r, 'console_send');
  }

  attachDeviceProgram(cgroupDir: string, insns: Buffer): void {
    checkPath('cgroupDir', cgroupDir);
    checkInsns('insns', insns);
    const r = this.b.pd_devbpf_attach(cgroupDir, insns, insns.length / 8);
    if (r < 0) {
      const e = this.failure(r, 'bpf_device');
      if (e.step !== 'bpf_prog_load') throw e;
      // The whole verifier log, not only the tail C had room for.
      const log = this.b.pd_last_bpf_log().trim();
      throw new NativeError(e.step, e.errno, e.errnoName, log ? `verifier log:\n${log}` : 'no verifier log');
    }
  }

  deviceProgramCount(cgroupDir: string): number {
    checkPath('cgroupDir', cgroupDir);
    const r = this.b.pd_devbpf_count(cgroupDir);
    if (r < 0) throw this.failure(r, 'bpf_prog_query');
    return r;
  }
}

let singleton: FfiNative | undefined;

/** The process-wide native facade. Throws PaddockError ENATIVE_UNAVAILABLE. */
export function loadNative(): NativeFacade {
  singleton ??= new FfiNative(openBinding());
  return singleton;
}

/** Parses the watcher's 16-byte little-endian records (whole records only). */
export function parseWatchRecords(buf: Buffer): WatchedExit[] {
  const out: WatchedExit[] = [];
  for (let off = 0; off + 16 <= buf.length; off += 16) {
    out.push({
      token: buf.readUInt32LE(off),
      reaped: buf.readInt32LE(off + 4) !== 0,
      exitCode: buf.readInt32LE(off + 8),
      signal: buf.readInt32LE(off + 12),
    });
  }
  return out;
}
