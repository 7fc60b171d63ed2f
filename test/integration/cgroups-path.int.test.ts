import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectLayout, SandboxCgroup, type CgroupLayout } from '../../actors/cgroups/sandbox-cgroup';
import { createEngine, type Engine } from '../../index';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, quietLogger, readAll, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';
import type { OciConfig } from '../../specs/oci';

/**
 * linux.cgroupsPath and --systemd-cgroup (docs/decisions/0018) on this host's real
 * hierarchies: the sandbox's cgroup is where the spec says, in every hierarchy; the
 * container sees it; limits, stats, pause and delete use it; delete removes what
 * paddock made and nothing else; bad paths and a path in use fail with nothing left.
 */
const layout = detectLayout();
const hostLayout = layout.mode === 'none' ? undefined : (layout as CgroupLayout);
/** A unique top-level name per run, so parallel runs never meet. */
const top = () => `paddock-cgpath-${crypto.randomBytes(4).toString('hex')}`;
/** Every hierarchy root paddock uses here (one per mount). */
const roots = (): string[] => (hostLayout ? new SandboxCgroup(hostLayout, 'x', { cpuset: false }).paths.map((p) => path.dirname(p)) : []);
const exists = (rel: string) => roots().filter((r) => fs.existsSync(path.join(r, rel)));
/** Removes a test's top-level directories, deepest first (after a failure). */
function sweep(rel: string): void {
  for (const r of roots()) {
    const dirs: string[] = [];
    const walk = (d: string) => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
      dirs.push(d);
    };
    walk(path.join(r, rel));
    for (const d of dirs) {
      try {
        for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
      try {
        fs.rmdirSync(d);
      } catch {
        // busy: the global teardown reports it
      }
    }
  }
}
/** The container's /proc/self/cgroup line for a hierarchy (`memory`, or '' for cgroup2). */
const lineOf = (text: string, ctrl: string) =>
  text
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => (ctrl === '' ? f[1] === '' : (f[1] ?? '').split(',').includes(ctrl)))?.[2];
/** Without a cgroup namespace the container sees host cgroup paths. */
const noCgroupNs = (c: OciConfig) => {
  c.linux!.namespaces = (c.linux!.namespaces ?? []).filter((n) => n.type !== 'cgroup');
};

