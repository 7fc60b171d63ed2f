import { defaultSpec } from '../../../specs/default-spec';
import { findConfigProblems, validateConfig } from '../../../specs/validate';
import { caught, spec } from './helpers';

type Edit = (c: any) => unknown;

function problem(edit: Edit, userns = true) {
  const e = caught(() => validateConfig(spec(edit, userns)));
  return { code: e.code, field: e.context.field, message: e.message };
}

describe('validateConfig: a valid config', () => {
  it('accepts defaultSpec with and without a user namespace', () => {
    expect(findConfigProblems(spec())).toEqual([]);
    expect(findConfigProblems(spec(undefined, false))).toEqual([]);
  });

  it('returns the config it was given', () => {
    const c = spec();
    expect(validateConfig(c)).toBe(c);
  });

  it('accepts a config without a linux section (host namespaces, as runc; the container still gets mount and pid namespaces)', () => {
    expect(findConfigProblems(spec((c) => { delete c.linux; delete c.hostname; }, false))).toEqual([]);
  });

  it('ignores unknown properties, as the spec requires', () => {
    expect(findConfigProblems(spec((c) => { c.somethingNew = { x: 1 }; c.linux.futureThing = 1; }))).toEqual([]);
  });

  it.each(['1.0.0', '1.0.2-dev', '1.2.0', '1.1.0+build.5'])('accepts ociVersion %s', (v) => {
    expect(findConfigProblems(spec((c) => { c.ociVersion = v; }))).toEqual([]);
  });
});

