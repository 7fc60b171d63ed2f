/**
 * `userns: 'auto'` and the builder (docs/decisions/0028): each sandbox gets 65,536
 * host ids of its own from the engine's pool, recorded in the state dir and freed on
 * destroy; its rootfs is shown through an idmapped mount, never chowned. Every check
 * reads the effect from inside a real container or from the host's view of its files.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createEngine, buildSpec, type Engine, type SandboxTemplate } from '../../index';
import { fixtureRootfs } from '../helpers/bundle';
import { CLI, runCli } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, quietLogger, readAll, testStateDir } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';

const ROOT = path.resolve(__dirname, '..', '..');
const RANGE = 65_536;
/** A small pool of our own, away from the default one and from TEST_USERNS (100000). */
const POOL = { start: 0x5000_0000, size: 4 * RANGE };

function uidMapOf(pid: number): number[] {
  const [inside, outside, count] = fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number);
  return [inside as number, outside as number, count as number];
}

describeIf(['root', 'busybox'])("userns: 'auto'", () => {
  const t = useEngine('ua');
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  /** A host folder every sandbox can write into (mode 1777), removed after the test. */
  function sharedDir(): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ua-'));
    fs.chmodSync(d, 0o1777);
    dirs.push(d);
    return d;
  }
  const template = (args: string[], more: Partial<SandboxTemplate> = {}): SandboxTemplate => ({ rootfs: fixtureRootfs(), args, ...more });

  async function runTemplate(engine: Engine, id: string, tpl: SandboxTemplate, opts: { idmapRootfs?: boolean } = {}) {
    const h = await engine.createSandbox(id, tpl, opts);
    await engine.startRoot(id);
    const status = await engine.wait(id, id, { timeoutMs: 20_000 });
    return { h, status, stdout: await readAll(h.stdio!.stdout), stderr: await readAll(h.stdio!.stderr) };
  }

  test('a template sandbox: its own user namespace with a range of the default pool, only loopback, a read-only rootfs that looks root-owned', async () => {
    const id = t.id();
    const r = await runTemplate(t.engine, id, template(['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c "%u:%g" /bin/busybox; ls /sys/class/net; touch /x 2>&1; echo done']));
    expect(r.status).toMatchObject({ exitCode: 0 });
    const lines = r.stdout.trim().split('\n');
    const [u0, uHost, uSize] = (lines[0] ?? '').trim().split(/\s+/).map(Number);
    expect(u0).toBe(0);
    expect(uSize).toBe(RANGE);
    // The default pool: 4096 ranges from 0x60000000.
    expect(uHost).toBeGreaterThanOrEqual(0x6000_0000);
    expect(((uHost as number) - 0x6000_0000) % RANGE).toBe(0);
    expect((lines[1] ?? '').trim().split(/\s+/).map(Number)).toEqual([0, uHost, RANGE]);
    expect(lines[2]).toBe('0');
    // Idmapped: the rootfs's files (host root's on disk) are the sandbox root's.
    expect(lines[3]).toBe('0:0');
    expect(lines[4]).toBe('lo');
    expect(lines[5]).toMatch(/Read-only file system/);
    // The generated bundle is in the sandbox's folder, root.path the template's rootfs.
    const bundleDir = path.join(t.stateDir, id, 'bundle');
    const written = JSON.parse(fs.readFileSync(path.join(bundleDir, 'config.json'), 'utf8'));
    // The real path: a checkout below a closed folder links its test rootfs elsewhere.
    expect(written.root).toEqual({ path: fs.realpathSync(fixtureRootfs()), readonly: true });
    expect(written.linux.uidMappings).toEqual([{ containerID: 0, hostID: uHost, size: RANGE }]);
    expect(t.engine.list().find((s) => s.id === id)?.bundle).toBe(bundleDir);
  });

  test('the rootfs on the host is unchanged (owners, modes, no mount left in the host)', async () => {
    const root = fixtureRootfs();
    const snapshot = () =>
      fs.readdirSync(root).map((n) => {
        const st = fs.lstatSync(path.join(root, n));
        return `${n} ${st.uid}:${st.gid} ${st.mode.toString(8)}`;
      });
    const before = snapshot();
    const id = t.id();
    const h = await t.engine.createSandbox(id, template(['sh', '-c', 'stat -c %u /bin; sleep 30']));
    await t.engine.startRoot(id);
    // The container sees root-owned files, while the host's mount table has no idmapped mount of it.
    expect(await poll(async () => ((await readAll(t.engine.logs(id, id))).trim() === '0' ? true : undefined), 10_000, 'stat output')).toBe(true);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${root} `);
    expect(snapshot()).toEqual(before);
    expect(h.pid).toBeGreaterThan(0);
  });

  test('a file root writes into a bind mount belongs on the host to the first id of the range', async () => {
    const shared = sharedDir();
    const id = t.id();
    const cfg = buildSpec(template(['sh', '-c', 'echo hi > /shared/by-root; id -u']));
    cfg.mounts = [...(cfg.mounts ?? []), { destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] }];
    cfg.root = { path: fixtureRootfs(), readonly: true };
    const bdir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ua-b-'));
    dirs.push(bdir);
    fs.writeFileSync(path.join(bdir, 'config.json'), JSON.stringify(cfg));
    const h = await t.engine.createSandbox(id, bdir); // the builder's annotation asks for 'auto'
    await t.engine.startRoot(id);
    expect(await t.engine.wait(id, id, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect((await readAll(h.stdio!.stdout)).trim()).toBe('0');
    // The sandbox's range, as its generated bundle records it (its init has exited).
    const hostId = JSON.parse(fs.readFileSync(path.join(t.stateDir, id, 'bundle', 'config.json'), 'utf8')).linux.uidMappings[0].hostID as number;
    expect(hostId).toBeGreaterThanOrEqual(0x6000_0000);
    const st = fs.statSync(path.join(shared, 'by-root'));
    expect(st.uid).toBe(hostId);
    expect(st.gid).toBe(hostId);
  });

  test('two sandboxes get disjoint ranges and cannot signal or read each other', async () => {
    const shared = sharedDir();
    const mk = (id: string) => {
      const cfg = buildSpec(template(['sh', '-c', `echo secret > /shared/${id}; chmod 600 /shared/${id}; sleep 60`]));
      cfg.mounts = [...(cfg.mounts ?? []), { destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] }];
      const bdir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ua-b-'));
      dirs.push(bdir);
      fs.writeFileSync(path.join(bdir, 'config.json'), JSON.stringify(cfg));
      return bdir;
    };
    const a = t.id();
    const b = t.id();
    const ha = await t.engine.createSandbox(a, mk(a), { userns: 'auto' });
    const hb = await t.engine.createSandbox(b, mk(b), { userns: 'auto' });
    await t.engine.startRoot(a);
    await t.engine.startRoot(b);
    const ra = uidMapOf(ha.pid);
    const rb = uidMapOf(hb.pid);
    expect(ra[2]).toBe(RANGE);
    expect(rb[2]).toBe(RANGE);
    // Disjoint: [ra1, ra1+65536) and [rb1, rb1+65536) do not meet.
    expect((ra[1] as number) + RANGE <= (rb[1] as number) || (rb[1] as number) + RANGE <= (ra[1] as number)).toBe(true);
    await poll(() => (fs.existsSync(path.join(shared, a)) && fs.existsSync(path.join(shared, b)) ? true : undefined), 10_000, 'both files');
    // The host pid of b's container process, seen from the host.
    const bProc = (await t.engine.processes(b, b)).find((p) => p.kind === 'container');
    expect(bProc).toBeDefined();
    // From a's container, as its root: b's file (0600, b's root) cannot be read, and b's
    // process cannot be signalled. a cannot see b's pids; the kill is aimed at b's
    // host pid through a's own view, which has no such process or no right to it.
    const ex = await t.engine.execute(a, a, {
      args: ['sh', '-c', `cat /shared/${b} 2>&1; echo cat=$?; kill -0 ${bProc!.hostPid} 2>&1; echo kill=$?; ls /proc | grep -c '^[0-9]'`],
    });
    await t.engine.waitPid(a, ex.pid, { timeoutMs: 10_000 });
    const out = await readAll(ex.stdout!);
    expect(out).toMatch(/Permission denied/);
    expect(out).toMatch(/cat=1/);
    expect(out).toMatch(/kill=1/);
    // Its own file it can read (the refusal above is about the owner, not the path).
    const own = await t.engine.execute(a, a, { args: ['cat', `/shared/${a}`] });
    await t.engine.waitPid(a, own.pid, { timeoutMs: 10_000 });
    expect((await readAll(own.stdout!)).trim()).toBe('secret');
    // Through the host's /proc: b's process belongs to b's range.
    expect(fs.statSync(`/proc/${bProc!.hostPid}`).uid).toBe(rb[1]);
    // Defence in depth: even a process of a's root that left every namespace (run here
    // on the host with a's host ids and no capability) can neither signal b's process,
    // nor read its memory map or b's file.
    const asA = spawnSync('setpriv', [`--reuid=${ra[1]}`, `--regid=${ra[1]}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', 'sh', '-c',
      `kill -0 ${bProc!.hostPid} 2>&1; echo kill=$?; cat /proc/${bProc!.hostPid}/environ >/dev/null 2>&1; echo environ=$?; cat ${shared}/${b} 2>&1; echo cat=$?`], { encoding: 'utf8' });
    expect(asA.stdout).toMatch(/kill=1/);
    expect(asA.stdout).toMatch(/not permitted/);
    expect(asA.stdout).toMatch(/environ=1/);
    expect(asA.stdout).toMatch(/cat=1/);
    // The same commands as b's ids succeed: the refusals are about the ranges.
    const asB = spawnSync('setpriv', [`--reuid=${rb[1]}`, `--regid=${rb[1]}`, '--clear-groups', 'sh', '-c', `kill -0 ${bProc!.hostPid}; echo kill=$?; cat ${shared}/${b}`], { encoding: 'utf8' });
    expect(asB.stdout).toBe('kill=0\nsecret\n');
  });

  test('destroy frees the range; a failed create frees it too', async () => {
    const stateDir = testStateDir('ua-pool');
    const engine = await createEngine({ stateDir, logger: quietLogger(), idPool: { start: POOL.start, size: RANGE } });
    try {
      const table = () => JSON.parse(fs.readFileSync(path.join(stateDir, '.userns.json'), 'utf8')).ranges as Record<string, { sandboxId: string }>;
      await engine.createSandbox('p1', template(['true']));
      expect(Object.values(table()).map((e) => e.sandboxId)).toEqual(['p1']);
      // The only range is held: the next one is refused, and nothing is made.
      const e = await engine.createSandbox('p2', template(['true'])).catch((x) => x);
      expect(e.code).toBe('EUSERNS_EXHAUSTED');
      expect(e.message).toMatch(/^no free host id range for sandbox p2/);
      expect(fs.existsSync(path.join(stateDir, 'p2'))).toBe(false);
      expect(engine.list().map((s) => s.id)).toEqual(['p1']);
      await engine.destroy('p1');
      expect(table()).toEqual({});
      expect(fs.existsSync(path.join(stateDir, 'p1'))).toBe(false);
    } finally {
      await engine.shutdown({ mode: 'stop', graceMs: 0 }).catch(() => undefined);
    }
    // A create that fails after the allocation, in its launch (limits without any
    // cgroup hierarchy), frees the range and leaves no folder.
    const noCgroups = await createEngine({ stateDir, logger: quietLogger(), idPool: { start: POOL.start, size: RANGE }, cgroups: false });
    try {
      await expect(noCgroups.createSandbox('p3', template(['true'], { limits: { pids: 10 } }))).rejects.toMatchObject({ code: 'ELAUNCH_STEP', context: { step: 'cgroup' } });
      expect(fs.existsSync(path.join(stateDir, 'p3'))).toBe(false);
      expect(JSON.parse(fs.readFileSync(path.join(stateDir, '.userns.json'), 'utf8')).ranges).toEqual({});
    } finally {
      await noCgroups.shutdown({ mode: 'stop', graceMs: 0 }).catch(() => undefined);
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('a warm pool from a template: each member its own range; acquire runs it; drain frees every range', async () => {
    const pool = await t.engine.pool('wp', { bundle: template(['sh', '-c', 'cat /proc/self/uid_map']), size: 2 });
    try {
      await poll(() => (pool.stats().status === 'full' ? true : undefined), 20_000, 'pool full');
      const m = await pool.acquire();
      expect(await t.engine.wait(m.id, m.id, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
      const host = Number((await readAll(m.stdio!.stdout)).trim().split(/\s+/)[1]);
      const table = () => JSON.parse(fs.readFileSync(path.join(t.stateDir, '.userns.json'), 'utf8')).ranges as Record<string, { sandboxId: string }>;
      expect(table()[String(host)]?.sandboxId).toBe(m.id);
      // The member handed out and the idle ones hold distinct ranges.
      await poll(() => (pool.stats().idle === 2 ? true : undefined), 20_000, 'refill');
      expect(new Set(Object.values(table()).map((e) => e.sandboxId)).size).toBe(Object.keys(table()).length);
      expect(Object.keys(table())).toHaveLength(3);
      await pool.drain();
      await t.engine.destroy(m.id);
      expect(table()).toEqual({});
    } finally {
      await pool.drain();
    }
  });

  test('a rootfs on a filesystem that cannot be idmapped (ramfs): create fails naming the step, nothing is left; idmapRootfs: false runs it unmapped', async () => {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ua-ramfs-'));
    fs.chmodSync(mnt, 0o755);
    expect(spawnSync('mount', ['-t', 'ramfs', 'none', mnt]).status).toBe(0);
    try {
      fs.chmodSync(mnt, 0o755);
      expect(spawnSync('cp', ['-a', `${fixtureRootfs()}/.`, mnt]).status).toBe(0);
      const id = t.id();
      const e = await t.engine.createSandbox(id, template(['true'], { rootfs: mnt })).catch((x) => x);
      expect(e).toMatchObject({ code: 'ELAUNCH_STEP', context: { step: 'idmap_mount_setattr', path: mnt } });
      expect(e.message).toBe(`idmap_mount_setattr: EINVAL (${mnt}; the filesystem cannot be idmapped: idmapRootfs: false shows it unmapped)`);
      expect(fs.existsSync(path.join(t.stateDir, id))).toBe(false);
      expect(JSON.parse(fs.readFileSync(path.join(t.stateDir, '.userns.json'), 'utf8')).ranges).toEqual({});
      // Unmapped: host root's files are nobody's inside, and still readable.
      const r = await runTemplate(t.engine, t.id(), template(['stat', '-c', '%u', '/bin/busybox'], { rootfs: mnt }), { idmapRootfs: false });
      expect(r.status).toMatchObject({ exitCode: 0 });
      expect(r.stdout.trim()).toBe('65534');
    } finally {
      for (const s of t.engine.list()) await t.engine.destroy(s.id).catch(() => undefined);
      spawnSync('umount', [mnt]);
      fs.rmdirSync(mnt);
    }
  });

  test('a template sandbox with a restart policy is rebuilt from its template on each relaunch; only the live instance holds a range', async () => {
    const id = t.id();
    const gaveUp = new Promise<void>((resolve) => {
      const sub = t.engine.events$.subscribe((e) => {
        if (e.type === 'restart.gaveUp' && e.sandboxId === id) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    await t.engine.createSandbox(id, template(['sh', '-c', 'exit 3']), {
      stdio: 'ignore',
      restart: { policy: 'on-failure', maxRestarts: 2, periodMs: 60_000, backoff: { initialMs: 10, maxMs: 10, factor: 1, jitter: 0 } },
    });
    await t.engine.startRoot(id);
    await gaveUp;
    const ranges = JSON.parse(fs.readFileSync(path.join(t.stateDir, '.userns.json'), 'utf8')).ranges as Record<string, { sandboxId: string }>;
    expect(Object.values(ranges).map((e) => e.sandboxId)).toEqual([id]);
    // Three launches (the first and two restarts), each with a range of its own: next-fit moved on.
    expect(Number(Object.keys(ranges)[0])).toBe(0x6000_0000 + 2 * RANGE);
    expect(fs.existsSync(path.join(t.stateDir, id, 'bundle', 'config.json'))).toBe(true);
  });

  test("a bundle sandbox with userns 'auto' and a restart policy is relaunched from the caller's bundle (its copy in the folder goes at each destroy)", async () => {
    const id = t.id();
    const bdir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ua-b-'));
    dirs.push(bdir);
    fs.writeFileSync(path.join(bdir, 'config.json'), JSON.stringify(buildSpec(template(['sh', '-c', 'exit 3']), { hostId: 0x5000_0000, size: RANGE })));
    const events: string[] = [];
    const gaveUp = new Promise<void>((resolve) => {
      const sub = t.engine.events$.subscribe((e) => {
        if (e.type === 'restart.launched' && e.sandboxId === id) events.push(`launched ${e.attempt}`);
        if ((e.type === 'restart.gaveUp' || e.type === 'error') && e.sandboxId === id) {
          events.push(e.type);
          sub.unsubscribe();
          resolve();
        }
      });
    });
    await t.engine.createSandbox(id, bdir, {
      stdio: 'ignore',
      userns: 'auto',
      restart: { policy: 'on-failure', maxRestarts: 2, periodMs: 60_000, backoff: { initialMs: 10, maxMs: 10, factor: 1, jitter: 0 } },
    });
    await t.engine.startRoot(id);
    await gaveUp;
    expect(events).toEqual(['launched 1', 'launched 2', 'restart.gaveUp']);
    // The spec's own mapping (0x50000000) was replaced by a range of the pool each time.
    const held = JSON.parse(fs.readFileSync(path.join(t.stateDir, '.userns.json'), 'utf8')).ranges as Record<string, { sandboxId: string }>;
    expect(Object.values(held).map((e) => e.sandboxId)).toEqual([id]);
    expect(Number(Object.keys(held)[0])).toBeGreaterThanOrEqual(0x6000_0000);
  });

  test('bad id pools are refused at createEngine with one line, and nothing is made', async () => {
    const stateDir = path.join(os.tmpdir(), `paddock-ua-bad-${process.pid}`);
    for (const [idPool, msg] of [
      [{ start: 0, size: RANGE }, 'idPool: start 0 overlaps host ids 0..65535 (the host\'s own users); start at 65536 or above'],
      [{ start: 1000, size: RANGE }, 'idPool: start 1000 overlaps host ids 0..65535 (the host\'s own users); start at 65536 or above'],
      [{ start: POOL.start, size: 1000 }, 'idPool: size 1000 is not a multiple of 65536 (one range per sandbox)'],
      [{ start: 0xffff0000, size: 2 * RANGE }, `idPool: start + size ends at ${0xffff0000 + 2 * RANGE - 1}, past the largest host id 4294967294`],
      [{ start: POOL.start, size: RANGE, strat: 1 }, 'idPool: unknown option "strat" (known: start, size)'],
    ] as const) {
      await expect(createEngine({ stateDir, logger: quietLogger(), idPool: idPool as never })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', message: msg });
    }
    expect(fs.existsSync(stateDir)).toBe(false);
  });
});

describeIf(['root', 'busybox'])("userns: 'auto' across a supervisor SIGKILL", () => {
  useSubreaper();
  const stateDir = testStateDir('ua-kill');
  afterAll(async () => {
    const last = await createEngine({ stateDir, logger: quietLogger() });
    await last.shutdown({ mode: 'stop', graceMs: 0 });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('ranges survive a supervisor SIGKILL and reattach, are not handed out again, and destroy frees them', async () => {
    const script = `
      const { createEngine } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      const pino = require('pino');
      (async () => {
        const e = await createEngine({ stateDir: ${JSON.stringify(stateDir)}, logger: pino({ level: 'silent' }), idPool: ${JSON.stringify(POOL)} });
        const ids = {};
        for (const id of ['k1', 'k2']) {
          await e.createSandbox(id, { rootfs: ${JSON.stringify(fixtureRootfs())}, args: ['sleep', '120'] });
          await e.startRoot(id);
          ids[id] = Number(require('fs').readFileSync('/proc/' + e.list().find((s) => s.id === id).pid + '/uid_map', 'utf8').trim().split(/\\s+/)[1]);
        }
        process.stdout.write(JSON.stringify(ids) + '\\n');
        setInterval(() => {}, 1000);
      })().catch((err) => { process.stdout.write('error ' + err.message + '\\n'); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`supervisor child did not start: ${buf}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) {
          clearTimeout(timer);
          resolve(buf.trim());
        }
      });
    });
    const created = { ids: JSON.parse(line) as Record<string, number> };
    expect(new Set(Object.values(created.ids)).size).toBe(2);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const engine = await createEngine({ stateDir, logger: quietLogger(), idPool: POOL });
    try {
      expect(engine.list().map((s) => [s.id, s.status])).toEqual([
        ['k1', 'running'],
        ['k2', 'running'],
      ]);
      // The ranges are the ones the dead supervisor handed out, still in force inside.
      for (const id of ['k1', 'k2']) expect(uidMapOf(engine.list().find((s) => s.id === id)!.pid!)[1]).toBe(created.ids[id]);
      // A new sandbox gets neither of them.
      const h3 = await engine.createSandbox('k3', { rootfs: fixtureRootfs(), args: ['true'] });
      const r3 = uidMapOf(h3.pid)[1];
      expect(Object.values(created.ids)).not.toContain(r3);
      // Destroy frees k1's; the pool has 4 ranges, k2 and k3 hold two.
      await engine.destroy('k1');
      const held = JSON.parse(fs.readFileSync(path.join(stateDir, '.userns.json'), 'utf8')).ranges as Record<string, { sandboxId: string }>;
      expect(Object.values(held).map((e) => e.sandboxId).sort()).toEqual(['k2', 'k3']);
    } finally {
      await engine.shutdown({ mode: 'stop', graceMs: 0 });
    }
  });
});

describeIf(['root', 'busybox'])('the CLI: the "paddock.userns": "auto" annotation', () => {
  useSubreaper();
  let root: string;
  const dirs: string[] = [];
  beforeEach(() => {
    root = testStateDir('ua-cli');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root).filter((n) => !n.startsWith('.')) : []) runCli(root, ['delete', '--force', id]);
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });
  function bundleWith(config: object): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ua-cli-'));
    dirs.push(d);
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(config));
    return d;
  }
  const held = () => {
    try {
      return Object.values(JSON.parse(fs.readFileSync(path.join(root, '.userns.json'), 'utf8')).ranges).map((e) => (e as { sandboxId: string }).sandboxId);
    } catch {
      return [];
    }
  };

  test('a config from buildSpec runs with a range of the pool and an idmapped rootfs; run deletes the container and frees the range', () => {
    const cfg = buildSpec({ rootfs: fixtureRootfs(), args: ['sh', '-c', 'cat /proc/self/uid_map; stat -c %u /bin/busybox'] });
    const b = bundleWith(cfg);
    const r = runCli(root, ['run', '--bundle', b, 'c1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [map, owner] = r.stdout.trim().split('\n');
    const [inside, host, size] = (map ?? '').trim().split(/\s+/).map(Number);
    expect([inside, size]).toEqual([0, RANGE]);
    expect(host).toBeGreaterThanOrEqual(0x6000_0000);
    expect(owner).toBe('0');
    // As runc's, run deletes the container once it exits.
    expect(fs.existsSync(path.join(root, 'c1'))).toBe(false);
    expect(held()).toEqual([]);
  });

  test("PADDOCK_ID_POOL sets the CLI's pool; a bad one is a one-line error and nothing is made", () => {
    const cfg = buildSpec({ rootfs: fixtureRootfs(), args: ['cat', '/proc/self/uid_map'] });
    const b = bundleWith(cfg);
    // Jest gives each test file its own process.env: the variable is passed explicitly.
    const cli = (pool: string, args: string[]) => {
      const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { env: { ...process.env, PADDOCK_ID_POOL: pool }, encoding: 'utf8', timeout: 30_000 });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const r = cli(`${POOL.start}:${POOL.size}`, ['run', '--bundle', b, 'c4']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split(/\s+/).map(Number)).toEqual([0, POOL.start, RANGE]);
    const bad = cli('0:65536', ['run', '--bundle', b, 'c5']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/idPool: start 0 overlaps host ids 0\.\.65535/);
    expect(fs.existsSync(path.join(root, 'c5'))).toBe(false);
  });

  test('create holds the range until delete; a bad annotation value is a one-line error and nothing is made', () => {
    const cfg = buildSpec({ rootfs: fixtureRootfs(), args: ['sleep', '30'] });
    expect(runCli(root, ['create', '--bundle', bundleWith(cfg), 'c2']).code).toBe(0);
    expect(held()).toEqual(['c2']);
    const state = JSON.parse(runCli(root, ['state', 'c2']).stdout);
    expect(state.status).toBe('created');
    expect(uidMapOf(state.pid)[1]).toBeGreaterThanOrEqual(0x6000_0000);
    expect(runCli(root, ['delete', '--force', 'c2']).code).toBe(0);
    expect(held()).toEqual([]);
    const bad = runCli(root, ['create', '--bundle', bundleWith({ ...cfg, annotations: { 'paddock.userns': 'yes' } }), 'c3']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/annotations\.paddock\.userns: must be "auto", not "yes"/);
    expect(fs.existsSync(path.join(root, 'c3'))).toBe(false);
    expect(held()).toEqual([]);
  });
});
