/**
 * OCI `linux.seccomp`: the profile's types and its validation, pure (no native code).
 * validateSeccomp() checks the whole object, names the JSON path of the first bad field
 * (`linux.seccomp.syscalls[3].action: unknown action SCMP_ACT_FOO`) and returns the
 * normalised filter description that native/seccomp-compile.ts turns into classic BPF
 * with libseccomp; actors/containers/seccomp.ts joins the two and keeps the results.
 *
 * Semantics follow runc (libcontainer/seccomp/patchbpf aside):
 *  - The native architecture is always in the filter; `architectures` adds more.
 *  - A syscall name that no architecture of the filter knows is skipped (profiles list
 *    syscalls of many kernels and arches) and reported in `skipped`.
 *  - A rule whose action equals the default action is dropped (libseccomp refuses it
 *    with EACCES, and it would change nothing).
 *  - `args` with distinct indexes are ANDed into one rule; if an index repeats, each
 *    condition becomes its own rule (ORed), exactly as runc does.
 *  - SCMP_ACT_ERRNO and SCMP_ACT_TRACE take errnoRet, else defaultErrnoRet (for the
 *    default action), else EPERM.
 *  - SCMP_ACT_NOTIFY, listenerPath and SECCOMP_FILTER_FLAG_NEW_LISTENER need a seccomp
 *    agent paddock does not have: ECONFIG_UNSUPPORTED.
 */
import { SpecError } from '../base/errors';
import type { OciSeccomp } from './oci';
import { SECCOMP_ARCHES } from '../native/seccomp-arches';
import type { SeccompAction, SeccompFilter, SeccompOperator } from '../native/seccomp-compile';

export { SECCOMP_ARCHES } from '../native/seccomp-arches';
export type { CompiledSeccomp, SeccompAction, SeccompOperator } from '../native/seccomp-compile';
/** The validated, normalised form of a profile: what native/seccomp-compile.ts builds the filter from. */
export type ValidSeccomp = SeccompFilter;

// ---------------------------------------------------------------------------------
// Types (specs/oci.ts only has { defaultAction; [key]: unknown })
// ---------------------------------------------------------------------------------



export interface SeccompArg {
  index: number;
  /** u64; a JS number must be a safe integer (a bigint is accepted for larger values). */
  value: number | bigint;
  valueTwo?: number | bigint;
  op: SeccompOperator;
}

export interface SeccompSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[];
}

/** The full OCI linux.seccomp object, as far as paddock reads it. */
export interface SeccompProfile extends OciSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: SeccompSyscall[];
}



// ---------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------

const ACTIONS: ReadonlySet<string> = new Set<SeccompAction>([
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
]);

const OPERATORS: ReadonlySet<string> = new Set<SeccompOperator>([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);


/** SECCOMP_FILTER_FLAG_* from <linux/seccomp.h>; `false` = known but unsupported. */
export const SeccompFilterFlag = {
  TSYNC: 1,
  LOG: 2,
  SPEC_ALLOW: 4,
} as const;

const FLAGS: Readonly<Record<string, number | false>> = {
  SECCOMP_FILTER_FLAG_TSYNC: SeccompFilterFlag.TSYNC,
  SECCOMP_FILTER_FLAG_LOG: SeccompFilterFlag.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: SeccompFilterFlag.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: false,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: false,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: false,
};

const MAX_ERRNO = 4095;
const U64_MAX = (1n << 64n) - 1n;
const MAX_ARGS = 6;
/** Longest syscall name in any table is < 32; this only stops absurd input early. */
const MAX_NAME = 64;

// ---------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------


function invalid(field: string, what: string): SpecError {
  return new SpecError('ECONFIG_INVALID', `${field}: ${what}`, { field });
}

function unsupported(field: string, what: string): SpecError {
  return new SpecError('ECONFIG_UNSUPPORTED', `${field}: ${what}`, { field });
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkAction(field: string, v: unknown): SeccompAction {
  if (typeof v !== 'string') throw invalid(field, `must be a string, got ${show(v)}`);
  if (!ACTIONS.has(v)) throw invalid(field, `unknown action ${v}`);
  if (v === 'SCMP_ACT_NOTIFY') {
    throw unsupported(field, 'SCMP_ACT_NOTIFY needs a seccomp agent, which paddock does not have');
  }
  return v as SeccompAction;
}

function checkErrnoRet(field: string, v: unknown, action: SeccompAction): number | undefined {
  if (v === undefined) return undefined;
  const max = action === 'SCMP_ACT_TRACE' ? 0xffff : MAX_ERRNO;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalid(field, `must be an integer in 0..${max}, got ${show(v)}`);
  }
  if (action !== 'SCMP_ACT_ERRNO' && action !== 'SCMP_ACT_TRACE') {
    throw invalid(field, `only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not ${action}`);
  }
  return v;
}

function checkU64(field: string, v: unknown): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw invalid(field, `must be in 0..2^64-1, got ${show(v)}`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw invalid(field, `must be a non-negative integer, got ${show(v)}`);
  }
  if (!Number.isSafeInteger(v)) {
    // JSON numbers above 2^53 have already lost bits; a silently different filter value
    // is worse than an error.
    throw invalid(field, `${v} is above 2^53 and cannot be represented exactly`);
  }
  return BigInt(v);
}