describe('validateConfig: invalid fields name their JSON path', () => {
  const cases: Array<[string, Edit, string, RegExp?]> = [
    ['config not an object', () => [1, 2], ''],
    ['ociVersion missing', (c) => { delete c.ociVersion; }, 'ociVersion'],
    ['ociVersion 2.x', (c) => { c.ociVersion = '2.0.0'; }, 'ociVersion', /1\.x semantic version/],
    ['ociVersion number', (c) => { c.ociVersion = 1; }, 'ociVersion'],
    ['root missing', (c) => { delete c.root; }, 'root'],
    ['root.path missing', (c) => { delete c.root.path; }, 'root.path'],
    ['root.path empty', (c) => { c.root.path = ''; }, 'root.path'],
    ['root.readonly not boolean', (c) => { c.root.readonly = 'yes'; }, 'root.readonly'],
    ['process missing', (c) => { delete c.process; }, 'process'],
    ['process.args missing', (c) => { delete c.process.args; }, 'process.args', /^process\.args: must be a non-empty array of strings$/],
    ['process.args empty', (c) => { c.process.args = []; }, 'process.args'],
    ['process.args non-string', (c) => { c.process.args = ['sh', 3]; }, 'process.args'],
    ['process.args[0] empty', (c) => { c.process.args = ['']; }, 'process.args[0]'],
    ['process.args NUL', (c) => { c.process.args = ['sh', 'a\0b']; }, 'process.args[1]', /nul/],
    ['process.args too long', (c) => { c.process.args = ['x'.repeat(4097)]; }, 'process.args[0]', /4096 bytes/],
    ['process.args too many', (c) => { c.process.args = Array(1025).fill('x'); }, 'process.args', /at most 1024/],
    ['process.env not array', (c) => { c.process.env = 'A=1'; }, 'process.env'],
    ['process.env entry without =', (c) => { c.process.env.push('NOPE'); }, 'process.env[2]', /KEY=value/],
    ['process.env entry with empty key', (c) => { c.process.env = ['=x']; }, 'process.env[0]'],
    ['process.cwd missing', (c) => { delete c.process.cwd; }, 'process.cwd'],
    ['process.cwd relative', (c) => { c.process.cwd = 'tmp'; }, 'process.cwd', /absolute/],
    ['process.user missing', (c) => { delete c.process.user; }, 'process.user'],
    ['process.user.uid missing', (c) => { delete c.process.user.uid; }, 'process.user.uid'],
    ['process.user.uid negative', (c) => { c.process.user.uid = -1; }, 'process.user.uid'],
    ['process.user.uid fractional', (c) => { c.process.user.uid = 1.5; }, 'process.user.uid'],
    ['process.user.gid too large', (c) => { c.process.user.gid = 2 ** 32; }, 'process.user.gid'],
    ['process.user.umask too large', (c) => { c.process.user.umask = 0o1000; }, 'process.user.umask'],
    ['process.user.additionalGids bad entry', (c) => { c.process.user.additionalGids = [1, 'x']; }, 'process.user.additionalGids[1]'],
    ['process.user.additionalGids too many', (c) => { c.process.user.additionalGids = Array(65).fill(1); }, 'process.user.additionalGids'],
    ['process.user.uid not mapped', (c) => { c.process.user.uid = 70000; }, 'process.user.uid', /not mapped/],
    ['process.user.gid not mapped', (c) => { c.process.user.gid = 70000; }, 'process.user.gid', /not mapped/],
    ['additional gid not mapped', (c) => { c.process.user.additionalGids = [70000]; }, 'process.user.additionalGids[0]'],
    ['process.terminal not boolean', (c) => { c.process.terminal = 1; }, 'process.terminal'],
    ['process.consoleSize.height past a winsize', (c) => { c.process.consoleSize = { height: 65536, width: 80 }; }, 'process.consoleSize.height'],
    ['process.oomScoreAdj out of range', (c) => { c.process.oomScoreAdj = 5000; }, 'process.oomScoreAdj'],
    ['rlimit soft > hard', (c) => { c.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1, soft: 2 }]; }, 'process.rlimits[0].soft'],
    ['rlimit bad type', (c) => { c.process.rlimits = [{ type: 'NOFILE', hard: 1, soft: 1 }]; }, 'process.rlimits[0].type'],
    ['capability bad name', (c) => { c.process.capabilities = { bounding: ['kill'] }; }, 'process.capabilities.bounding[0]'],
    ['capability unknown name', (c) => { c.process.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN', 'CAP_BOGUS'] }; }, 'process.capabilities.bounding[2]', /CAP_BOGUS/],
    ['capability set not array', (c) => { c.process.capabilities = { permitted: 'CAP_KILL' }; }, 'process.capabilities.permitted'],
    ['effective cap not permitted', (c) => { c.process.capabilities = { effective: ['CAP_KILL'], permitted: [] }; }, 'process.capabilities.effective[0]', /permitted/],
    ['rlimit unknown type', (c) => { c.process.rlimits = [{ type: 'RLIMIT_BOGUS', hard: 1, soft: 1 }]; }, 'process.rlimits[0].type'],
    ['rlimit duplicate type', (c) => { c.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1, soft: 1 }, { type: 'RLIMIT_NOFILE', hard: 2, soft: 2 }]; }, 'process.rlimits[1].type', /already set/],
    ['rlimit hard missing', (c) => { c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1 }]; }, 'process.rlimits[0].hard'],
    ['rlimit negative', (c) => { c.process.rlimits = [{ type: 'RLIMIT_CORE', hard: -1, soft: 0 }]; }, 'process.rlimits[0].hard'],
    ['rlimit fraction', (c) => { c.process.rlimits = [{ type: 'RLIMIT_CORE', hard: 1.5, soft: 0 }]; }, 'process.rlimits[0].hard'],
    ['noNewPrivileges not boolean', (c) => { c.process.noNewPrivileges = 'yes'; }, 'process.noNewPrivileges'],
    ['sysctl kernel.hostname', (c) => { c.linux.sysctl = { 'kernel.hostname': 'x' }; }, 'linux.sysctl.kernel.hostname', /hostname field/],
    ['sysctl kernel.domainname', (c) => { c.linux.sysctl = { 'kernel.domainname': 'x' }; }, 'linux.sysctl.kernel.domainname', /domainname field/],
    ['sysctl key with a slash', (c) => { c.linux.sysctl = { 'net/../../x': '1' }; }, 'linux.sysctl.net/../../x'],
    ['sysctl key with empty component', (c) => { c.linux.sysctl = { 'net..ipv4': '1' }; }, 'linux.sysctl.net..ipv4'],
    ['net sysctl without network namespace', (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'network'); c.linux.sysctl = { 'net.ipv4.ip_forward': '1' }; }, 'linux.sysctl.net.ipv4.ip_forward', /network namespace/],
    ['ipc sysctl without ipc namespace', (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'ipc'); c.linux.sysctl = { 'kernel.shmmax': '1' }; }, 'linux.sysctl.kernel.shmmax', /ipc namespace/],
    ['hostname not string', (c) => { c.hostname = 5; }, 'hostname'],
    ['hostname too long', (c) => { c.hostname = 'h'.repeat(65); }, 'hostname'],
    ['hostname without uts namespace', (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'uts'); }, 'hostname', /uts namespace/],
    ['domainname without uts namespace', (c) => { delete c.hostname; c.domainname = 'd'; c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'uts'); }, 'domainname'],
    ['mounts not array', (c) => { c.mounts = {}; }, 'mounts'],
    ['mount not object', (c) => { c.mounts[1] = 'x'; }, 'mounts[1]'],
    ['mount destination missing', (c) => { delete c.mounts[2].destination; }, 'mounts[2].destination'],
    ['mount destination relative', (c) => { c.mounts[2].destination = 'dev/pts'; }, 'mounts[2].destination', /^mounts\[2\]\.destination: must be an absolute path$/],
    ['mount destination root', (c) => { c.mounts[0].destination = '/./'; }, 'mounts[0].destination', /root directory/],
    ['mount type missing (not bind)', (c) => { delete c.mounts[0].type; }, 'mounts[0].type', /bind mount/],
    ['mount type not string', (c) => { c.mounts[0].type = 7; }, 'mounts[0].type'],
    ['bind mount without source', (c) => { c.mounts.push({ destination: '/x', type: 'bind', options: ['rbind'] }); }, 'mounts[6].source'],
    ['mount options not strings', (c) => { c.mounts[1].options = ['ro', 1]; }, 'mounts[1].options[1]'],
    ['hooks not object', (c) => { c.hooks = []; }, 'hooks'],
    ['hooks list not array', (c) => { c.hooks = { prestart: {} }; }, 'hooks.prestart'],
    ['annotations value not string', (c) => { c.annotations = { a: 1 }; }, 'annotations.a'],
    ['linux not object', (c) => { c.linux = 3; delete c.hostname; }, 'linux'],
    ['namespace type unknown', (c) => { c.linux.namespaces.push({ type: 'bogus' }); }, 'linux.namespaces[6].type'],
    ['namespace duplicate', (c) => { c.linux.namespaces.push({ type: 'pid' }); }, 'linux.namespaces[6].type', /duplicate/],
    ['namespace type missing', (c) => { c.linux.namespaces.push({}); }, 'linux.namespaces[6].type'],
    ['uidMappings without user namespace', (c) => { c.linux.namespaces.pop(); delete c.linux.gidMappings; }, 'linux.uidMappings', /requires a user namespace/],
    ['user namespace without uidMappings', (c) => { delete c.linux.uidMappings; }, 'linux.uidMappings', /required/],
    ['user namespace with empty gidMappings', (c) => { c.linux.gidMappings = []; }, 'linux.gidMappings'],
    ['mapping size 0', (c) => { c.linux.uidMappings[0].size = 0; }, 'linux.uidMappings[0].size', /positive/],
    ['mapping hostID missing', (c) => { delete c.linux.gidMappings[0].hostID; }, 'linux.gidMappings[0].hostID'],
    ['mapping past 2^32', (c) => { c.linux.uidMappings[0].hostID = 2 ** 32 - 10; }, 'linux.uidMappings[0].size'],
    ['mapping containerID overlap', (c) => { c.linux.uidMappings.push({ containerID: 10, hostID: 500000, size: 1 }); }, 'linux.uidMappings[1].containerID', /overlaps/],
    ['mapping hostID overlap', (c) => { c.linux.uidMappings.push({ containerID: 70000, hostID: 100005, size: 1 }); }, 'linux.uidMappings[1].hostID'],
    ['maskedPaths relative', (c) => { c.linux.maskedPaths.push('proc/x'); }, 'linux.maskedPaths[11]'],
    ['readonlyPaths not array', (c) => { c.linux.readonlyPaths = '/proc'; }, 'linux.readonlyPaths'],
    ['rootfsPropagation unknown', (c) => { c.linux.rootfsPropagation = 'sideways'; }, 'linux.rootfsPropagation'],
    ['sysctl value not string', (c) => { c.linux.sysctl = { 'net.x': 1 }; }, 'linux.sysctl.net.x'],
    ['cgroupsPath not string', (c) => { c.linux.cgroupsPath = 1; }, 'linux.cgroupsPath'],
    ['seccomp not object', (c) => { c.linux.seccomp = []; }, 'linux.seccomp'],
    ['seccomp defaultAction missing', (c) => { c.linux.seccomp = {}; }, 'linux.seccomp.defaultAction', /is required/],
    ['seccomp unknown action', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_FOO' }] }; }, 'linux.seccomp.syscalls[0].action', /^linux\.seccomp\.syscalls\[0\]\.action: unknown action SCMP_ACT_FOO$/],
  ];

  // Fixed arity: jest.each passes `done` in place of a missing trailing argument.
  it.each(cases.map(([n, e, f, m]) => [n, e, f, m ?? null] as const))('%s → ECONFIG_INVALID at the field', (_name, edit, field, msg) => {
    const p = problem(edit);
    expect(p).toMatchObject({ code: 'ECONFIG_INVALID', field });
    expect(p.message.startsWith(`${field}: `)).toBe(true);
    if (msg) expect(p.message).toMatch(msg);
    // Messages follow the catalogue's style.
    expect(p.message).not.toMatch(/\.$/);
  });

  it('reports invalid problems before unsupported ones and counts the rest', () => {
    const c = spec((x) => { x.process.scheduler = { policy: 'SCHED_OTHER' }; x.process.cwd = 'rel'; x.hostname = 5; });
    const problems = findConfigProblems(c);
    expect(problems.map((p) => [p.code, p.field])).toEqual([
      ['ECONFIG_INVALID', 'process.cwd'],
      ['ECONFIG_INVALID', 'hostname'],
      ['ECONFIG_UNSUPPORTED', 'process.scheduler'],
    ]);
    const e = caught(() => validateConfig(c));
    expect(e.message).toBe('process.cwd: must be an absolute path (and 2 more)');
  });

  it('puts the config path in the error context when given', () => {
    const e = caught(() => validateConfig(spec((c) => { c.process.args = []; }), { path: '/b/config.json' }));
    expect(e.context).toEqual({ path: '/b/config.json', field: 'process.args' });
  });
});

