import { configWarnings } from '../../../specs/config-warnings';
import { DEFAULT_DEVICES, planDevices } from '../../../specs/device-nodes';
import { findConfigProblems } from '../../../specs/validate';
import { spec } from './helpers';

const withDevices = (devices: unknown[], userns: boolean) => spec((c) => { c.linux.devices = devices; }, userns);

describe('linux.devices: validation', () => {
  it('accepts c, b, u and p nodes under /dev', () => {
    const c = withDevices([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
      { path: '/dev/loop0', type: 'b', major: 7, minor: 0 },
      { path: '/dev/u', type: 'u', major: 1, minor: 3, fileMode: 8630 },
      { path: '/dev/sub/fifo', type: 'p' },
    ], false);
    expect(findConfigProblems(c)).toEqual([]);
  });

  it.each([
    ['a path outside /dev', { path: '/etc/x', type: 'c', major: 1, minor: 3 }, 'linux.devices[0].path'],
    ['/dev itself', { path: '/dev', type: 'c', major: 1, minor: 3 }, 'linux.devices[0].path'],
    ['a path leaving /dev through ..', { path: '/dev/../x', type: 'c', major: 1, minor: 3 }, 'linux.devices[0].path'],
    ['a relative path', { path: 'dev/x', type: 'c', major: 1, minor: 3 }, 'linux.devices[0].path'],
    ['a newline in the path', { path: '/dev/a\nb', type: 'c', major: 1, minor: 3 }, 'linux.devices[0].path'],
    ['an unknown type', { path: '/dev/x', type: 's', major: 1, minor: 3 }, 'linux.devices[0].type'],
    ['no type', { path: '/dev/x', major: 1, minor: 3 }, 'linux.devices[0].type'],
    ['no minor for a block node', { path: '/dev/x', type: 'b', major: 1 }, 'linux.devices[0].minor'],
    ['a negative major', { path: '/dev/x', type: 'c', major: -1, minor: 3 }, 'linux.devices[0].major'],
    ['a fractional fileMode', { path: '/dev/x', type: 'c', major: 1, minor: 3, fileMode: 1.5 }, 'linux.devices[0].fileMode'],
  ])('refuses %s (ECONFIG_INVALID naming the field)', (_n, device, field) => {
    expect(findConfigProblems(withDevices([device], false))[0]).toMatchObject({ code: 'ECONFIG_INVALID', field });
  });

  it('takes as many nodes as podman --privileged lists on a big host (1018 with the defaults), not one more', () => {
    const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ path: `/dev/n${i}`, type: 'c', major: 1, minor: i }));
    expect(findConfigProblems(withDevices(nodes(1018), false))).toEqual([]);
    expect(findConfigProblems(withDevices(nodes(1019), false))[0]).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.devices' });
  });

  it('refuses the same path twice', () => {
    const problems = findConfigProblems(withDevices([{ path: '/dev/x', type: 'p' }, { path: '/dev//x/', type: 'p' }], false));
    expect(problems[0]).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.devices[1].path', message: expect.stringMatching(/linux\.devices\[0\]/) });
  });

  it('in a user namespace a FIFO must be owned by mapped ids', () => {
    const problems = findConfigProblems(withDevices([{ path: '/dev/f', type: 'p', uid: 70000 }], true));
    expect(problems[0]).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.devices[0].uid' });
  });
});

describe('linux.devices: mknod under the device cgroup', () => {
  const fuse = { path: '/dev/fuse', type: 'c', major: 10, minor: 229 };
  const withRules = (rules: unknown[]) => spec((c) => { c.linux.devices = [fuse]; c.linux.resources = { devices: rules }; }, false);

  it('deny-all (the runtime defaults allow mknod of everything after it) is fine', () => {
    expect(findConfigProblems(withRules([{ allow: false, access: 'rwm' }]))).toEqual([]);
  });

  it('an allowing default that denies m for the listed node is refused, naming the entry', () => {
    expect(findConfigProblems(withRules([{ allow: false, type: 'c', major: 10, minor: 229, access: 'm' }]))[0]).toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      field: 'linux.devices[0]',
      message: expect.stringMatching(/denies mknod \(m\) of c 10:229/),
    });
    expect(findConfigProblems(withRules([{ allow: false, type: 'c', major: 10, minor: 229, access: 'rw' }]))).toEqual([]);
  });

  it('inside a user namespace the host node is bound: no mknod, no check', () => {
    const c = spec((x) => { x.linux.devices = [fuse]; x.linux.resources = { devices: [{ allow: false, access: 'rwm' }] }; }, true);
    expect(findConfigProblems(c)).toEqual([]);
  });
});

describe('linux.devices: plan', () => {
  it('without a user namespace every node is made by init (u is a char node; fileMode loses its type bits); a listed default replaces it', () => {
    const c = withDevices([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o20640, uid: 5, gid: 6 },
      { path: '/dev/fifo', type: 'p', fileMode: 0o600, uid: 7 },
      { path: '/dev/null', type: 'u', major: 1, minor: 3 },
      { path: '/dev/sub/loop0', type: 'b', major: 7, minor: 0 },
    ], false);
    expect(planDevices(c)).toEqual([
      ...DEFAULT_DEVICES.filter((d) => d !== '/dev/null'),
      `+/dev/fuse\nc\n10\n229\n${0o640}\n5\n6`,
      `+/dev/fifo\np\n0\n0\n${0o600}\n7\n0`,
      `+/dev/null\nc\n1\n3\n${0o666}\n0\n0`,
      `+/dev/sub/loop0\nb\n7\n0\n${0o666}\n0\n0`,
    ]);
  });

  it("in a user namespace, char and block nodes are the host's, bound at the same path (mode and owner warned about); FIFOs are made", () => {
    const c = withDevices([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600, gid: 0 },
      { path: '/dev/fifo', type: 'p', uid: 1000 },
    ], true);
    expect(planDevices(c)).toEqual([...DEFAULT_DEVICES, '/dev/fuse', `+/dev/fifo\np\n0\n0\n${0o666}\n1000\n0`]);
    expect(configWarnings(c).map((w) => w.field)).toEqual(['linux.devices[0].fileMode', 'linux.devices[0].gid']);
  });

  it('no linux.devices: the defaults alone', () => {
    expect(planDevices(spec())).toEqual([...DEFAULT_DEVICES]);
  });
});
