/**
 * FakeNative: a deterministic NativeFacade for machine and engine unit tests. No
 * native build, no root, no real processes.
 *
 * - Every call is recorded in `calls` as `{fn, args}` (typed per method), including
 *   calls that fail. Arguments are validated exactly like FfiNative does, so a machine
 *   passing a bad fd fails under the fake too.
 * - Pids count from 1000, fds from 100 (both per instance); `failNext(fn, step, errno)`
 *   makes the next call(s) of `fn` throw NativeError(step, errno) (kvmProbe instead
 *   returns `{available: false, reason}`, as the real one does).
 * - Watching: `openWatchChannel()` makes a real pipe (a FIFO) per channel and returns
 *   its read end; `watch(channel, pidfd)` returns a token from one counter (from 1)
 *   shared by all channels, as the real watcher does; `closeWatchChannel` unwatches
 *   the channel's tokens and closes the write end (the reader sees EOF).
 * - Exits: `exit(pidOrToken, {exitCode} | {signal})` ends a fake process. Each token
 *   watching it gets a WatchedExit, delivered two ways:
 *     1. synchronously to `onExit` listeners (the simple hook for unit tests), and
 *     2. as a real 16-byte record on the pipe of the token's channel, so the same
 *        reading code as in production works.
 *   Exits the fake causes by itself (SIGKILL through pidfdSendSignal when `killExits`,
 *   the default; watch() of a process that has already exited) are delivered in a
 *   microtask, never from inside the facade call, as the real watcher is
 *   asynchronous too.
 * - `reaped` mirrors the real watcher: true for processes started by launchInit
 *   (our children, with their real status), false with exitCode -1 and signal 0 for
 *   processes reached through pidfdOpen.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { errnoName } from '../base/errno';
import {
  Fd,
  HostPid,
  KvmInfo,
  LaunchedInit,
  LaunchInitRequest,
  NativeError,
  NativeFacade,
  PeerCredentials,
  UserNamespaceMaps,
  WatchedExit,
} from './facade';
import {
  checkFd,
  checkId,
  checkInsns,
  checkLaunchRequest,
  checkMode,
  checkName,
  checkPath,
  checkPid,
  checkSignal,
  checkSocketPath,
  checkTimeout,
  checkToken,
} from './ffi';

export type FakeFn = keyof NativeFacade;
export type FakeCall = {
  [K in FakeFn]: { fn: K; args: Parameters<NativeFacade[K]> };
}[FakeFn];

export interface FakeExitStatus {
  readonly exitCode?: number;
  readonly signal?: number;
}

export interface FakeNativeOptions {
  /** SIGKILL sent with pidfdSendSignal ends the process (signal 9). Default true. */
  readonly killExits?: boolean;
  /** kvmProbe's answer when no failure is scripted. Default: available, api 12. */
  readonly kvm?: KvmInfo;
}

interface FakeProcess {
  readonly pid: number;
  /** Started by launchInit (our child) rather than reached through pidfdOpen. */
  readonly child: boolean;
  alive: boolean;
  status?: { exitCode: number; signal: number };
}

interface ScriptedFailure {
  fn: FakeFn;
  step: string;
  errno: number;
  times: number;
}

/** The watcher's wire record: {u32 token, i32 reaped, i32 exitCode, i32 signal} LE. */
export function encodeWatchRecord(e: WatchedExit): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(e.token >>> 0, 0);
  b.writeInt32LE(e.reaped ? 1 : 0, 4);
  b.writeInt32LE(e.exitCode, 8);
  b.writeInt32LE(e.signal, 12);
  return b;
}

