/**
 * Per-tag value kinds, per-scope tag sets and limits from docs/protocol.md. Shared
 * by encode.ts, decode.ts and dump.ts; protocols/c/decode.c holds the same tables.
 */
import { MAX_SECCOMP_BPF, MsgType, MsgTypeName, SOCK_FILTER_SIZE, Tag } from './messages';

/** `bytes`: raw bytes (NUL allowed); per-tag length rules in checkBytes(). */
export type ValueKind = 'u32' | 'i32' | 'u64' | 'str' | 'nest' | 'bytes';

const T = Tag;

export const TAG_KIND: ReadonlyMap<number, ValueKind> = new Map<number, ValueKind>([
  [T.CID, 'str'], [T.PID, 'i32'], [T.HOST_PID, 'i32'], [T.SIGNO, 'i32'], [T.ALL, 'u32'],
  [T.PLAN, 'nest'], [T.EXIT_CODE, 'i32'], [T.SIGNAL, 'i32'], [T.TIME_NS, 'u64'],
  [T.CODE, 'u32'], [T.ERRNO, 'i32'], [T.STEP, 'str'], [T.MSG, 'str'], [T.PROC, 'nest'],
  [T.STATE, 'u32'], [T.TEXT, 'str'], [T.SANDBOX_ID, 'str'], [T.HOSTNAME, 'str'],
  [T.DOMAINNAME, 'str'], [T.LO_UP, 'u32'], [T.KIND, 'u32'], [T.LOG_SIZE_MAX, 'u64'],
  [T.ARG, 'str'], [T.ENV, 'str'], [T.CWD, 'str'], [T.UID, 'u32'], [T.GID, 'u32'],
  [T.ADD_GID, 'u32'], [T.UMASK, 'u32'], [T.STDIN_PATH, 'str'], [T.STDOUT_PATH, 'str'],
  [T.STDERR_PATH, 'str'], [T.STDIO_INHERIT, 'u32'], [T.ROOTFS, 'str'], [T.ROOTFS_RO, 'u32'],
  [T.ROOTFS_PROPAGATION, 'u64'], [T.MOUNT, 'nest'], [T.MOUNT_SOURCE, 'str'],
  [T.MOUNT_DEST, 'str'], [T.MOUNT_TYPE, 'str'], [T.MOUNT_FLAGS, 'u64'], [T.MOUNT_DATA, 'str'],
  [T.MOUNT_PROPAGATION, 'u64'], [T.MASKED, 'str'], [T.READONLY, 'str'], [T.DEVICE, 'str'],
  [T.NS_FLAGS, 'u32'], [T.NO_PIVOT, 'u32'], [T.TERMINAL, 'u32'],
  [T.CAP_BOUNDING, 'u64'], [T.CAP_EFFECTIVE, 'u64'], [T.CAP_PERMITTED, 'u64'],
  [T.CAP_INHERITABLE, 'u64'], [T.CAP_AMBIENT, 'u64'], [T.RLIMIT, 'nest'], [T.RLIMIT_TYPE, 'u32'],
  [T.RLIMIT_SOFT, 'u64'], [T.RLIMIT_HARD, 'u64'], [T.NO_NEW_PRIVS, 'u32'], [T.OOM_SCORE_ADJ, 'i32'],
  [T.SYSCTL, 'str'], [T.SECCOMP_BPF, 'bytes'], [T.SECCOMP_FLAGS, 'u32'],
  [T.CONSOLE_SOCKET, 'str'], [T.CONSOLE_ROWS, 'u32'], [T.CONSOLE_COLS, 'u32'], [T.HOLD, 'u32'], [T.HELD_EXEC, 'u32'],
  [T.HOOK, 'nest'], [T.HOOK_KIND, 'u32'], [T.HOOK_PATH, 'str'], [T.HOOK_TIMEOUT, 'u32'],
  [T.HOOK_STATE, 'str'], [T.PID_NS_OF, 'str'], [T.CGROUP_PROCS, 'str'], [T.CGROUP_NS_OF, 'str'], [T.MOUNT_NS_PATH, 'str'],
]);

/** str tags allowed up to MAX_TEXT rather than MAX_STR. */
export const LONG_STR_TAGS: ReadonlySet<number> = new Set([T.TEXT, T.HOOK_STATE]);

const NAMES = new Map<number, string>(
  Object.entries(Tag).map(([name, tag]) => [tag, name.toLowerCase()]),
);
export function tagName(tag: number): string {
  return NAMES.get(tag) ?? `${tag}`;
}

const TYPE_NAMES = new Map<number, MsgTypeName>(
  Object.entries(MsgType).map(([name, t]) => [t, name as MsgTypeName]),
);
export function typeName(type: number): MsgTypeName | undefined {
  return TYPE_NAMES.get(type);
}

/** u32 tags that carry a boolean; anything but 0/1 is rejected so decode is lossless. */
export const BOOL_TAGS: ReadonlySet<number> = new Set([
  T.ALL, T.LO_UP, T.ROOTFS_RO, T.NO_PIVOT, T.TERMINAL, T.NO_NEW_PRIVS, T.HOLD, T.HELD_EXEC,
]);

export const MAX_DEPTH = 3;

/**
 * Length rule of a `bytes` tag: undefined when `len` is fine, else the reason (the
 * same text protocols/c/decode.c uses). The only bytes tag is SECCOMP_BPF: a
 * non-zero multiple of 8, at most 4096 instructions.
 */
