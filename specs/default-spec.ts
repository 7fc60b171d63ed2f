/**
 * A starting config.json in the spirit of `runc spec`, limited to what paddock
 * honours: no capabilities, rlimits, resources or terminal, so it loads unchanged
 * with or without a user namespace.
 */

import { OciConfig, OciLinux, OciNamespace } from './oci';

export interface DefaultSpecOptions {
  args?: string[];
  /** root.path, relative to the bundle or absolute. Default `rootfs`. */
  rootfs?: string;
  hostname?: string;
  /** Map container ids 0..size-1 to host ids hostId.. (uid and gid alike). Default: no user namespace. */
  userns?: { hostId: number; size: number } | false;
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** A fresh, mutable config each call, so callers can adjust it before writing it out. */
export function defaultSpec(opts: DefaultSpecOptions = {}): OciConfig {
  const namespaces: OciNamespace[] = [
    { type: 'pid' },
    { type: 'network' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  const linux: OciLinux = {
    namespaces,
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
  };
  if (opts.userns) {
    const { hostId, size } = opts.userns;
    namespaces.push({ type: 'user' });
    linux.uidMappings = [{ containerID: 0, hostID: hostId, size }];
    linux.gidMappings = [{ containerID: 0, hostID: hostId, size }];
  }
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [...(opts.args ?? ['sh'])],
      env: [DEFAULT_PATH, 'TERM=xterm'],
      cwd: '/',
    },
    root: { path: opts.rootfs ?? 'rootfs', readonly: true },
    hostname: opts.hostname ?? 'paddock',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        // No gid=5: under a user namespace the tty group is usually unmapped and
        // the mount would fail; devpts then uses the caller's gid.
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux,
  };
}
