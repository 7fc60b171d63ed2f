/**
 * libseccomp (Debian's libseccomp2, `libseccomp.so.2`) through ffi-rs. specs/seccomp.ts
 * uses it to compile an OCI `linux.seccomp` object into classic BPF; nothing here loads a
 * filter into this process (paddock-init does that, from the exported bytes).
 *
 * ffi-rs is required lazily, so importing this module costs nothing until a profile is
 * compiled. Every libseccomp call that returns an int returns 0 or -errno; the wrappers
 * below hand those back unchanged and let the caller decide what is fatal.
 *
 * C types, from <seccomp.h> (2.5.4):
 *   scmp_filter_ctx seccomp_init(uint32_t def_action);            a void*, NULL on error
 *   int  seccomp_arch_add(ctx, uint32_t arch_token);               -EEXIST if present
 *   uint32_t seccomp_arch_native(void);
 *   uint32_t seccomp_arch_resolve_name(const char *);              0 if unknown
 *   int  seccomp_syscall_resolve_name_arch(uint32_t arch, const char *); -1 if unknown
 *   int  seccomp_rule_add_array(ctx, uint32_t action, int syscall,
 *                               unsigned int arg_cnt, const struct scmp_arg_cmp *);
 *   int  seccomp_attr_set(ctx, enum scmp_filter_attr, uint32_t value);
 *   int  seccomp_export_bpf(ctx, int fd);
 *   void seccomp_release(ctx);
 */
import * as fs from 'fs';
import { PaddockError } from '../base/errors';

/** The soname of Debian's libseccomp2; dlopen finds it on the default search path. */
export const LIBSECCOMP = 'libseccomp.so.2';

/** enum scmp_filter_attr */
export const ScmpAttr = {
  ACT_DEFAULT: 1,
  ACT_BADARCH: 2,
  CTL_NNP: 3,
  CTL_TSYNC: 4,
  API_TSKIP: 5,
  CTL_LOG: 6,
  CTL_SSB: 7,
  CTL_OPTIMIZE: 8,
  API_SYSRAWRC: 9,
} as const;

/** enum scmp_compare */
export const ScmpCmp = {
  NE: 1,
  LT: 2,
  LE: 3,
  EQ: 4,
  GE: 5,
  GT: 6,
  MASKED_EQ: 7,
} as const;

/** SCMP_ACT_* (the low 16 bits of ERRNO and TRACE carry the errno / tracer message). */
export const ScmpAct = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: (errno: number): number => (0x00050000 | (errno & 0xffff)) >>> 0,
  TRACE: (msg: number): number => (0x7ff00000 | (msg & 0xffff)) >>> 0,
  NOTIFY: 0x7fc00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** One struct scmp_arg_cmp: { unsigned int arg; enum scmp_compare op; u64 a; u64 b; }. */
export interface ArgCmp {
  arg: number;
  op: number;
  datumA: bigint;
  datumB: bigint;
}

/** sizeof(struct scmp_arg_cmp): 4 + 4 (no padding: op already ends on an 8-byte boundary) + 8 + 8. */
export const ARG_CMP_SIZE = 24;

/** Packs conditions as a C array of struct scmp_arg_cmp (little-endian, x86_64/aarch64 layout). */
export function packArgCmps(args: readonly ArgCmp[]): Buffer {
  const buf = Buffer.alloc(Math.max(1, args.length) * ARG_CMP_SIZE);
  args.forEach((a, i) => {
    const o = i * ARG_CMP_SIZE;
    buf.writeUInt32LE(a.arg >>> 0, o);
    buf.writeUInt32LE(a.op >>> 0, o + 4);
    buf.writeBigUInt64LE(BigInt.asUintN(64, a.datumA), o + 8);
    buf.writeBigUInt64LE(BigInt.asUintN(64, a.datumB), o + 16);
  });
  return buf;
}

/** An opaque scmp_filter_ctx (a JsExternal wrapping the C pointer). */
export type FilterCtx = { readonly __scmpCtx: unique symbol };

export interface LibSeccomp {
  init(defAction: number): FilterCtx;
  archNative(): number;
  /** 0 when libseccomp does not know the name (`x86_64`, `aarch64`, ...). */
  archResolveName(name: string): number;
  archAdd(ctx: FilterCtx, arch: number): number;
  /** The syscall number on `arch`, or a negative value (-1 unknown, < -1 pseudo number). */
  resolveNameArch(arch: number, name: string): number;
  /** The native number, or a libseccomp pseudo number for syscalls absent on this arch. */
  resolveName(name: string): number;
  ruleAdd(ctx: FilterCtx, action: number, syscall: number, args: readonly ArgCmp[]): number;
  attrSet(ctx: FilterCtx, attr: number, value: number): number;
  /** The filter as classic BPF (struct sock_filter[]), exported through a memfd. */
  exportBpf(ctx: FilterCtx): Buffer;
  release(ctx: FilterCtx): void;
  /** "major.minor.micro" of the loaded library. */
  version(): string;
}

