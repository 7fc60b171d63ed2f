/**
 * paddock wire format v1 — message types, tags and the typed shapes the TypeScript
 * encoder and decoder work with. The byte layout is specified in docs/protocol.md and
 * mirrored by protocols/c/paddock_proto.h; a test compares the two tables.
 */

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 12;
export const MAX_BODY = 1 << 20;
export const MAX_STR = 4096;
export const MAX_TEXT = 1 << 20;
/** SECCOMP_BPF: struct sock_filter[] (8 bytes each), at most BPF_MAXINSNS = 4096. */
export const SOCK_FILTER_SIZE = 8;
export const MAX_SECCOMP_BPF = 4096 * SOCK_FILTER_SIZE;

export const MsgType = {
  PING: 0x0001,
  START_CONTAINER: 0x0002,
  EXEC: 0x0003,
  PROCESSES: 0x0004,
  SIGNAL: 0x0005,
  WAIT: 0x0006,
  WAIT_PID: 0x0007,
  STACKS: 0x0009,
  DESTROY_CONTAINER: 0x000a,
  PROBE_EVENTS: 0x000b,
  /** A process CRIU restored, now init's child, becomes a container's root (decision 0040). */
  ADOPT: 0x000c,
  SANDBOX_PLAN: 0x0100,
  EV_STARTED: 0x4001,
  EV_EXITED: 0x4002,
  EV_PROBE: 0x4003,
  OK: 0x8000,
  ERROR: 0x8001,
} as const;
export type MsgTypeName = keyof typeof MsgType;

export const Tag = {
  CID: 1, PID: 2, HOST_PID: 3, SIGNO: 4, ALL: 5, PLAN: 6, EXIT_CODE: 7, SIGNAL: 8,
  TIME_NS: 9, CODE: 10, ERRNO: 11, STEP: 12, MSG: 13, PROC: 14, STATE: 15, TEXT: 16,
  SANDBOX_ID: 17, HOSTNAME: 18, DOMAINNAME: 19, LO_UP: 20, KIND: 21, LOG_SIZE_MAX: 24,
  ARG: 32, ENV: 33, CWD: 34, UID: 35, GID: 36, ADD_GID: 37, UMASK: 38,
  STDIN_PATH: 40, STDOUT_PATH: 41, STDERR_PATH: 42, STDIO_INHERIT: 43, ROOTFS: 44,
  ROOTFS_RO: 45, ROOTFS_PROPAGATION: 46, MOUNT: 47, MOUNT_SOURCE: 48, MOUNT_DEST: 49,
  MOUNT_TYPE: 50, MOUNT_FLAGS: 51, MOUNT_DATA: 52, MOUNT_PROPAGATION: 53, MASKED: 54,
  READONLY: 55, DEVICE: 56, NS_FLAGS: 57, NO_PIVOT: 58, TERMINAL: 59,
  CAP_BOUNDING: 60, CAP_EFFECTIVE: 61, CAP_PERMITTED: 62, CAP_INHERITABLE: 63, CAP_AMBIENT: 64,
  RLIMIT: 65, RLIMIT_TYPE: 66, RLIMIT_SOFT: 67, RLIMIT_HARD: 68, NO_NEW_PRIVS: 69,
  OOM_SCORE_ADJ: 70, SYSCTL: 71, SECCOMP_BPF: 72, SECCOMP_FLAGS: 73,
  CONSOLE_SOCKET: 80, CONSOLE_ROWS: 81, CONSOLE_COLS: 82, HOLD: 83, HELD_EXEC: 84,
  HOOK: 85, HOOK_KIND: 86, HOOK_PATH: 87, HOOK_TIMEOUT: 88, HOOK_STATE: 89,
  PID_NS_OF: 90, CGROUP_PROCS: 91, CGROUP_NS_OF: 92,
  // Far from the others' next numbers: several branches add tags at once (decision 0034).
  MOUNT_NS_PATH: 120,
} as const;

/** HOOK_KIND values: when paddock-init runs the hook inside the container. */
export const HookKind = { CREATE_CONTAINER: 1, START_CONTAINER: 2 } as const;

