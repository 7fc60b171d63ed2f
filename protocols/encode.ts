/**
 * Message → bytes (docs/protocol.md). Output is canonical (see fields.ts) and is
 * validated against the same limits the decoders enforce, so nothing we send can be
 * refused by paddock-init for being malformed.
 */
import { ProtocolError } from './errors';
import { canonical, Field } from './fields';
import {
  HEADER_SIZE, HookPlan, MAX_BODY, MAX_STR, MAX_TEXT, Message, MountPlan, MsgType, ProcessPlan, ProcRow,
  PROTOCOL_VERSION, RlimitPlan, Tag as T,
} from './messages';
import { checkBytes, LONG_STR_TAGS, MAX_COUNT, TAG_KIND, tagName } from './schema';

type Maybe = number | bigint | string | boolean | Buffer | Field[] | undefined;

/** Collects fields, dropping absent optionals and turning booleans into u32 0/1. */
class Fields {
  readonly list: Field[] = [];
  add(tag: number, value: Maybe): this {
    if (value === undefined) return this;
    this.list.push({ tag, value: typeof value === 'boolean' ? (value ? 1 : 0) : value });
    return this;
  }
  each(tag: number, values: readonly Maybe[] | undefined): this {
    for (const v of values ?? []) this.add(tag, v);
    return this;
  }
  done(): Field[] {
    return canonical(this.list);
  }
}

function mountFields(m: MountPlan): Field[] {
  return new Fields()
    .add(T.MOUNT_SOURCE, m.source).add(T.MOUNT_DEST, m.destination).add(T.MOUNT_TYPE, m.type)
    .add(T.MOUNT_FLAGS, m.flags).add(T.MOUNT_DATA, m.data).add(T.MOUNT_PROPAGATION, m.propagation)
    .done();
}

function rlimitFields(r: RlimitPlan): Field[] {
  return new Fields().add(T.RLIMIT_TYPE, r.type).add(T.RLIMIT_SOFT, r.soft).add(T.RLIMIT_HARD, r.hard).done();
}

function hookFields(h: HookPlan): Field[] {
  return new Fields()
    .add(T.HOOK_KIND, h.kind).add(T.HOOK_PATH, h.path).add(T.HOOK_TIMEOUT, h.timeoutSec)
    .each(T.ARG, h.args).each(T.ENV, h.env)
    .done();
}

function planFields(p: ProcessPlan): Field[] {
  if (p.args.length === 0) throw new ProtocolError('plan needs at least one arg');
  return new Fields()
    .each(T.ARG, p.args).each(T.ENV, p.env).add(T.CWD, p.cwd)
    // uid/gid are always written: 0 is a real identity, not "absent".
    .add(T.UID, p.uid).add(T.GID, p.gid)
    .each(T.ADD_GID, p.additionalGids).add(T.UMASK, p.umask)
    .add(T.STDIN_PATH, p.stdinPath).add(T.STDOUT_PATH, p.stdoutPath).add(T.STDERR_PATH, p.stderrPath)
    .add(T.STDIO_INHERIT, p.stdioInherit).add(T.ROOTFS, p.rootfs).add(T.ROOTFS_RO, p.rootfsReadonly)
    .add(T.ROOTFS_PROPAGATION, p.rootfsPropagation)
    .each(T.MOUNT, p.mounts?.map(mountFields))
    .each(T.MASKED, p.maskedPaths).each(T.READONLY, p.readonlyPaths).each(T.DEVICE, p.devices)
    .add(T.NS_FLAGS, p.nsFlags).add(T.NO_PIVOT, p.noPivot).add(T.TERMINAL, p.terminal)
    // All five sets or none; init reads none as all empty (decision 0026).
    .add(T.CAP_BOUNDING, p.capabilities?.bounding).add(T.CAP_EFFECTIVE, p.capabilities?.effective)
    .add(T.CAP_PERMITTED, p.capabilities?.permitted).add(T.CAP_INHERITABLE, p.capabilities?.inheritable)
    .add(T.CAP_AMBIENT, p.capabilities?.ambient)
    .each(T.RLIMIT, p.rlimits?.map(rlimitFields))
    .add(T.NO_NEW_PRIVS, p.noNewPrivileges).add(T.OOM_SCORE_ADJ, p.oomScoreAdj)
    .each(T.SYSCTL, p.sysctls)
    .add(T.SECCOMP_BPF, p.seccompBpf).add(T.SECCOMP_FLAGS, p.seccompFlags)
    .add(T.CONSOLE_SOCKET, p.consoleSocket).add(T.CONSOLE_ROWS, p.consoleRows)
    .add(T.CONSOLE_COLS, p.consoleCols).add(T.HOLD, p.hold)
    .each(T.HOOK, p.hooks?.map(hookFields)).add(T.HOOK_STATE, p.hookState).add(T.PID_NS_OF, p.pidNsOf)
    .each(T.CGROUP_PROCS, p.cgroupProcs).add(T.CGROUP_NS_OF, p.cgroupNsOf).add(T.MOUNT_NS_PATH, p.mountNsPath)
    .done();
}

function procFields(r: ProcRow): Field[] {
  return new Fields()
    .add(T.CID, r.cid).add(T.PID, r.pid).add(T.HOST_PID, r.hostPid).add(T.EXIT_CODE, r.exitCode)
    .add(T.SIGNAL, r.signal).add(T.STATE, r.state).add(T.KIND, r.kind)
    .done();
}

