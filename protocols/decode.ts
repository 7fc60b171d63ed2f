/**
 * Bytes → Message (docs/protocol.md), as strict as protocols/c/decode.c: every
 * length is checked against its enclosing body, and unknown types or tags, tags
 * not allowed in their scope, duplicates, wrong value sizes, NUL or invalid UTF-8
 * in strings, exceeded limits, truncation and trailing bytes all throw
 * ProtocolError.
 */
import { isUtf8 } from 'buffer';

import { ProtocolError } from './errors';
import { Field, FieldValue } from './fields';
import {
  CapsPlan, HEADER_SIZE, HookPlan, MAX_BODY, MAX_STR, MAX_TEXT, Message, MountPlan, MsgTypeName, ProcessPlan,
  ProcRow, PROTOCOL_VERSION, RlimitPlan, Tag as T,
} from './messages';
import {
  BOOL_TAGS, checkBytes, childScope, LONG_STR_TAGS, MAX_COUNT, MAX_DEPTH, MESSAGE_SCOPES, Scope, TAG_KIND, tagName, typeName,
} from './schema';

function fail(message: string): never {
  throw new ProtocolError(message);
}

function parseFields(buf: Buffer, scope: Scope, type: MsgTypeName, depth: number): Field[] {
  if (depth > MAX_DEPTH) fail(`nesting too deep in ${scope.name}`);
  const fields: Field[] = [];
  const counts = new Map<number, number>();
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 6) fail(`truncated field header in ${scope.name}`);
    const tag = buf.readUInt16LE(off);
    const len = buf.readUInt32LE(off + 2);
    off += 6;
    const kind = TAG_KIND.get(tag);
    const name = tagName(tag);
    if (kind === undefined) fail(`unknown tag ${tag} in ${scope.name}`);
    if (!scope.allowed.has(tag)) fail(`tag ${name} not allowed in ${scope.name}`);
    if (len > buf.length - off) fail(`tag ${name} overruns ${scope.name}`);
    const n = (counts.get(tag) ?? 0) + 1;
    if (n > 1 && !scope.rep.has(tag)) fail(`duplicate tag ${name}`);
    if (n > (MAX_COUNT.get(tag) ?? Infinity)) fail(`too many ${name}`);
    counts.set(tag, n);
    const v = buf.subarray(off, off + len);
    off += len;
    let value: FieldValue;
    switch (kind) {
      case 'u32': case 'i32':
        if (len !== 4) fail(`tag ${name} must be 4 bytes`);
        value = kind === 'u32' ? v.readUInt32LE(0) : v.readInt32LE(0);
        if (BOOL_TAGS.has(tag) && value > 1) fail(`tag ${name} must be 0 or 1`);
        break;
      case 'u64':
        if (len !== 8) fail(`tag ${name} must be 8 bytes`);
        value = v.readBigUInt64LE(0);
        break;
      case 'str':
        if (len > (LONG_STR_TAGS.has(tag) ? MAX_TEXT : MAX_STR)) fail(`tag ${name} too long`);
        if (v.includes(0)) fail(`tag ${name} contains nul`);
        if (!isUtf8(v)) fail(`tag ${name} is not utf-8`);
        value = v.toString('utf8');
        break;
      case 'bytes': {
        const problem = checkBytes(tag, len);
        if (problem !== undefined) fail(problem);
        value = Buffer.from(v); // a copy: the message must not alias the input
        break;
      }
      case 'nest':
        value = parseFields(v, childScope(tag, type), type, depth + 1);
        break;
    }
    fields.push({ tag, value });
  }
  for (const tag of scope.required) {
    if (!counts.has(tag)) fail(`missing tag ${tagName(tag)} in ${scope.name}`);
  }
  return fields;
}

/** Typed access to a validated field list (kinds and presence already checked). */
class View {
  constructor(private readonly fields: Field[]) {}
  private find(tag: number): FieldValue | undefined {
    return this.fields.find((f) => f.tag === tag)?.value;
  }
  num(tag: number): number | undefined {
    return this.find(tag) as number | undefined;
  }
  big(tag: number): bigint | undefined {
    return this.find(tag) as bigint | undefined;
  }
  str(tag: number): string | undefined {
    return this.find(tag) as string | undefined;
  }
  bytes(tag: number): Buffer | undefined {
    return this.find(tag) as Buffer | undefined;
  }
  bool(tag: number): boolean | undefined {
    const v = this.num(tag);
    return v === undefined ? undefined : v === 1;
  }
  nest(tag: number): View {
    return new View(this.find(tag) as Field[]);
  }
  all<V extends FieldValue>(tag: number): V[] {
    return this.fields.filter((f) => f.tag === tag).map((f) => f.value as V);
  }
  /** Required by the scope, so present. */
  need<V extends FieldValue>(tag: number): V {
    return this.find(tag) as V;
  }
}