describe('validateConfig: unsupported features are refused, not ignored', () => {
  const cases: Array<[string, Edit, string, boolean?]> = [
    ['seccomp notify action', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY' }; }, 'linux.seccomp.defaultAction'],
    ['seccomp listenerPath', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock' }; }, 'linux.seccomp.listenerPath'],
    ['linux.resources.blockIO', (c) => { c.linux.resources = { blockIO: { weight: 10 } }; }, 'linux.resources.blockIO'],
    ['linux.resources.hugepageLimits', (c) => { c.linux.resources = { hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }; }, 'linux.resources.hugepageLimits'],
    ['linux.resources.unified', (c) => { c.linux.resources = { unified: { 'io.max': '8:0 rbps=1' } }; }, 'linux.resources.unified'],
    ['linux.resources.network', (c) => { c.linux.resources = { network: { classID: 1 } }; }, 'linux.resources.network'],
    ['linux.resources.rdma', (c) => { c.linux.resources = { rdma: {} }; }, 'linux.resources.rdma'],
    ['linux.resources.memory.useHierarchy', (c) => { c.linux.resources = { memory: { useHierarchy: true } }; }, 'linux.resources.memory.useHierarchy'],
    ['linux.resources.cpu.realtimeRuntime', (c) => { c.linux.resources = { cpu: { realtimeRuntime: 1000 } }; }, 'linux.resources.cpu.realtimeRuntime'],
    ['an unknown hook kind', (c) => { c.hooks = { preFlight: [{ path: '/bin/true' }] }; }, 'hooks.preFlight'],
    ['a host-wide sysctl', (c) => { c.linux.sysctl = { 'kernel.pid_max': '4096' }; }, 'linux.sysctl.kernel.pid_max'],
    ['a vm sysctl', (c) => { c.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'vm.swappiness': '10' }; }, 'linux.sysctl.vm.swappiness'],
    ['mount namespace path', (c) => { c.linux.namespaces[4].path = '/proc/1/ns/mnt'; }, 'linux.namespaces[4].path'],
    ['time namespace', (c) => { c.linux.namespaces.push({ type: 'time' }); }, 'linux.namespaces[6].type'],
    ['container uid 0 unmapped', (c) => { c.linux.uidMappings = [{ containerID: 1, hostID: 100000, size: 10 }]; c.process.user.uid = 1; }, 'linux.uidMappings'],
    ['container gid 0 unmapped', (c) => { c.linux.gidMappings = [{ containerID: 1, hostID: 100000, size: 10 }]; c.process.user.gid = 1; }, 'linux.gidMappings'],
    ['process.scheduler', (c) => { c.process.scheduler = { policy: 'SCHED_OTHER' }; }, 'process.scheduler'],
    ['process.ioPriority', (c) => { c.process.ioPriority = { class: 'IOPRIO_CLASS_IDLE' }; }, 'process.ioPriority'],
    ['linux.intelRdt', (c) => { c.linux.intelRdt = {}; }, 'linux.intelRdt'],
    ['linux.personality', (c) => { c.linux.personality = { domain: 'LINUX32' }; }, 'linux.personality'],
    ['linux.timeOffsets', (c) => { c.linux.timeOffsets = {}; }, 'linux.timeOffsets'],
    ['windows section', (c) => { c.windows = {}; }, 'windows'],
    ['id-mapped mount', (c) => { c.mounts[0].uidMappings = []; }, 'mounts[0].uidMappings'],
    ['recursive read-only option', (c) => { c.mounts.push({ destination: '/x', type: 'bind', source: '/tmp', options: ['rbind', 'rro'] }); }, 'mounts[6].options[1]'],
    ['two propagation options', (c) => { c.mounts.push({ destination: '/x', type: 'bind', source: '/tmp', options: ['bind', 'private', 'shared'] }); }, 'mounts[6].options[2]'],
  ];

  it.each(cases.map(([n, e, f, u]) => [n, e, f, u ?? true] as const))('%s → ECONFIG_UNSUPPORTED at the field', (_name, edit, field, userns) => {
    const p = problem(edit, userns);
    expect(p).toMatchObject({ code: 'ECONFIG_UNSUPPORTED', field });
    expect(p.message.startsWith(`${field}: `)).toBe(true);
  });

  it('accepts a seccomp profile', () => {
    const c = spec((x) => {
      x.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }],
      };
    });
    expect(findConfigProblems(c)).toEqual([]);
  });

  it('leaves AppArmor/SELinux labels to the create (actors/containers/lsm.ts): valid whatever the host', () => {
    const c = spec((x) => {
      x.process.apparmorProfile = 'docker-default';
      x.process.selinuxLabel = 'system_u:system_r:container_t:s0';
      x.linux.mountLabel = 'system_u:object_r:container_file_t:s0';
    });
    expect(findConfigProblems(c)).toEqual([]);
    expect(problem((x) => { x.linux.mountLabel = 7; })).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.mountLabel' });
  });

  it('accepts net, ipc, uts and cgroup namespaces given by path; the path must be absolute', () => {
    const c = spec((x) => {
      x.linux.namespaces[1].path = '/run/netns/pod';
      x.linux.namespaces[2].path = '/proc/1/ns/ipc';
      x.linux.namespaces[3].path = '/proc/1/ns/uts';
      x.linux.namespaces.push({ type: 'cgroup', path: '/proc/1/ns/cgroup' });
    });
    expect(findConfigProblems(c)).toEqual([]);
    expect(problem((x) => { x.linux.namespaces[1].path = 'run/netns/pod'; })).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.namespaces[1].path' });
    expect(problem((x) => { x.linux.namespaces.push({ type: 'cgroup', path: 'proc/1/ns/cgroup' }); })).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.namespaces[6].path' });
  });

  it('joins a mount namespace by path (decision 0034), but not from a new user namespace, and says why', () => {
    expect(findConfigProblems(spec((x) => { x.linux.namespaces[4].path = '/proc/1/ns/mnt'; }, false))).toEqual([]);
    expect(findConfigProblems(spec((x) => { x.linux.namespaces[4].path = '/run/mntns/x'; }, false))[0]).toMatchObject({ code: 'ECONFIG_UNSUPPORTED', message: expect.stringMatching(/give \/proc\/<pid>\/ns\/mnt/) });
    const p = problem((x) => { x.linux.namespaces[4].path = '/proc/1/ns/mnt'; });
    expect(p).toMatchObject({ code: 'ECONFIG_UNSUPPORTED', field: 'linux.namespaces[4].path' });
    expect(p.message).toMatch(/cannot be joined from a new user namespace/);
  });

  it('accepts createContainer and startContainer hooks, at most 64 of them together', () => {
    const c = spec((x) => {
      x.hooks = { createContainer: [{ path: '/usr/bin/nvidia-hook', args: ['h', 'create'], timeout: 5 }], startContainer: [{ path: '/bin/true' }] };
    });
    expect(findConfigProblems(c)).toEqual([]);
    const many = Array.from({ length: 33 }, () => ({ path: '/bin/true' }));
    expect(problem((x) => { x.hooks = { createContainer: many, startContainer: many }; })).toMatchObject({ code: 'ECONFIG_INVALID', field: 'hooks' });
    expect(problem((x) => { x.hooks = { startContainer: [{ path: 'true' }] }; })).toMatchObject({ code: 'ECONFIG_INVALID', field: 'hooks.startContainer[0].path' });
  });

  it('tolerates empty hooks, sysctl, devices and resources', () => {
    const c = spec((x) => {
      x.hooks = { prestart: [], poststop: [] };
      x.linux.sysctl = {};
      x.linux.devices = [];
      x.linux.resources = { devices: [] };
      x.process.apparmorProfile = '';
      x.linux.mountLabel = '';
    });
    expect(findConfigProblems(c)).toEqual([]);
  });

  it('accepts cgroupsPath, annotations, consoleSize and noNewPrivileges false', () => {
    const c = spec((x) => {
      x.linux.cgroupsPath = '/paddock/x';
      x.annotations = { 'org.example': 'v' };
      x.process.consoleSize = { height: 24, width: 80 };
      x.process.noNewPrivileges = false;
    });
    expect(findConfigProblems(c)).toEqual([]);
  });
});

