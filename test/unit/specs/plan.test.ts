import * as path from 'path';
import { Bundle } from '../../../specs/load';
import { MS, parseMount } from '../../../specs/mount-options';
import * as plans from '../../../specs/plan';
import { CLONE, DEFAULT_DEVICES, planSandbox } from '../../../specs/plan';
import { seccompOf } from '../../../actors/containers/seccomp-cache';
import { validateConfig } from '../../../specs/validate';
import { deepFreeze } from '../../../specs/freeze';
import { caught, spec } from './helpers';

// The plans receive linux.seccomp compiled (an effect, done by the actors as here).
const planContainer = (b: Bundle, stdio?: plans.StdioPlan, opts: plans.ContainerPlanInputs = {}) =>
  plans.planContainer(b, stdio, { ...opts, seccomp: seccompOf(b.config) });
const planExec = (opts: plans.ExecOptions, config: Parameters<typeof plans.planExec>[1]) => plans.planExec(opts, config, seccompOf(config));

function bundle(edit?: (c: any) => unknown, userns = true): Bundle {
  const config = validateConfig(spec(edit, userns));
  return deepFreeze({ dir: '/bundles/b1', config, rootfs: '/bundles/b1/rootfs' }) as Bundle;
}

function isDeepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  // A typed array (the compiled seccomp filter) cannot be frozen.
  if (ArrayBuffer.isView(v)) return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

