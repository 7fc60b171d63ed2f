import type { NativeFacade } from '../../native/facade';
import { NativeError } from '../../native/facade';
import { deviceProgram } from '../../specs/device-bpf';
import { reduceDeviceRules } from '../../specs/device-rules';
import type { OciDeviceCgroup } from '../../specs/oci';
import { CgroupError, type CgroupLayout } from './sandbox-cgroup';

/**
 * How a sandbox's linux.resources.devices are enforced (docs/decisions/0019):
 *
 * - `v1`: written to the sandbox's v1 `devices` cgroup (v1 and hybrid hosts);
 * - `bpf`: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to its cgroup2 directory
 *   (a cgroup-v2-only host, which has no devices controller);
 * - `none`: no rules.
 *
 * With or without a user namespace (docs/decisions/0034): the supervisor, root on the
 * host, writes the rules or attaches the program, and nothing in the container's user
 * namespace can take them away.
 *
 * `PADDOCK_DEVICE_CGROUP=bpf` makes a hybrid host use the program on its unified tree
 * instead of the v1 controller. It exists for tests and diagnosis (the BPF path is
 * otherwise only reached on a v2-only host), not as a setting for production.
 */
export type DeviceEnforcement = 'v1' | 'bpf' | 'none';

export const FORCE_BPF_ENV = 'PADDOCK_DEVICE_CGROUP';

export function deviceEnforcement(
  layout: CgroupLayout,
  rules: readonly unknown[] | undefined,
  env: NodeJS.ProcessEnv = process.env,
): DeviceEnforcement {
  if (!rules || rules.length === 0) return 'none';
  if (layout.mode === 'v2') return 'bpf';
  if (env[FORCE_BPF_ENV] === 'bpf' && layout.mode === 'hybrid') return 'bpf';
  return 'v1';
}

/**
 * Builds the rules' program and attaches it to `unifiedDir` (the sandbox's cgroup2
 * directory, just made). Throws CgroupError naming the step; a program the verifier
 * refuses carries its log.
 */
export function attachDevicePolicy(native: NativeFacade, unifiedDir: string | undefined, rules: readonly OciDeviceCgroup[]): void {
  if (unifiedDir === undefined) throw new CgroupError('ENOENT', 'devices: no cgroup2 directory for the device program');
  // Validated at load (specs/validate.ts); reduced again here from the frozen spec.
  const program = deviceProgram(reduceDeviceRules(rules));
  try {
    native.attachDeviceProgram(unifiedDir, program);
  } catch (e) {
    if (!(e instanceof NativeError)) throw e;
    throw new DeviceProgramError(e, unifiedDir);
  }
}

/** A failed load or attach, as a CgroupError (`cgroup: EPERM (bpf_prog_attach: ...)`). */
export class DeviceProgramError extends CgroupError {
  constructor(
    readonly nativeError: NativeError,
    dir: string,
  ) {
    super(nativeError.errnoName, `devices: ${nativeError.message}`, dir);
    this.name = 'DeviceProgramError';
  }
}
