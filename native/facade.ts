/**
 * The typed interface over libpaddock, paddock's C layer (namespace launch, pidfds,
 * file exchange, device programs, KVM): the real implementation is `native/ffi.ts`, the
 * fake used by machine tests is `native/fake.ts`. libseccomp is the other native door
 * (seccomp-ffi.ts, seccomp-compile.ts). Nothing outside native/ imports ffi-rs.
 */

/** A file descriptor owned by the supervisor process. */
export type Fd = number & { readonly __brand: 'Fd' };
/** A pid in the supervisor's (host) pid namespace. */
export type HostPid = number & { readonly __brand: 'HostPid' };

export interface LaunchInitRequest {
  /** Path of the paddock-init binary; the facade executes a sealed memfd copy of it. */
  readonly initPath: string;
  /** The sandbox's state directory; passed to init as argv[1]. */
  readonly sandboxDir: string;
  /** CLONE_NEW* flags for the sandbox (user, pid, mount, ipc, uts, net, cgroup). */
  readonly cloneFlags: number;
  /** Text written to /proc/<pid>/uid_map before init goes on ("0 100000 65536\n"). */
  readonly uidMap?: string;
  readonly gidMap?: string;
  /** Fds that become init's 0, 1, 2; undefined means /dev/null. */
  readonly stdio?: readonly [number | undefined, number | undefined, number | undefined];
  /**
   * Existing namespaces init joins instead of creating them (linux.namespaces[].path):
   * CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWUSER, CLONE_NEWCGROUP or CLONE_NEWPID, each at most once and
   * not also in cloneFlags, with an open fd of the namespace file. The caller keeps the
   * fds. With a user namespace, uidMap and gidMap must be absent and the cloneFlags
   * namespaces are created from inside it (docs/decisions/0021).
   */
  readonly joinNamespaces?: readonly { readonly type: number; readonly fd: number }[];
  /**
   * Where init is born: the v1 `tasks` files of its cgroup, which the launch child
   * writes "0" to before it runs anything (a thread moving itself is the one move that
   * skips the kernel's global lock and its RCU grace period), and its cgroup2
   * directory, which clone3 places it in (CLONE_INTO_CGROUP). Best effort: the caller
   * still checks /proc/PID/cgroup and moves init wherever it is not (SandboxCgroup.place).
   */
  readonly cgroup?: { readonly tasks: readonly string[]; readonly dir?: string };
}

/** A unix socket peer's pid, uid and gid, as the kernel recorded them at connect(2). */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface UserNamespaceMaps {
  /** "0 100000 65536\n" lines, as /proc/PID/uid_map shows them. */
  readonly uidMap: string;
  readonly gidMap: string;
}

export interface LaunchedInit {
  readonly pid: HostPid;
  /** pidfd from clone3(CLONE_PIDFD), O_CLOEXEC. */
  readonly pidfd: Fd;
  /** Read end of init's readiness pipe (its fd 3): one OK or ERROR message, then EOF. */
  readonly readyFd: Fd;
}

/** One exit seen by the pidfd watcher. */
export interface WatchedExit {
  readonly token: number;
  /**
   * True when the watcher reaped the process (it was our child) and `exitCode`/
   * `signal` are its real status; false for a reattached process (not our child):
   * the status must then come from the sandbox's exits.log.
   */
  readonly reaped: boolean;
  readonly exitCode: number;
  readonly signal: number;
}

/** The KVM capabilities paddock reports (KVM_CHECK_EXTENSION numbers, linux/kvm.h). */
export const KVM_EXTENSIONS = Object.freeze({
  irqchip: 0,
  hlt: 1,
  userMemory: 3,
  setTssAddr: 4,
  extCpuid: 7,
  nrVcpus: 9,
  nrMemslots: 10,
  maxVcpus: 66,
  immediateExit: 136,
} as const);

export type KvmExtension = keyof typeof KVM_EXTENSIONS;

export interface KvmInfo {
  readonly available: boolean;
  /** 12 when available: the only stable KVM API. */
  readonly apiVersion?: number;
  /**
   * KVM_CHECK_EXTENSION of each of {@link KVM_EXTENSIONS} when available: 0 absent,
   * 1 present, or a count (nrVcpus, maxVcpus, nrMemslots).
   */
  readonly extensions?: Readonly<Record<KvmExtension, number>>;
  /** Why not, when unavailable (`open_kvm: ENOENT (/dev/kvm)`). */
  readonly reason?: string;
}

