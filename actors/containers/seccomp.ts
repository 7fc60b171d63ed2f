/**
 * A container's seccomp filter: the profile validated (specs/seccomp.ts), then built by
 * libseccomp (native/seccomp-compile.ts). seccomp-cache.ts keeps the results; the plans
 * (specs/plan.ts) receive the bytes.
 */
import { compileFilter, type CompiledSeccomp, type CompileSeccompOptions } from '../../native/seccomp-compile';
import { validateSeccomp } from '../../specs/seccomp';

/**
 * Compiles an OCI linux.seccomp object into classic BPF. Throws SpecError
 * ECONFIG_INVALID / ECONFIG_UNSUPPORTED, or PaddockError ENATIVE_UNAVAILABLE when
 * libseccomp.so.2 or ffi-rs cannot load.
 */
export function compileSeccomp(seccomp: unknown, opts: CompileSeccompOptions = {}): CompiledSeccomp {
  return compileFilter(validateSeccomp(seccomp, opts.field ?? 'linux.seccomp'), opts);
}