describeIf(['root', 'busybox', 'cgroups'])('linux.cgroupsPath (library)', () => {
  const fx = useEngine('cgpath');
  const tops: string[] = [];
  const mine = () => {
    const t = top();
    tops.push(t);
    return t;
  };
  afterEach(() => {
    for (const t of tops.splice(0)) sweep(t);
  });

  test('an absolute path: every hierarchy, limits written, the container sees it, stats and pause use it; delete removes what it made', async () => {
    const t = mine();
    const rel = `${t}/pod/c1`;
    const dir = fx.bundle({
      args: ['sh', '-c', 'cat /proc/self/cgroup; sleep 30'],
      extra: (c) => {
        c.linux!.cgroupsPath = `/${rel}`;
        c.linux!.resources = { pids: { limit: 20 }, memory: { limit: 64 * 1024 * 1024 } };
        noCgroupNs(c);
      },
    });
    const h = await fx.engine.createSandbox('a', dir);
    const made = exists(rel);
    expect(made.length).toBe(roots().length);
    const mem = layout.mode === 'v2' ? path.join(layout.unified as string, rel, 'memory.max') : path.join(layout.v1.memory as string, rel, 'memory.limit_in_bytes');
    expect(Number(fs.readFileSync(mem, 'utf8'))).toBe(64 * 1024 * 1024);
    const pidsDir = layout.mode === 'v2' ? path.join(layout.unified as string, rel) : path.join(layout.v1.pids as string, rel);
    expect(Number(fs.readFileSync(path.join(pidsDir, 'pids.max'), 'utf8'))).toBeGreaterThanOrEqual(20);
    for (const r of made) expect(fs.readFileSync(path.join(r, rel, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(h.pid));
    // Nothing at paddock's default place.
    expect(fs.readdirSync(fx.stateDir)).toContain('a');
    expect(JSON.parse(fs.readFileSync(path.join(fx.stateDir, 'a', 'cgroup.json'), 'utf8'))).toMatchObject({ relPath: rel, custom: true });

    await fx.engine.startRoot('a');
    const out = await poll(async () => {
      const chunk = h.stdio!.stdout.read() as Buffer | null;
      return chunk ? chunk.toString() : undefined;
    }, 10_000, 'container output');
    if (layout.mode === 'v2') expect(lineOf(out, '')).toBe(`/${rel}`);
    else {
      expect(lineOf(out, 'memory')).toBe(`/${rel}`);
      expect(lineOf(out, 'pids')).toBe(`/${rel}`);
      if (layout.unified) expect(lineOf(out, '')).toBe(`/${rel}`);
    }
    const stats = await poll(async () => {
      const s = await fx.engine.event('a', 'a');
      return s.pids >= 1 ? s : undefined;
    });
    expect(stats.source).toBe('cgroup');
    expect(stats.memory.limitBytes).toBe(64 * 1024 * 1024);
    // The freezer's child lives below the custom path.
    await fx.engine.pause('a');
    expect(made.some((r) => fs.existsSync(path.join(r, rel, 'containers')))).toBe(true);
    await fx.engine.resume('a');

    await fx.engine.destroy('a');
    expect(exists(t)).toEqual([]);
  });

  test('a parent that existed before stays after delete; only what paddock made goes', async () => {
    const t = mine();
    for (const r of roots()) fs.mkdirSync(path.join(r, t));
    const dir = fx.bundle({ args: ['true'], extra: (c) => (c.linux!.cgroupsPath = `${t}/inner/leaf`) });
    await fx.engine.createSandbox('b', dir);
    expect(exists(`${t}/inner/leaf`).length).toBe(roots().length);
    await fx.engine.destroy('b');
    expect(exists(`${t}/inner`)).toEqual([]);
    expect(exists(t).length).toBe(roots().length);
  });

  test('a second sandbox asking for the same cgroupsPath fails with ECGROUP_IN_USE; the first is untouched; nothing is left', async () => {
    const t = mine();
    const rel = `${t}/shared`;
    const dir = fx.bundle({ args: ['sleep', '30'], extra: (c) => (c.linux!.cgroupsPath = `/${rel}`) });
    const first = await fx.engine.createSandbox('c1', dir);
    const before = paddockInitPids();
    await expect(fx.engine.createSandbox('c2', dir)).rejects.toMatchObject({
      code: 'ECGROUP_IN_USE',
      context: { field: 'linux.cgroupsPath' },
      message: expect.stringMatching(/linux\.cgroupsPath: cgroup .*shared.* is in use/),
    });
    expect(fs.existsSync(path.join(fx.stateDir, 'c2'))).toBe(false);
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
    for (const r of exists(rel)) expect(fs.readFileSync(path.join(r, rel, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(first.pid));
    expect(exists(rel).length).toBe(roots().length);
    await fx.engine.destroy('c1');
    expect(exists(t)).toEqual([]);
  });

  test.each([
    ['/a/../b', /linux\.cgroupsPath: must not contain "\.\." components/],
    ['/', /linux\.cgroupsPath: must name a cgroup below the root/],
  ])('cgroupsPath %j is refused with ECONFIG_INVALID before anything is made', async (value, msg) => {
    const dir = fx.bundle({ args: ['true'], extra: (c) => (c.linux!.cgroupsPath = value) });
    await expect(fx.engine.createSandbox('bad', dir)).rejects.toMatchObject({ code: 'ECONFIG_INVALID', context: { field: 'linux.cgroupsPath' }, message: expect.stringMatching(msg) });
    expect(fs.existsSync(path.join(fx.stateDir, 'bad'))).toBe(false);
    expect(exists('b')).toEqual([]);
  });

  test('a pod container with its own cgroupsPath (containerd gives each one) runs in that cgroup (decision 0022)', async () => {
    const t = mine();
    const dir = fx.bundle({ args: ['sleep', '30'], extra: (c) => (c.linux!.cgroupsPath = `/${t}/sandbox`) });
    await fx.engine.createSandbox('pod', dir);
    await fx.engine.startRoot('pod');
    const cdir = fx.bundle({ args: ['sh', '-c', 'cat /proc/self/cgroup; sleep 30'], extra: (c) => {
      c.linux!.cgroupsPath = `/${t}/c2`;
      noCgroupNs(c);
    } });
    const started = await fx.engine.startContainer('pod', 'c2', cdir, { stdio: 'pipe' });
    const out = await readSome(started.stdio?.stdout);
    expect(lineOf(out, layout.mode === 'v2' ? '' : 'memory')).toBe(`/${t}/c2`);
    expect(exists(`${t}/c2`).length).toBeGreaterThan(0);
    for (const r of exists(`${t}/c2`)) expect(fs.readFileSync(path.join(r, t, 'c2', 'cgroup.procs'), 'utf8').split('\n')).toContain(String(started.hostPid));
    const bad = fx.bundle({ args: ['true'], extra: (c) => (c.linux!.cgroupsPath = `/${t}/../x`) });
    await expect(fx.engine.addContainer('pod', 'c3', bad)).rejects.toMatchObject({ code: 'ECONFIG_INVALID', context: { field: 'linux.cgroupsPath' } });
    await fx.engine.destroy('pod');
    expect(exists(t)).toEqual([]);
  });
});

async function readSome(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!stream) throw new Error('no stdout');
  return poll(() => {
    const chunk = (stream as NodeJS.ReadableStream & { read(): Buffer | null }).read();
    return chunk ? chunk.toString() : undefined;
  }, 10_000, 'container output');
}

describeIf(['root', 'busybox', 'cgroups'])('--systemd-cgroup without systemd (library)', () => {
  let engine: Engine | undefined;
  let stateDir = '';
  const bundles: TestBundle[] = [];
  afterEach(async () => {
    for (const s of engine?.list() ?? []) await engine?.destroy(s.id).catch(() => undefined);
    await engine?.close();
    engine = undefined;
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const open = async (systemdRunning: boolean) => {
    stateDir = testStateDir('cgpath-systemd');
    engine = await createEngine({ stateDir, logger: quietLogger(), systemdCgroup: true, systemdRunning });
    return engine;
  };
  const bundle = (cgroupsPath: string | undefined) => {
    const b = makeBundle({ args: ['sleep', '30'], extra: (c) => {
      if (cgroupsPath !== undefined) c.linux!.cgroupsPath = cgroupsPath;
      c.linux!.resources = { pids: { limit: 10 } };
    } });
    bundles.push(b);
    return b.dir;
  };

  test('slice:prefix:name becomes the scope directory systemd would make, nested slices expanded; delete removes it all', async () => {
    const e = await open(false);
    const slice = `paddocktest${crypto.randomBytes(3).toString('hex')}`;
    const rel = `${slice}.slice/${slice}-pod.slice/cri-x.scope`;
    try {
      const h = await e.createSandbox('s', bundle(`${slice}-pod.slice:cri:x`));
      expect(exists(rel).length).toBe(roots().length);
      for (const r of exists(rel)) expect(fs.readFileSync(path.join(r, rel, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(h.pid));
      await e.destroy('s');
      expect(exists(`${slice}.slice`)).toEqual([]);
    } finally {
      sweep(`${slice}.slice`);
    }
  });

  test('a malformed slice form, or a plain path, is ECONFIG_INVALID; with systemd running it is ECONFIG_UNSUPPORTED; nothing is made', async () => {
    let e = await open(false);
    await expect(e.createSandbox('m1', bundle('/k8s.io/abc'))).rejects.toMatchObject({ code: 'ECONFIG_INVALID', message: expect.stringMatching(/expected "slice:prefix:name"/) });
    await expect(e.createSandbox('m2', bundle('a--b.slice:p:n'))).rejects.toMatchObject({ code: 'ECONFIG_INVALID', message: expect.stringMatching(/empty level/) });
    await e.close();
    e = await open(true);
    await expect(e.createSandbox('m3', bundle('system.slice:p:n'))).rejects.toMatchObject({ code: 'ECONFIG_UNSUPPORTED', context: { field: 'linux.cgroupsPath' } });
    expect(e.list()).toEqual([]);
    expect(exists('a.slice')).toEqual([]);
  });
});

describeIf(['root', 'busybox', 'cgroups'])('linux.cgroupsPath (CLI)', () => {
  let root = '';
  const bundles: TestBundle[] = [];
  const tops: string[] = [];
  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cgpath-cli');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) if (!id.startsWith('.')) runCli(root, ['delete', '--force', id]);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    for (const t of tops.splice(0)) sweep(t);
    reapZombies();
  });
  const bundle = (cgroupsPath: string) => {
    const b = makeBundle({ args: ['sleep', '30'], extra: (c) => {
      c.linux!.cgroupsPath = cgroupsPath;
      c.linux!.resources = { pids: { limit: 7 } };
    } });
    bundles.push(b);
    return b.dir;
  };

  test('create puts the sandbox at the path; a later call (delete) finds it from the state and removes it', () => {
    const t = top();
    tops.push(t);
    const rel = `${t}/k8s.io/abc`;
    const r = runCli(root, ['create', '--bundle', bundle(`/${rel}`), 'x']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pid = (JSON.parse(runCli(root, ['state', 'x']).stdout) as { pid: number }).pid;
    expect(exists(rel).length).toBe(roots().length);
    for (const d of exists(rel)) expect(fs.readFileSync(path.join(d, rel, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(pid));
    const pidsDir = layout.mode === 'v2' ? path.join(layout.unified as string, rel) : path.join(layout.v1.pids as string, rel);
    expect(Number(fs.readFileSync(path.join(pidsDir, 'pids.max'), 'utf8'))).toBeGreaterThanOrEqual(7);
    expect(runCli(root, ['delete', '--force', 'x']).code).toBe(0);
    expect(exists(t)).toEqual([]);
  });

  test('--systemd-cgroup maps slice:prefix:name; a plain path with it fails like runc, in one line, leaving nothing', () => {
    const slice = `paddockcli${crypto.randomBytes(3).toString('hex')}`;
    tops.push(`${slice}.slice`);
    const r = runCli(root, ['--systemd-cgroup', 'create', '--bundle', bundle(`${slice}.slice:cri:y`), 'y']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(exists(`${slice}.slice/cri-y.scope`).length).toBe(roots().length);
    expect(runCli(root, ['delete', '--force', 'y']).code).toBe(0);
    expect(exists(`${slice}.slice`)).toEqual([]);

    const bad = runCli(root, ['--systemd-cgroup', 'create', '--bundle', bundle('/k8s.io/z'), 'z']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(bad.stderr).toMatch(/linux\.cgroupsPath: expected "slice:prefix:name" with --systemd-cgroup/);
    expect(fs.existsSync(path.join(root, 'z'))).toBe(false);
  });

  test('two creates with one cgroupsPath: the second fails in one line (ECGROUP_IN_USE) and leaves nothing', () => {
    const t = top();
    tops.push(t);
    const dir = bundle(`/${t}/same`);
    expect(runCli(root, ['create', '--bundle', dir, 'p1']).code).toBe(0);
    const r = runCli(root, ['create', '--bundle', dir, 'p2']);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/is in use.*ECGROUP_IN_USE/);
    expect(fs.existsSync(path.join(root, 'p2'))).toBe(false);
    expect(runCli(root, ['state', 'p1']).code).toBe(0);
    expect(runCli(root, ['delete', '--force', 'p1']).code).toBe(0);
    expect(exists(t)).toEqual([]);
  });
});
