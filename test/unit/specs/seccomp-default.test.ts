import { CAPABILITIES } from '../../../specs/process-security';
import { compileSeccomp } from '../../../actors/containers/seccomp';
import { validateSeccomp } from '../../../specs/seccomp';
import { ALLOWED_PERSONAS, CAPABILITY_SYSCALLS, DEFAULT_SECCOMP_ALLOW, defaultSeccompProfile } from '../../../specs/seccomp-default';
import { DEFAULT_CAPABILITIES, defaultSpec, toRootless } from '../../../specs/default-spec';
import { validateConfig } from '../../../specs/validate';
import { configWarnings } from '../../../specs/config-warnings';
import { libseccomp } from '../../../native/seccomp-ffi';

let native = true;
try {
  libseccomp();
} catch {
  native = false;
}
const itNative = native ? it : it.skip;

const allowed = (p: ReturnType<typeof defaultSeccompProfile>) =>
  new Set(p.syscalls!.filter((s) => s.action === 'SCMP_ACT_ALLOW' && s.args === undefined).flatMap((s) => s.names));

/** Families the default profile must never let through without the matching capability. */
const NEVER = [
  'mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'chroot', 'fsopen', 'fsmount', 'move_mount', 'open_tree',
  'mount_setattr', 'keyctl', 'add_key', 'request_key', 'bpf', 'ptrace', 'process_vm_readv', 'process_vm_writev',
  'kcmp', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'swapon', 'swapoff',
  'reboot', 'clock_settime', 'settimeofday', 'stime', 'open_by_handle_at', 'userfaultfd', 'perf_event_open',
  'acct', 'quotactl', 'iopl', 'ioperm', 'syslog', 'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'uselib', 'ustat', 'sysfs', '_sysctl', 'vhangup', 'lookup_dcookie', 'mbind', 'set_mempolicy', 'move_pages',
  'nfsservctl', 'vm86', 'vm86old', 'sethostname', 'setdomainname', 'fanotify_init',
];

