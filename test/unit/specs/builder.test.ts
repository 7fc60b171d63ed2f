/** The secure builder (specs/builder.ts): a complete, valid config from a template; bad templates name the field. */
import { buildSpec, PLACEHOLDER_IDS, USERNS_ANNOTATION, type SandboxTemplate } from '../../../specs/builder';
import { defaultSpec } from '../../../specs/default-spec';
import { validateConfig } from '../../../specs/validate';

const T: SandboxTemplate = { rootfs: '/srv/rootfs', args: ['python3', '-c', 'print(1)'] };

describe('buildSpec', () => {
  test('starts from defaultSpec: its masked and read-only paths, mounts and process security are kept', () => {
    const base = defaultSpec();
    const spec = buildSpec(T);
    expect(spec.linux?.maskedPaths).toEqual(base.linux?.maskedPaths);
    expect(spec.linux?.readonlyPaths).toEqual(base.linux?.readonlyPaths);
    expect(spec.mounts).toEqual(base.mounts);
    expect(spec.process?.capabilities).toEqual(base.process?.capabilities);
    expect(spec.process?.noNewPrivileges).toEqual(base.process?.noNewPrivileges);
    expect(spec.linux?.seccomp).toEqual(base.linux?.seccomp);
  });
  test('always a user namespace and a network namespace of its own (only loopback), none joined by path', () => {
    const ns = buildSpec(T).linux?.namespaces ?? [];
    expect(ns.filter((n) => n.type === 'user')).toEqual([{ type: 'user' }]);
    expect(ns.filter((n) => n.type === 'network')).toEqual([{ type: 'network' }]);
    expect(ns.every((n) => n.path === undefined)).toBe(true);
  });
  test('without ids: placeholder mappings and the userns annotation; with ids: those, and no annotation', () => {
    const auto = buildSpec(T);
    expect(auto.annotations).toEqual({ [USERNS_ANNOTATION]: 'auto' });
    expect(auto.linux?.uidMappings).toEqual([{ containerID: 0, hostID: PLACEHOLDER_IDS.hostId, size: 65536 }]);
    const fixed = buildSpec(T, { hostId: 300000, size: 65536 });
    expect(fixed.annotations).toBeUndefined();
    expect(fixed.linux?.uidMappings).toEqual([{ containerID: 0, hostID: 300000, size: 65536 }]);
    expect(fixed.linux?.gidMappings).toEqual([{ containerID: 0, hostID: 300000, size: 65536 }]);
  });
  test('read-only rootfs by default; the template can make it writable', () => {
    expect(buildSpec(T).root).toEqual({ path: '/srv/rootfs', readonly: true });
    expect(buildSpec({ ...T, readonlyRootfs: false }).root?.readonly).toBe(false);
  });
  test('process: args, env (object or list, PATH added when absent), cwd, user, hostname', () => {
    const s = buildSpec({ ...T, env: { A: '1', B: 'x=y' }, cwd: '/work', user: { uid: 1000, gid: 100 }, hostname: 'job' });
    expect(s.process?.args).toEqual(T.args);
    expect(s.process?.env).toEqual([expect.stringMatching(/^PATH=/), 'A=1', 'B=x=y']);
    expect(s.process?.cwd).toBe('/work');
    expect(s.process?.user).toEqual({ uid: 1000, gid: 100 });
    expect(s.hostname).toBe('job');
    expect(buildSpec({ ...T, env: ['PATH=/bin', 'X=1'] }).process?.env).toEqual(['PATH=/bin', 'X=1']);
  });
  test('limits become cgroup resources (cpus as a quota per 100 ms period)', () => {
    const s = buildSpec({ ...T, limits: { memoryBytes: 256 << 20, pids: 64, cpus: 1.5 } });
    // The default spec's device rules (deny all, then the standard nodes) stay as they are.
    const devices = defaultSpec().linux?.resources?.devices;
    expect(devices?.[0]).toEqual({ allow: false, access: 'rwm' });
    expect(s.linux?.resources).toEqual({ devices, memory: { limit: 256 << 20 }, pids: { limit: 64 }, cpu: { quota: 150000, period: 100000 } });
    expect(buildSpec(T).linux?.resources).toEqual({ devices });
  });
  test('the result passes the validator (what createSandbox and the CLI run on it)', () => {
    expect(() => validateConfig(buildSpec({ ...T, user: { uid: 1000, gid: 1000 }, limits: { pids: 5 } }) as never)).not.toThrow();
    expect(() => validateConfig(buildSpec(T, { hostId: 200000, size: 65536 }) as never)).not.toThrow();
  });
  test('pure: each call a fresh config, the template untouched', () => {
    const tpl = { ...T, env: { A: '1' } };
    const frozen = JSON.stringify(tpl);
    const a = buildSpec(tpl);
    a.process?.args?.push('x');
    expect(buildSpec(tpl).process?.args).toEqual(T.args);
    expect(JSON.stringify(tpl)).toBe(frozen);
  });
});

describe('bad templates: EINVALID_ARGUMENT naming the field', () => {
  const fails = (t: unknown, message: string) =>
    expect(() => buildSpec(t as SandboxTemplate)).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT', message }));
  test.each([
    [{ ...T, netwrok: 'none' }, 'template: unknown option "netwrok" (did you mean "network"?)'],
    [{ ...T, rootfs: 'rootfs' }, 'template.rootfs: must be an absolute path'],
    [{ rootfs: '/r' }, 'template.args: must be a non-empty array of strings'],
    [{ ...T, args: [] }, 'template.args: must be a non-empty array of strings'],
    [{ ...T, args: [''] }, 'template.args: args[0] must not be empty'],
    [{ ...T, env: ['NOEQUALS'] }, 'template.env[0]: must be a NAME=value string'],
    [{ ...T, env: { 'A=B': 'x' } }, 'template.env.A=B: is not a valid variable name'],
    [{ ...T, env: { A: 1 } }, 'template.env.A: must be a string'],
    [{ ...T, cwd: 'work' }, 'template.cwd: must be an absolute path'],
    [{ ...T, user: { uid: -1, gid: 0 } }, "template.user: uid and gid must be integers from 0 to 65535 (ids of the sandbox's range)"],
    [{ ...T, user: { uid: 0, gid: 0, groups: [] } }, 'template.user: unknown option "groups"'],
    [{ ...T, readonlyRootfs: 'yes' }, 'template.readonlyRootfs: must be a boolean'],
    [{ ...T, limits: { memoryBytes: 1000 } }, 'template.limits.memoryBytes: must be an integer of at least 1 MiB'],
    [{ ...T, limits: { pids: 0 } }, 'template.limits.pids: must be a positive integer'],
    [{ ...T, limits: { cpus: 0 } }, 'template.limits.cpus: must be a number of at least 0.01'],
    [{ ...T, limits: { memory: 5 } }, 'template.limits: unknown option "memory" (did you mean "memoryBytes"?)'],
  ])('%j', (t, message) => fails(t, message));
  test('ids that would map the container to host root or past the id space', () => {
    expect(() => buildSpec(T, { hostId: 0, size: 65536 })).toThrow(/ids: hostId and size must be positive integers/);
    expect(() => buildSpec(T, { hostId: 0xffff0000, size: 1 << 20 })).toThrow(/ids:/);
  });
});
