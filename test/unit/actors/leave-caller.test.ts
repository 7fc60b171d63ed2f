import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hierarchyMounts, moveSelfToRootCgroups } from '../../../actors/cgroups/leave-caller';

const line = (id: number, root: string, point: string, fstype: string, superOpts: string) =>
  `${id} 20 0:${id} ${root} ${point} rw,nosuid,nodev,noexec,relatime shared:${id} - ${fstype} ${fstype} ${superOpts}`;

describe('hierarchyMounts: the cgroup hierarchies paddockd leaves', () => {
  test('every v1 hierarchy and the cgroup2 tree, once each; other filesystems are not hierarchies', () => {
    const text = [
      line(1, '/', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
      line(2, '/', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
      line(3, '/', '/sys/fs/cgroup/systemd', 'cgroup', 'rw,xattr,name=systemd'),
      line(4, '/', '/sys/fs/cgroup/unified', 'cgroup2', 'rw,nsdelegate'),
      line(5, '/', '/proc', 'proc', 'rw'),
      // A second mount of a hierarchy already listed (a bind elsewhere) is not listed again.
      line(6, '/', '/mnt/memory again', 'cgroup', 'rw,memory'),
      line(7, '/', '/mnt/unified2', 'cgroup2', 'rw'),
    ].join('\n');
    expect(hierarchyMounts(text)).toEqual(['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']);
  });

  test('a mount of a sub-cgroup is not a root to move to; the hierarchy\'s root mount, later in the table, is', () => {
    const text = [line(1, '/docker/abc', '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'), line(2, '/', '/host/pids', 'cgroup', 'rw,pids')].join('\n');
    expect(hierarchyMounts(text)).toEqual(['/host/pids']);
    expect(hierarchyMounts(line(1, '/docker/abc', '/sys/fs/cgroup', 'cgroup2', 'rw'))).toEqual([]);
  });

  test('octal escapes in a mount point are decoded', () => {
    expect(hierarchyMounts(line(1, '/', '/sys/fs/cgroup/with\\040space', 'cgroup2', 'rw'))).toEqual(['/sys/fs/cgroup/with space']);
  });
});

describe('moveSelfToRootCgroups', () => {
  test('writes "0" to each root\'s cgroup.procs and reports the ones that refuse, with their errno', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-leave-'));
    try {
      const ok = path.join(dir, 'ok');
      fs.mkdirSync(ok);
      fs.writeFileSync(path.join(ok, 'cgroup.procs'), '');
      const missing = path.join(dir, 'missing');
      const text = [line(1, '/', ok, 'cgroup2', 'rw'), line(2, '/', missing, 'cgroup', 'rw,pids')].join('\n');
      expect(moveSelfToRootCgroups(text)).toEqual({ moved: [ok], failed: [{ mount: missing, errno: 'ENOENT' }] });
      expect(fs.readFileSync(path.join(ok, 'cgroup.procs'), 'utf8')).toBe('0');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