describe('parseMount: options → MS_* flags', () => {
  it.each([
    ['ro', MS.RDONLY],
    ['nosuid', MS.NOSUID],
    ['nodev', MS.NODEV],
    ['noexec', MS.NOEXEC],
    ['sync', MS.SYNCHRONOUS],
    ['remount', MS.REMOUNT],
    ['mand', MS.MANDLOCK],
    ['dirsync', MS.DIRSYNC],
    ['noatime', MS.NOATIME],
    ['nodiratime', MS.NODIRATIME],
    ['relatime', MS.RELATIME],
    ['strictatime', MS.STRICTATIME],
    ['bind', MS.BIND],
    ['rbind', MS.BIND | MS.REC],
  ])('%s sets its flag', (opt, flag) => {
    const type = opt === 'bind' || opt === 'rbind' ? 'bind' : 'tmpfs';
    expect(parseMount(type, [opt]).flags).toBe(flag);
  });

  it.each([
    ['rw', 'ro', MS.RDONLY],
    ['suid', 'nosuid', MS.NOSUID],
    ['dev', 'nodev', MS.NODEV],
    ['exec', 'noexec', MS.NOEXEC],
    ['async', 'sync', MS.SYNCHRONOUS],
    ['nomand', 'mand', MS.MANDLOCK],
    ['atime', 'noatime', MS.NOATIME],
    ['diratime', 'nodiratime', MS.NODIRATIME],
    ['norelatime', 'relatime', MS.RELATIME],
  ])('%s clears what %s set (last one wins)', (clear, set, flag) => {
    expect(parseMount('tmpfs', [set, clear]).flags & flag).toBe(0n);
    expect(parseMount('tmpfs', [clear, set]).flags & flag).toBe(flag);
  });

  it.each([
    ['private', MS.PRIVATE],
    ['rprivate', MS.PRIVATE | MS.REC],
    ['shared', MS.SHARED],
    ['rshared', MS.SHARED | MS.REC],
    ['slave', MS.SLAVE],
    ['rslave', MS.SLAVE | MS.REC],
    ['unbindable', MS.UNBINDABLE],
    ['runbindable', MS.UNBINDABLE | MS.REC],
  ])('%s is a propagation, not a flag', (opt, prop) => {
    const m = parseMount('bind', ['rbind', opt]);
    expect(m.propagation).toBe(prop);
    expect(m.flags).toBe(MS.BIND | MS.REC);
  });

  it('passes other options to data, comma-joined', () => {
    const m = parseMount('tmpfs', ['nosuid', 'mode=755', 'strictatime', 'size=65536k']);
    expect(m).toMatchObject({ type: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=65536k', bind: false });
    expect(parseMount('proc', []).data).toBeUndefined();
  });

  it('a type bind or a bind option makes a bind mount', () => {
    expect(parseMount('bind', [])).toMatchObject({ type: 'bind', bind: true, flags: MS.BIND });
    expect(parseMount('none', ['rbind'])).toMatchObject({ type: 'bind', flags: MS.BIND | MS.REC });
    expect(parseMount(undefined, ['bind', 'ro'])).toMatchObject({ type: 'bind', flags: MS.BIND | MS.RDONLY });
  });

  it('cgroup becomes read-only cgroup2', () => {
    expect(parseMount('cgroup', ['nosuid'])).toMatchObject({ type: 'cgroup2', flags: MS.NOSUID | MS.RDONLY });
  });
});

describe('planSandbox', () => {
  it('user namespace config: flags, maps and host root', () => {
    const p = planSandbox(bundle());
    expect(p.cloneFlags).toBe(CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNS | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWNET);
    expect(p.uidMap).toBe('0 100000 65536\n');
    expect(p.gidMap).toBe('0 100000 65536\n');
    expect(p.hostUidForRoot).toBe(100000);
    expect(p.hostname).toBe('paddock');
    expect(p.loUp).toBe(true);
    expect(p.domainname).toBeUndefined();
  });

  it('multi-line maps and the host uid of container root', () => {
    const p = planSandbox(bundle((c) => {
      c.linux.uidMappings = [{ containerID: 1, hostID: 200001, size: 999 }, { containerID: 0, hostID: 5000, size: 1 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 300000, size: 10 }];
    }));
    expect(p.uidMap).toBe('1 200001 999\n0 5000 1\n');
    expect(p.gidMap).toBe('0 300000 10\n');
    expect(p.hostUidForRoot).toBe(5000);
  });

  it('without a user namespace: no maps, host root is 0', () => {
    const p = planSandbox(bundle(undefined, false));
    expect(p.cloneFlags & CLONE.NEWUSER).toBe(0);
    expect(p.uidMap).toBeUndefined();
    expect(p.gidMap).toBeUndefined();
    expect(p.hostUidForRoot).toBe(0);
  });

  it('joins net, ipc and uts namespaces given by path instead of creating them', () => {
    const p = planSandbox(bundle((c) => {
      c.linux.namespaces[1].path = '/run/netns/pod';
      c.linux.namespaces[3].path = '/proc/77/ns/uts';
    }));
    expect(p.cloneFlags).toBe(CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNS | CLONE.NEWIPC);
    expect(p.joinNamespaces).toEqual([
      { type: 'network', flag: CLONE.NEWNET, path: '/run/netns/pod', field: 'linux.namespaces[1].path' },
      { type: 'uts', flag: CLONE.NEWUTS, path: '/proc/77/ns/uts', field: 'linux.namespaces[3].path' },
    ]);
    // Someone else's network namespace is left as it is.
    expect(p.loUp).toBe(false);
    expect(planSandbox(bundle((c) => { c.linux.namespaces[2].path = '/proc/1/ns/ipc'; })).loUp).toBe(true);
    // No network namespace at all (`runc spec --rootless`): the host's lo is not touched.
    expect(planSandbox(bundle((c) => { c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'network'); })).loUp).toBe(false);
  });

  it('refuses a path for a namespace type it cannot join, even without the validator', () => {
    const config = spec((c) => { c.linux.namespaces.push({ type: 'time', path: '/proc/1/ns/time' }); });
    expect(() => planSandbox({ config } as Bundle)).toThrow(/linux\.namespaces\[\d+\]\.path: joining an existing time namespace is not supported/);
  });

  it('a pid namespace by path: init is launched into it (no CLONE_NEWPID) and the root container makes no pid namespace of its own (decision 0036)', () => {
    const b = bundle((c) => { c.linux.namespaces[0].path = '/proc/77/ns/pid'; }, false);
    expect(b.config.linux!.namespaces![0]!.type).toBe('pid');
    const p = planSandbox(b);
    expect(p.cloneFlags & CLONE.NEWPID).toBe(0);
    expect(p.joinNamespaces).toEqual([{ type: 'pid', flag: CLONE.NEWPID, path: '/proc/77/ns/pid', field: 'linux.namespaces[0].path' }]);
    expect(planContainer(b).nsFlags! & CLONE.NEWPID).toBe(0);
    // Without a path both get a new one, as before.
    const plain = bundle(() => undefined, false);
    expect(planSandbox(plain).cloneFlags & CLONE.NEWPID).toBe(CLONE.NEWPID);
    expect(planContainer(plain).nsFlags! & CLONE.NEWPID).toBe(CLONE.NEWPID);
  });

  it('a mount namespace by path: the sandbox keeps its own; the container plan names the file to join (decision 0034)', () => {
    const b = bundle((c) => { c.linux.namespaces[4].path = '/proc/77/ns/mnt'; }, false);
    expect(planSandbox(b).cloneFlags & CLONE.NEWNS).toBe(CLONE.NEWNS);
    const p = planContainer(b);
    expect(p.mountNsPath).toBe('/proc/77/ns/mnt');
    expect((p.nsFlags ?? 0) & CLONE.NEWNS).toBe(0);
    expect(planContainer(bundle(undefined, false)).mountNsPath).toBeUndefined();
  });

  it('joins a user namespace by path: no maps to write, the spec\'s to match, the rest made inside it', () => {
    const p = planSandbox(bundle((c) => { c.linux.namespaces[5].path = '/run/userns/pod'; }));
    expect(p.cloneFlags & CLONE.NEWUSER).toBe(0);
    expect(p.cloneFlags & (CLONE.NEWNET | CLONE.NEWPID | CLONE.NEWNS)).toBe(CLONE.NEWNET | CLONE.NEWPID | CLONE.NEWNS);
    expect(p.joinNamespaces).toEqual([{ type: 'user', flag: CLONE.NEWUSER, path: '/run/userns/pod', field: 'linux.namespaces[5].path' }]);
    expect(p.uidMap).toBeUndefined();
    expect(p.gidMap).toBeUndefined();
    expect(p.joinedUserMaps?.uidMap).toMatch(/^0 \d+ \d+\n$/);
    expect(p.hostUidForRoot).toBeGreaterThan(0);
  });

  it('always has new pid and mount namespaces; shares what the spec does not ask for', () => {
    const p = planSandbox(bundle((c) => {
      c.linux.namespaces = [{ type: 'mount' }, { type: 'user' }];
      delete c.hostname;
    }));
    expect(p.cloneFlags).toBe(CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNS);
  });

  it('cgroup namespaces are left to the container', () => {
    const p = planSandbox(bundle((c) => { c.linux.namespaces.push({ type: 'cgroup' }); }));
    expect(p.cloneFlags & CLONE.NEWCGROUP).toBe(0);
    expect(p.joinNamespaces).toBeUndefined();
  });

  it('joins a cgroup namespace given by path, with the user namespace made as usual', () => {
    const p = planSandbox(bundle((c) => { c.linux.namespaces.push({ type: 'cgroup', path: '/proc/77/ns/cgroup' }); }));
    expect(p.cloneFlags & CLONE.NEWCGROUP).toBe(0);
    expect(p.cloneFlags & CLONE.NEWUSER).toBe(CLONE.NEWUSER);
    expect(p.joinNamespaces).toEqual([{ type: 'cgroup', flag: CLONE.NEWCGROUP, path: '/proc/77/ns/cgroup', field: 'linux.namespaces[6].path' }]);
    expect(p.uidMap).toMatch(/^0 \d+ \d+\n$/);
  });

  it('carries the domainname and is deep-frozen', () => {
    const p = planSandbox(bundle((c) => { c.domainname = 'example.org'; }));
    expect(p.domainname).toBe('example.org');
    expect(isDeepFrozen(p)).toBe(true);
  });

  it('refuses an unvalidated config whose container root is unmapped', () => {
    const config: any = spec((c) => { c.linux.uidMappings = [{ containerID: 1, hostID: 1, size: 1 }]; });
    const e = caught(() => planSandbox({ config }));
    expect(e).toMatchObject({ code: 'ECONFIG_UNSUPPORTED', context: { field: 'linux.uidMappings' } });
  });
});

describe('planContainer: container hooks', () => {
  it('carries createContainer then startContainer hooks and the state JSON without status and pid', () => {
    const b = bundle((c) => {
      c.annotations = { 'org.example': 'v' };
      c.hooks = {
        startContainer: [{ path: '/bin/announce', env: ['A=1'] }],
        createContainer: [{ path: '/usr/bin/mark', args: ['mark', '-v'], timeout: 7 }],
        prestart: [{ path: '/bin/true' }],
      };
    });
    const p = planContainer(b, {}, { containerId: 'c1' });
    expect(p.hooks).toEqual([
      // No env: the container process's.
      { kind: 1, path: '/usr/bin/mark', args: ['mark', '-v'], env: [...(b.config.process?.env ?? [])], timeoutSec: 7 },
      { kind: 2, path: '/bin/announce', env: ['A=1'], timeoutSec: 30 },
    ]);
    expect(JSON.parse(p.hookState as string)).toEqual({ ociVersion: '1.0.2', id: 'c1', bundle: '/bundles/b1', annotations: { 'org.example': 'v' } });
  });

  it('has neither without container hooks, and needs the container id with them', () => {
    const p = planContainer(bundle((c) => { c.hooks = { prestart: [{ path: '/bin/true' }] }; }));
    expect(p.hooks).toBeUndefined();
    expect(p.hookState).toBeUndefined();
    expect(() => planContainer(bundle((c) => { c.hooks = { startContainer: [{ path: '/bin/true' }] }; }))).toThrow('containerId');
  });
});

describe('planContainer', () => {
  it('a terminal: the flag and the spec\'s consoleSize; the console socket is left to the engine', () => {
    const p = planContainer(bundle((c) => { c.process.terminal = true; c.process.consoleSize = { height: 40, width: 120 }; }));
    expect(p).toMatchObject({ terminal: true, consoleRows: 40, consoleCols: 120 });
    expect(p.consoleSocket).toBeUndefined();
    expect(p.hold).toBeUndefined();
    const plain = planContainer(bundle((c) => { c.process.consoleSize = { height: 40, width: 120 }; }));
    expect(plain.terminal).toBeUndefined();
    expect(plain.consoleRows).toBeUndefined();
  });

  it('resolves the default spec into a process plan', () => {
    const p = planContainer(bundle(), { stdoutPath: '/state/c1.out', stdioInherit: 4 });
    expect(p).toMatchObject({
      args: ['sh'],
      cwd: '/',
      uid: 0,
      gid: 0,
      rootfs: '/bundles/b1/rootfs',
      rootfsReadonly: true,
      stdoutPath: '/state/c1.out',
      stdioInherit: 4,
      nsFlags: CLONE.NEWNS | CLONE.NEWPID,
    });
    expect(p.env[0]).toMatch(/^PATH=/);
    expect(p.devices).toEqual(DEFAULT_DEVICES);
    expect(p.maskedPaths).toContain('/proc/kcore');
    expect(p.readonlyPaths).toContain('/proc/sys');
    expect(p.rootfsPropagation).toBeUndefined();
    expect(p.terminal).toBeUndefined();
    expect(p.mounts).toEqual([
      { source: 'proc', destination: '/proc', type: 'proc', flags: 0n },
      { source: 'tmpfs', destination: '/dev', type: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=65536k' },
      { source: 'devpts', destination: '/dev/pts', type: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: 'newinstance,ptmxmode=0666,mode=0620' },
      { source: 'shm', destination: '/dev/shm', type: 'tmpfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: 'mode=1777,size=65536k' },
      { source: 'mqueue', destination: '/dev/mqueue', type: 'mqueue', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV },
      { source: 'sysfs', destination: '/sys', type: 'sysfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY },
    ]);
  });

  it('resolves relative bind sources against the bundle and keeps absolute ones', () => {
    const p = planContainer(bundle((c) => {
      c.mounts.push({ destination: '/data/', source: 'data', options: ['rbind', 'ro', 'rprivate'] });
      c.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['nosuid'] });
    }));
    expect(p.mounts?.[6]).toEqual({
      source: path.join('/bundles/b1', 'data'),
      destination: '/data',
      type: 'bind',
      flags: MS.BIND | MS.REC | MS.RDONLY,
      propagation: MS.PRIVATE | MS.REC,
    });
    expect(p.mounts?.[7]).toEqual({ source: '/etc/resolv.conf', destination: '/etc/resolv.conf', type: 'bind', flags: MS.BIND | MS.NOSUID });
  });

  it('maps a cgroup mount to read-only cgroup2 and asks for a cgroup namespace when the spec does', () => {
    const p = planContainer(bundle((c) => {
      c.linux.namespaces.push({ type: 'cgroup' });
      c.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime'] });
    }));
    expect(p.nsFlags).toBe(CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWCGROUP);
    expect(p.mounts?.[6]).toMatchObject({ type: 'cgroup2', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RELATIME | MS.RDONLY });
  });

  it('makes no cgroup namespace when the spec gives one by path, even with a cgroup mount (it is joined instead)', () => {
    const p = planContainer(bundle((c) => {
      c.linux.namespaces.push({ type: 'cgroup', path: '/proc/77/ns/cgroup' });
      c.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid'] });
    }));
    expect(p.nsFlags).toBe(CLONE.NEWNS | CLONE.NEWPID);
    expect(p.cgroupNsOf).toBeUndefined();
  });

  it('carries user details, umask, rootfs propagation and writable rootfs', () => {
    const p = planContainer(bundle((c) => {
      c.process.user = { uid: 1000, gid: 100, umask: 0o077, additionalGids: [10, 20] };
      c.root.readonly = false;
      c.linux.rootfsPropagation = 'rslave';
    }));
    expect(p).toMatchObject({ uid: 1000, gid: 100, umask: 0o077, additionalGids: [10, 20], rootfsReadonly: false, rootfsPropagation: MS.SLAVE | MS.REC });
  });

  it('is deep-frozen', () => {
    expect(isDeepFrozen(planContainer(bundle(), { stdinPath: '/s/in' }))).toBe(true);
  });

  it.each([
    [{ stdinPath: 'rel' }, 'stdio.stdinPath'],
    [{ stderrPath: '' }, 'stdio.stderrPath'],
    [{ stdioInherit: 8 }, 'stdio.stdioInherit'],
    [{ stdioInherit: -1 }, 'stdio.stdioInherit'],
  ])('bad stdio %j → EINVALID_ARGUMENT at %s', (stdio, field) => {
    const e = caught(() => planContainer(bundle(), stdio as any));
    expect(e).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field } });
  });
});

