/**
 * linux.devices: the device nodes a container gets besides paddock's defaults
 * (docs/decisions/0034), made the way runc makes them:
 *
 * - without a user namespace, paddock-init makes each node (mknod, the spec's mode,
 *   uid and gid) in the container's rootfs before pivot_root. The device cgroup checks
 *   mknod too, but the runtime's defaults appended to the spec's rules allow mknod of
 *   every char and block device (specs/device-rules.ts, as runc's); a spec that takes
 *   that away for a listed device is refused (specs/validate.ts), as the node could
 *   not be made. Whether the node opens is for the rules alone: paddock adds no allow
 *   rule for it, as runc adds none.
 * - inside a user namespace, where mknod of a device is not allowed, the host's node
 *   of the same path is bound (its own mode and owner: the spec's are ignored, with a
 *   warning), as runc does.
 * - a FIFO (`p`) is made like a node without a user namespace, in both cases (no
 *   capability or device cgroup is needed for one).
 *
 * Each becomes one DEVICE string of the plan (docs/protocol.md).
 */

import * as path from 'node:path';
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

/**
 * The plan's DEVICE strings for a container: paddock's defaults (less those the spec
 * lists itself), then each linux.devices entry: `/dev/x` (bind the host's node) or
 * `+/dev/x\nTYPE\nMAJOR\nMINOR\nMODE\nUID\nGID` (make it; TYPE c, b or p).
 */
export function planDevices(config: Config): string[] {
  const listed = config.linux?.devices ?? [];
  const userns = (config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
  const paths = new Set(listed.map((d) => devicePath(d.path)));
  // The spec's entry for a default path replaces paddock's bind of the host's node.
  const devices = DEFAULT_DEVICES.filter((p) => !paths.has(p));
  for (const d of listed) {
    const p = devicePath(d.path);
    if (userns && d.type !== 'p') {
      devices.push(p);
      continue;
    }
    const type = d.type === 'u' ? 'c' : d.type;
    const [major, minor] = d.type === 'p' ? [0, 0] : [d.major ?? 0, d.minor ?? 0];
    devices.push(`+${p}\n${type}\n${major}\n${minor}\n${deviceMode(d)}\n${d.uid ?? 0}\n${d.gid ?? 0}`);
  }
  return devices;
}
