import type { CliContext } from '../context';

/** `features`: the OCI runtime features document, limited to what paddock honours today. */
export async function run(_ctx: CliContext, _argv: string[]): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { MS, PROPAGATION } = require('../../specs/mount-options') as typeof import('../../specs/mount-options');
  const mountOptions = [
    ...Object.keys(MS).map((k) => k.toLowerCase()),
    ...Object.keys(PROPAGATION),
  ];
  const features = {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.0.2',
    hooks: [],
    mountOptions: [...new Set(mountOptions)].sort(),
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: [],
      cgroup: { v1: false, v2: false, systemd: false, systemdUser: false },
      seccomp: { enabled: false },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { 'org.opencontainers.runtime-spec.features.paddock': 'sandboxes: paddock-init in fresh namespaces' },
  };
  process.stdout.write(`${JSON.stringify(features, null, 2)}\n`);
  return 0;
}
