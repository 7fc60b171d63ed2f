/**
 * KVM access for sandboxes (docs/decisions/0038): the engine's probe, the refusal at
 * create when the host has none, and the node a user-namespaced sandbox gets.
 */

import * as path from 'node:path';
import type { Fd, KvmInfo, NativeFacade } from '../../native/facade';
import { NativeError } from '../../native/facade';
import { deviceMode, devicePath } from '../../specs/device-nodes';
import { KVM_DEVICE } from '../../specs/kvm';
import type { OciConfig } from '../../specs/oci';
import type { DeepReadonly } from '../../specs/freeze';
import { hostIdFor } from '../../specs/plan';
import { LaunchError, PaddockError } from '../../base/errors';

/** `kvm` of createSandbox's options: a boolean or absent. */
export function checkKvmOption(v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new PaddockError('EINVALID_ARGUMENT', 'kvm must be a boolean', { field: 'kvm' });
  return v;
}

/** Throws EKVM_UNAVAILABLE (with the probe's reason) unless /dev/kvm works here. */
export function requireKvm(native: NativeFacade, sandboxId: string): KvmInfo {
  const info = native.kvmProbe();
  if (!info.available) {
    throw new PaddockError('EKVM_UNAVAILABLE', `kvm is not available on this host: ${info.reason ?? 'unknown'}`, { sandboxId, step: 'kvm_probe' });
  }
  return info;
}

/**
 * Inside a user namespace the container's root is a mapped host id, which cannot open
 * the host's root-only /dev/kvm (crw------- or crw-rw---- root kvm). The supervisor
 * makes a node of its own for this sandbox (in its state folder, 0700: nobody else
 * walks in), owned by the host ids the entry's uid/gid map to, and binds it over
 * /dev/kvm in paddock-init's mount namespace; each container's bind of "/dev/kvm"
 * (specs/device-nodes.ts) then takes that node. The device cgroup still decides
 * whether it opens. Called after init is ready and before any container is forked.
 */
export function bindKvmNode(config: DeepReadonly<OciConfig>, sandboxDir: string, pidfd: Fd, native: NativeFacade, sandboxId: string): void {
  const entry = (config.linux?.devices ?? []).find((d) => devicePath(d.path) === KVM_DEVICE.path);
  if (entry === undefined) return;
  const uid = hostIdFor(config.linux?.uidMappings ?? [], entry.uid ?? 0);
  const gid = hostIdFor(config.linux?.gidMappings ?? [], entry.gid ?? 0);
  if (uid === undefined || gid === undefined) {
    throw new LaunchError(`device: EINVAL (/dev/kvm: uid ${entry.uid ?? 0} or gid ${entry.gid ?? 0} is not mapped)`, { sandboxId, step: 'device', path: KVM_DEVICE.path });
  }
  const node = path.join(sandboxDir, 'kvm');
  try {
    native.mknodChar(node, entry.major ?? KVM_DEVICE.major, entry.minor ?? KVM_DEVICE.minor, deviceMode(entry), uid, gid);
    native.bindInto(pidfd, node, KVM_DEVICE.path);
  } catch (e) {
    if (!(e instanceof NativeError)) throw e;
    throw new LaunchError(`${e.step}: ${e.errnoName} (${KVM_DEVICE.path})`, { sandboxId, step: e.step, errno: e.errno, path: KVM_DEVICE.path }, e);
  }
}
