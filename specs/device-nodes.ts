/**
 * linux.devices: the device nodes a container gets besides paddock's defaults
 * (docs/decisions/0034). Three ways, as runc does them where the kernel allows:
 *
 * - without a user namespace, a char or block node (`c`, `u`, `b`) is made by the
 *   supervisor (mknod, the spec's mode, uid and gid) in the sandbox's state directory
 *   and bound into the container by paddock-init. The supervisor is outside the
 *   sandbox's device cgroup, whose rules (linux.resources.devices) would refuse the
 *   mknod of a device they deny: runc makes its nodes before it applies the rules, so
 *   a listed node exists whatever they say, and the rules alone decide whether it can
 *   be opened. paddock adds no allow rule for a listed node either.
 * - inside a user namespace, where mknod of a device is not allowed, the host's node
 *   of the same path is bound (its own mode and owner: the spec's are ignored, with a
 *   warning), as runc does.
 * - a FIFO (`p`) is made by paddock-init itself, in the container, in both cases.
 *
 * Each becomes one DEVICE string of the plan (docs/protocol.md).
 */

import * as path from 'node:path';
import type { DeviceNode } from '../native/facade';
import type { DeepReadonly } from './freeze';
import type { OciConfig, OciDevice } from './oci';

type Config = DeepReadonly<OciConfig>;

/** Host devices init bind-mounts into every container's /dev, as rootless runc does. */
export const DEFAULT_DEVICES: readonly string[] = Object.freeze([
  '/dev/null',
  '/dev/zero',
  '/dev/full',
  '/dev/random',
  '/dev/urandom',
  '/dev/tty',
]);

export const DEVICE_TYPES: readonly string[] = ['c', 'b', 'u', 'p'];

/** fileMode when the spec gives none: what a device node usually has. */
export const DEFAULT_DEVICE_MODE = 0o666;

/** The spec's path, normalized (`/dev//x/` → `/dev/x`). */
export function devicePath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Permission bits of fileMode: Docker writes the type bits too (8630 = S_IFCHR|0666), runc drops them. */
export function deviceMode(d: DeepReadonly<OciDevice>): number {
  return (d.fileMode ?? DEFAULT_DEVICE_MODE) & 0o7777;
}

export interface StagedNode {
  /** Where the supervisor makes it (below the sandbox's state directory). */
  readonly hostPath: string;
  readonly node: DeviceNode;
}

export interface DevicesPlan {
  /** The plan's DEVICE strings, defaults first. */
  readonly devices: string[];
  /** Nodes the supervisor makes before the container is launched. */
  readonly staged: StagedNode[];
}

/**
 * The DEVICE strings of a container and the nodes to stage for them. `deviceDir` is
 * where staged nodes go (`<state>/<sandbox>/devices/<container>`); it is needed only
 * for a char or block node without a user namespace.
 */
export function planDevices(config: Config, deviceDir: string | undefined): DevicesPlan {
  const listed = config.linux?.devices ?? [];
  const userns = (config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
  const paths = new Set(listed.map((d) => devicePath(d.path)));
  // The spec's entry for a default path replaces paddock's bind of the host's node.
  const devices = DEFAULT_DEVICES.filter((p) => !paths.has(p));
  const staged: StagedNode[] = [];
  listed.forEach((d, i) => {
    const p = devicePath(d.path);
    if (d.type === 'p') {
      devices.push(`|${p}\n${deviceMode(d)}\n${d.uid ?? 0}\n${d.gid ?? 0}`);
    } else if (userns) {
      devices.push(p);
    } else {
      if (deviceDir === undefined) throw new Error('planDevices: a deviceDir is needed for linux.devices nodes');
      const hostPath = path.join(deviceDir, String(i));
      staged.push({
        hostPath,
        node: { type: d.type === 'b' ? 'b' : 'c', major: d.major ?? 0, minor: d.minor ?? 0, mode: deviceMode(d), uid: d.uid ?? 0, gid: d.gid ?? 0 },
      });
      devices.push(`@${p}\n${hostPath}`);
    }
  });
  return { devices, staged };
}

/** True when the container's devices need nodes staged by the supervisor. */
export function needsStagedDevices(config: Config): boolean {
  const userns = (config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
  return !userns && (config.linux?.devices ?? []).some((d) => d.type !== 'p');
}
