/**
 * A validated seccomp profile → classic BPF, built by the system's libseccomp (through
 * seccomp-ffi.ts), never by hand. The bytes are an array of struct sock_filter (8 bytes
 * each) that paddock-init hands to seccomp(SECCOMP_SET_MODE_FILTER, flags,
 * &(struct sock_fprog){ len: bpf.length / 8, filter: bpf }) as its last step before
 * execve; `flags` is the SECCOMP_FILTER_FLAG_* word for that call. The profile's
 * validation, and what each field means, are in specs/seccomp.ts.
 */
import { SpecError } from '../base/errors';
import { errnoName } from '../base/errno';
import { ArgCmp, FilterCtx, libseccomp, ScmpAct, ScmpAttr, ScmpCmp } from './seccomp-ffi';
import { SECCOMP_ARCHES } from './seccomp-arches';

export type SeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

export type SeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** A profile validated and normalised (specs/seccomp.ts validateSeccomp): what a filter is built from. */
export interface SeccompFilter {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures: string[];
  flags: number;
  syscalls: Array<{
    names: string[];
    action: SeccompAction;
    errnoRet?: number;
    args: Array<{ index: number; value: bigint; valueTwo: bigint; op: SeccompOperator }>;
  }>;
}

export interface CompileSeccompOptions {
  /** Field prefix for error paths; default `linux.seccomp`. */
  field?: string;
  /**
   * Ask libseccomp for a binary-tree dispatch (SCMP_FLTATR_CTL_OPTIMIZE = 2) instead of
   * a linear one: fewer instructions run per syscall on long allow lists. Default true.
   */
  binaryTree?: boolean;
}

export interface CompiledSeccomp {
  /** struct sock_filter[]; length is a multiple of 8. */
  bpf: Buffer;
  /** SECCOMP_FILTER_FLAG_* for seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog). */
  flags: number;
  /** Syscall names no architecture of the filter knows, in first-seen order. */
  skipped: string[];
}


const EPERM = 1;

function unsupported(field: string, what: string): SpecError {
  return new SpecError('ECONFIG_UNSUPPORTED', `${field}: ${what}`, { field });
}

const OPERATORS: Readonly<Record<SeccompOperator, number>> = {
  SCMP_CMP_NE: ScmpCmp.NE,
  SCMP_CMP_LT: ScmpCmp.LT,
  SCMP_CMP_LE: ScmpCmp.LE,
  SCMP_CMP_EQ: ScmpCmp.EQ,
  SCMP_CMP_GE: ScmpCmp.GE,
  SCMP_CMP_GT: ScmpCmp.GT,
  SCMP_CMP_MASKED_EQ: ScmpCmp.MASKED_EQ,
};

/** The libseccomp action word for an OCI action. */
export function actionValue(action: SeccompAction, errnoRet: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return ScmpAct.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return ScmpAct.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return ScmpAct.TRAP;
    case 'SCMP_ACT_ERRNO':
      return ScmpAct.ERRNO(errnoRet ?? EPERM);
    case 'SCMP_ACT_TRACE':
      return ScmpAct.TRACE(errnoRet ?? EPERM);
    case 'SCMP_ACT_ALLOW':
      return ScmpAct.ALLOW;
    case 'SCMP_ACT_LOG':
      return ScmpAct.LOG;
    case 'SCMP_ACT_NOTIFY':
      return ScmpAct.NOTIFY;
  }
}

function failed(field: string, what: string, rc: number): SpecError {
  return new SpecError('ECONFIG_INVALID', `${field}: ${what} (${errnoName(-rc)})`, { field, errno: -rc });
}

/**
 * Builds a validated profile into classic BPF with libseccomp. Throws SpecError
 * ECONFIG_INVALID (a rule libseccomp rejects) / ECONFIG_UNSUPPORTED (an architecture this
 * libseccomp does not know), or PaddockError ENATIVE_UNAVAILABLE when libseccomp.so.2 or
 * ffi-rs cannot load.
 */
export function compileFilter(v: SeccompFilter, opts: CompileSeccompOptions = {}): CompiledSeccomp {
  const field = opts.field ?? 'linux.seccomp';
  const lib = libseccomp();
  const defAct = actionValue(v.defaultAction, v.defaultErrnoRet);
  const ctx: FilterCtx = lib.init(defAct);
  try {
    // paddock-init sets no_new_privs itself; the exported program must not assume it.
    let rc = lib.attrSet(ctx, ScmpAttr.CTL_NNP, 0);
    if (rc < 0) throw failed(field, 'cannot clear SCMP_FLTATR_CTL_NNP', rc);
    if (opts.binaryTree !== false) {
      rc = lib.attrSet(ctx, ScmpAttr.CTL_OPTIMIZE, 2);
      if (rc < 0) throw failed(field, 'cannot set SCMP_FLTATR_CTL_OPTIMIZE', rc);
    }

    const arches = [lib.archNative()];
    v.architectures.forEach((a, i) => {
      const f = `${field}.architectures[${i}]`;
      const token = lib.archResolveName(SECCOMP_ARCHES[a]!);
      if (token === 0) throw unsupported(f, `this libseccomp (${lib.version()}) does not know ${a}`);
      if (arches.includes(token)) return;
      const r = lib.archAdd(ctx, token);
      if (r < 0 && r !== -17 /* EEXIST */) throw failed(f, `libseccomp cannot add ${a}`, r);
      arches.push(token);
    });

    const skipped: string[] = [];
    const known = new Map<string, number | undefined>();
    const resolve = (name: string): number | undefined => {
      if (known.has(name)) return known.get(name);
      // Known on at least one arch of the filter? Then seccomp_syscall_resolve_name's
      // native or pseudo number lets libseccomp place the rule on every arch that has it.
      const nr = arches.some((a) => lib.resolveNameArch(a, name) >= 0) ? lib.resolveName(name) : undefined;
      const usable = nr !== undefined && nr !== -1 ? nr : undefined;
      known.set(name, usable);
      if (usable === undefined && !skipped.includes(name)) skipped.push(name);
      return usable;
    };

    v.syscalls.forEach((sc, i) => {
      const f = `${field}.syscalls[${i}]`;
      const act = actionValue(sc.action, sc.errnoRet);
      const conds: ArgCmp[] = sc.args.map((a) => ({
        arg: a.index,
        op: OPERATORS[a.op],
        datumA: a.value,
        datumB: a.valueTwo,
      }));
      const repeated = new Set(conds.map((c) => c.arg)).size !== conds.length;
      const ruleSets = repeated ? conds.map((c) => [c]) : [conds];
      sc.names.forEach((name, j) => {
        const nr = resolve(name);
        if (nr === undefined) return;
        if (act === defAct) return; // a no-op rule; libseccomp would answer EACCES
        for (const set of ruleSets) {
          const r = lib.ruleAdd(ctx, act, nr, set);
          if (r < 0) throw failed(`${f}.names[${j}]`, `libseccomp rejected the rule for ${name}`, r);
        }
      });
    });

    const bpf = lib.exportBpf(ctx);
    if (bpf.length === 0 || bpf.length % 8 !== 0) {
      throw new SpecError('ECONFIG_INVALID', `${field}: libseccomp exported ${bpf.length} bytes, not a bpf program`, {
        field,
      });
    }
    return { bpf, flags: v.flags, skipped };
  } finally {
    lib.release(ctx);
  }
}