describe('planExec', () => {
  const container = () => bundle((c) => { c.process.user = { uid: 5, gid: 6, umask: 0o027, additionalGids: [7] }; c.process.cwd = '/root'; }).config;

  it('defaults env, cwd, user and umask to the container process', () => {
    const p = planExec({ args: ['ps'] }, container());
    const { capabilities, noNewPrivileges, seccompBpf, seccompFlags, rlimits, ...rest } = p;
    expect(rest).toEqual({
      args: ['ps'],
      env: container().process?.env,
      cwd: '/root',
      uid: 5,
      gid: 6,
      additionalGids: [7],
      umask: 0o027,
    });
    // The container's process security comes along (defaultSpec: runc's three caps,
    // no_new_privs and the default profile).
    expect(capabilities?.bounding).toBe((1n << 5n) | (1n << 10n) | (1n << 29n));
    expect(noNewPrivileges).toBe(true);
    expect(rlimits).toEqual([{ type: 7, soft: 1024n, hard: 1024n }]);
    expect(seccompBpf?.length).toBeGreaterThan(0);
    expect(seccompFlags).toBe(0);
    expect(p.rootfs).toBeUndefined();
    expect(p.mounts).toBeUndefined();
    expect(p.nsFlags).toBeUndefined();
  });

  it('takes explicit env, cwd, user and stdio', () => {
    const p = planExec({ args: ['id'], env: ['A=1'], cwd: '/tmp', user: { uid: 1, gid: 2 }, stdoutPath: '/s/out', stdioInherit: 1 }, container());
    expect(p).toMatchObject({ args: ['id'], env: ['A=1'], cwd: '/tmp', uid: 1, gid: 2, stdoutPath: '/s/out', stdioInherit: 1 });
    expect(p.additionalGids).toBeUndefined();
  });

  it('is deep-frozen and does not alias its input', () => {
    const args = ['sh', '-c', 'true'];
    const p = planExec({ args }, container());
    expect(isDeepFrozen(p)).toBe(true);
    args.push('x');
    expect(p.args).toHaveLength(3);
  });

  it.each([
    [{ args: [] }, 'args'],
    [{ args: 'sh' }, 'args'],
    [{ args: [''] }, 'args[0]'],
    [{ args: ['sh'], env: ['NOEQUALS'] }, 'env[0]'],
    [{ args: ['sh'], cwd: 'relative' }, 'cwd'],
    [{ args: ['sh'], user: { uid: -1, gid: 0 } }, 'user.uid'],
    [{ args: ['sh'], user: { uid: 0, gid: 'x' } }, 'user.gid'],
    [{ args: ['sh'], user: { uid: 0, gid: 0, additionalGids: [1.5] } }, 'user.additionalGids[0]'],
    [{ args: ['sh'], user: { uid: 70000, gid: 0 } }, 'user.uid'],
    [{ args: ['sh'], user: { uid: 0, gid: 70000 } }, 'user.gid'],
    [{ args: ['sh'], user: { uid: 0, gid: 0, additionalGids: [70000] } }, 'user.additionalGids[0]'],
    [{ args: ['sh'], stdinPath: 'x' }, 'stdinPath'],
  ])('%j → EINVALID_ARGUMENT at %s', (opts, field) => {
    const e = caught(() => planExec(opts as any, container()));
    expect(e).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field } });
    expect(e.message.startsWith(`${field}: `)).toBe(true);
  });

  it('does not check id mappings when the container has no user namespace', () => {
    const config = bundle(undefined, false).config;
    expect(planExec({ args: ['sh'], user: { uid: 70000, gid: 70000 } }, config).uid).toBe(70000);
  });
});