export interface NativeFacade {
  /** clone3 + namespaces + id maps + execve(paddock-init). Throws NativeError. */
  launchInit(req: LaunchInitRequest): LaunchedInit;
  /**
   * The sealed memfd copy of paddock-init that launches execute: made once per version
   * of the file, then shared by every sandbox. Owned by the native layer: never closed
   * by the caller. Throws NativeError.
   */
  initImage(initPath: string): Fd;
  /** pidfd_open(2) for a process we did not start (reattach). Throws NativeError. */
  pidfdOpen(pid: number): Fd;
  /** pidfd_getfd(2): a close-on-exec copy of fd `target` of that process. Throws NativeError. */
  pidfdGetfd(pidfd: Fd, target: number): Fd;
  /** fcntl(F_SETFL) adding O_APPEND to fd's open file description (shared with every dup of it). Throws NativeError. */
  fdSetAppend(fd: Fd): void;
  /** poll(2) on one fd, blocking the caller up to timeoutMs: true once readable (or at EOF). */
  waitReadable(fd: Fd, timeoutMs: number): boolean;
  /** pidfd_send_signal(2). Throws NativeError (ESRCH once the process is gone). */
  pidfdSendSignal(pidfd: Fd, signal: number): void;
  closeFd(fd: Fd): void;
  /** SO_PEERCRED of a connected unix socket (as at connect time): who called paddockd. Throws NativeError (step peercred). */
  peerCredentials(fd: number): PeerCredentials;
  /** mkfifo(3) with the given mode. Throws NativeError. */
  mkfifo(path: string, mode: number): void;
  /**
   * Puts the file `tmp` in place of `target` (same directory) atomically, without the
   * flush ext4 does when rename(2) replaces a file. Afterwards `tmp` holds the old
   * target (exchanged) or is gone (renamed, where the filesystem cannot exchange).
   * Throws NativeError.
   */
  replaceFile(tmp: string, target: string): void;
  /** Opens an exit channel: the read end of a pipe on which the one watcher thread reports exits (16-byte records {u32 token, i32 reaped, i32 code, i32 signal} LE) of the pidfds watched through it. Each engine opens its own; two readers never share a pipe. */
  openWatchChannel(): Fd;
  /** Watch `pidfd` (the watcher keeps its own dup) on `channel`; returns a process-wide unique token. */
  watch(channel: Fd, pidfd: Fd): number;
  /**
   * Watch any fd (an OOM eventfd) on `channel`: one record (reaped false) the first
   * time it is readable, then the watch ends, as a pidfd's does; the caller drains the
   * fd and watches it again.
   */
  watchReadable(channel: Fd, fd: Fd): number;
  /** Stop watching `token` (no record will be written for it). Idempotent. */
  unwatch(token: number): void;
  /** Unwatch everything on the channel and close the watcher's end; the caller closes the read end. */
  closeWatchChannel(channel: Fd): void;
  /** The CLONE_NEW* type of an open namespace file (NS_GET_NSTYPE). Throws NativeError (ENOTTY: not a namespace). */
  namespaceType(fd: Fd): number;
  /**
   * The uid_map and gid_map text of the user namespace open at `fd`, as read from inside
   * it (ids relative to its parent). Throws NativeError: step setns (EINVAL for the
   * caller's own user namespace, EPERM), uid_map or gid_map.
   */
  userNamespaceMaps(fd: Fd): UserNamespaceMaps;
  /**
   * Shows `rootfs` to the sandbox whose init is `pidfd` through an idmapped mount
   * (docs/decisions/0028): a recursive clone idmapped to init's user namespace, mounted
   * over the same path in init's mount namespace only. Throws NativeError (steps
   * idmap_userns, idmap_open_tree, idmap_mount_setattr, idmap_setns, idmap_move_mount).
   */
  idmapRootfs(pidfd: Fd, rootfs: string): void;
  /**
   * Raises process `pid`'s hard limit `resource` (an RLIMIT_* number) to at least
   * `hard`, its soft limit untouched; true when raised, false when already there. For
   * paddock-init inside a user namespace, before it forks a container whose rlimits
   * exceed what it inherited (actors/containers/rlimits.ts). Throws NativeError (step prlimit).
   */
  raiseRlimit(pid: number, resource: number, hard: bigint): boolean;
  /**
   * Probe `path` (default /dev/kvm): KVM_GET_API_VERSION == 12 with
   * KVM_CAP_USER_MEMORY, and the extensions of {@link KVM_EXTENSIONS}. Never throws.
   */
  kvmProbe(path?: string): KvmInfo;
  /**
   * Binds `source` (a file) over `target` inside the mount namespace of the init
   * behind `pidfd`, not the host's (decision 0038). Throws NativeError.
   */
  bindInto(pidfd: Fd, source: string, target: string): void;
  /**
   * cgroup v1: an eventfd (non-blocking, close-on-exec) whose counter goes up on each
   * OOM of the memory cgroup at `memoryCgroupDir`, and once when it is removed.
   * Throws NativeError.
   */
  oomEventfd(memoryCgroupDir: string): Fd;
  /** mknod of a char device with the exact mode and owner (Node has none). Throws NativeError. */
  mknodChar(path: string, major: number, minor: number, mode: number, uid: number, gid: number): void;
  /**
   * A listening unix socket at `path` (mode 0600, owned by uid:gid) on which
   * paddock-init sends a pty master (docs/decisions/0012). Throws NativeError.
   */
  consoleListen(path: string, uid: number, gid: number): Fd;
  /**
   * Accepts one connection on `listenFd` within `timeoutMs`, refuses a peer other than
   * `expectPid` (host pid of paddock-init) and returns the fd it sent. Throws NativeError
   * (ETIMEDOUT when nothing came).
   */
  consoleAccept(listenFd: Fd, expectPid: number, timeoutMs: number): Fd;
  /** Connects to the unix socket at `path` and sends `fd` with SCM_RIGHTS, `name` as payload (runc's --console-socket protocol). */
  sendFd(path: string, fd: Fd, name: string): void;
  /**
   * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (`insns`: struct bpf_insn, 8 bytes
   * each, specs/device-bpf.ts) and attaches it to the cgroup2 directory `cgroupDir`
   * with BPF_F_ALLOW_MULTI (docs/decisions/0019). Throws NativeError; a program the
   * verifier refuses fails with step `bpf_prog_load` and the verifier log in the message.
   */
  attachDeviceProgram(cgroupDir: string, insns: Buffer): void;
  /** How many device programs are attached to `cgroupDir` itself. Throws NativeError. */
  deviceProgramCount(cgroupDir: string): number;
}

/** A failed native step, as reported by C: `pivot_root: EINVAL`. */
export class NativeError extends Error {
  readonly step: string;
  readonly errno: number;
  readonly errnoName: string;
  constructor(step: string, errno: number, errnoName: string, detail?: string) {
    super(`${step}: ${errnoName}${detail ? ` (${detail})` : ''}`);
    this.name = 'NativeError';
    this.step = step;
    this.errno = errno;
    this.errnoName = errnoName;
  }
}