/** A real pipe without native code: a FIFO opened at both ends, then unlinked. */
function makePipe(): { rd: number; wr: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-fake-'));
  const fifo = path.join(dir, 'pipe');
  try {
    execFileSync('mkfifo', ['-m', '600', fifo]);
    // O_NONBLOCK so opening the read end does not wait for a writer; libuv keeps the
    // reader non-blocking anyway.
    const rd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wr = fs.openSync(fifo, fs.constants.O_WRONLY);
    return { rd, wr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export class FakeNative implements NativeFacade {
  readonly calls: FakeCall[] = [];
  /** Fds handed out and not yet closed (pidfds, ready fds, pidfdOpen results). */
  readonly openFds = new Set<number>();
  /** Paths given to mkfifo (the fake creates nothing on disk). */
  readonly fifos = new Map<string, number>();

  private nextPid = 1000;
  private nextFd = 100;
  private readonly procs = new Map<number, FakeProcess>();
  private readonly pidOfFd = new Map<number, number>();
  private readonly watches = new Map<number, { pid: number; channel: number }>(); // by token
  private nextToken = 1;
  private readonly failures: ScriptedFailure[] = [];
  private readonly listeners = new Set<(e: WatchedExit) => void>();
  private readonly channels = new Map<number, { rd: number; wr: number }>(); // by read end
  private readonly images = new Map<string, Fd>(); // initImage: one per path, as the real cache
  private readonly killExits: boolean;
  private readonly kvm: KvmInfo;

  constructor(opts: FakeNativeOptions = {}) {
    this.killExits = opts.killExits ?? true;
    this.kvm = opts.kvm ?? { available: true, apiVersion: 12 };
  }

  // ----- scripting --------------------------------------------------------------

  /** The next `times` calls of `fn` fail with NativeError(step, errno). */
  failNext(fn: FakeFn, step: string, errno: number, times = 1): void {
    this.failures.push({ fn, step, errno, times });
  }

  /** Subscribes to exits; returns the unsubscribe function. */
  onExit(listener: (e: WatchedExit) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Ends a fake process, given its pid or a token watching it, and reports it to
   * every token watching it (synchronously to onExit listeners, and on the pipe).
   * `{signal: 9}` means killed; otherwise `exitCode` (default 0).
   */
  exit(pidOrToken: number, status: FakeExitStatus = {}): void {
    const proc = this.procs.get(pidOrToken) ?? this.procs.get(this.watches.get(pidOrToken)?.pid ?? -1);
    if (proc === undefined) throw new Error(`FakeNative.exit: no process or token ${pidOrToken}`);
    if (!proc.alive) throw new Error(`FakeNative.exit: pid ${proc.pid} has already exited`);
    const signal = status.signal ?? 0;
    proc.alive = false;
    proc.status = { exitCode: signal > 0 ? -1 : (status.exitCode ?? 0), signal };
    for (const [token, w] of [...this.watches]) {
      if (w.pid === proc.pid) this.report(token, proc);
    }
  }

  /** Pids launched by launchInit, in order. */
  launchedPids(): HostPid[] {
    return [...this.procs.values()].filter((p) => p.child).map((p) => p.pid as HostPid);
  }

  isAlive(pid: number): boolean {
    return this.procs.get(pid)?.alive ?? false;
  }

  /** Tokens currently watched. */
  watchedTokens(): number[] {
    return [...this.watches.keys()];
  }

  /** Read ends of the channels open now (opened and not closed with closeWatchChannel). */
  openChannels(): Fd[] {
    return [...this.channels.keys()] as Fd[];
  }

  /**
   * Closes both ends of every channel still open. Only for channels whose reader has
   * not closed its read end itself: that fd number may belong to something else now.
   */
  dispose(): void {
    for (const ch of [...this.channels.values()]) {
      for (const fd of [ch.rd, ch.wr]) {
        try {
          fs.closeSync(fd);
        } catch {
          // the reader may have closed its end already
        }
      }
    }
    this.channels.clear();
    this.watches.clear();
  }

  // ----- NativeFacade -----------------------------------------------------------

  launchInit(req: LaunchInitRequest): LaunchedInit {
    this.record({ fn: 'launchInit', args: [req] });
    checkLaunchRequest(req);
    this.maybeFail('launchInit');
    const pid = this.nextPid++;
    this.procs.set(pid, { pid, child: true, alive: true });
    const pidfd = this.newFd(pid);
    const readyFd = this.newFd();
    return { pid: pid as HostPid, pidfd, readyFd };
  }

  initImage(initPath: string): Fd {
    this.record({ fn: 'initImage', args: [initPath] });
    this.maybeFail('initImage');
    let fd = this.images.get(initPath);
    if (fd === undefined) {
      fd = this.newFd();
      this.images.set(initPath, fd);
    }
    return fd;
  }

  pidfdOpen(pid: number): Fd {
    this.record({ fn: 'pidfdOpen', args: [pid] });
    checkPid('pid', pid);
    this.maybeFail('pidfdOpen');
    let proc = this.procs.get(pid);
    if (proc === undefined) {
      proc = { pid, child: false, alive: true };
      this.procs.set(pid, proc);
    }
    if (!proc.alive) throw this.nativeError('pidfd_open', 3 /* ESRCH */);
    return this.newFd(pid);
  }

  /** The fake has no processes with fds: ENOSYS, so callers take their fallback. */
  pidfdGetfd(pidfd: Fd, target: number): Fd {
    this.record({ fn: 'pidfdGetfd', args: [pidfd, target] });
    checkFd('pidfd', pidfd);
    this.maybeFail('pidfdGetfd');
    this.procOfFd(pidfd, 'pidfd_getfd');
    throw this.nativeError('pidfd_getfd', 38 /* ENOSYS */);
  }

  /** The fake's fds are numbers only: recorded, nothing to change. */
  fdSetAppend(fd: Fd): void {
    this.record({ fn: 'fdSetAppend', args: [fd] });
    checkFd('fd', fd);
    this.maybeFail('fdSetAppend');
  }

  /** No fd of the fake is ever readable: the wait times out at once. */
  waitReadable(fd: Fd, timeoutMs: number): boolean {
    this.record({ fn: 'waitReadable', args: [fd, timeoutMs] });
    checkFd('fd', fd);
    this.maybeFail('waitReadable');
    return false;
  }

  pidfdSendSignal(pidfd: Fd, signal: number): void {
    this.record({ fn: 'pidfdSendSignal', args: [pidfd, signal] });
    checkFd('pidfd', pidfd);
    checkSignal('signal', signal);
    this.maybeFail('pidfdSendSignal');
    const proc = this.procOfFd(pidfd, 'pidfd_send_signal');
    if (!proc.alive) throw this.nativeError('pidfd_send_signal', 3 /* ESRCH */);
    if (signal === 9 && this.killExits) {
      queueMicrotask(() => {
        if (proc.alive) this.exit(proc.pid, { signal: 9 });
      });
    }
  }

  /** No sockets in the fake: paddockd is exercised against the real layer only. */
  peerCredentials(fd: number): PeerCredentials {
    this.record({ fn: 'peerCredentials', args: [fd] });
    this.maybeFail('peerCredentials');
    throw this.nativeError('peercred', 88 /* ENOTSOCK */, `fd ${fd}`);
  }

  closeFd(fd: Fd): void {
    this.record({ fn: 'closeFd', args: [fd] });
    checkFd('fd', fd);
    this.maybeFail('closeFd');
    if (!this.openFds.delete(fd)) throw this.nativeError('close', 9 /* EBADF */, `fd ${fd}`);
    this.pidOfFd.delete(fd);
  }

  /** A real rename: the engine's state files are real files even with the fake. */
  replaceFile(tmp: string, target: string): void {
    this.record({ fn: 'replaceFile', args: [tmp, target] });
    checkPath('tmp', tmp);
    checkPath('target', target);
    this.maybeFail('replaceFile');
    fs.renameSync(tmp, target);
  }

  mkfifo(path: string, mode: number): void {
    this.record({ fn: 'mkfifo', args: [path, mode] });
    checkPath('path', path);
    checkMode('mode', mode);
    this.maybeFail('mkfifo');
    if (this.fifos.has(path)) throw this.nativeError('mkfifo', 17 /* EEXIST */, path);
    this.fifos.set(path, mode);
  }

  openWatchChannel(): Fd {
    this.record({ fn: 'openWatchChannel', args: [] });
    this.maybeFail('openWatchChannel');
    const pipe = makePipe();
    this.channels.set(pipe.rd, pipe);
    return pipe.rd as Fd;
  }

  /** Records the call; the fd never becomes readable here (no OOM in a fake). */
  watchReadable(channel: Fd, fd: Fd): number {
    this.record({ fn: 'watchReadable', args: [channel, fd] });
    checkFd('channel', channel);
    checkFd('fd', fd);
    this.maybeFail('watchReadable');
    let token = this.nextToken;
    while (token === 0 || this.watches.has(token)) token = (token + 1) >>> 0;
    this.nextToken = (token + 1) >>> 0 || 1;
    return token;
  }

  watch(channel: Fd, pidfd: Fd): number {
    this.record({ fn: 'watch', args: [channel, pidfd] });
    checkFd('channel', channel);
    checkFd('pidfd', pidfd);
    this.maybeFail('watch');
    const proc = this.procOfFd(pidfd, 'watch');
    if (!this.channels.has(channel)) throw this.nativeError('watch', 2 /* ENOENT */, `channel ${channel}`);
    let token = this.nextToken;
    while (token === 0 || this.watches.has(token)) token = (token + 1) >>> 0;
    this.nextToken = (token + 1) >>> 0 || 1;
    this.watches.set(token, { pid: proc.pid, channel });
    if (!proc.alive) {
      // Like a pidfd that is readable at once: reported soon, not from inside watch().
      queueMicrotask(() => {
        if (this.watches.get(token)?.pid === proc.pid) this.report(token, proc);
      });
    }
    return token;
  }

  unwatch(token: number): void {
    this.record({ fn: 'unwatch', args: [token] });
    checkToken('token', token);
    this.maybeFail('unwatch');
    this.watches.delete(token); // idempotent, as FfiNative.unwatch
  }

  closeWatchChannel(channel: Fd): void {
    this.record({ fn: 'closeWatchChannel', args: [channel] });
    checkFd('channel', channel);
    this.maybeFail('closeWatchChannel');
    const ch = this.channels.get(channel);
    if (ch === undefined) throw this.nativeError('watch_close', 2 /* ENOENT */, `channel ${channel}`);
    for (const [token, w] of [...this.watches]) if (w.channel === channel) this.watches.delete(token);
    this.channels.delete(channel);
    fs.closeSync(ch.wr); // the reader now sees EOF; its read end stays its own
  }

  /** Types namespaceType() reports, by fd; any other fd is not a namespace (ENOTTY). */
  readonly namespaceTypes = new Map<number, number>();

  namespaceType(fd: Fd): number {
    this.record({ fn: 'namespaceType', args: [fd] });
    checkFd('fd', fd);
    this.maybeFail('namespaceType');
    const t = this.namespaceTypes.get(fd);
    if (t === undefined) throw new NativeError('ns_type', 25, 'ENOTTY', `fd ${fd}`);
    return t;
  }

  /** Maps userNamespaceMaps() reports, by fd; any other fd fails setns with EINVAL. */
  readonly userNamespaceMapsByFd = new Map<number, UserNamespaceMaps>();

  userNamespaceMaps(fd: Fd): UserNamespaceMaps {
    this.record({ fn: 'userNamespaceMaps', args: [fd] });
    checkFd('fd', fd);
    this.maybeFail('userNamespaceMaps');
    const m = this.userNamespaceMapsByFd.get(fd);
    if (m === undefined) throw new NativeError('setns', 22, 'EINVAL', `fd ${fd}`);
    return m;
  }

  idmapRootfs(pidfd: Fd, rootfs: string): void {
    this.record({ fn: 'idmapRootfs', args: [pidfd, rootfs] });
    checkFd('pidfd', pidfd);
    this.maybeFail('idmapRootfs');
  }

  raiseRlimit(pid: number, resource: number, hard: bigint): boolean {
    this.record({ fn: 'raiseRlimit', args: [pid, resource, hard] });
    this.maybeFail('raiseRlimit');
    return true;
  }

  oomEventfd(memoryCgroupDir: string): Fd {
    this.record({ fn: 'oomEventfd', args: [memoryCgroupDir] });
    this.maybeFail('oomEventfd');
    // A real fd that never becomes readable, so watching and closing it work as with the real one.
    return fs.openSync('/dev/null', 'r') as Fd;
  }

  mknodChar(path: string, major: number, minor: number, mode: number, uid: number, gid: number): void {
    this.record({ fn: 'mknodChar', args: [path, major, minor, mode, uid, gid] });
    this.maybeFail('mknodChar');
  }

  bindInto(pidfd: Fd, source: string, target: string): void {
    this.record({ fn: 'bindInto', args: [pidfd, source, target] });
    checkFd('pidfd', pidfd);
    this.maybeFail('bindInto');
  }

  kvmProbe(path = '/dev/kvm'): KvmInfo {
    this.record({ fn: 'kvmProbe', args: [path] });
    try {
      this.maybeFail('kvmProbe');
    } catch (e) {
      return { available: false, reason: (e as Error).message };
    }
    return this.kvm;
  }

  /**
   * consoleListen/consoleAccept/sendFd: the fake hands out an fd per accept and
   * records where each was sent (nothing touches the disk).
   */
  readonly sentFds: Array<{ path: string; fd: number; name: string }> = [];

  consoleListen(path: string, uid: number, gid: number): Fd {
    this.record({ fn: 'consoleListen', args: [path, uid, gid] });
    checkSocketPath('path', path);
    checkId('uid', uid);
    checkId('gid', gid);
    this.maybeFail('consoleListen');
    return this.newFd();
  }

  consoleAccept(listenFd: Fd, expectPid: number, timeoutMs: number): Fd {
    this.record({ fn: 'consoleAccept', args: [listenFd, expectPid, timeoutMs] });
    checkFd('listenFd', listenFd);
    checkPid('expectPid', expectPid);
    checkTimeout('timeoutMs', timeoutMs);
    this.maybeFail('consoleAccept');
    if (!this.openFds.has(listenFd)) throw this.nativeError('console_accept', 9 /* EBADF */, `fd ${listenFd}`);
    return this.newFd();
  }

  sendFd(path: string, fd: Fd, name: string): void {
    this.record({ fn: 'sendFd', args: [path, fd, name] });
    checkSocketPath('path', path);
    checkFd('fd', fd);
    checkName('name', name);
    this.maybeFail('sendFd');
    this.sentFds.push({ path, fd, name });
  }

  /** Device programs attached by attachDeviceProgram, by cgroup directory (nothing touches the disk). */
  readonly devicePrograms = new Map<string, Buffer[]>();

  attachDeviceProgram(cgroupDir: string, insns: Buffer): void {
    this.record({ fn: 'attachDeviceProgram', args: [cgroupDir, insns] });
    checkPath('cgroupDir', cgroupDir);
    checkInsns('insns', insns);
    this.maybeFail('attachDeviceProgram');
    this.devicePrograms.set(cgroupDir, [...(this.devicePrograms.get(cgroupDir) ?? []), Buffer.from(insns)]);
  }

  deviceProgramCount(cgroupDir: string): number {
    this.record({ fn: 'deviceProgramCount', args: [cgroupDir] });
    checkPath('cgroupDir', cgroupDir);
    this.maybeFail('deviceProgramCount');
    return this.devicePrograms.get(cgroupDir)?.length ?? 0;
  }

  // ----- internals --------------------------------------------------------------

  private record(call: FakeCall): void {
    this.calls.push(call);
  }

  private maybeFail(fn: FakeFn): void {
    const i = this.failures.findIndex((f) => f.fn === fn);
    if (i < 0) return;
    const f = this.failures[i]!;
    if (--f.times <= 0) this.failures.splice(i, 1);
    throw this.nativeError(f.step, f.errno);
  }

  private nativeError(step: string, errno: number, detail?: string): NativeError {
    return new NativeError(step, errno, errnoName(errno), detail);
  }

  private newFd(pid?: number): Fd {
    const fd = this.nextFd++;
    this.openFds.add(fd);
    if (pid !== undefined) this.pidOfFd.set(fd, pid);
    return fd as Fd;
  }

  private procOfFd(fd: number, step: string): FakeProcess {
    const pid = this.pidOfFd.get(fd);
    const proc = pid === undefined ? undefined : this.procs.get(pid);
    if (proc === undefined) throw this.nativeError(step, 9 /* EBADF */, `fd ${fd} is not a pidfd`);
    return proc;
  }

  private report(token: number, proc: FakeProcess): void {
    const channel = this.watches.get(token)?.channel;
    this.watches.delete(token);
    const st = proc.status ?? { exitCode: -1, signal: 0 };
    const e: WatchedExit = proc.child
      ? { token, reaped: true, exitCode: st.exitCode, signal: st.signal }
      : { token, reaped: false, exitCode: -1, signal: 0 };
    const ch = channel === undefined ? undefined : this.channels.get(channel);
    if (ch !== undefined) {
      try {
        fs.writeSync(ch.wr, encodeWatchRecord(e));
      } catch {
        // EPIPE: the reader closed its end without closing the channel; as the real one
      }
    }
    for (const l of [...this.listeners]) l(e);
  }
}