describe('validateConfig: process security fields are accepted', () => {
  it.each([true, false])('capabilities, rlimits, noNewPrivileges, oomScoreAdj, namespaced sysctls (userns %s)', (userns) => {
    expect(findConfigProblems(spec((c) => {
      c.process.capabilities = {
        bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_CHECKPOINT_RESTORE'],
        effective: ['CAP_KILL'],
        permitted: ['CAP_KILL', 'CAP_CHOWN'],
        inheritable: ['CAP_KILL'],
        ambient: ['CAP_KILL'],
      };
      c.process.rlimits = [
        { type: 'RLIMIT_NOFILE', hard: 4096, soft: 1024 },
        { type: 'RLIMIT_CORE', hard: 18446744073709551615, soft: 0 },
      ];
      c.process.noNewPrivileges = true;
      c.process.oomScoreAdj = -100;
      c.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536', 'fs.mqueue.msg_max': '20', 'kernel.sem': '250 32000 32 128' };
    }, userns))).toEqual([]);
  });

  it('a pid namespace by path passes the validator: a pod container may share one (the sandbox refuses it when planned)', () => {
    expect(findConfigProblems(spec((c) => { c.linux.namespaces[0].path = '/proc/1/ns/pid'; }))).toEqual([]);
  });

  it('an empty capability object (drop everything) is accepted', () => {
    expect(findConfigProblems(spec((c) => { c.process.capabilities = {}; }))).toEqual([]);
  });
});