describe('the default seccomp profile (data module)', () => {
  it('is an allow list: everything else is ERRNO(EPERM)', () => {
    const p = defaultSeccompProfile();
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(() => validateSeccomp(p)).not.toThrow();
    expect(new Set(DEFAULT_SECCOMP_ALLOW).size).toBe(DEFAULT_SECCOMP_ALLOW.length);
    for (const s of p.syscalls!) expect(['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO']).toContain(s.action);
  });

  it('lets none of the dangerous families through without their capability', () => {
    const a = allowed(defaultSeccompProfile({ capabilities: DEFAULT_CAPABILITIES }));
    for (const n of NEVER) expect([n, a.has(n)]).toEqual([n, false]);
    const conditional = defaultSeccompProfile().syscalls!.filter((s) => s.args !== undefined || s.action !== 'SCMP_ACT_ALLOW');
    // Only clone (no namespace flags), socket (not AF_VSOCK), personality and clone3 (ENOSYS) carry conditions.
    expect([...new Set(conditional.flatMap((s) => s.names))].sort()).toEqual(['clone', 'clone3', 'personality', 'socket']);
    const clone = conditional.find((s) => s.names[0] === 'clone')!;
    expect(clone.args).toEqual([{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    expect(conditional.find((s) => s.names[0] === 'clone3')).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    expect(conditional.find((s) => s.names[0] === 'socket')!.args).toEqual([{ index: 0, value: 40, op: 'SCMP_CMP_NE' }]);
    expect(conditional.filter((s) => s.names[0] === 'personality').map((s) => s.args![0]!.value)).toEqual([...ALLOWED_PERSONAS]);
  });

  it('opens the capability-conditional calls for the caps in the bounding set, as moby does', () => {
    for (const [cap, names] of Object.entries(CAPABILITY_SYSCALLS)) {
      expect(CAPABILITIES[cap]).toBeDefined();
      const a = allowed(defaultSeccompProfile({ capabilities: [cap] }));
      for (const n of names) expect([cap, n, a.has(n)]).toEqual([cap, n, true]);
    }
    // CAP_SYS_ADMIN allows clone with any flags, so the argument rule and clone3's ENOSYS go.
    const admin = defaultSeccompProfile({ capabilities: ['CAP_SYS_ADMIN'] });
    expect(admin.syscalls!.filter((s) => s.args !== undefined && s.names.includes('clone'))).toHaveLength(0);
    expect(admin.syscalls!.filter((s) => s.action === 'SCMP_ACT_ERRNO')).toHaveLength(0);
    expect(allowed(admin).has('clone3')).toBe(true);
    // Fresh objects: editing one profile does not change the next.
    const p = defaultSeccompProfile();
    p.syscalls![0]!.names.push('mount');
    expect(allowed(defaultSeccompProfile()).has('mount')).toBe(false);
  });

  itNative('compiles with libseccomp for no caps, each conditional cap and every cap', () => {
    const sets: string[][] = [[], [...DEFAULT_CAPABILITIES], ...Object.keys(CAPABILITY_SYSCALLS).map((c) => [c]), Object.keys(CAPABILITIES)];
    for (const caps of sets) {
      const c = compileSeccomp(defaultSeccompProfile({ capabilities: caps }));
      expect(c.bpf.length % 8).toBe(0);
      expect(c.bpf.length / 8).toBeLessThan(4096);
      expect(c.skipped).not.toContain('read');
    }
  });
});

describe('defaultSpec and toRootless', () => {
  it('gives runc\'s caps, noNewPrivileges, the default profile, masked/read-only paths and a read-only /sys', () => {
    const c = defaultSpec();
    expect(c.process!.capabilities).toEqual({ bounding: [...DEFAULT_CAPABILITIES], effective: [...DEFAULT_CAPABILITIES], permitted: [...DEFAULT_CAPABILITIES] });
    expect(c.process!.noNewPrivileges).toBe(true);
    expect(c.process!.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);
    expect(c.linux!.resources!.devices![0]).toEqual({ allow: false, access: 'rwm' });
    expect(c.linux!.seccomp).toEqual(defaultSeccompProfile({ capabilities: DEFAULT_CAPABILITIES }));
    expect(c.linux!.maskedPaths).toEqual(expect.arrayContaining(['/proc/kcore', '/proc/keys', '/sys/firmware', '/proc/timer_list']));
    expect(c.linux!.readonlyPaths).toEqual(expect.arrayContaining(['/proc/sys', '/proc/sysrq-trigger', '/proc/bus', '/proc/irq', '/proc/fs']));
    expect(c.mounts!.find((m) => m.destination === '/sys')!.options).toContain('ro');
    expect(c.linux!.namespaces!.map((n) => n.type)).toContain('network');
    expect(() => validateConfig(c)).not.toThrow();
    // Options: no seccomp, other caps (the profile follows them), host network, nnp off.
    const o = defaultSpec({ seccomp: false, capabilities: ['CAP_SYS_ADMIN'], network: false, noNewPrivileges: false });
    expect(o.linux!.seccomp).toBeUndefined();
    expect(o.process!.capabilities!.bounding).toEqual(['CAP_SYS_ADMIN']);
    expect(o.process!.noNewPrivileges).toBe(false);
    expect(o.linux!.namespaces!.map((n) => n.type)).not.toContain('network');
    expect(allowed(defaultSpec({ capabilities: ['CAP_SYS_ADMIN'] }).linux!.seccomp as never).has('mount')).toBe(true);
  });

  it('toRootless does what runc spec --rootless does, but keeps the network namespace', () => {
    const c = toRootless(defaultSpec(), { uid: 1234, gid: 567 });
    const types = c.linux!.namespaces!.map((n) => n.type);
    expect(types).toContain('user');
    expect(types).toContain('network');
    expect(c.mounts!.find((m) => m.destination === '/sys')).toEqual({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    // Without a network namespace of its own, sysfs cannot be mounted: the host's is bound.
    const h = defaultSpec();
    h.linux!.namespaces = h.linux!.namespaces!.filter((n) => n.type !== 'network');
    toRootless(h, { uid: 1234, gid: 567 });
    expect(c.linux!.uidMappings).toEqual([{ containerID: 0, hostID: 1234, size: 1 }]);
    expect(c.linux!.gidMappings).toEqual([{ containerID: 0, hostID: 567, size: 1 }]);
    expect(h.mounts!.find((m) => m.destination === '/sys')).toEqual({ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
    for (const m of c.mounts!) for (const o of m.options ?? []) expect(o).not.toMatch(/^[ug]id=/);
    expect(() => validateConfig(c)).not.toThrow();
  });
});

describe('configWarnings', () => {
  it('names each ambient cap that is skipped (the config runc spec writes)', () => {
    const c = defaultSpec();
    c.process!.capabilities!.ambient = ['CAP_AUDIT_WRITE', 'CAP_KILL'];
    c.process!.capabilities!.inheritable = ['CAP_KILL'];
    expect(() => validateConfig(c)).not.toThrow();
    const w = configWarnings(c);
    expect(w).toHaveLength(1);
    expect(w[0]!.field).toBe('process.capabilities.ambient[0]');
    expect(w[0]!.message).toMatch(/^process\.capabilities\.ambient\[0\]: CAP_AUDIT_WRITE is skipped/);
    expect(configWarnings(defaultSpec())).toEqual([]);
  });
});
