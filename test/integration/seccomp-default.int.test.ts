import { CAPABILITIES } from '../../specs/process-security';
import type { OciConfig } from '../../specs/oci';
import type { SeccompProfile } from '../../specs/seccomp';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';
import { buildSyscallProbe, probeResults, withProbe } from '../helpers/syscall-probe';

/**
 * The default seccomp profile (specs/seccomp-default.ts), from inside containers made
 * from defaultSpec(): each blocked family fails with EPERM while a plain sh works. A
 * static probe (test/fixtures/syscall-probe.c) issues the calls with arguments the
 * kernel rejects once permitted, so a call the filter let through shows some other
 * errno (see the control below).
 */
describeIf(['root', 'busybox'])('default seccomp profile (real sandboxes)', () => {
  const fx = useEngine('seccomp-default');
  let probe: string;
  beforeAll(() => {
    probe = buildSyscallProbe();
  });

  const EPERM = 1;
  const ENOSYS = 38;
  /** A distinctive errno for the filter's default action: nothing else returns it here. */
  const EHWPOISON = 133;

  /** Blocked for every container made from defaultSpec() (runc's three caps). */
  const BLOCKED = [
    // mounts and namespaces
    'mount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'open_tree', 'move_mount', 'setns',
    'clone_newuser',
    // kernel keyring
    'keyctl', 'add_key', 'request_key',
    // bpf, tracing other processes, perf
    'bpf', 'ptrace', 'process_vm_readv', 'kcmp', 'perf_event_open',
    // kernel image and modules, power, swap, accounting, quotas, kernel log
    'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot',
    'swapon', 'swapoff', 'acct', 'quotactl', 'syslog',
    // clock
    'clock_settime', 'settimeofday',
    // file handles, userfaultfd, io_uring, uts, personality, vsock
    'open_by_handle_at', 'userfaultfd', 'io_uring_setup', 'sethostname', 'personality_bad', 'socket_vsock',
    ...(process.arch === 'x64' ? ['iopl'] : []),
    // Last: when allowed, they move the probe itself into new namespaces.
    'unshare_newns', 'unshare_newuser',
  ];
  const ALLOWED = ['getpid', 'fork', 'socket_unix', 'personality_query'];
  const PROBE_CMD = (names: string[]) => ['sh', '-c', `echo shell-ok; /probe ${names.join(' ')}`];

  async function probeIn(extra: (c: OciConfig) => void, userns = true) {
    const { stdout, stderr, status } = await fx.run(PROBE_CMD([...ALLOWED, ...BLOCKED, 'clone3']), {
      userns,
      extra: (c) => {
        withProbe(probe)(c);
        extra(c);
      },
    });
    expect(stderr).toBe('');
    expect(status.exitCode).toBe(0);
    expect(stdout.startsWith('shell-ok\n')).toBe(true);
    return probeResults(stdout);
  }

  test('a container made from defaultSpec(): every blocked family fails with EPERM, sh and ordinary calls work', async () => {
    // defaultSpec() as `paddock spec` writes it: no user namespace, real root with runc's caps.
    const r = await probeIn(() => undefined, false);
    for (const n of ALLOWED) expect([n, r.get(n)]).toEqual([n, 0]);
    for (const n of BLOCKED) expect([n, r.get(n)]).toEqual([n, EPERM]);
    // clone3 says ENOSYS so libc falls back to clone, whose flags the filter can read.
    expect(r.get('clone3')).toBe(ENOSYS);
  });

  test('the filter alone blocks them: with every capability the profile still answers, and without it they get through', async () => {
    const all = Object.keys(CAPABILITIES);
    const everything = (c: OciConfig) => {
      c.process!.capabilities = { bounding: all, effective: all, permitted: all };
    };
    // The same default profile (made for runc's caps), its default errno made distinctive.
    const filtered = await probeIn((c) => {
      everything(c);
      (c.linux!.seccomp as SeccompProfile).defaultErrnoRet = EHWPOISON;
    });
    for (const n of ALLOWED) expect([n, filtered.get(n)]).toEqual([n, 0]);
    for (const n of BLOCKED) expect([n, filtered.get(n)]).toEqual([n, EHWPOISON]);

    // Control: no filter, every capability of the container's user namespace. Calls
    // that namespace lets root make now get through to their argument checks, so the
    // probe can tell a blocked call from an allowed one.
    const open = await probeIn((c) => {
      everything(c);
      delete c.linux!.seccomp;
    });
    for (const n of ['mount', 'umount2', 'pivot_root', 'chroot', 'setns', 'unshare_newuser', 'unshare_newns', 'clone_newuser', 'keyctl', 'ptrace', 'sethostname', 'personality_bad']) {
      const e = open.get(n);
      expect([n, e === EPERM || e === EHWPOISON]).toEqual([n, false]);
    }
  });
});
