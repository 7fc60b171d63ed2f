/**
 * Names → numbers for the process-security fields of config.json: capabilities,
 * rlimits and sysctls. validate.ts uses these to name the field at fault; plan.ts to
 * turn a validated config into the bitmasks and numbers paddock-init applies.
 */

import { CapsPlan, RlimitPlan } from '../protocols/messages';
import { DeepReadonly } from './freeze';
import { OciCapabilities, OciRlimit } from './oci';

/** linux/capability.h, CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40). */
export const CAPABILITIES: Readonly<Record<string, number>> = Object.freeze({
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4,
  CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10, CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15, CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20, CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25, CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30, CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35, CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
});

export const CAP_SETS = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;

/** asm-generic/resource.h (x86, arm64 and most others share it). */
export const RLIMITS: Readonly<Record<string, number>> = Object.freeze({
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
});

export const RLIM_INFINITY = 0xffffffffffffffffn;

/**
 * JSON has no 64-bit integers: RLIM_INFINITY (2^64-1) written in a config parses to
 * the double 2^64. Anything that large means "unlimited"; smaller values must be
 * exact (safe) integers, which validate.ts checks.
 */
export function rlimitValue(v: number): bigint {
  return v >= 2 ** 64 - 1 ? RLIM_INFINITY : BigInt(v);
}

export function isRlimitValue(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && (Number.isSafeInteger(v) || v >= 2 ** 64 - 1);
}

export function capMask(names: readonly string[] | undefined): bigint {
  let m = 0n;
  for (const n of names ?? []) {
    const bit = CAPABILITIES[n];
    if (bit !== undefined) m |= 1n << BigInt(bit);
  }
  return m;
}

/**
 * Every set, a missing one empty: the spec is the whole truth. An ambient cap that is
 * not also permitted and inheritable is left out: the kernel refuses to raise it, and
 * runc skips it too (`runc spec` writes such a config); see skippedAmbient().
 */
export function capsPlan(caps: DeepReadonly<OciCapabilities>): CapsPlan {
  const permitted = capMask(caps.permitted);
  const inheritable = capMask(caps.inheritable);
  return {
    bounding: capMask(caps.bounding),
    effective: capMask(caps.effective),
    permitted,
    inheritable,
    ambient: capMask(caps.ambient) & permitted & inheritable,
  };
}

/** The entries of `ambient` that capsPlan() leaves out, with their index. */
export function skippedAmbient(caps: DeepReadonly<OciCapabilities> | undefined): Array<{ index: number; cap: string }> {
  if (caps?.ambient === undefined) return [];
  const keep = capMask(caps.permitted) & capMask(caps.inheritable);
  const out: Array<{ index: number; cap: string }> = [];
  caps.ambient.forEach((cap, index) => {
    if ((capMask([cap]) & keep) === 0n) out.push({ index, cap });
  });
  return out;
}

export function rlimitsPlan(rl: readonly DeepReadonly<OciRlimit>[]): RlimitPlan[] {
  return rl.map((r) => ({ type: RLIMITS[r.type] as number, soft: rlimitValue(r.soft), hard: rlimitValue(r.hard) }));
}

/** IPC sysctls the kernel keeps per ipc namespace (runc's list). */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced',
]);

/**
 * Which namespace a sysctl belongs to, or a reason it cannot be set. Only
 * namespaced sysctls are allowed: anything else would change the host.
 */
export function sysctlNamespace(key: string): { ns: 'ipc' | 'network' } | { invalid: string } | { unsupported: string } {
  // The key becomes a path under /proc/sys: no way out of it, no empty components.
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_@:+-]+)+$/.test(key)) {
    return { invalid: 'is not a sysctl name (dot-separated, no "/")' };
  }
  if (key === 'kernel.hostname' || key === 'kernel.domainname') {
    return { invalid: `set the ${key === 'kernel.hostname' ? 'hostname' : 'domainname'} field instead` };
  }
  if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) return { ns: 'ipc' };
  if (key.startsWith('net.')) return { ns: 'network' };
  return { unsupported: 'is not a namespaced sysctl; setting it would change the host' };
}

/**
 * `caps` with `add` appended to bounding, effective and permitted, as runc exec --cap
 * does; and to ambient when the spec has an inheritable set, as runc too (capsPlan()
 * then keeps only those also inheritable: the kernel refuses the others).
 */
export function withCapabilities(caps: DeepReadonly<OciCapabilities>, add: readonly string[]): OciCapabilities {
  const plus = (set: readonly string[] | undefined) => [...new Set([...(set ?? []), ...add])];
  return {
    ...(caps as OciCapabilities),
    bounding: plus(caps.bounding),
    effective: plus(caps.effective),
    permitted: plus(caps.permitted),
    ...(caps.inheritable !== undefined ? { ambient: plus(caps.ambient) } : {}),
  };
}