function unavailable(detail: string, cause?: unknown): PaddockError {
  return new PaddockError(
    'ENATIVE_UNAVAILABLE',
    `${LIBSECCOMP} cannot load: ${detail}`,
    { path: LIBSECCOMP },
    cause,
  );
}

let cached: LibSeccomp | undefined;

/** Opens libseccomp once per process. Throws PaddockError ENATIVE_UNAVAILABLE. */
export function libseccomp(): LibSeccomp {
  if (cached !== undefined) return cached;
  let ffi: typeof import('ffi-rs');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ffi = require('ffi-rs') as typeof import('ffi-rs');
  } catch (e) {
    throw unavailable(`ffi-rs does not load (${(e as Error).message})`, e);
  }
  const library = 'paddock:libseccomp';
  const libc = 'paddock:libc-seccomp';
  try {
    ffi.open({ library, path: LIBSECCOMP });
    ffi.open({ library: libc, path: 'libc.so.6' });
  } catch (e) {
    throw unavailable((e as Error).message, e);
  }
  const { I32, U32, String: Str, External, U8Array, Void } = ffi.DataType;
  const call = <T>(lib: string, funcName: string, retType: number, paramsType: number[], paramsValue: unknown[]): T =>
    ffi.load({ library: lib, funcName, retType, paramsType, paramsValue } as Parameters<typeof ffi.load>[0]) as T;
  const sc = <T>(funcName: string, retType: number, paramsType: number[], paramsValue: unknown[]): T =>
    call<T>(library, funcName, retType, paramsType, paramsValue);

  const lib: LibSeccomp = {
    init(defAction) {
      const ctx = sc<unknown>('seccomp_init', External, [U32], [defAction >>> 0]);
      if (ctx === null || ctx === undefined || ffi.isNullPointer(ctx as import('ffi-rs').JsExternal)) {
        throw new PaddockError('EINVALID_ARGUMENT', `seccomp_init failed for action 0x${(defAction >>> 0).toString(16)}`);
      }
      return ctx as FilterCtx;
    },
    archNative: () => sc<number>('seccomp_arch_native', U32, [], []) >>> 0,
    archResolveName: (name) => sc<number>('seccomp_arch_resolve_name', U32, [Str], [name]) >>> 0,
    archAdd: (ctx, arch) => sc<number>('seccomp_arch_add', I32, [External, U32], [ctx, arch >>> 0]),
    resolveNameArch: (arch, name) =>
      sc<number>('seccomp_syscall_resolve_name_arch', I32, [U32, Str], [arch >>> 0, name]),
    resolveName: (name) => sc<number>('seccomp_syscall_resolve_name', I32, [Str], [name]),
    ruleAdd(ctx, action, syscall, args) {
      return sc<number>(
        'seccomp_rule_add_array',
        I32,
        [External, U32, I32, U32, U8Array],
        [ctx, action >>> 0, syscall, args.length, packArgCmps(args)],
      );
    },
    attrSet: (ctx, attr, value) => sc<number>('seccomp_attr_set', I32, [External, I32, U32], [ctx, attr, value >>> 0]),
    exportBpf(ctx) {
      const MFD_CLOEXEC = 1;
      const fd = call<number>(libc, 'memfd_create', I32, [Str, U32], ['paddock-seccomp', MFD_CLOEXEC]);
      if (fd < 0) throw new PaddockError('EINVALID_ARGUMENT', 'memfd_create failed for the seccomp export');
      try {
        const rc = sc<number>('seccomp_export_bpf', I32, [External, I32], [ctx, fd]);
        if (rc < 0) {
          throw new PaddockError('EINVALID_ARGUMENT', `seccomp_export_bpf failed with errno ${-rc}`, { errno: -rc });
        }
        const size = fs.fstatSync(fd).size;
        const out = Buffer.alloc(size);
        let got = 0;
        while (got < size) {
          const n = fs.readSync(fd, out, got, size - got, got);
          if (n === 0) break;
          got += n;
        }
        return out.subarray(0, got);
      } finally {
        fs.closeSync(fd);
      }
    },
    release: (ctx) => {
      sc<undefined>('seccomp_release', Void, [External], [ctx]);
    },
    version() {
      // const struct scmp_version *seccomp_version(void): three unsigned ints.
      const v = sc<{ major: number; minor: number; micro: number }>(
        'seccomp_version',
        { major: U32, minor: U32, micro: U32 } as unknown as number,
        [],
        [],
      );
      return `${v.major}.${v.minor}.${v.micro}`;
    },
  };
  try {
    lib.archNative();
  } catch (e) {
    throw unavailable((e as Error).message, e);
  }
  cached = lib;
  return lib;
}
