/**
 * linux.namespaces[].path for a user namespace (docs/decisions/0021): the sandbox
 * joins it before it creates its other namespaces, which it then owns, and the
 * spec's id mappings must be the namespace's. The namespace is held by an
 * `unshare --user` process whose maps the test writes (0 -> TEST_USERNS.hostId).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPaddockError, type PaddockError } from '../../actors/errors';
import type { OciConfig } from '../../specs/oci';
import { TEST_USERNS } from '../helpers/bundle';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll } from '../helpers/env';

async function waitUntil(what: string, pred: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const setPath = (type: string, p: string) => (c: OciConfig) => {
  const ns = c.linux?.namespaces?.find((n) => n.type === type);
  if (!ns) throw new Error(`no ${type} namespace in the test spec`);
  ns.path = p;
};

const MAP = `0 ${TEST_USERNS.hostId} ${TEST_USERNS.size}`;

describeIf(['root', 'busybox'])('a user namespace given by path', () => {
  const t = useEngine('nsu');
  const children: ChildProcess[] = [];
  const mounts: string[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    const problems: unknown[] = [];
    for (const m of mounts.splice(0)) {
      try {
        execFileSync('umount', ['-l', m]);
      } catch (e) {
        problems.push(e);
      }
    }
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }
    }
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    if (problems.length > 0) throw problems[0];
  });

  /** A process in a new user namespace with `map` as its uid and gid map; returns its ns file. */
  async function holder(map = MAP): Promise<string> {
    const c = spawn('unshare', ['--user', 'sleep', '600'], { stdio: 'ignore' });
    children.push(c);
    const pid = c.pid as number;
    const own = fs.readlinkSync('/proc/self/ns/user');
    await waitUntil('the holder to unshare', () => {
      try {
        return fs.readlinkSync(`/proc/${pid}/ns/user`) !== own && fs.readlinkSync(`/proc/${pid}/exe`).endsWith('sleep');
      } catch {
        return false;
      }
    });
    fs.writeFileSync(`/proc/${pid}/uid_map`, `${map}\n`);
    fs.writeFileSync(`/proc/${pid}/gid_map`, `${map}\n`);
    return `/proc/${pid}/ns/user`;
  }

  /** A bind mount of a namespace file that outlives its holder. */
  function pinned(nsFile: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-userns-'));
    dirs.push(dir);
    const file = path.join(dir, 'user');
    fs.writeFileSync(file, '');
    execFileSync('mount', ['--bind', nsFile, file]);
    mounts.push(file);
    return file;
  }

  async function runIn(extra: (c: OciConfig) => void, script: string) {
    const sid = t.id();
    const h = await t.engine.createSandbox(sid, t.bundle({ args: ['sh', '-c', script], extra }));
    await t.engine.startRoot(sid);
    const status = await t.engine.wait(sid, sid, { timeoutMs: 20_000 });
    return { sid, status, stdout: await readAll(h.stdio!.stdout), stderr: await readAll(h.stdio!.stderr) };
  }

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
    async function createFails(extra: (c: OciConfig) => void): Promise<PaddockError> {
      const sid = t.id();
      let err: unknown;
      try {
        await t.engine.createSandbox(sid, t.bundle({ args: ['true'], extra }));
      } catch (e) {
        err = e;
      }
      expect(isPaddockError(err, 'ELAUNCH_STEP')).toBe(true);
      expect(t.engine.list()).toEqual([]);
      expect(fs.existsSync(path.join(t.stateDir, sid))).toBe(false);
      return err as PaddockError;
    }
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