export function checkBytes(tag: number, len: number): string | undefined {
  if (tag !== T.SECCOMP_BPF) return undefined;
  if (len > MAX_SECCOMP_BPF) return `tag ${tagName(tag)} too long`;
  if (len === 0 || len % SOCK_FILTER_SIZE !== 0) {
    return `tag ${tagName(tag)} must be a non-zero multiple of ${SOCK_FILTER_SIZE} bytes`;
  }
  return undefined;
}

export const MAX_COUNT: ReadonlyMap<number, number> = new Map([
  [T.ARG, 1024], [T.ENV, 4096], [T.MOUNT, 256], [T.MASKED, 256], [T.READONLY, 256],
  [T.DEVICE, 1024], [T.ADD_GID, 64], [T.PROC, 65536], [T.RLIMIT, 64], [T.SYSCTL, 256],
  [T.HOOK, 64], [T.CGROUP_PROCS, 16],
]);

export interface Scope {
  readonly name: string;
  readonly allowed: ReadonlySet<number>;
  readonly required: ReadonlySet<number>;
  readonly rep: ReadonlySet<number>;
}

function scope(name: string, required: number[], optional: number[] = [], rep: number[] = []): Scope {
  return {
    name,
    allowed: new Set([...required, ...optional, ...rep]),
    required: new Set(required),
    rep: new Set(rep),
  };
}

const PLAN_REP = [T.ARG, T.ENV, T.ADD_GID, T.MOUNT, T.MASKED, T.READONLY, T.DEVICE, T.RLIMIT, T.CGROUP_PROCS];
const PLAN_OPT = [
  T.CWD, T.UID, T.GID, T.UMASK, T.STDIN_PATH, T.STDOUT_PATH, T.STDERR_PATH, T.STDIO_INHERIT,
  T.ROOTFS_RO, T.ROOTFS_PROPAGATION, T.NS_FLAGS, T.NO_PIVOT, T.TERMINAL,
  T.CAP_BOUNDING, T.CAP_EFFECTIVE, T.CAP_PERMITTED, T.CAP_INHERITABLE, T.CAP_AMBIENT,
  T.NO_NEW_PRIVS, T.OOM_SCORE_ADJ, T.SECCOMP_BPF, T.SECCOMP_FLAGS,
  T.CONSOLE_SOCKET, T.CONSOLE_ROWS, T.CONSOLE_COLS,
];
// ARG is both required and repeatable: listed in `required` and `rep`.
const PLAN_EXEC = scope('plan', [T.ARG], PLAN_OPT, PLAN_REP);
// ROOTFS, SYSCTL, HOLD, PID_NS_OF, CGROUP_NS_OF and MOUNT_NS_PATH only make sense when a new container
// is built (sysctls are written once into the container's namespaces), so exec plans
// refuse them.
const PLAN_CONTAINER = scope('plan', [T.ARG], [...PLAN_OPT, T.ROOTFS, T.HOLD, T.HOOK_STATE, T.PID_NS_OF, T.CGROUP_NS_OF, T.MOUNT_NS_PATH], [...PLAN_REP, T.SYSCTL, T.HOOK]);
const HOOK = scope('hook', [T.HOOK_KIND, T.HOOK_PATH, T.HOOK_TIMEOUT], [], [T.ARG, T.ENV]);
const MOUNT = scope('mount', [T.MOUNT_DEST, T.MOUNT_TYPE], [
  T.MOUNT_SOURCE, T.MOUNT_FLAGS, T.MOUNT_DATA, T.MOUNT_PROPAGATION,
]);
const RLIMIT = scope('rlimit', [T.RLIMIT_TYPE, T.RLIMIT_SOFT, T.RLIMIT_HARD]);
const PROC = scope('proc', [T.CID, T.PID, T.HOST_PID, T.KIND, T.STATE], [T.EXIT_CODE, T.SIGNAL]);

const EV = [T.CID, T.PID, T.HOST_PID, T.KIND];
const M = 'message';
export const MESSAGE_SCOPES: Readonly<Record<MsgTypeName, Scope>> = {
  PING: scope(M, []),
  START_CONTAINER: scope(M, [T.CID, T.PLAN]),
  EXEC: scope(M, [T.CID, T.PLAN]),
  PROCESSES: scope(M, [], [T.CID]),
  SIGNAL: scope(M, [T.CID, T.SIGNO], [T.PID, T.ALL]),
  WAIT: scope(M, [T.CID]),
  WAIT_PID: scope(M, [T.CID, T.PID]),
  STACKS: scope(M, []),
  DESTROY_CONTAINER: scope(M, [T.CID]),
  PROBE_EVENTS: scope(M, []),
  ADOPT: scope(M, [T.CID, T.PID]),
  SANDBOX_PLAN: scope(M, [T.SANDBOX_ID], [T.HOSTNAME, T.DOMAINNAME, T.LO_UP, T.LOG_SIZE_MAX]),
  EV_STARTED: scope(M, EV),
  EV_EXITED: scope(M, [...EV, T.EXIT_CODE, T.SIGNAL, T.TIME_NS]),
  EV_PROBE: scope(M, []),
  OK: scope(M, [], [T.PID, T.HOST_PID, T.STATE, T.EXIT_CODE, T.SIGNAL, T.TEXT, T.HELD_EXEC], [T.PROC]),
  ERROR: scope(M, [T.CODE], [T.ERRNO, T.STEP, T.MSG]),
};

export function childScope(tag: number, type: MsgTypeName): Scope {
  if (tag === T.PLAN) return type === 'EXEC' ? PLAN_EXEC : PLAN_CONTAINER;
  if (tag === T.MOUNT) return MOUNT;
  if (tag === T.RLIMIT) return RLIMIT;
  if (tag === T.HOOK) return HOOK;
  return PROC;
}
