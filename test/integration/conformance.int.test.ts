/**
 * OCI conformance (issue 14): configs runc and crun run as written, run by paddock the
 * same way, each effect read from inside the container. Warnings name their field in
 * the engine's pino log (the CLI's --log is the same logger).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createEngine, type Engine } from '../../index';
import { BUNDLES_DIR, fixtureRootfs, makeBundle, type MakeBundleOptions, type TestBundle } from '../helpers/bundle';
import { capturingLogger, describeIf, poll, readAll, testStateDir } from '../helpers/env';

describeIf(['root', 'busybox', 'cgroups'])('OCI conformance (real sandboxes)', () => {
  let engine: Engine;
  let stateDir = '';
  let seq = 0;
  const cleanups: Array<() => void> = [];
  const lines: Array<Record<string, unknown>> = [];

  beforeEach(async () => {
    lines.length = 0;
    stateDir = testStateDir('conform');
    engine = await createEngine({ stateDir, logger: capturingLogger(lines) });
  });
  afterEach(async () => {
    for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
    await engine.close();
    for (const c of cleanups.splice(0).reverse()) c();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const bundle = (opts: MakeBundleOptions): string => {
    const b: TestBundle = makeBundle(opts);
    cleanups.push(() => b.cleanup());
    return b.dir;
  };
  /** A directory removed after the test (mkdtemp below the bundles' folder). */
  const tempDir = (prefix: string): string => {
    fs.mkdirSync(BUNDLES_DIR, { recursive: true });
    const d = fs.mkdtempSync(path.join(BUNDLES_DIR, prefix));
    fs.chmodSync(d, 0o755);
    cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
    return d;
  };
  /** A copy of the fixture rootfs this test may change (runtimes make mount points in it). */
  const privateRootfs = (): string => {
    const d = tempDir('rootfs-');
    execFileSync('cp', ['-a', `${fs.realpathSync(fixtureRootfs())}/.`, d]);
    return d;
  };
  const run = async (dir: string) => {
    const sid = `cf${++seq}`;
    const h = await engine.createSandbox(sid, dir);
    await engine.startRoot(sid);
    const status = await engine.wait(sid, sid, { timeoutMs: 20_000 });
    return { sid, status, stdout: await readAll(h.stdio!.stdout), stderr: await readAll(h.stdio!.stderr) };
  };
  const warnings = () => lines.filter((l) => l.level === 40 && l.step === 'config').map((l) => l.field);

  describe('linux.resources.memory.kernel / kernelTCP (item 5)', () => {
    test('accepted with a warning naming each field; the memory limit still applies (a 64 MiB allocation is OOM-killed under 16 MiB)', async () => {
      const dir = bundle({
        userns: false,
        // The shell holds the whole command substitution in memory.
        args: ['sh', '-c', 'x=$(head -c 4000000 /dev/zero | tr "\\0" a); echo small ${#x}; x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo big ${#x}'],
        extra: (c) => {
          c.linux!.resources = { memory: { limit: 16 << 20, kernel: 8 << 20, kernelTCP: 4 << 20 } };
        },
      });
      const r = await run(dir);
      expect(r.stdout).toBe('small 4000000\n');
      expect(r.status).toMatchObject({ signal: 9 });
      expect(warnings()).toEqual(['linux.resources.memory.kernel', 'linux.resources.memory.kernelTCP']);
    });

    test('a kernel value that is not a number of bytes is a one-line error naming it, nothing made', async () => {
      const dir = bundle({ userns: false, args: ['true'], extra: (c) => { c.linux!.resources = { memory: { kernel: '8M' } }; } });
      const err = await engine.createSandbox('cfbad', dir).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ECONFIG_INVALID', context: { field: 'linux.resources.memory.kernel' } });
      expect((err as Error).message.split('\n')).toHaveLength(1);
      expect(engine.list()).toEqual([]);
      expect(fs.readdirSync(stateDir)).toEqual([]);
    });
  });

  // runc writes v1's memory.swappiness and memory.oom_control (docker's --memory-swappiness
  // and --oom-kill-disable); read from the cgroup the container's process is in.
  const memoryV1 = fs.existsSync('/sys/fs/cgroup/memory/memory.swappiness');
  (memoryV1 ? test : test.skip)('linux.resources.memory.swappiness and disableOOMKiller are written to the v1 memory cgroup the container runs in', async () => {
    const dir = bundle({
      userns: false,
      args: ['sleep', '30'],
      extra: (c) => {
        c.linux!.resources = { memory: { limit: 64 << 20, swappiness: 7, disableOOMKiller: true } };
      },
    });
    const sid = `cf${++seq}`;
    await engine.createSandbox(sid, dir);
    await engine.startRoot(sid);
    const hostPid = engine.list().find((x) => x.id === sid)?.containers.find((c) => c.id === sid)?.hostPid as number;
    const rel = fs.readFileSync(`/proc/${hostPid}/cgroup`, 'utf8').split('\n').find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))?.split(':')[2];
    expect(rel).toMatch(/^\/.+/);
    const read = (f: string) => fs.readFileSync(path.join('/sys/fs/cgroup/memory', rel!, f), 'utf8');
    expect(read('memory.swappiness').trim()).toBe('7');
    expect(read('memory.oom_control')).toMatch(/^oom_kill_disable 1$/m);
    expect(read('memory.limit_in_bytes').trim()).toBe(String(64 << 20));
    expect(warnings()).toEqual([]);
  });

  test('swappiness above 100 is a one-line error naming it; nothing made', async () => {
    const dir = bundle({ userns: false, args: ['true'], extra: (c) => void (c.linux!.resources = { memory: { swappiness: 101 } }) });
    await expect(engine.createSandbox('cfswap', dir)).rejects.toMatchObject({ code: 'ECONFIG_INVALID', context: { field: 'linux.resources.memory.swappiness' } });
    expect(fs.existsSync(path.join(stateDir, 'cfswap'))).toBe(false);
  });

  describe('bind mounts (item 4)', () => {
    test('data options are ignored with a warning; missing parents of the destination are made inside the rootfs', async () => {
      const rootfs = privateRootfs();
      const src = tempDir('src-');
      fs.writeFileSync(path.join(src, 'file'), 'hello\n');
      const dir = bundle({
        userns: false,
        rootfs,
        args: ['cat', '/deep/er/mnt/file'],
        extra: (c) => {
          c.mounts!.push({ destination: '/deep/er/mnt', type: 'bind', source: src, options: ['rbind', 'mode=755', 'ro', 'size=1k'] });
        },
      });
      const r = await run(dir);
      expect(r).toMatchObject({ stdout: 'hello\n', status: { exitCode: 0 } });
      const i = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).mounts.length - 1;
      expect(warnings()).toEqual([`mounts[${i}].options[1]`, `mounts[${i}].options[3]`]);
      expect(fs.statSync(path.join(rootfs, 'deep/er/mnt')).isDirectory()).toBe(true);
    });

    test.each([
      ['an absolute symlink', (outside: string) => outside],
      ['a relative symlink climbing out', (outside: string) => `../../../../../../../..${outside}`],
    ])('%s in the rootfs pointing outside cannot redirect the mkdir or the mount', async (_name, target) => {
      const rootfs = privateRootfs();
      const outside = tempDir('outside-');
      const src = tempDir('src-');
      fs.writeFileSync(path.join(src, 'file'), 'inside\n');
      fs.symlinkSync(target(outside), path.join(rootfs, 'escape'));
      const dir = bundle({
        userns: false,
        rootfs,
        args: ['sh', '-c', 'cat /escape/sub/file && readlink /escape'],
        extra: (c) => {
          c.mounts!.push({ destination: '/escape/sub', type: 'bind', source: src, options: ['rbind'] });
        },
      });
      const r = await run(dir);
      expect(r.status).toMatchObject({ exitCode: 0 });
      expect(r.stdout).toBe(`inside\n${target(outside)}\n`);
      // The host's directory got nothing; the symlink's target was made inside the rootfs.
      expect(fs.readdirSync(outside)).toEqual([]);
      expect(fs.statSync(path.join(rootfs, outside, 'sub')).isDirectory()).toBe(true);
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(outside);
    });
  });

  describe('tmpcopyup (podman --tmpfs, --read-only)', () => {
    test.each([[false], [true]])('user namespace %s: the tmpfs starts with what the directory held (files, modes, owners, links, fifos); writes stay in the tmpfs', async (userns) => {
      const rootfs = privateRootfs();
      const data = path.join(rootfs, 'data');
      fs.mkdirSync(path.join(data, 'sub'), { recursive: true });
      fs.writeFileSync(path.join(data, 'file'), 'one\n', { mode: 0o640 });
      fs.writeFileSync(path.join(data, 'sub', 'deep'), 'two\n');
      fs.symlinkSync('/etc/passwd', path.join(data, 'link'));
      execFileSync('mkfifo', ['-m', '600', path.join(data, 'fifo')]);
      // Owned as the container sees root and uid 1000 (an image unpacked for its user namespace).
      const base = userns ? 100000 : 0;
      for (const f of ['', 'sub', 'sub/deep', 'fifo']) fs.chownSync(path.join(data, f), base, base);
      fs.lchownSync(path.join(data, 'link'), base, base);
      fs.chownSync(path.join(data, 'file'), base + 1000, base + 1000);
      fs.chmodSync(path.join(data, 'sub'), 0o750);
      const dir = bundle({
        userns,
        rootfs,
        args: ['sh', '-c', 'cd /data && stat -c "%n %F %a %u" file sub sub/deep link fifo && cat file sub/deep && readlink link && echo new > made && grep tmpfs /proc/self/mountinfo | grep -c " /data "'],
        extra: (c) => {
          c.mounts!.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'tmpcopyup'] });
          // root reads uid 1000's 0640 file: the default spec's caps do not include it.
          c.process!.capabilities = { bounding: ['CAP_DAC_OVERRIDE'], effective: ['CAP_DAC_OVERRIDE'], permitted: ['CAP_DAC_OVERRIDE'] };
        },
      });
      const r = await run(dir);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(
        ['file regular file 640 1000', 'sub directory 750 0', 'sub/deep regular file 644 0', 'link symbolic link 777 0', 'fifo fifo 600 0', 'one', 'two', '/etc/passwd', '1', ''].join('\n'),
      );
      expect(fs.existsSync(path.join(data, 'made'))).toBe(false);
      expect(warnings()).toEqual([]);
    });
  });

  test("a user namespace without a network namespace (runc spec --rootless) runs in the host's, whose lo is left alone", async () => {
    const dir = bundle({
      args: ['readlink', '/proc/self/ns/net'],
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'network');
      },
    });
    const r = await run(dir);
    expect(r).toMatchObject({ status: { exitCode: 0 }, stderr: '' });
    expect(r.stdout).toBe(`${fs.readlinkSync('/proc/self/ns/net')}\n`);
  });

  test("no mount namespace listed: the container gets its own; the host's mount table never sees its mounts", async () => {
    const rootfs = privateRootfs();
    const hostRoot = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
    const under = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(rootfs));
    const rootBefore = hostRoot();
    const dir = bundle({
      userns: false,
      rootfs,
      // Mounts inside (the spec's /proc, /dev, a tmpfs) and one more of its own.
      args: ['sh', '-c', 'mkdir -p /tmp/m && mount -t tmpfs x /tmp/m && readlink /proc/self/ns/mnt && grep -c " /proc " /proc/self/mountinfo && sleep 30'],
      readonlyRootfs: false,
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'mount');
        c.process!.capabilities = { bounding: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'], permitted: ['CAP_SYS_ADMIN'] };
        // The default profile refuses mount(2) whatever the caps; this test needs it.
        delete c.linux!.seccomp;
      },
    });
    const sid = `cf${++seq}`;
    const h = await engine.createSandbox(sid, dir);
    await engine.startRoot(sid);
    let out = '';
    h.stdio!.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await poll(() => (out.split('\n').length >= 3 ? true : undefined), 10_000, 'the container to report');
    const [ns, procs] = out.split('\n');
    expect(ns).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    expect(procs).toBe('1');
    // While it runs and after it is gone: nothing under its rootfs on the host, "/" as it was.
    expect(under()).toEqual([]);
    await engine.destroy(sid);
    expect(under()).toEqual([]);
    expect(hostRoot()).toBe(rootBefore);
    expect(warnings()).toEqual(['linux.namespaces']);
  });

  /** `unshare --mount sleep 60`: a process holding a mount namespace of its own. Killed after the test. */
  const mountNamespaceHolder = async (): Promise<{ nsPath: string; nsLink: string; pid: number }> => {
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
    cleanups.push(() => void holder.kill('SIGKILL'));
    const nsPath = await poll(() => {
      const p = `/proc/${holder.pid}/ns/mnt`;
      try {
        return fs.readlinkSync(p) !== fs.readlinkSync('/proc/self/ns/mnt') && /sleep/.test(fs.readFileSync(`/proc/${holder.pid}/comm`, 'utf8')) ? p : undefined;
      } catch {
        return undefined;
      }
    }, 5000, 'the holder to enter its namespace');
    return { nsPath, nsLink: fs.readlinkSync(nsPath), pid: holder.pid as number };
  };
  const mountNsAt = (nsPath: string) => (c: Parameters<NonNullable<MakeBundleOptions['extra']>>[0]) => {
    c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'mount' ? { type: 'mount', path: nsPath } : n));
  };

  test("a mount namespace given by path (/proc/<pid>/ns/mnt) is joined and set up there, as runc does; the host's table never sees the mounts", async () => {
    const rootfs = privateRootfs();
    fs.writeFileSync(path.join(rootfs, 'marker'), 'in the rootfs\n');
    const holder = await mountNamespaceHolder();
    const { nsPath, nsLink } = holder;
    const under = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(rootfs));
    const dir = bundle({
      userns: false,
      rootfs,
      args: ['sh', '-c', 'readlink /proc/self/ns/mnt; cat /marker'],
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'mount' ? { type: 'mount', path: nsPath } : n));
      },
    });
    const r = await run(dir);
    expect(r).toMatchObject({ status: { exitCode: 0 }, stderr: '' });
    expect(r.stdout).toBe(`${nsLink}\nin the rootfs\n`);
    expect(under()).toEqual([]);
    // As with runc, the joined namespace now has the container's rootfs as its root.
    expect(fs.readFileSync(`/proc/${holder.pid}/root/marker`, 'utf8')).toBe('in the rootfs\n');
  });

  const podOf = (sid: string) => (c: Parameters<NonNullable<MakeBundleOptions['extra']>>[0]) => {
    c.annotations = { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': sid };
  };

  test("a pod container joins a mount namespace held outside the sandbox and is set up there, as runc does; the sandbox's own and its containers' are refused, naming the field", async () => {
    const sid = `cf${++seq}`;
    await engine.createSandbox(sid, bundle({ userns: false, args: ['sleep', '60'] }), { stdio: 'ignore' });
    const root = await engine.startRoot(sid);
    const initPid = engine.list().find((s) => s.id === sid)!.pid;
    const rootfs = privateRootfs();
    fs.writeFileSync(path.join(rootfs, 'marker'), 'in the pod rootfs\n');
    const holder = await mountNamespaceHolder();
    const under = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(rootfs));
    const both = (...fs2: Array<(c: Parameters<NonNullable<MakeBundleOptions['extra']>>[0]) => void>) => (c: Parameters<NonNullable<MakeBundleOptions['extra']>>[0]) => fs2.forEach((f) => f(c));
    const joined = await engine.startContainer(sid, 'joined', bundle({ userns: false, rootfs, args: ['sh', '-c', 'readlink /proc/self/ns/mnt; cat /marker'], extra: both(podOf(sid), mountNsAt(holder.nsPath)) }), { stdio: 'pipe' });
    expect(await readAll(joined.stdio!.stdout)).toBe(`${holder.nsLink}\nin the pod rootfs\n`);
    expect(await engine.wait(sid, 'joined', { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    expect(fs.readFileSync(`/proc/${holder.pid}/root/marker`, 'utf8')).toBe('in the pod rootfs\n');
    expect(under()).toEqual([]);

    for (const [name, nsPath, why] of [
      ['ofinit', `/proc/${initPid}/ns/mnt`, `is sandbox ${sid}'s own mount namespace`],
      ['ofroot', `/proc/${root.hostPid}/ns/mnt`, `is the mount namespace of container ${sid} of sandbox ${sid}`],
    ] as const) {
      await expect(engine.startContainer(sid, name, bundle({ userns: false, args: ['true'], extra: both(podOf(sid), mountNsAt(nsPath)) }))).rejects.toMatchObject({
        code: 'ECONFIG_UNSUPPORTED',
        context: { field: 'linux.namespaces[4].path' },
        message: expect.stringContaining(why),
      });
    }
    expect(engine.list().find((s) => s.id === sid)!.containers.map((c) => c.id).sort()).toEqual(['joined', sid].sort());
    // Neither init nor the root container was touched: both still see their own roots.
    const ex = await engine.execute(sid, sid, { args: ['cat', '/proc/1/comm'], stdio: 'pipe' });
    expect((await readAll(ex.stdout!)).trim()).toBe('sleep');
    expect(fs.readlinkSync(`/proc/${initPid}/ns/mnt`)).not.toBe(holder.nsLink);
  });

  test('a pod container of a user-namespaced sandbox naming a mount namespace by path is refused before anything is made', async () => {
    const sid = `cf${++seq}`;
    const h = await engine.createSandbox(sid, bundle({ userns: true, args: ['sleep', '60'] }), { stdio: 'ignore' });
    await engine.startRoot(sid);
    const holder = await mountNamespaceHolder();
    // As CRI writes a pod container's spec: the sandbox's user namespace by path.
    const podSpec = (c: Parameters<NonNullable<MakeBundleOptions['extra']>>[0]) => {
      podOf(sid)(c);
      mountNsAt(holder.nsPath)(c);
      c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'user' ? { type: 'user', path: `/proc/${h.pid}/ns/user` } : n));
    };
    await expect(engine.startContainer(sid, 'joined', bundle({ userns: true, args: ['true'], extra: podSpec }))).rejects.toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      context: { field: 'linux.namespaces[4].path' },
      message: expect.stringContaining('has a user namespace of its own'),
    });
    expect(engine.list().find((s) => s.id === sid)!.containers.map((c) => c.id)).toEqual([sid]);
    // The holder's namespace is as it was: its root is still the host's.
    expect(fs.existsSync(`/proc/${holder.pid}/root/etc/os-release`)).toBe(true);
  });

  /** `unshare --pid --fork sleep 60`: its sleep is pid 1 of a pid namespace of its own. Killed after the test. */
  const pidNamespaceHolder = async (): Promise<{ nsPath: string; nsLink: string; sleeper: number }> => {
    const holder = spawn('unshare', ['--pid', '--fork', 'sleep', '60'], { stdio: 'ignore' });
    cleanups.push(() => void holder.kill('SIGKILL'));
    const sleeper = await poll(() => {
      try {
        const child = Number(fs.readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(' ')[0]);
        return child > 0 && /sleep/.test(fs.readFileSync(`/proc/${child}/comm`, 'utf8')) ? child : undefined;
      } catch {
        return undefined;
      }
    }, 5000, 'the holder to fork its pid 1');
    // The sleep dies with its parent's SIGKILL only if told: kill it too.
    cleanups.push(() => {
      try {
        process.kill(sleeper, 'SIGKILL');
      } catch {
        // gone already
      }
    });
    const nsPath = `/proc/${sleeper}/ns/pid`;
    return { nsPath, nsLink: fs.readlinkSync(nsPath), sleeper };
  };

  test('a pid namespace given by path is joined, as runc does: the container sees its pid 1 and is not pid 1 itself; an exec joins it too; nothing is left in it after destroy', async () => {
    const { nsPath, nsLink, sleeper } = await pidNamespaceHolder();
    expect(nsLink).not.toBe(fs.readlinkSync('/proc/self/ns/pid'));
    const dir = bundle({
      userns: false,
      // The background sleep outlives the container's process (nothing kills a pid
      // namespace's members when a process that is not its pid 1 dies): destroy must.
      args: ['sh', '-c', 'readlink /proc/self/ns/pid; cat /proc/1/comm; echo self $$; sleep 60 & exec sleep 60'],
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: nsPath } : n));
      },
    });
    const sid = `cf${++seq}`;
    const h = await engine.createSandbox(sid, dir);
    await engine.startRoot(sid);
    const ex = await engine.execute(sid, sid, { args: ['sh', '-c', 'readlink /proc/self/ns/pid; cat /proc/1/comm'] });
    expect(await engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    expect(await readAll(ex.stdout!)).toBe(`${nsLink}\nsleep\n`);
    // Host processes whose pid namespace is the joined one, other than its pid 1.
    const members = (): number => {
      let n = 0;
      for (const e of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
        try {
          // Zombies do not count: the holder's sleep, that namespace's init, reaps nothing.
          const zombie = /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${e}/stat`, 'utf8'));
          if (Number(e) !== sleeper && !zombie && fs.readlinkSync(`/proc/${e}/ns/pid`) === nsLink) n++;
        } catch {
          // exited meanwhile
        }
      }
      return n;
    };
    expect(members()).toBeGreaterThanOrEqual(1);
    await engine.signal(sid, sid, 'SIGKILL');
    expect(await engine.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
    expect(members()).toBeGreaterThanOrEqual(1);
    const out = (await readAll(h.stdio!.stdout)).split('\n');
    await engine.destroy(sid);
    expect(out.slice(0, 2)).toEqual([nsLink, 'sleep']);
    expect(out[2]).toMatch(/^self \d+$/);
    expect(out[2]).not.toBe('self 1');
    // paddock-init, the container and the exec are all gone from the joined namespace.
    expect(await poll(() => (members() === 0 ? true : undefined), 5000, 'the joined namespace to hold only its own pid 1')).toBe(true);
  });

  test('a pid namespace path that is not a pid namespace fails the create, naming the field, and leaves nothing', async () => {
    const dir = bundle({
      userns: false,
      args: ['true'],
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: '/proc/self/ns/net' } : n));
      },
    });
    await expect(engine.createSandbox('cfbadpid', dir)).rejects.toMatchObject({ code: 'ELAUNCH_STEP', context: { field: expect.stringMatching(/^linux\.namespaces\[\d+\]\.path$/) } });
    expect(engine.list()).toEqual([]);
    expect(fs.existsSync(path.join(stateDir, 'cfbadpid'))).toBe(false);
  });

  test.each([[false], [true]])('user namespace %s: a cgroup namespace listed without a path (and no cgroup mount) is created: the container sees its cgroup at /', async (userns) => {
    const dir = bundle({
      userns,
      args: ['sh', '-c', 'readlink /proc/self/ns/cgroup; cut -d: -f3 /proc/self/cgroup | sort -u'],
      extra: (c) => {
        c.linux!.namespaces = [...c.linux!.namespaces!.filter((n) => n.type !== 'cgroup'), { type: 'cgroup' }];
        c.mounts = c.mounts!.filter((m) => m.type !== 'cgroup' && m.type !== 'cgroup2');
      },
    });
    const r = await run(dir);
    expect(r).toMatchObject({ status: { exitCode: 0 }, stderr: '' });
    const [ns, ...paths] = r.stdout.trim().split('\n');
    expect(ns).not.toBe(fs.readlinkSync('/proc/self/ns/cgroup'));
    expect(paths).toEqual(['/']);
  });

  test.each([[false], [true]])("user namespace %s: with a cgroup namespace listed without a path, paddock-init (the pid `state` reports) joins the root container's; a pod container without one is made in it, one with its own nests below", async (userns) => {
    const sid = `cf${++seq}`;
    const ownNs = (c: Parameters<NonNullable<MakeBundleOptions['extra']>>[0]) => {
      c.linux!.namespaces = [...c.linux!.namespaces!.filter((n) => n.type !== 'cgroup'), { type: 'cgroup' }];
    };
    const h = await engine.createSandbox(sid, bundle({ userns, args: ['sleep', '60'], extra: ownNs }), { stdio: 'ignore' });
    const root = await engine.startRoot(sid);
    const nsOf = (pid: number) => fs.readlinkSync(`/proc/${pid}/ns/cgroup`);
    expect(nsOf(root.hostPid)).not.toBe(nsOf(process.pid));
    expect(nsOf(h.pid)).toBe(nsOf(root.hostPid));
    // What runtime-tools' linux_ns_nopath compares: the state pid's namespace against the host's.
    const pod = { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': sid };
    const shared = await engine.startContainer(sid, 'shared', bundle({ userns, args: ['sleep', '60'], extra: (c) => void (c.annotations = pod) }), { stdio: 'ignore' });
    expect(nsOf(shared.hostPid)).toBe(nsOf(root.hostPid));
    const own = await engine.startContainer(sid, 'own', bundle({ userns, args: ['sh', '-c', 'readlink /proc/self/ns/cgroup; cut -d: -f3 /proc/self/cgroup | sort -u'], extra: (c) => { ownNs(c); c.annotations = pod; } }), { stdio: 'pipe' });
    const [ownNsLink, ...ownPaths] = (await readAll(own.stdio!.stdout)).trim().split('\n');
    expect(ownNsLink).not.toBe(nsOf(root.hostPid));
    // Its own namespace is still rooted at its own cgroup.
    expect(ownPaths).toEqual(['/']);
    // init still answers and ends the sandbox as before.
    const ex = await engine.execute(sid, sid, { args: ['readlink', '/proc/self/ns/cgroup'], stdio: 'pipe' });
    expect((await readAll(ex.stdout!)).trim()).toBe(nsOf(root.hostPid));
    await engine.destroy(sid);
    expect(engine.list()).toEqual([]);
  });

  describe('linux.devices (item 3)', () => {
    const STANDARD = [
      { allow: false, access: 'rwm' },
      ...[3, 5, 7, 8, 9].map((minor) => ({ allow: true, type: 'c', major: 1, minor, access: 'rwm' })),
      { allow: true, type: 'c', major: 136, access: 'rwm' },
    ];
    const stat = 'stat -c "%n %F %t:%T %a %u %g"';

    test('without a user namespace: nodes made with their mode, uid and gid; the device cgroup alone decides what opens', async () => {
      const devices = [
        { path: '/dev/sub/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 1000, gid: 1001 },
        // Docker writes the type bits into fileMode (S_IFCHR | 0666).
        { path: '/dev/fuse2', type: 'u', major: 10, minor: 229, fileMode: 0o20666 },
        { path: '/dev/loopx', type: 'b', major: 7, minor: 0, fileMode: 0o600 },
        { path: '/dev/fifo', type: 'p', fileMode: 0o620, uid: 5, gid: 6 },
        // Replaces paddock's own bind of the host's /dev/null.
        { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o600 },
      ];
      const args = (extra: string) => ['sh', '-c', `${stat} /dev/sub/fuse /dev/fuse2 /dev/loopx /dev/fifo /dev/null; ${extra}`];
      const denied = bundle({
        userns: false,
        args: args('(: < /dev/fuse2) 2>&1 || echo denied'),
        extra: (c) => {
          c.linux!.devices = devices as never;
          c.linux!.resources = { devices: STANDARD as never };
        },
      });
      const r = await run(denied);
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n').slice(0, 5)).toEqual([
        '/dev/sub/fuse character special file a:e5 640 1000 1001',
        '/dev/fuse2 character special file a:e5 666 0 0',
        '/dev/loopx block special file 7:0 600 0 0',
        '/dev/fifo fifo 0:0 620 5 6',
        '/dev/null character special file 1:3 600 0 0',
      ]);
      expect(r.stdout).toMatch(/Operation not permitted\ndenied\n$/);

      // The same node opens once the rules allow it.
      const allowed = bundle({
        userns: false,
        // A real node, as runc's (a bind mount could not be removed: EBUSY).
        args: args(': < /dev/fuse2 && echo opened && rm /dev/fuse2 && echo removed'),
        extra: (c) => {
          c.linux!.devices = devices as never;
          c.linux!.resources = { devices: [...STANDARD, { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' }] as never };
        },
      });
      expect((await run(allowed)).stdout).toMatch(/\nopened\nremoved\n$/);
      expect(warnings()).toEqual([]);
    });

    test("in a user namespace: the host's node is bound (its own mode and owner, the spec's are warned about); a FIFO is made", async () => {
      const host = fs.statSync('/dev/fuse');
      const dir = bundle({
        args: ['sh', '-c', `${stat} /dev/fuse /dev/fifo`],
        extra: (c) => {
          c.linux!.devices = [
            { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600, uid: 1000 },
            { path: '/dev/fifo', type: 'p', fileMode: 0o604, uid: 1000, gid: 1000 },
          ] as never;
        },
      });
      const r = await run(dir);
      expect(r.stderr).toBe('');
      // The host's root is not mapped: its node shows the overflow ids.
      expect(r.stdout).toBe(`/dev/fuse character special file a:e5 ${(host.mode & 0o777).toString(8)} 65534 65534\n/dev/fifo fifo 0:0 604 1000 1000\n`);
      expect(warnings()).toEqual(['linux.devices[0].fileMode', 'linux.devices[0].uid']);
    });

    test("in a user namespace the device cgroup holds the spec's rules too (podman --uidmap --device): a bound node opens only once they allow it", async () => {
      // A host node every user may open (fuse is usable from a user namespace), under /dev
      // as linux.devices requires, removed after the test.
      const node = `/dev/paddock-test-fuse-${process.pid}`;
      execFileSync('mknod', ['-m', '666', node, 'c', '10', '229']);
      cleanups.push(() => fs.rmSync(node, { force: true }));
      const withRules = (rules: unknown[]) =>
        bundle({
          args: ['sh', '-c', `(: < ${node}) 2>&1 && echo opened`],
          extra: (c) => {
            c.linux!.devices = [{ path: node, type: 'c', major: 10, minor: 229 }] as never;
            c.linux!.resources = { devices: rules as never };
          },
        });
      expect((await run(withRules(STANDARD))).stdout).toMatch(/Operation not permitted/);
      expect((await run(withRules([...STANDARD, { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' }]))).stdout).toBe('opened\n');
    });

    test.each([
      ['a path outside /dev', { path: '/tmp/fuse', type: 'c', major: 10, minor: 229 }, 'linux.devices[0].path', /must be a path under \/dev/],
      ['a path climbing out of /dev', { path: '/dev/../etc/x', type: 'c', major: 10, minor: 229 }, 'linux.devices[0].path', /under \/dev/],
      ['a node type that is not c/b/u/p', { path: '/dev/x', type: 'x', major: 1, minor: 3 }, 'linux.devices[0].type', /must be one of c, b, u, p/],
      ['a char node without a major', { path: '/dev/x', type: 'c', minor: 3 }, 'linux.devices[0].major', /is required/],
    ])('%s: a one-line error naming the field, nothing made', async (_name, device, field, message) => {
      const dir = bundle({ userns: false, args: ['true'], extra: (c) => { c.linux!.devices = [device] as never; } });
      const err = await engine.createSandbox('cfdev', dir).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ECONFIG_INVALID', context: { field } });
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message.split('\n')).toHaveLength(1);
      expect(engine.list()).toEqual([]);
      expect(fs.readdirSync(stateDir)).toEqual([]);
    });
  });
});