/** Error codes carried in ERROR replies (CODE tag). */
export const WireCode = {
  NOT_FOUND: 1,
  EXISTS: 2,
  LAUNCH: 3,
  BAD_MESSAGE: 4,
  BAD_STATE: 5,
  INTERNAL: 6,
  BAD_SIGNAL: 7,
} as const;

/**
 * CLONE_NEW* flags, as in <sched.h>: what plans carry (cloneFlags, NS_FLAGS) and what
 * the launcher and seccomp profiles check. One table for every side.
 */
export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/** Every namespace flag above (CLONE_NEWTIME cannot be given to clone3). */
export const ALL_NAMESPACES: number = Object.values(CLONE).reduce((a, b) => a | b, 0);

export const Kind = { CONTAINER: 1, EXEC: 2 } as const;

/**
 * An OCI createContainer or startContainer hook, run by paddock-init in the
 * container's namespaces (docs/decisions/0013).
 */
export interface HookPlan {
  readonly kind: (typeof HookKind)[keyof typeof HookKind];
  /** Absolute; createContainer: resolved on the host's root, startContainer: in the container. */
  readonly path: string;
  /** argv, args[0] included; absent/empty: [path]. */
  readonly args?: readonly string[];
  /** The environment, exactly (absent: empty). */
  readonly env?: readonly string[];
  /** Seconds until the hook's process group is killed; > 0. */
  readonly timeoutSec: number;
}
export const ProcState = { RUNNING: 1, EXITED: 2 } as const;

/** One bind or filesystem mount, fully resolved: flags are MS_* bits. */
export interface MountPlan {
  readonly source?: string;
  readonly destination: string;
  /** `bind` for bind mounts, otherwise the filesystem type. */
  readonly type: string;
  readonly flags: bigint;
  readonly data?: string;
  readonly propagation?: bigint;
}

/** Capability sets as bitmasks (bit n = capability n). */
export interface CapsPlan {
  readonly bounding: bigint;
  readonly effective: bigint;
  readonly permitted: bigint;
  readonly inheritable: bigint;
  readonly ambient: bigint;
}

/** One setrlimit(2) call: `type` is the RLIMIT_* number; RLIM_INFINITY is 2^64-1. */
export interface RlimitPlan {
  readonly type: number;
  readonly soft: bigint;
  readonly hard: bigint;
}

/**
 * What paddock-init executes for a container root process or an exec'd process.
 * Everything is resolved on the TypeScript side; C only executes it.
 */
