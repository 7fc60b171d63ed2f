/**
 * A starting config.json in the spirit of `runc spec`: runc's capabilities, masked
 * and read-only paths and a read-only /sys, plus noNewPrivileges and paddock's default
 * seccomp profile (specs/seccomp-default.ts), so that a container made from it holds
 * its code in (issue 12, docs/decisions/0027), runc's RLIMIT_NOFILE and deny-all
 * device rule. No other resources or terminal, so it loads unchanged with or without
 * a user namespace.
 */

import { OciCapabilities, OciConfig, OciDeviceCgroup, OciLinux, OciNamespace } from './oci';
import { defaultSeccompProfile } from './seccomp-default';

export interface DefaultSpecOptions {
  args?: string[];
  /** root.path, relative to the bundle or absolute. Default `rootfs`. */
  rootfs?: string;
  hostname?: string;
  /**
   * Map container ids 0..size-1 to host ids hostId.. (gids to hostGid.., default
   * hostId). Default: no user namespace.
   */
  userns?: { hostId: number; size: number; hostGid?: number } | false;
  /** Bounding, effective and permitted capabilities. Default DEFAULT_CAPABILITIES (runc's). */
  capabilities?: readonly string[];
  /** Default true. */
  noNewPrivileges?: boolean;
  /**
   * linux.seccomp: true (default) for paddock's default profile, opened for
   * `capabilities` as container engines do; false for none.
   */
  seccomp?: boolean;
  /** A network namespace of its own. Default true; false shares the host's network. */
  network?: boolean;
}

/**
 * linux.resources.devices: deny every device, then allow the standard ones paddock
 * bind-mounts (and the container's own pts), in the form containerd writes. runc's
 * spec denies all too; without a rule, a process given CAP_MKNOD could make and open
 * a disk node. Under a user namespace the kernel already refuses such nodes and the
 * list is tolerated as is (specs/UNSUPPORTED.md).
 */
export const DEFAULT_DEVICE_RULES: readonly OciDeviceCgroup[] = Object.freeze([
  { allow: false, access: 'rwm' },
  ...([[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 2]] as const).map(([major, minor]) => ({ allow: true, type: 'c', major, minor, access: 'rwm' })),
  { allow: true, type: 'c', major: 136, access: 'rwm' },
]);

/** What `runc spec` grants. */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);

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
    ...(opts.network === false ? [] : [{ type: 'network' as const }]),
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  const caps = [...(opts.capabilities ?? DEFAULT_CAPABILITIES)];
  const linux: OciLinux = {
    namespaces,
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
    resources: { devices: DEFAULT_DEVICE_RULES.map((r) => ({ ...r })) },
  };
  if (opts.seccomp !== false) linux.seccomp = defaultSeccompProfile({ capabilities: caps });
  if (opts.userns) {
    const { hostId, size, hostGid } = opts.userns;
    namespaces.push({ type: 'user' });
    linux.uidMappings = [{ containerID: 0, hostID: hostId, size }];
    linux.gidMappings = [{ containerID: 0, hostID: hostGid ?? hostId, size }];
  }
  // Inheritable and ambient stay empty: runc's config lists ambient without
  // inheritable, which the kernel (and runc) skip, so this is what it yields in effect;
  // a process of a non-root user gets no capability (docs/decisions/0027).
  const capabilities: OciCapabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [...(opts.args ?? ['sh'])],
      env: [DEFAULT_PATH, 'TERM=xterm'],
      cwd: '/',
      capabilities,
      // runc's: and without it the process would inherit the supervisor's soft limit,
      // which Node raises to the hard one at start (docs/decisions/0026).
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: opts.noNewPrivileges ?? true,
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

/**
 * What `runc spec --rootless` changes, done to `config` in place, except one thing: a
 * user namespace mapping container root to the caller (one uid, one gid), no uid=/gid=
 * mount options (those ids are not mapped) and no resources, as runc; but the network
 * namespace stays. runc drops it (an unprivileged user cannot give it connectivity),
 * which puts the container on the host's network, loopback services included: looser
 * than paddock's defaults may be (docs/decisions/0027). A new network namespace owned
 * by the new user namespace needs no privilege, and lo comes up in it. Only a config
 * that has no network namespace gets /sys as a read-only recursive bind of the host's
 * (sysfs can only be mounted by the owner of the network namespace).
 */
export function toRootless(config: OciConfig, ids: { uid: number; gid: number }): OciConfig {
  const linux = (config.linux ??= {});
  linux.namespaces = [...(linux.namespaces ?? []).filter((ns) => ns.type !== 'user'), { type: 'user' }];
  const ownNetwork = linux.namespaces.some((ns) => ns.type === 'network' && ns.path === undefined);
  linux.uidMappings = [{ containerID: 0, hostID: ids.uid, size: 1 }];
  linux.gidMappings = [{ containerID: 0, hostID: ids.gid, size: 1 }];
  delete linux.resources;
  config.mounts = (config.mounts ?? []).map((m) => {
    if (!ownNetwork && m.destination.replace(/\/+$/, '') === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (m.options === undefined) return m;
    return { ...m, options: m.options.filter((o) => !o.startsWith('uid=') && !o.startsWith('gid=')) };
  });
  return config;
}
