/**
 * linux.namespaces[].path for a user namespace (docs/decisions/0021): the sandbox
 * joins it before it creates its other namespaces, which it then owns, and the
 * spec's id mappings must be the namespace's. The namespace is held by an
 * `unshare --user` process whose maps the test writes (0 -> TEST_USERNS.hostId).
 */
import * as fs from 'node:fs';
import type { OciConfig } from '../../specs/oci';
import { TEST_USERNS } from '../helpers/bundle';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';
import { createFailsLeavingNothing, setNamespacePath, useNamespaceHolders } from '../helpers/namespaces';

const setPath = setNamespacePath;

const MAP = `0 ${TEST_USERNS.hostId} ${TEST_USERNS.size}`;

describeIf(['root', 'busybox'])('a user namespace given by path', () => {
  const t = useEngine('nsu');
  const { unshared, pinned } = useNamespaceHolders();

  /** A process in a new user namespace with `map` as its uid and gid map; returns its ns file. */
  async function holder(map = MAP): Promise<string> {
    const pid = await unshared(['--user'], 'user');
    fs.writeFileSync(`/proc/${pid}/uid_map`, `${map}\n`);
    fs.writeFileSync(`/proc/${pid}/gid_map`, `${map}\n`);
    return `/proc/${pid}/ns/user`;
  }

  const runIn = (extra: (c: OciConfig) => void, script: string) => t.run(['sh', '-c', script], { extra });

  const SCRIPT = 'readlink /proc/self/ns/user; cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/net; id -u; ip link show lo';

  test('joins it by /proc/PID/ns/user; the namespaces it makes are its own', async () => {
    const ns = await holder();
    const r = await runIn(setPath('user', ns), SCRIPT);
    expect(r.stderr).toBe('');
    expect(r.status).toMatchObject({ exitCode: 0 });
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(fs.readlinkSync(ns));
    expect(lines[1]?.trim().split(/\s+/).join(' ')).toBe(MAP);
    expect(lines[2]?.trim().split(/\s+/).join(' ')).toBe(MAP);
    // A network namespace of its own, made inside the joined user namespace: init
    // could bring its lo up only as root of the namespace that owns it.
    expect(lines[3]).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    expect(lines[4]).toBe('0');
    expect(r.stdout).toMatch(/lo: <LOOPBACK,UP/);
  });

  test('two sandboxes share one pinned user namespace (podman --userns=ns:PATH)', async () => {
    const file = pinned(await holder());
    const a = await runIn(setPath('user', file), 'readlink /proc/self/ns/user');
    const b = await runIn(setPath('user', file), 'readlink /proc/self/ns/user');
    expect(a.status).toMatchObject({ exitCode: 0 });
    expect(b.status).toMatchObject({ exitCode: 0 });
    const [ua] = a.stdout.split('\n');
    const [ub] = b.stdout.split('\n');
    expect(ua).toBe(ub);
    expect(ua).not.toBe(fs.readlinkSync('/proc/self/ns/user'));
  });

  describe('bad input fails the create, names the field and leaves nothing', () => {
    const createFails = (extra: (c: OciConfig) => void) => createFailsLeavingNothing(t, extra);
    const userIndex = (c: OciConfig) => c.linux?.namespaces?.findIndex((n) => n.type === 'user');

    test('mappings that differ from the namespace', async () => {
      const ns = await holder(`0 200000 65536`);
      const e = await createFails(setPath('user', ns));
      expect(e.message).toBe(`linux.uidMappings: does not match the joined user namespace's uid_map (namespace: 0 200000 65536; spec: ${MAP}) (${ns})`);
      expect(e.context).toMatchObject({ field: 'linux.uidMappings', step: 'namespace_path', path: ns });
    });

    test('a namespace of another type, a missing file, our own user namespace', async () => {
      let i = -1;
      const e1 = await createFails((c) => {
        i = userIndex(c) ?? -1;
        setPath('user', '/proc/self/ns/net')(c);
      });
      expect(e1.message).toBe(`linux.namespaces[${i}].path: not a user namespace but a network one (/proc/self/ns/net)`);
      const e2 = await createFails(setPath('user', '/run/paddock-no-such-userns'));
      expect(e2.message).toBe(`linux.namespaces[${i}].path: ENOENT (/run/paddock-no-such-userns)`);
      const e3 = await createFails(setPath('user', '/proc/self/ns/user'));
      expect(e3.message).toBe(`linux.namespaces[${i}].path: is the supervisor's own user namespace (leave the path out to make a new one) (/proc/self/ns/user)`);
    });
  });
});
