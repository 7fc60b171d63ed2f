import type { CliContext } from '../context';

/** `features`: the OCI runtime features document, limited to what paddock honours today. */
export async function run(ctx: CliContext, _argv: string[]): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { MOUNT_OPTION_NAMES } = require('../../specs/mount-options') as typeof import('../../specs/mount-options');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { CAPABILITIES } = require('../../specs/process-security') as typeof import('../../specs/process-security');
  const features = {
    ociVersionMin: '1.0.0',
    // The features document is a 1.1.0 notion, and paddock reads 1.1.0 configs (domainname,
    // seccomp flags, createRuntime/createContainer/startContainer hooks); what it refuses of
    // them is in specs/UNSUPPORTED.md. 1.2.0's additions (scheduler, ioPriority,
    // execCPUAffinity, memoryPolicy, netDevices) are all refused, so 1.2.0 is not claimed.
    ociVersionMax: '1.1.0',
    // All six run: the first four on the host (actors/containers/oci-hooks.ts), the last two inside the
    // container by paddock-init (native/c/init/hooks.c).
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: [...MOUNT_OPTION_NAMES],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: Object.keys(CAPABILITIES).sort(),
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: { enabled: true, actions: ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE', 'SCMP_ACT_TRAP'], operators: ['SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_LE', 'SCMP_CMP_LT', 'SCMP_CMP_MASKED_EQ', 'SCMP_CMP_NE'], archs: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: {
      'org.opencontainers.runtime-spec.features.paddock': 'sandboxes: paddock-init in fresh namespaces',
      // systemd: false above: paddock cannot ask systemd for a scope (docs/decisions/0018).
      'org.opencontainers.runtime-spec.features.paddock.cgroupsPath':
        'root container only (pod containers run in the sandbox cgroup); --systemd-cgroup slice:prefix:name is mapped to cgroupfs when systemd does not run, refused when it does',
    },
  };
  ctx.io.stdout.write(`${JSON.stringify(features, null, 2)}\n`);
  return 0;
}