describe("validateConfig: runc spec's defaults", () => {
  /** What `runc spec --rootless` adds on top of a plain config, minus the terminal. */
  function runcDefaults(c: any): void {
    c.process.capabilities = {
      bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      inheritable: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      permitted: ['CAP_NET_BIND_SERVICE', 'CAP_KILL', 'CAP_AUDIT_WRITE'],
      ambient: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    };
    c.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
    c.process.noNewPrivileges = true;
    c.linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
  }

  it('are tolerated inside a user namespace', () => {
    expect(findConfigProblems(spec(runcDefaults))).toEqual([]);
  });

  it('are tolerated with some capability sets left out', () => {
    expect(findConfigProblems(spec((c) => {
      runcDefaults(c);
      delete c.process.capabilities.inheritable;
      delete c.process.capabilities.ambient;
    }))).toEqual([]);
  });

  it("without a user namespace, runc's defaults load too (the device rule goes to the devices cgroup at launch)", () => {
    expect(findConfigProblems(spec(runcDefaults, false))).toEqual([]);
  });

  // containerd's default spec: deny all, then allow the standard devices; cpu.shares 1024.
  const containerdDefaults = (c: any) => {
    c.linux.resources = {
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
        { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
        { allow: true, type: 'c', major: 136, access: 'rwm' },
      ],
      cpu: { shares: 1024 },
    };
  };

  it("containerd's default device allows and cpu.shares 1024 are tolerated inside a user namespace", () => {
    expect(findConfigProblems(spec(containerdDefaults))).toEqual([]);
  });

  it("containerd's default device rules load with or without a user namespace, and so do other allows (applied in both, decision 0034)", () => {
    expect(findConfigProblems(spec(containerdDefaults, false))).toEqual([]);
    expect(findConfigProblems(spec((c) => {
      containerdDefaults(c);
      c.linux.resources.devices.push({ allow: true, type: 'b', major: 8, minor: 0, access: 'rwm' });
      c.linux.resources.cpu = { shares: 512 };
    }))).toEqual([]);
  });

  it('without a user namespace any rule list the device cgroup can express loads; malformed or inexpressible rules name the rule', () => {
    const withRules = (devices: unknown[]) => findConfigProblems(spec((c) => { c.linux.resources = { devices }; }, false));
    expect(withRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'b', major: 8, access: 'r' }, { allow: true, type: 'c', major: 1, minor: 3 }])).toEqual([]);
    expect(withRules([{ allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' }])).toEqual([]);
    expect(withRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'x', access: 'r' }])).toEqual([
      expect.objectContaining({ code: 'ECONFIG_INVALID', field: 'linux.resources.devices[1].type' }),
    ]);
    expect(withRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, access: 'rw' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'r' }])).toEqual([
      expect.objectContaining({ code: 'ECONFIG_UNSUPPORTED', field: 'linux.resources.devices[2]' }),
    ]);
  });

  it('RLIMIT_NOFILE 1024 alone is tolerated even without a user namespace', () => {
    expect(findConfigProblems(spec((c) => { c.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]; }, false))).toEqual([]);
  });

  it('a stock runc config with its terminal loads (the console socket is the caller\'s to give)', () => {
    expect(findConfigProblems(spec((c) => { runcDefaults(c); c.process.terminal = true; c.process.consoleSize = { height: 24, width: 80 }; }))).toEqual([]);
  });
});