/**
 * Validates an OCI linux.seccomp object without native code. Throws SpecError
 * ECONFIG_INVALID (bad shape or value) or ECONFIG_UNSUPPORTED (notify, listeners).
 */
export function validateSeccomp(seccomp: unknown, field = 'linux.seccomp'): ValidSeccomp {
  if (!isObject(seccomp)) throw invalid(field, `must be an object, got ${show(seccomp)}`);
  const s = seccomp;
  // Unknown properties are ignored, as config.md requires of every OCI reader.
  if (s.defaultAction === undefined) throw invalid(`${field}.defaultAction`, 'is required');
  const defaultAction = checkAction(`${field}.defaultAction`, s.defaultAction);
  const defaultErrnoRet = checkErrnoRet(`${field}.defaultErrnoRet`, s.defaultErrnoRet, defaultAction);

  if (s.listenerPath !== undefined) {
    if (typeof s.listenerPath !== 'string') {
      throw invalid(`${field}.listenerPath`, `must be a string, got ${show(s.listenerPath)}`);
    }
    throw unsupported(`${field}.listenerPath`, 'seccomp agents are not supported');
  }
  if (s.listenerMetadata !== undefined && typeof s.listenerMetadata !== 'string') {
    throw invalid(`${field}.listenerMetadata`, `must be a string, got ${show(s.listenerMetadata)}`);
  }

  const architectures: string[] = [];
  if (s.architectures !== undefined) {
    if (!Array.isArray(s.architectures)) {
      throw invalid(`${field}.architectures`, `must be an array, got ${show(s.architectures)}`);
    }
    s.architectures.forEach((a: unknown, i) => {
      const f = `${field}.architectures[${i}]`;
      if (typeof a !== 'string') throw invalid(f, `must be a string, got ${show(a)}`);
      if (!(a in SECCOMP_ARCHES)) throw invalid(f, `unknown architecture ${a}`);
      if (!architectures.includes(a)) architectures.push(a);
    });
  }

  let flags = 0;
  if (s.flags !== undefined) {
    if (!Array.isArray(s.flags)) throw invalid(`${field}.flags`, `must be an array, got ${show(s.flags)}`);
    s.flags.forEach((fl: unknown, i) => {
      const f = `${field}.flags[${i}]`;
      if (typeof fl !== 'string') throw invalid(f, `must be a string, got ${show(fl)}`);
      const bit = FLAGS[fl];
      if (bit === undefined) throw invalid(f, `unknown flag ${fl}`);
      if (bit === false) throw unsupported(f, `${fl} is not supported`);
      flags |= bit;
    });
  }

  const syscalls: ValidSeccomp['syscalls'] = [];
  if (s.syscalls !== undefined) {
    if (!Array.isArray(s.syscalls)) throw invalid(`${field}.syscalls`, `must be an array, got ${show(s.syscalls)}`);
    s.syscalls.forEach((sc: unknown, i) => {
      const f = `${field}.syscalls[${i}]`;
      if (!isObject(sc)) throw invalid(f, `must be an object, got ${show(sc)}`);
      if (!Array.isArray(sc.names)) throw invalid(`${f}.names`, `must be an array, got ${show(sc.names)}`);
      if (sc.names.length === 0) throw invalid(`${f}.names`, 'must not be empty');
      const names = sc.names.map((n: unknown, j) => {
        if (typeof n !== 'string' || !/^[a-z0-9_]+$/.test(n) || n.length > MAX_NAME) {
          throw invalid(`${f}.names[${j}]`, `must be a syscall name ([a-z0-9_]+), got ${show(n)}`);
        }
        return n;
      });
      if (sc.action === undefined) throw invalid(`${f}.action`, 'is required');
      const action = checkAction(`${f}.action`, sc.action);
      const errnoRet = checkErrnoRet(`${f}.errnoRet`, sc.errnoRet, action);
      const args: ValidSeccomp['syscalls'][number]['args'] = [];
      if (sc.args !== undefined) {
        if (!Array.isArray(sc.args)) throw invalid(`${f}.args`, `must be an array, got ${show(sc.args)}`);
        sc.args.forEach((a: unknown, k) => {
          const af = `${f}.args[${k}]`;
          if (!isObject(a)) throw invalid(af, `must be an object, got ${show(a)}`);
          if (typeof a.index !== 'number' || !Number.isInteger(a.index) || a.index < 0 || a.index >= MAX_ARGS) {
            throw invalid(`${af}.index`, `must be an integer in 0..${MAX_ARGS - 1}, got ${show(a.index)}`);
          }
          if (a.value === undefined) throw invalid(`${af}.value`, 'is required');
          const value = checkU64(`${af}.value`, a.value);
          const valueTwo = a.valueTwo === undefined ? 0n : checkU64(`${af}.valueTwo`, a.valueTwo);
          if (typeof a.op !== 'string') throw invalid(`${af}.op`, `must be a string, got ${show(a.op)}`);
          if (!OPERATORS.has(a.op as string)) throw invalid(`${af}.op`, `unknown operator ${a.op}`);
          args.push({ index: a.index, value, valueTwo, op: a.op as SeccompOperator });
        });
      }
      syscalls.push({ names, action, errnoRet, args });
    });
  }
  return { defaultAction, defaultErrnoRet, architectures, flags, syscalls };
}

// ---------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------

