import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorLines } from '../../../actors/checkpoint/criu';
import { externalMounts, parseMountinfo, parseNsPid } from '../../../actors/checkpoint/proc-view';

/**
 * What a dump tells CRIU about a container, from /proc text (docs/decisions/0040): which
 * mounts come from the host and by which host path, and a pid in init's namespace.
 */

// A paddock container's mountinfo (trimmed), as read on this host.
const CONTAINER = `93 71 254:0 /work/paddock/test/fixtures/rootfs / ro,relatime - ext4 /dev/vda rw
94 93 0:43 / /proc rw,relatime - proc proc rw
95 93 0:44 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
97 95 0:46 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
100 95 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw,size=12334760k
73 94 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw,size=12334760k
76 94 0:43 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
110 93 254:0 /tmp/out\\040dir /tmp rw,relatime - ext4 /dev/vda rw
111 93 254:0 /work/paddock/test/fixtures/rootfs/etc /mnt/etc ro,relatime - ext4 /dev/vda rw
`;
const HOST = `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:6 / /dev rw,nosuid - devtmpfs devtmpfs rw
24 22 0:22 / /proc rw - proc proc rw
`;

describe('parseMountinfo', () => {
  test('reads id, device, root, mountpoint and type, unescaping octal', () => {
    const m = parseMountinfo(CONTAINER);
    expect(m[0]).toEqual({ id: 93, dev: '254:0', root: '/work/paddock/test/fixtures/rootfs', mountpoint: '/', options: 'ro,relatime', fstype: 'ext4' });
    expect(m.find((x) => x.id === 110)).toMatchObject({ root: '/tmp/out dir', mountpoint: '/tmp' });
    expect(parseMountinfo('\nnonsense\n')).toEqual([]);
  });
});

describe('externalMounts', () => {
  test('host binds are external with their host path; the root, remade filesystems and binds inside the container are not', () => {
    expect(externalMounts(parseMountinfo(CONTAINER), parseMountinfo(HOST))).toEqual([
      { key: '/dev/null', hostPath: '/dev/null' },
      { key: '/proc/keys', hostPath: '/dev/null' },
      { key: '/tmp', hostPath: '/tmp/out dir' },
    ]);
  });

  test('a bind whose filesystem the host does not show is left to criu', () => {
    const c = parseMountinfo('93 71 254:0 /r / ro - ext4 /dev/vda rw\n120 93 0:99 /x /x rw - ext4 /dev/vdb rw\n');
    expect(externalMounts(c, parseMountinfo(HOST))).toEqual([]);
  });

  test('the deepest host mount of the filesystem names the path', () => {
    const host = parseMountinfo(`${HOST}30 22 254:0 /srv/data /data rw - ext4 /dev/vda rw\n`);
    const c = parseMountinfo('93 71 254:0 /r / ro - ext4 /dev/vda rw\n120 93 254:0 /srv/data/a /a rw - ext4 /dev/vda rw\n');
    expect(externalMounts(c, host)).toEqual([{ key: '/a', hostPath: '/data/a' }]);
  });
});

describe('parseNsPid', () => {
  test('the pid at a depth of NSpid', () => {
    const status = 'Name:\tsh\nNSpid:\t7306\t8\t1\n';
    expect(parseNsPid(status, 0)).toBe(7306);
    expect(parseNsPid(status, 1)).toBe(8);
    expect(parseNsPid(status, 2)).toBe(1);
    expect(parseNsPid(status, 3)).toBeUndefined();
    expect(parseNsPid('Name:\tx\n', 0)).toBeUndefined();
  });
});

describe('errorLines', () => {
  test('the Error lines of a criu log without the ones it survives, at most five', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-criu-log-'));
    try {
      const log = path.join(dir, 'dump.log');
      fs.writeFileSync(
        log,
        [
          '(00.001) Warn (criu/x.c:1): something',
          '(00.002) Error (criu/util.c:1533): rlimit: Can\'t setup RLIMIT_NOFILE for self: Operation not permitted',
          '(00.003) Error (criu/files-reg.c:1790): Can\'t lookup mount=47 for fd=0 path=/x',
          '(00.004) Error (criu/util.c:656): exited, status=1',
          '(00.005) Error (criu/cr-dump.c:2111): Dumping FAILED.',
        ].join('\n'),
      );
      expect(errorLines(log)).toEqual(['Error (criu/files-reg.c:1790): Can\'t lookup mount=47 for fd=0 path=/x', 'Error (criu/cr-dump.c:2111): Dumping FAILED.']);
      expect(errorLines(path.join(dir, 'missing.log'))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