describe('process security fields in plans', () => {
  const caps = {
    bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_CHECKPOINT_RESTORE'],
    effective: ['CAP_KILL'],
    permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    inheritable: ['CAP_NET_BIND_SERVICE'],
    ambient: ['CAP_NET_BIND_SERVICE'],
  };
  const secure = (c: any) => {
    c.process.capabilities = caps;
    c.process.rlimits = [
      { type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 18446744073709551615 },
    ];
    c.process.noNewPrivileges = true;
    c.process.oomScoreAdj = 250;
    c.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536' };
  };

  it('planContainer resolves names to bitmasks and numbers', () => {
    const p = planContainer(bundle(secure));
    expect(p.capabilities).toEqual({
      bounding: (1n << 0n) | (1n << 5n) | (1n << 10n) | (1n << 40n),
      effective: 1n << 5n,
      permitted: (1n << 5n) | (1n << 10n),
      inheritable: 1n << 10n,
      ambient: 1n << 10n,
    });
    expect(p.rlimits).toEqual([
      { type: 7, soft: 512n, hard: 1024n },
      { type: 4, soft: 0n, hard: 0xffffffffffffffffn },
    ]);
    expect(p.noNewPrivileges).toBe(true);
    expect(p.oomScoreAdj).toBe(250);
    expect(p.sysctls).toEqual(['net.ipv4.ip_forward=1', 'kernel.shmmax=65536']);
    expect(isDeepFrozen(p)).toBe(true);
  });

  it('without the fields: every capability set empty (as runc), nothing else asked for', () => {
    const bare = (c: any) => { delete c.process.capabilities; delete c.process.noNewPrivileges; delete c.process.rlimits; delete c.linux.seccomp; };
    const p = planContainer(bundle(bare));
    expect(p.capabilities).toEqual({ bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n });
    for (const k of ['rlimits', 'noNewPrivileges', 'oomScoreAdj', 'sysctls', 'seccompBpf']) expect(p).not.toHaveProperty(k);
    // An absent set inside a capabilities object is empty too.
    expect(planContainer(bundle((c) => { c.process.capabilities = { bounding: ['CAP_KILL'] }; })).capabilities).toEqual({
      bounding: 1n << 5n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n,
    });
    // An exec into such a container gets the same empty sets.
    expect(planExec({ args: ['id'] }, bundle(bare).config).capabilities).toEqual(p.capabilities);
  });

  it('skips an ambient cap that is not permitted and inheritable, as runc does', () => {
    const p = planContainer(bundle((c) => {
      c.process.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN'], permitted: ['CAP_KILL', 'CAP_CHOWN'], inheritable: ['CAP_CHOWN'], ambient: ['CAP_KILL', 'CAP_CHOWN'] };
    }));
    expect(p.capabilities?.ambient).toBe(1n << 0n);
  });

  it('exec addCapabilities adds to bounding, effective and permitted (runc exec --cap)', () => {
    const p = planExec({ args: ['id'], addCapabilities: ['CAP_SYS_ADMIN'] }, bundle().config);
    const three = (1n << 5n) | (1n << 10n) | (1n << 29n);
    expect(p.capabilities).toEqual({ bounding: three | (1n << 21n), effective: three | (1n << 21n), permitted: three | (1n << 21n), inheritable: 0n, ambient: 0n });
    const e = caught(() => planExec({ args: ['id'], addCapabilities: ['CAP_NOPE'] }, bundle().config));
    expect(e).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'addCapabilities[0]' } });
  });

  it('an empty capabilities object means every set empty, not "leave alone"', () => {
    expect(planContainer(bundle((c) => { c.process.capabilities = {}; })).capabilities).toEqual({
      bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n,
    });
  });

  it('planExec inherits the container process settings but never its sysctls', () => {
    const p = planExec({ args: ['id'] }, bundle(secure).config);
    expect(p.capabilities?.ambient).toBe(1n << 10n);
    expect(p.rlimits).toHaveLength(2);
    expect(p.noNewPrivileges).toBe(true);
    expect(p.oomScoreAdj).toBe(250);
    expect(p).not.toHaveProperty('sysctls');
  });

  it('planExec options override capabilities, rlimits and noNewPrivileges', () => {
    const p = planExec({
      args: ['id'],
      capabilities: { bounding: ['CAP_KILL'] },
      rlimits: [{ type: 'RLIMIT_NPROC', soft: 10, hard: 10 }],
      noNewPrivileges: false,
    }, bundle(secure).config);
    expect(p.capabilities).toEqual({ bounding: 1n << 5n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n });
    expect(p.rlimits).toEqual([{ type: 6, soft: 10n, hard: 10n }]);
    expect(p).not.toHaveProperty('noNewPrivileges');
  });

  it('planExec rejects a bad capability or rlimit naming the option', () => {
    const e = caught(() => planExec({ args: ['id'], capabilities: { effective: ['CAP_NOPE'] } } as any, bundle().config));
    expect(e).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'capabilities.effective[0]' } });
    const r = caught(() => planExec({ args: ['id'], rlimits: [{ type: 'RLIMIT_X', soft: 1, hard: 1 }] } as any, bundle().config));
    expect(r.context.field).toBe('rlimits[0].type');
  });

  it('planContainer compiles linux.seccomp; planExec reuses the same filter', () => {
    const b = bundle((c) => {
      c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] };
    });
    const p = planContainer(b);
    expect(Buffer.isBuffer(p.seccompBpf)).toBe(true);
    expect(p.seccompBpf!.length % 8).toBe(0);
    expect(p.seccompBpf!.length).toBeGreaterThan(0);
    expect(p.seccompFlags).toBe(0);
    const x = planExec({ args: ['id'] }, b.config);
    expect(x.seccompBpf!.equals(p.seccompBpf!)).toBe(true);
    expect(x.seccompFlags).toBe(0);
    const none = (c: any) => { delete c.linux.seccomp; };
    expect(planContainer(bundle(none)).seccompBpf).toBeUndefined();
    expect(planExec({ args: ['id'] }, bundle(none).config).seccompBpf).toBeUndefined();
    const { encode } = jest.requireActual('../../../protocols/encode');
    const { decode } = jest.requireActual('../../../protocols/decode');
    expect(decode(encode({ type: 'EXEC', cid: 'c', plan: x })).plan).toEqual(x);
  });

  it('a config with linux.seccomp and no compiled filter is refused, never planned unfiltered', () => {
    const b = bundle((c) => {
      c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
    });
    expect(() => plans.planContainer(b)).toThrow('compiled filter was not passed');
    expect(() => plans.planExec({ args: ['id'] }, b.config)).toThrow('compiled filter was not passed');
  });

  it('the plan survives the wire unchanged', () => {
    const { encode } = jest.requireActual('../../../protocols/encode');
    const { decode } = jest.requireActual('../../../protocols/decode');
    const plan = planContainer(bundle(secure));
    const back = decode(encode({ type: 'START_CONTAINER', cid: 'c', plan }));
    expect(back.plan).toEqual(plan);
  });
});