describe('defaultSpec', () => {
  it('has the runc-like shape', () => {
    const c = defaultSpec();
    expect(c.ociVersion).toBe('1.0.2');
    expect(c.process).toMatchObject({ terminal: false, user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/' });
    expect(c.process?.env?.[0]).toMatch(/^PATH=/);
    expect(c.root).toEqual({ path: 'rootfs', readonly: true });
    expect(c.hostname).toBe('paddock');
    expect(c.mounts?.map((m) => `${m.destination}:${m.type}`)).toEqual([
      '/proc:proc', '/dev:tmpfs', '/dev/pts:devpts', '/dev/shm:tmpfs', '/dev/mqueue:mqueue', '/sys:sysfs',
    ]);
    expect(c.mounts?.[2]?.options?.some((o) => o.startsWith('gid='))).toBe(false);
    expect(c.linux?.namespaces?.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(c.linux?.uidMappings).toBeUndefined();
  });

  it('adds a user namespace and mappings on request', () => {
    const c = defaultSpec({ args: ['true'], rootfs: '/r', hostname: 'h', userns: { hostId: 200000, size: 1000 } });
    expect(c.linux?.namespaces?.some((n) => n.type === 'user')).toBe(true);
    expect(c.linux?.uidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 1000 }]);
    expect(c.linux?.gidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 1000 }]);
    expect(c.process?.args).toEqual(['true']);
    expect(c.root?.path).toBe('/r');
    expect(c.hostname).toBe('h');
    expect(findConfigProblems(c)).toEqual([]);
  });

  it('returns a fresh object each call', () => {
    const a = defaultSpec();
    a.mounts?.pop();
    expect(defaultSpec().mounts).toHaveLength(6);
  });
});

