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

  it('refuses the same path twice', () => {
    const problems = findConfigProblems(withDevices([{ path: '/dev/x', type: 'p' }, { path: '/dev//x/', type: 'p' }], false));
    expect(problems[0]).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.devices[1].path', message: expect.stringMatching(/linux\.devices\[0\]/) });
  });

  it('in a user namespace a FIFO must be owned by mapped ids', () => {
    const problems = findConfigProblems(withDevices([{ path: '/dev/f', type: 'p', uid: 70000 }], true));
    expect(problems[0]).toMatchObject({ code: 'ECONFIG_INVALID', field: 'linux.devices[0].uid' });
  });
});

describe('linux.devices: plan', () => {
  it('without a user namespace, char and block nodes are staged and bound; FIFOs are made by init; a listed default replaces it', () => {
    const c = withDevices([
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o20640, uid: 5, gid: 6 },
      { path: '/dev/fifo', type: 'p', fileMode: 0o600, uid: 7 },
      { path: '/dev/null', type: 'u', major: 1, minor: 3 },
      { path: '/dev/loop0', type: 'b', major: 7, minor: 0 },
    ], false);
    const p = planDevices(c, '/state/sb/devices/c1');
    expect(p.devices).toEqual([
      ...DEFAULT_DEVICES.filter((d) => d !== '/dev/null'),
      '@/dev/fuse\n/state/sb/devices/c1/0',
      `|/dev/fifo\n${0o600}\n7\n0`,
      '@/dev/null\n/state/sb/devices/c1/2',
      '@/dev/loop0\n/state/sb/devices/c1/3',
    ]);
    expect(p.staged).toEqual([
      { hostPath: '/state/sb/devices/c1/0', node: { type: 'c', major: 10, minor: 229, mode: 0o640, uid: 5, gid: 6 } },
      { hostPath: '/state/sb/devices/c1/2', node: { type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 } },
      { hostPath: '/state/sb/devices/c1/3', node: { type: 'b', major: 7, minor: 0, mode: 0o666, uid: 0, gid: 0 } },
    ]);
  });

  it("in a user namespace, char and block nodes are the host's, bound at the same path; their mode and owner are warned about", () => {
    const c = withDevices([{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600, gid: 0 }], true);
    expect(planDevices(c, undefined)).toEqual({ devices: [...DEFAULT_DEVICES, '/dev/fuse'], staged: [] });
    expect(configWarnings(c).map((w) => w.field)).toEqual(['linux.devices[0].fileMode', 'linux.devices[0].gid']);
  });

  it('no linux.devices: the defaults alone', () => {
    expect(planDevices(spec(), undefined)).toEqual({ devices: [...DEFAULT_DEVICES], staged: [] });
  });
});