export interface ProcessPlan {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd?: string;
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids?: readonly number[];
  readonly umask?: number;
  readonly stdinPath?: string;
  readonly stdoutPath?: string;
  readonly stderrPath?: string;
  /** Bits 0/1/2: hand init's own fd 0/1/2 to the process. */
  readonly stdioInherit?: number;
  /** Container plans only. */
  readonly rootfs?: string;
  readonly rootfsReadonly?: boolean;
  readonly rootfsPropagation?: bigint;
  readonly mounts?: readonly MountPlan[];
  readonly maskedPaths?: readonly string[];
  readonly readonlyPaths?: readonly string[];
  readonly devices?: readonly string[];
  readonly nsFlags?: number;
  readonly noPivot?: boolean;
  readonly terminal?: boolean;
  /** All five sets, exactly; absent is the same as all empty (paddock-init fails closed). */
  readonly capabilities?: CapsPlan;
  readonly rlimits?: readonly RlimitPlan[];
  readonly noNewPrivileges?: boolean;
  readonly oomScoreAdj?: number;
  /** Container plans only: "key=value", key with dots (net.ipv4.ip_forward). */
  readonly sysctls?: readonly string[];
  /**
   * A classic BPF program (struct sock_filter[], a non-zero multiple of 8 bytes, at
   * most 4096 instructions) loaded with seccomp(SECCOMP_SET_MODE_FILTER) as the last
   * step before execve. Absent: no filter.
   */
  readonly seccompBpf?: Buffer;
  /** SECCOMP_FILTER_FLAG_* for that call; only meaningful with seccompBpf. */
  readonly seccompFlags?: number;
  /**
   * With `terminal`: the unix socket paddock-init connects to and sends the pty
   * master over (SCM_RIGHTS). A terminal plan without it fails the launch.
   */
  readonly consoleSocket?: string;
  /** Initial pty size (process.consoleSize); absent or 0: the kernel's default. */
  readonly consoleRows?: number;
  readonly consoleCols?: number;
  /**
   * Container plans only: the process stops just before execve and waits for the
   * next START_CONTAINER of the same container (create/start with a terminal).
   */
  readonly hold?: boolean;
  /** Container plans only: createContainer/startContainer hooks, in order. */
  readonly hooks?: readonly HookPlan[];
  /**
   * Container plans only, with hooks: the state JSON object the hooks read on stdin,
   * without `status` and `pid`; init adds both before the closing brace.
   */
  readonly hookState?: string;
  /**
   * Container plans only: the id of a running container of the sandbox whose pid
   * namespace this container joins instead of getting one of its own (a pod's shared
   * process namespace). Its NS_FLAGS then carry no CLONE_NEWPID.
   */
  readonly pidNsOf?: string;
  /**
   * `cgroup.procs` files, as paddock-init sees them, that the new process writes "0" to
   * first (joining those cgroups itself): a container before it makes or joins its
   * cgroup namespace, so that namespace is rooted at its own cgroup; an exec'd process
   * before it joins the container's namespaces, so none of it runs elsewhere.
   */
  readonly cgroupProcs?: readonly string[];
  /**
   * Container plans only: the id of a running container of the sandbox whose cgroup
   * namespace this container joins (after its cgroupProcs) instead of making one. Its
   * NS_FLAGS then carry no CLONE_NEWCGROUP.
   */
  readonly cgroupNsOf?: string;
  /**
   * Container plans only: the mount namespace file (linux.namespaces[i].path, as init
   * sees it) the container joins and sets its rootfs up in, as runc does, instead of
   * making one. Its NS_FLAGS then carry no CLONE_NEWNS.
   */
  readonly mountNsPath?: string;
}

export interface ProcRow {
  readonly cid: string;
  readonly pid: number;
  readonly hostPid: number;
  readonly kind: number;
  readonly state: number;
  readonly exitCode?: number;
  readonly signal?: number;
}

/** Decoded messages, discriminated by `type`. */
export type Message =
  | { type: 'PING' }
  | { type: 'START_CONTAINER'; cid: string; plan: ProcessPlan }
  | { type: 'EXEC'; cid: string; plan: ProcessPlan }
  | { type: 'PROCESSES'; cid?: string }
  | { type: 'SIGNAL'; cid: string; signo: number; pid?: number; all?: boolean }
  | { type: 'WAIT'; cid: string }
  | { type: 'WAIT_PID'; cid: string; pid: number }
  | { type: 'STACKS' }
  | { type: 'DESTROY_CONTAINER'; cid: string }
  | { type: 'PROBE_EVENTS' }
  | { type: 'ADOPT'; cid: string; pid: number }
  | {
      type: 'SANDBOX_PLAN';
      sandboxId: string;
      hostname?: string;
      domainname?: string;
      loUp?: boolean;
      /** Bytes a container output file may reach before paddock-init rotates it; absent or 0: no cap. */
      logSizeMax?: bigint;
    }
  | { type: 'EV_STARTED'; cid: string; pid: number; hostPid: number; kind: number }
  | {
      type: 'EV_EXITED';
      cid: string;
      pid: number;
      hostPid: number;
      kind: number;
      exitCode: number;
      signal: number;
      timeNs: bigint;
    }
  | { type: 'EV_PROBE' }
  | {
      type: 'OK';
      pid?: number;
      hostPid?: number;
      state?: number;
      exitCode?: number;
      signal?: number;
      text?: string;
      procs?: ProcRow[];
      /** A prepared container waits in paddock-hold: fds 5 and 7 release it directly. */
      heldExec?: number;
    }
  | { type: 'ERROR'; code: number; errno?: number; step?: string; msg?: string };

export type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;
