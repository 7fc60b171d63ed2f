/**
 * linux.namespaces[].path: a sandbox joins an existing net / ipc / uts namespace
 * instead of creating one. The namespaces are held by an `unshare` process the test
 * starts (iproute2's `ip netns` is not on every host) and are told apart from the
 * host's by an address on their loopback and a hostname.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { OciConfig } from '../../specs/oci';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll, testStateDir } from '../helpers/env';
import { createFailsLeavingNothing, setNamespacePath, useNamespaceHolders } from '../helpers/namespaces';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

interface Holder {
  readonly pid: number;
  ns(type: 'net' | 'ipc' | 'uts'): string;
}

/** Holders of new net, ipc and uts namespaces: lo up with 10.77.0.1, hostname pod-77. */
function useHolders() {
  const { unshared, pinned } = useNamespaceHolders();
  async function holder(): Promise<Holder> {
    const pid = await unshared(['--net', '--ipc', '--uts'], 'net');
    execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'busybox', 'ip', 'link', 'set', 'lo', 'up']);
    execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'busybox', 'ip', 'addr', 'add', '10.77.0.1/32', 'dev', 'lo']);
    execFileSync('nsenter', [`--uts=/proc/${pid}/ns/uts`, 'hostname', 'pod-77']);
    return { pid, ns: (type) => `/proc/${pid}/ns/${type}` };
  }
  return { holder, pinned };
}

const setPath = setNamespacePath;

describeIf(['root', 'busybox'])('namespaces given by path', () => {
  const t = useEngine('nsp');
  const { holder, pinned } = useHolders();

  const runIn = (extra: (c: OciConfig) => void, script: string) => t.run(['sh', '-c', script], { extra });

  test('joins a network namespace by /proc/PID/ns/net, from a new user namespace', async () => {
    const h = await holder();
    const r = await runIn(setPath('network', h.ns('net')), 'readlink /proc/self/ns/net; ip -4 addr show lo; cat /proc/net/dev');
    expect(r.status).toMatchObject({ exitCode: 0 });
    const [inode] = r.stdout.split('\n');
    expect(inode).toBe(fs.readlinkSync(h.ns('net')));
    expect(r.stdout).toContain('10.77.0.1');
    // Still a network namespace of its own for the host: ours is untouched.
    expect(inode).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
  });

  test('joins a pinned network namespace (a /run/netns-style bind mount) without a user namespace', async () => {
    const h = await holder();
    const file = pinned(h.ns('net'));
    const sid = t.id();
    const hd = await t.engine.createSandbox(sid, t.bundle({ args: ['sh', '-c', 'readlink /proc/self/ns/net; ip -4 addr show lo'], userns: false, extra: setPath('network', file) }));
    await t.engine.startRoot(sid);
    expect(await t.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    const out = await readAll(hd.stdio!.stdout);
    expect(out.split('\n')[0]).toBe(fs.readlinkSync(h.ns('net')));
    expect(out).toContain('10.77.0.1');
  });

  test('joins uts and ipc namespaces; the others are still new', async () => {
    const h = await holder();
    // Without a user namespace: from one of its own the container could not mount
    // /dev/mqueue for an ipc namespace the host's user namespace owns (EPERM).
    const sid = t.id();
    const extra = (c: OciConfig) => {
      setPath('uts', h.ns('uts'))(c);
      setPath('ipc', h.ns('ipc'))(c);
      // A hostname would be set in the joined namespace, over the holder's.
      delete c.hostname;
    };
    const hd = await t.engine.createSandbox(sid, t.bundle({ args: ['sh', '-c', 'hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/net'], userns: false, extra }));
    await t.engine.startRoot(sid);
    expect(await t.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    const [host, ipc, net] = (await readAll(hd.stdio!.stdout)).split('\n');
    expect(host).toBe('pod-77');
    expect(ipc).toBe(fs.readlinkSync(h.ns('ipc')));
    expect(net).not.toBe(fs.readlinkSync(h.ns('net')));
    expect(net).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
  });

  describe('a bad path fails the create, names the entry and leaves nothing', () => {
    const createFails = (extra: (c: OciConfig) => void) => createFailsLeavingNothing(t, extra);

    test('a path that does not exist', async () => {
      const e = await createFails(setPath('network', '/run/netns/paddock-no-such-ns'));
      expect(e.message).toBe('linux.namespaces[1].path: ENOENT (/run/netns/paddock-no-such-ns)');
      expect(e.context).toMatchObject({ field: 'linux.namespaces[1].path', step: 'namespace_path', errno: 2 });
    });

    test('a file that is not a namespace', async () => {
      const e = await createFails(setPath('network', '/etc/hostname'));
      expect(e.message).toBe('linux.namespaces[1].path: not a namespace file (/etc/hostname)');
    });

    test('a namespace of another type', async () => {
      const e = await createFails(setPath('network', '/proc/self/ns/ipc'));
      expect(e.message).toBe('linux.namespaces[1].path: not a network namespace but an ipc one (/proc/self/ns/ipc)');
    });
  });
});

describeIf(['root', 'busybox'])('namespaces given by path (CLI)', () => {
  const { holder } = useHolders();
  let root = '';
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);

  // A CLI's paddock-init outlives the call that created it; we reap it as conmon would.
  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-nsp');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  const bundle = (args: string[], extra: (c: OciConfig) => void) => {
    const b = makeBundle({ args, extra });
    bundles.push(b);
    return b.dir;
  };

  test('run joins the network namespace; a bad path is one line and leaves nothing', async () => {
    const h = await holder();
    const r = cli('run', '--bundle', bundle(['readlink', '/proc/self/ns/net'], setPath('network', h.ns('net'))), 'n1');
    expect(r).toMatchObject({ code: 0, stdout: `${fs.readlinkSync(h.ns('net'))}\n` });

    const bad = cli('create', '--bundle', bundle(['true'], setPath('network', '/run/netns/paddock-none')), 'n2');
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('linux.namespaces[1].path: ENOENT (/run/netns/paddock-none)');
    expect(fs.readdirSync(root).filter((d) => d.startsWith('n2'))).toEqual([]);
  });
});