/** Builds an object without the keys whose value is undefined, so round trips compare equal. */
function defined<O extends object>(o: O): O {
  for (const k of Object.keys(o) as (keyof O)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function list<V>(xs: V[]): V[] | undefined {
  return xs.length ? xs : undefined;
}

function mount(v: View): MountPlan {
  return defined({
    source: v.str(T.MOUNT_SOURCE),
    destination: v.need<string>(T.MOUNT_DEST),
    type: v.need<string>(T.MOUNT_TYPE),
    flags: v.big(T.MOUNT_FLAGS) ?? 0n,
    data: v.str(T.MOUNT_DATA),
    propagation: v.big(T.MOUNT_PROPAGATION),
  });
}

const CAP_TAGS = [T.CAP_BOUNDING, T.CAP_EFFECTIVE, T.CAP_PERMITTED, T.CAP_INHERITABLE, T.CAP_AMBIENT];

/** Any CAP_* tag present means the plan manages capabilities; a missing set is empty. */
function caps(v: View): CapsPlan | undefined {
  if (CAP_TAGS.every((t) => v.big(t) === undefined)) return undefined;
  return {
    bounding: v.big(T.CAP_BOUNDING) ?? 0n,
    effective: v.big(T.CAP_EFFECTIVE) ?? 0n,
    permitted: v.big(T.CAP_PERMITTED) ?? 0n,
    inheritable: v.big(T.CAP_INHERITABLE) ?? 0n,
    ambient: v.big(T.CAP_AMBIENT) ?? 0n,
  };
}

function rlimit(v: View): RlimitPlan {
  return {
    type: v.need<number>(T.RLIMIT_TYPE),
    soft: v.need<bigint>(T.RLIMIT_SOFT),
    hard: v.need<bigint>(T.RLIMIT_HARD),
  };
}

function hook(v: View): HookPlan {
  return defined({
    kind: v.need<number>(T.HOOK_KIND) as HookPlan['kind'],
    path: v.need<string>(T.HOOK_PATH),
    args: list(v.all<string>(T.ARG)),
    env: list(v.all<string>(T.ENV)),
    timeoutSec: v.need<number>(T.HOOK_TIMEOUT),
  });
}

function plan(v: View): ProcessPlan {
  return defined({
    args: v.all<string>(T.ARG),
    env: v.all<string>(T.ENV),
    cwd: v.str(T.CWD),
    uid: v.num(T.UID) ?? 0,
    gid: v.num(T.GID) ?? 0,
    additionalGids: list(v.all<number>(T.ADD_GID)),
    umask: v.num(T.UMASK),
    stdinPath: v.str(T.STDIN_PATH),
    stdoutPath: v.str(T.STDOUT_PATH),
    stderrPath: v.str(T.STDERR_PATH),
    stdioInherit: v.num(T.STDIO_INHERIT),
    rootfs: v.str(T.ROOTFS),
    rootfsReadonly: v.bool(T.ROOTFS_RO),
    rootfsPropagation: v.big(T.ROOTFS_PROPAGATION),
    mounts: list(v.all<Field[]>(T.MOUNT).map((m) => mount(new View(m)))),
    maskedPaths: list(v.all<string>(T.MASKED)),
    readonlyPaths: list(v.all<string>(T.READONLY)),
    devices: list(v.all<string>(T.DEVICE)),
    nsFlags: v.num(T.NS_FLAGS),
    noPivot: v.bool(T.NO_PIVOT),
    terminal: v.bool(T.TERMINAL),
    capabilities: caps(v),
    rlimits: list(v.all<Field[]>(T.RLIMIT).map((r) => rlimit(new View(r)))),
    noNewPrivileges: v.bool(T.NO_NEW_PRIVS),
    oomScoreAdj: v.num(T.OOM_SCORE_ADJ),
    sysctls: list(v.all<string>(T.SYSCTL)),
    seccompBpf: v.bytes(T.SECCOMP_BPF),
    seccompFlags: v.num(T.SECCOMP_FLAGS),
    consoleSocket: v.str(T.CONSOLE_SOCKET),
    consoleRows: v.num(T.CONSOLE_ROWS),
    consoleCols: v.num(T.CONSOLE_COLS),
    hold: v.bool(T.HOLD),
    hooks: list(v.all<Field[]>(T.HOOK).map((h) => hook(new View(h)))),
    hookState: v.str(T.HOOK_STATE),
    pidNsOf: v.str(T.PID_NS_OF),
    cgroupProcs: list(v.all<string>(T.CGROUP_PROCS)),
    cgroupNsOf: v.str(T.CGROUP_NS_OF),
    mountNsPath: v.str(T.MOUNT_NS_PATH),
  });
}

function proc(v: View): ProcRow {
  return defined({
    cid: v.need<string>(T.CID),
    pid: v.need<number>(T.PID),
    hostPid: v.need<number>(T.HOST_PID),
    kind: v.need<number>(T.KIND),
    state: v.need<number>(T.STATE),
    exitCode: v.num(T.EXIT_CODE),
    signal: v.num(T.SIGNAL),
  });
}

function build(type: MsgTypeName, v: View): Message {
  switch (type) {
    case 'PING': case 'STACKS': case 'PROBE_EVENTS': case 'EV_PROBE':
      return { type };
    case 'START_CONTAINER': case 'EXEC':
      return { type, cid: v.need<string>(T.CID), plan: plan(v.nest(T.PLAN)) };
    case 'PROCESSES':
      return defined({ type, cid: v.str(T.CID) });
    case 'WAIT': case 'DESTROY_CONTAINER':
      return { type, cid: v.need<string>(T.CID) };
    case 'SIGNAL':
      return defined({
        type, cid: v.need<string>(T.CID), signo: v.need<number>(T.SIGNO), pid: v.num(T.PID),
        all: v.bool(T.ALL),
      });
    case 'WAIT_PID': case 'ADOPT':
      return { type, cid: v.need<string>(T.CID), pid: v.need<number>(T.PID) };
    case 'SANDBOX_PLAN':
      return defined({
        type, sandboxId: v.need<string>(T.SANDBOX_ID), hostname: v.str(T.HOSTNAME),
        domainname: v.str(T.DOMAINNAME), loUp: v.bool(T.LO_UP), logSizeMax: v.big(T.LOG_SIZE_MAX),
      });
    case 'EV_STARTED':
      return {
        type, cid: v.need<string>(T.CID), pid: v.need<number>(T.PID),
        hostPid: v.need<number>(T.HOST_PID), kind: v.need<number>(T.KIND),
      };
    case 'EV_EXITED':
      return {
        type, cid: v.need<string>(T.CID), pid: v.need<number>(T.PID),
        hostPid: v.need<number>(T.HOST_PID), kind: v.need<number>(T.KIND),
        exitCode: v.need<number>(T.EXIT_CODE), signal: v.need<number>(T.SIGNAL),
        timeNs: v.need<bigint>(T.TIME_NS),
      };
    case 'OK':
      return defined({
        type, pid: v.num(T.PID), hostPid: v.num(T.HOST_PID), state: v.num(T.STATE),
        exitCode: v.num(T.EXIT_CODE), signal: v.num(T.SIGNAL), text: v.str(T.TEXT),
        procs: list(v.all<Field[]>(T.PROC).map((p) => proc(new View(p)))),
        heldExec: v.num(T.HELD_EXEC),
      });
    case 'ERROR':
      return defined({
        type, code: v.need<number>(T.CODE), errno: v.num(T.ERRNO), step: v.str(T.STEP),
        msg: v.str(T.MSG),
      });
  }
}

function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Validates a header; returns the type name and the total message length. */
function header(buf: Buffer): { type: MsgTypeName; total: number } {
  if (buf.length < HEADER_SIZE) fail('truncated header');
  if (buf[0] !== 0x50 || buf[1] !== 0x44) fail('bad magic');
  if (buf[2] !== PROTOCOL_VERSION) fail(`unsupported version ${buf[2]}`);
  if (buf[3] !== 0) fail('reserved byte not zero');
  const code = buf.readUInt16LE(4);
  const type = typeName(code);
  if (type === undefined) fail(`unknown message type 0x${code.toString(16).padStart(4, '0')}`);
  if (buf.readUInt16LE(6) !== 0) fail('flags not zero');
  const len = buf.readUInt32LE(8);
  if (len > MAX_BODY) fail('body too long');
  return { type, total: HEADER_SIZE + len };
}

/** Decodes exactly one whole message. */
export function decode(input: Uint8Array): Message {
  const buf = asBuffer(input);
  const { type, total } = header(buf);
  if (buf.length < total) fail('truncated body');
  if (buf.length > total) fail('trailing bytes');
  return build(type, new View(parseFields(buf.subarray(HEADER_SIZE), MESSAGE_SCOPES[type], type, 1)));
}

/**
 * Splits back-to-back messages (exits.log). An incomplete message at the end — a
 * write cut short by a crash — is returned as `rest`; anything malformed before
 * that throws, since the log cannot be resynchronised past it.
 */
export function splitMessages(input: Uint8Array): { messages: Message[]; rest: Buffer; ends: number[] } {
  const buf = asBuffer(input);
  const messages: Message[] = [];
  // ends[i]: the offset just past messages[i] (a resumable read position).
  const ends: number[] = [];
  let off = 0;
  while (off < buf.length) {
    const tail = buf.subarray(off);
    if (tail.length < HEADER_SIZE) break;
    const { total } = header(tail);
    if (tail.length < total) break;
    messages.push(decode(tail.subarray(0, total)));
    off += total;
    ends.push(off);
  }
  return { messages, rest: buf.subarray(off), ends };
}