/** The message body as fields, in canonical order. */
export function messageFields(msg: Message): Field[] {
  const f = new Fields();
  switch (msg.type) {
    case 'PING': case 'STACKS': case 'PROBE_EVENTS': case 'EV_PROBE':
      break;
    case 'START_CONTAINER': case 'EXEC':
      f.add(T.CID, msg.cid).add(T.PLAN, planFields(msg.plan));
      break;
    case 'PROCESSES': case 'WAIT': case 'DESTROY_CONTAINER':
      f.add(T.CID, msg.cid);
      break;
    case 'SIGNAL':
      f.add(T.CID, msg.cid).add(T.PID, msg.pid).add(T.SIGNO, msg.signo).add(T.ALL, msg.all);
      break;
    case 'WAIT_PID': case 'ADOPT':
      f.add(T.CID, msg.cid).add(T.PID, msg.pid);
      break;
    case 'SANDBOX_PLAN':
      f.add(T.SANDBOX_ID, msg.sandboxId).add(T.HOSTNAME, msg.hostname)
        .add(T.DOMAINNAME, msg.domainname).add(T.LO_UP, msg.loUp)
        .add(T.LOG_SIZE_MAX, msg.logSizeMax);
      break;
    case 'EV_STARTED':
      f.add(T.CID, msg.cid).add(T.PID, msg.pid).add(T.HOST_PID, msg.hostPid).add(T.KIND, msg.kind);
      break;
    case 'EV_EXITED':
      f.add(T.CID, msg.cid).add(T.PID, msg.pid).add(T.HOST_PID, msg.hostPid)
        .add(T.EXIT_CODE, msg.exitCode).add(T.SIGNAL, msg.signal).add(T.TIME_NS, msg.timeNs)
        .add(T.KIND, msg.kind);
      break;
    case 'OK':
      f.add(T.PID, msg.pid).add(T.HOST_PID, msg.hostPid).add(T.EXIT_CODE, msg.exitCode)
        .add(T.SIGNAL, msg.signal).each(T.PROC, msg.procs?.map(procFields))
        .add(T.STATE, msg.state).add(T.TEXT, msg.text).add(T.HELD_EXEC, msg.heldExec);
      break;
    case 'ERROR':
      f.add(T.CODE, msg.code).add(T.ERRNO, msg.errno).add(T.STEP, msg.step).add(T.MSG, msg.msg);
      break;
    default:
      throw new ProtocolError(`unknown message type ${String((msg as { type: unknown }).type)}`);
  }
  return f.done();
}

// With the `u` flag a valid surrogate pair is one code point, so this only matches
// lone surrogates — which Buffer.from would silently turn into U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function valueBytes(tag: number, value: Field['value'], depth: number): Buffer {
  const kind = TAG_KIND.get(tag);
  const name = tagName(tag);
  const bad = (): never => {
    throw new ProtocolError(`tag ${name} has an invalid value`);
  };
  switch (kind) {
    case 'u32': case 'i32': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return bad();
      const b = Buffer.alloc(4);
      if (kind === 'u32') {
        if (value < 0 || value > 0xffffffff) return bad();
        b.writeUInt32LE(value);
      } else {
        if (value < -0x80000000 || value > 0x7fffffff) return bad();
        b.writeInt32LE(value);
      }
      return b;
    }
    case 'u64': {
      if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) return bad();
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(value);
      return b;
    }
    case 'str': {
      if (typeof value !== 'string') return bad();
      if (value.includes('\0')) throw new ProtocolError(`tag ${name} contains nul`);
      if (LONE_SURROGATE.test(value)) throw new ProtocolError(`tag ${name} is not utf-8`);
      const b = Buffer.from(value, 'utf8');
      if (b.length > (LONG_STR_TAGS.has(tag) ? MAX_TEXT : MAX_STR)) throw new ProtocolError(`tag ${name} too long`);
      return b;
    }
    case 'bytes': {
      if (!Buffer.isBuffer(value)) return bad();
      const problem = checkBytes(tag, value.length);
      if (problem !== undefined) throw new ProtocolError(problem);
      return Buffer.from(value);
    }
    case 'nest':
      if (!Array.isArray(value)) return bad();
      return body(value, depth + 1);
    default:
      throw new ProtocolError(`unknown tag ${tag}`);
  }
}

function body(fields: Field[], depth: number): Buffer {
  const counts = new Map<number, number>();
  const parts: Buffer[] = [];
  for (const { tag, value } of fields) {
    const max = MAX_COUNT.get(tag);
    const n = (counts.get(tag) ?? 0) + 1;
    counts.set(tag, n);
    if (max !== undefined && n > max) throw new ProtocolError(`too many ${tagName(tag)}`);
    const v = valueBytes(tag, value, depth);
    const h = Buffer.alloc(6);
    h.writeUInt16LE(tag, 0);
    h.writeUInt32LE(v.length, 2);
    parts.push(h, v);
  }
  return Buffer.concat(parts);
}

export function encode(msg: Message): Buffer {
  const b = body(messageFields(msg), 1);
  if (b.length > MAX_BODY) throw new ProtocolError('body too long');
  const h = Buffer.alloc(HEADER_SIZE);
  h[0] = 0x50;
  h[1] = 0x44;
  h[2] = PROTOCOL_VERSION;
  h.writeUInt16LE(MsgType[msg.type], 4);
  h.writeUInt32LE(b.length, 8);
  return Buffer.concat([h, b]);
}
