/**
 * KVM in a sandbox (docs/decisions/0038): what `kvm: true` adds to a config, and how
 * the rest of paddock recognises a config that asks for the device, whether the
 * option or the CLI's `linux.devices` put it there.
 */

import type { OciConfig } from './oci';
import type { DeepReadonly } from './freeze';
import { devicePath } from './device-nodes';

/** /dev/kvm is misc device 10:232 on every Linux (KVM_MINOR, include/linux/miscdevice.h). */
export const KVM_DEVICE = Object.freeze({ path: '/dev/kvm', major: 10, minor: 232 });

/**
 * Mode of the container's node. 0666 as the usual distribution rule gives the `kvm`
 * group: only the sandbox reaches the node, and the device cgroup's allow is for this
 * one device.
 */
export const KVM_MODE = 0o666;

/** True when the config lists /dev/kvm in linux.devices. */
export function listsKvm(config: DeepReadonly<OciConfig>): boolean {
  return (config.linux?.devices ?? []).some((d) => devicePath(d.path) === KVM_DEVICE.path);
}

/**
 * The config with /dev/kvm given to the container, as podman's `--device /dev/kvm`
 * writes it: a linux.devices entry and an allow rule in the device cgroup (both kept
 * when the config already has them). The config is a fresh copy the caller owns.
 */
export function withKvm(config: OciConfig): OciConfig {
  const linux = (config.linux ??= {});
  if (!listsKvm(config)) {
    (linux.devices ??= []).push({ path: KVM_DEVICE.path, type: 'c', major: KVM_DEVICE.major, minor: KVM_DEVICE.minor, fileMode: KVM_MODE, uid: 0, gid: 0 });
  }
  const rules = ((linux.resources ??= {}).devices ??= []);
  // Appended: the device cgroup's last matching rule wins (decision 0019).
  rules.push({ allow: true, type: 'c', major: KVM_DEVICE.major, minor: KVM_DEVICE.minor, access: 'rwm' });
  return config;
}