describe('validateConfig: linux.resources memory, cpu and pids are applied', () => {
  const res = (r: unknown) => findConfigProblems(spec((c) => { c.linux.resources = r; }));
  const fields = (r: unknown) => res(r).map((p) => [p.code, p.field]);

  it('accepts the supported limits, -1 (unlimited) and 0 (unset)', () => {
    expect(res({
      memory: { limit: 32 << 20, reservation: 16 << 20, swap: 64 << 20 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1,3', mems: '0' },
      pids: { limit: 5 },
    })).toEqual([]);
    expect(res({ memory: { limit: -1, swap: -1 }, cpu: { quota: -1, shares: 0 }, pids: { limit: -1 } })).toEqual([]);
    expect(res({ pids: { limit: 0 }, memory: { limit: 0 } })).toEqual([]);
    // runc's v1 memory.swappiness and memory.oom_control (decision 0037).
    expect(res({ memory: { swappiness: 0, disableOOMKiller: true } })).toEqual([]);
    expect(res({ memory: { swappiness: 100, disableOOMKiller: false } })).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ['a fractional memory limit', { memory: { limit: 1.5 } }, 'linux.resources.memory.limit'],
    ['a string memory limit', { memory: { limit: '32M' } }, 'linux.resources.memory.limit'],
    ['memory limit below -1', { memory: { limit: -2 } }, 'linux.resources.memory.limit'],
    ['swap without a limit', { memory: { swap: 1 << 20 } }, 'linux.resources.memory.swap'],
    ['swap below the limit', { memory: { limit: 2 << 20, swap: 1 << 20 } }, 'linux.resources.memory.swap'],
    ['shares below 2', { cpu: { shares: 1 } }, 'linux.resources.cpu.shares'],
    ['shares above 262144', { cpu: { shares: 262145 } }, 'linux.resources.cpu.shares'],
    ['a quota below 1000', { cpu: { quota: 500 } }, 'linux.resources.cpu.quota'],
    ['a period below 1000', { cpu: { period: 999 } }, 'linux.resources.cpu.period'],
    ['a period above 1s', { cpu: { period: 1000001 } }, 'linux.resources.cpu.period'],
    ['a bad cpu list', { cpu: { cpus: '0-1;3' } }, 'linux.resources.cpu.cpus'],
    ['a bad mems list', { cpu: { mems: 'all' } }, 'linux.resources.cpu.mems'],
    ['swappiness above 100', { memory: { swappiness: 101 } }, 'linux.resources.memory.swappiness'],
    ['a fractional swappiness', { memory: { swappiness: 1.5 } }, 'linux.resources.memory.swappiness'],
    ['disableOOMKiller not a boolean', { memory: { disableOOMKiller: 1 } }, 'linux.resources.memory.disableOOMKiller'],
    ['a negative pids limit', { pids: { limit: -5 } }, 'linux.resources.pids.limit'],
    ['pids not an object', { pids: 5 }, 'linux.resources.pids'],
  ])('refuses %s as ECONFIG_INVALID naming the field', (_, r, field) => {
    expect(fields(r)).toEqual([['ECONFIG_INVALID', field]]);
  });
});
