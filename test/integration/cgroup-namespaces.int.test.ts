/**
 * Cgroup namespaces (docs/decisions/0025), read from inside real containers:
 *
 * - a pod container enters its own cgroups itself, in paddock-init's child, before it
 *   makes its cgroup namespace, so that namespace is rooted at its own cgroup
 *   (/proc/self/cgroup shows "/" in every hierarchy, a cgroup2 mount shows its own
 *   cgroup), and an exec'd process is in the container's cgroup from its first
 *   instruction;
 * - a cgroup namespace given by path: a host one joined by a sandbox's paddock-init (its
 *   containers make none), and for a pod container the sandbox's or a running
 *   container's; anything else is refused and leaves nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectLayout, SandboxCgroup, sandboxCgroupPath } from '../../actors/cgroups/sandbox-cgroup';
import { ControlClient } from '../../actors/channels/control-client';
import { SandboxPaths } from '../../actors/sandbox/state-store';
import { CLONE } from '../../protocols/messages';
import type { OciConfig } from '../../specs/oci';
import { fixtureRootfs, makeBundle, type TestBundle } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, readAll, testIf, testStateDir } from '../helpers/env';
import { createFailsLeavingNothing, setNamespacePath, useNamespaceHolders } from '../helpers/namespaces';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/** Adds a cgroup namespace (without a path) to a spec. */
const ownCgroupNs = (c: OciConfig) => {
  c.linux!.namespaces = [...c.linux!.namespaces!.filter((n) => n.type !== 'cgroup'), { type: 'cgroup' }];
};
/** Gives the spec a cgroup namespace by path. */
const cgroupNsAt = (p: string) => (c: OciConfig) => {
  c.linux!.namespaces = [...c.linux!.namespaces!.filter((n) => n.type !== 'cgroup'), { type: 'cgroup', path: p }];
};
/** A cgroup filesystem at /sys/fs/cgroup, as podman and containerd ask for. */
const cgroupMount = (c: OciConfig) => {
  c.mounts = [...(c.mounts ?? []), { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] }];
};
const both =
  (...edits: Array<(c: OciConfig) => void>) =>
  (c: OciConfig) => {
    for (const e of edits) e(c);
  };

/** /proc/self/cgroup text → hierarchy ("memory", "cpu", "" for cgroup2) → path. */
function cgroupLines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) out.set(m[1] as string, m[2] as string);
  }
  return out;
}

/** How many hierarchies a process lists in /proc/PID/cgroup on this host (1 on cgroup2 alone). */
function hostHierarchies(): number {
  return fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').length;
}

/** The hierarchies a pod container's cgroup has a directory in, as /proc/PID/cgroup names them ("" for cgroup2). */
function placedHierarchies(cg: SandboxCgroup): string[] {
  const layout = detectLayout();
  return cg.paths.filter((d) => fs.existsSync(d)).map((d) => {
    if (d.startsWith(`${layout.unified}/`)) return '';
    const mount = Object.values(layout.v1).find((m) => m !== undefined && d.startsWith(`${m}/`)) as string;
    return path.basename(mount).split(',').sort().join(',');
  });
}

describeIf(['root', 'busybox', 'cgroups'])('cgroup namespaces (library)', () => {
  const t = useEngine('cgns');
  const { unshared, pinned } = useNamespaceHolders();

  const logOf = (sid: string, name: string) => path.join(t.stateDir, sid, 'logs', `${name}.stdout`);
  /** What a container printed up to its END line. */
  const printed = (sid: string, name: string) =>
    poll(() => {
      const text = fs.existsSync(logOf(sid, name)) ? fs.readFileSync(logOf(sid, name), 'utf8') : '';
      return text.includes('END\n') ? text.slice(0, text.indexOf('END\n')) : undefined;
    }, 10_000, `${name} output`);
  const sideCg = (sid: string, cid: string) => new SandboxCgroup(detectLayout(), `${sandboxCgroupPath(t.stateDir, sid)}/ctr-${cid}`, { cpuset: true });
  const hostPidOf = (sid: string, cid: string) => t.engine.list().find((s) => s.id === sid)?.containers.find((c) => c.id === cid)?.hostPid as number;
  const nsOf = (hostPid: number) => fs.readlinkSync(`/proc/${hostPid}/ns/cgroup`);

  async function sandbox(userns: boolean, extra?: (c: OciConfig) => void) {
    const sid = t.id();
    const h = await t.engine.createSandbox(sid, t.bundle({ args: ['sleep', '60'], userns, ...(extra ? { extra } : {}) }), { stdio: 'ignore' });
    const root = await t.engine.startRoot(sid);
    return { sid, initPid: h.pid, rootPid: root.hostPid };
  }

  test.each([
    ['in a user namespace', true],
    ['without a user namespace', false],
  ])("a pod container's cgroup namespace is rooted at its own cgroup, and an exec is in that cgroup from its first instruction (%s)", async (_, userns) => {
    const s = await sandbox(userns);
    // cgroup.procs read with builtins only, so no other process of its own is listed.
    const script = 'cat /proc/self/cgroup; echo ---; while read p; do echo $p; done < /sys/fs/cgroup/cgroup.procs; echo ---; ls /sys/fs/cgroup; echo END; exec sleep 60';
    const side = await t.engine.startContainer(s.sid, 'side', t.bundle({ args: ['sh', '-c', script], userns, extra: both(ownCgroupNs, cgroupMount) }), { stdio: 'pipe' });
    const [own, procs, listing] = (await printed(s.sid, 'side')).split('---\n') as [string, string, string];
    const lines = cgroupLines(own);
    // Every hierarchy, the v1 ones it has a directory in and the cgroup2 line, at its root.
    expect(lines.size).toBe(hostHierarchies());
    for (const [h, p] of lines) expect(`${h}:${p}`).toBe(`${h}:/`);
    // The host sees it in its own cgroup, in every hierarchy it has one in.
    const cg = sideCg(s.sid, 'side');
    const host = cgroupLines(fs.readFileSync(`/proc/${side.hostPid}/cgroup`, 'utf8'));
    const placed = placedHierarchies(cg);
    expect(placed).toContain('');
    for (const h of placed) expect(host.get(h)).toMatch(/\/ctr-side$/);
    // Its cgroup2 mount is its own cgroup: only its own process, and not the sandbox's children.
    expect(procs.trim().split('\n')).toEqual(['1']);
    expect(listing).not.toMatch(/ctr-side|containers/);
    expect(nsOf(side.hostPid)).not.toBe(nsOf(s.rootPid));

    // An exec'd process joins the container's cgroup before it joins its namespace and runs.
    const ex = await t.engine.execute(s.sid, 'side', { args: ['cat', '/proc/self/cgroup'], stdio: 'pipe' });
    const out = await readAll(ex.stdout!);
    expect(await t.engine.waitPid(s.sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const exLines = cgroupLines(out);
    expect(exLines.size).toBe(lines.size);
    for (const [h, p] of exLines) expect(`${h}:${p}`).toBe(`${h}:/`);
  });

  test("without a cgroup namespace an exec'd process of a pod container is in its cgroup from its first instruction", async () => {
    const s = await sandbox(true);
    await t.engine.startContainer(s.sid, 'side', t.bundle({ args: ['sleep', '60'] }));
    const ex = await t.engine.execute(s.sid, 'side', { args: ['cat', '/proc/self/cgroup'], stdio: 'pipe' });
    const out = await readAll(ex.stdout!);
    expect(await t.engine.waitPid(s.sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const lines = cgroupLines(out);
    // The host's view (no namespace): the full path of the container's cgroup.
    const placed = placedHierarchies(sideCg(s.sid, 'side'));
    // cgroup2 always; on hybrid and v1 hosts the v1 hierarchies too.
    expect(placed).toContain('');
    expect(placed.length > 1).toBe(detectLayout().mode !== 'v2');
    for (const h of placed) expect(lines.get(h)).toBe(`/${sandboxCgroupPath(t.stateDir, s.sid)}/ctr-side`);
  });

  test("a pod container's cgroup namespace by path: the sandbox's means its root container's, a container's means that one's; an exec joins it too", async () => {
    // The root container has a cgroup namespace of its own (rooted at the sandbox's cgroup).
    const s = await sandbox(true, ownCgroupNs);
    const script = 'readlink /proc/self/ns/cgroup; cat /proc/self/cgroup; echo END; exec sleep 60';
    // podman's path for a pod: /proc/<the infra container's pid, paddock-init's>/ns/cgroup.
    const shared = await t.engine.startContainer(s.sid, 'shared', t.bundle({ args: ['sh', '-c', script], extra: cgroupNsAt(`/proc/${s.initPid}/ns/cgroup`) }), { stdio: 'pipe' });
    const out = await printed(s.sid, 'shared');
    expect(out.split('\n')[0]).toBe(nsOf(s.rootPid));
    expect(nsOf(shared.hostPid)).toBe(nsOf(s.rootPid));
    // Seen from the root container's namespace, one level down: its own cgroup is still its own.
    for (const h of placedHierarchies(sideCg(s.sid, 'shared'))) expect(cgroupLines(out).get(h)).toBe('/ctr-shared');

    const own = await t.engine.startContainer(s.sid, 'own', t.bundle({ args: ['sleep', '60'], extra: ownCgroupNs }));
    const next = await t.engine.startContainer(s.sid, 'next', t.bundle({ args: ['sh', '-c', script], extra: cgroupNsAt(`/proc/${own.hostPid}/ns/cgroup`) }), { stdio: 'pipe' });
    const nextOut = await printed(s.sid, 'next');
    expect(nextOut.split('\n')[0]).toBe(nsOf(own.hostPid));
    expect(nsOf(next.hostPid)).not.toBe(nsOf(s.rootPid));
    // From the namespace of `own` (rooted at ctr-own), its sibling is one level up.
    for (const h of placedHierarchies(sideCg(s.sid, 'next'))) expect(cgroupLines(nextOut).get(h)).toBe('/../ctr-next');

    const ex = await t.engine.execute(s.sid, 'next', { args: ['readlink', '/proc/self/ns/cgroup'], stdio: 'pipe' });
    expect((await readAll(ex.stdout!)).trim()).toBe(nsOf(own.hostPid));

    // The sandbox's namespace when its root container has none of its own: init's, which pod
    // containers are made in without creating one (nothing to join).
    const plain = await sandbox(true);
    const p = await t.engine.startContainer(plain.sid, 'p', t.bundle({ args: ['sleep', '60'], extra: cgroupNsAt(`/proc/${plain.initPid}/ns/cgroup`) }));
    expect(nsOf(p.hostPid)).toBe(nsOf(plain.initPid));
  });

  test('a pod container naming another cgroup namespace, or one that cannot be read, is refused and leaves nothing', async () => {
    const s = await sandbox(true, ownCgroupNs);
    const other = await unshared(['--cgroup'], 'cgroup');
    const cases: Array<[string, string, object]> = [
      ['foreign', `/proc/${other}/ns/cgroup`, { code: 'ECONFIG_UNSUPPORTED', context: { field: 'linux.namespaces[6].path' }, message: expect.stringContaining(`is not the cgroup namespace of sandbox ${s.sid} or of one of its running containers`) }],
      ['gone', '/proc/999999999/ns/cgroup', { code: 'ELAUNCH_STEP', context: { step: 'namespace_path' }, message: 'linux.namespaces[6].path: ENOENT (/proc/999999999/ns/cgroup)' }],
      ['notns', '/etc/hostname', { code: 'ECONFIG_UNSUPPORTED' }],
    ];
    for (const [cid, p, want] of cases) {
      await expect(t.engine.startContainer(s.sid, cid, t.bundle({ args: ['true'], extra: cgroupNsAt(p) }))).rejects.toMatchObject(want);
      expect(t.engine.list().find((x) => x.id === s.sid)?.containers.map((c) => c.id)).toEqual([s.sid]);
      for (const d of sideCg(s.sid, cid).paths) expect(fs.existsSync(d)).toBe(false);
    }
  });

  test("a container whose cgroup namespace owner stopped, or whose cgroup went, fails its start naming the step; the sandbox carries on", async () => {
    const s = await sandbox(true);
    const own = await t.engine.startContainer(s.sid, 'own', t.bundle({ args: ['sleep', '60'], extra: ownCgroupNs }));
    await t.engine.addContainer(s.sid, 'late', t.bundle({ args: ['true'], extra: cgroupNsAt(`/proc/${own.hostPid}/ns/cgroup`) }));
    await t.engine.signal(s.sid, 'own', 'SIGKILL');
    await t.engine.wait(s.sid, 'own', { timeoutMs: 10_000 });
    await expect(t.engine.startContainer(s.sid, 'late')).rejects.toMatchObject({ code: 'ELAUNCH_STEP', message: 'cgroup_ns_of: ESRCH (own)' });

    // Its cgroup removed behind the engine's back: the child cannot enter it and says where.
    await t.engine.addContainer(s.sid, 'orphan', t.bundle({ args: ['true'], extra: ownCgroupNs }));
    const gone = sideCg(s.sid, 'orphan').dirOf('memory') as string;
    fs.rmdirSync(gone);
    await expect(t.engine.startContainer(s.sid, 'orphan')).rejects.toMatchObject({ code: 'ELAUNCH_STEP', message: `cgroup_procs: ENOENT (${gone}/cgroup.procs)` });
    const after = await t.engine.execute(s.sid, s.sid, { args: ['true'] });
    expect(await t.engine.waitPid(s.sid, after.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
  });

  test('paddock-init refuses a plan that both makes and joins a cgroup namespace, or joins an unknown container\'s', async () => {
    const s = await sandbox(true, ownCgroupNs);
    // Straight to init's control socket: the engine never sends either (actors/pod/plan.ts).
    const client = new ControlClient(s.sid, new SandboxPaths(t.stateDir, s.sid).controlSock, 5_000);
    const plan = { args: ['true'], env: [], uid: 0, gid: 0, rootfs: fixtureRootfs(), nsFlags: CLONE.NEWNS | CLONE.NEWPID };
    try {
      await expect(client.request({ type: 'START_CONTAINER', cid: 'both', plan: { ...plan, nsFlags: plan.nsFlags | CLONE.NEWCGROUP, cgroupNsOf: s.sid } })).rejects.toMatchObject({
        code: 'ELAUNCH_STEP',
        message: 'cgroup_ns_of: EINVAL (NS_FLAGS also asks for a new cgroup namespace)',
      });
      await expect(client.request({ type: 'START_CONTAINER', cid: 'nobody', plan: { ...plan, cgroupNsOf: 'nobody' } })).rejects.toMatchObject({ code: 'ELAUNCH_STEP', message: 'cgroup_ns_of: ESRCH (nobody)' });
    } finally {
      client.close();
    }
    // Nothing was added: the next exec still works.
    const ex = await t.engine.execute(s.sid, s.sid, { args: ['true'] });
    expect(await t.engine.waitPid(s.sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
  });

  // The split only exists with v1 hierarchies beside cgroup2.
  testIf(['cgroup-hybrid'])("in a user namespace, a cgroupsPath outside the sandbox's cgroup2 directory is entered by the child in v1 and by the engine (held) in cgroup2", async () => {
    const layout = detectLayout();
    const s = await sandbox(true);
    const rel = `paddock/cgns-${process.pid}-${s.sid}/side`;
    const script = 'cat /proc/self/cgroup; echo END; exec sleep 60';
    const side = await t.engine.startContainer(s.sid, 'side', t.bundle({ args: ['sh', '-c', script], extra: both(ownCgroupNs, (c) => void (c.linux!.cgroupsPath = `/${rel}`)) }), { stdio: 'pipe' });
    const lines = cgroupLines(await printed(s.sid, 'side'));
    const cg = new SandboxCgroup(layout, rel);
    const placed = placedHierarchies(cg);
    for (const h of placed.filter((x) => x !== '')) expect(`${h}:${lines.get(h)}`).toBe(`${h}:/`);
    // cgroup2: its namespace was made in the sandbox's directory; the engine moved it after.
    expect(lines.get('')).toBe(`/${path.posix.relative(`/${sandboxCgroupPath(t.stateDir, s.sid)}`, `/${rel}`)}`);
    expect(cgroupLines(fs.readFileSync(`/proc/${side.hostPid}/cgroup`, 'utf8')).get('')).toBe(`/${rel}`);
    await t.engine.destroy(s.sid);
    for (const d of cg.paths) expect(fs.existsSync(path.dirname(d))).toBe(false);
  });

  test("a sandbox joins a host cgroup namespace given by path; its containers and execs live in it and make none", async () => {
    const holder = await unshared(['--cgroup'], 'cgroup');
    const file = pinned(`/proc/${holder}/ns/cgroup`);
    const want = nsOf(holder);
    for (const userns of [true, false]) {
      const s = await sandbox(userns, cgroupNsAt(file));
      expect(nsOf(s.initPid)).toBe(want);
      expect(nsOf(s.rootPid)).toBe(want);
      const ex = await t.engine.execute(s.sid, s.sid, { args: ['readlink', '/proc/self/ns/cgroup'], stdio: 'pipe' });
      expect((await readAll(ex.stdout!)).trim()).toBe(want);
      // A pod container without a namespace of its own is made in it too.
      const side = await t.engine.startContainer(s.sid, 'side', t.bundle({ args: ['sleep', '60'], userns }));
      expect(nsOf(side.hostPid)).toBe(want);
    }
    // The supervisor went back to its own.
    expect(fs.readlinkSync('/proc/self/ns/cgroup')).not.toBe(want);
    expect(fs.readlinkSync('/proc/thread-self/ns/cgroup')).not.toBe(want);
  });

  describe('a bad cgroup namespace path fails the create, names the entry and leaves nothing', () => {
    test('a path that does not exist', async () => {
      const e = await createFailsLeavingNothing(t, cgroupNsAt('/run/paddock-no-such-cgroupns'));
      expect(e.message).toBe('linux.namespaces[6].path: ENOENT (/run/paddock-no-such-cgroupns)');
      expect(e.context).toMatchObject({ field: 'linux.namespaces[6].path', step: 'namespace_path' });
    });

    test('a namespace of another type', async () => {
      const e = await createFailsLeavingNothing(t, cgroupNsAt('/proc/self/ns/net'));
      expect(e.message).toBe('linux.namespaces[6].path: not a cgroup namespace but a network one (/proc/self/ns/net)');
    });
  });

  test('a mount namespace by path from a new user namespace is refused, before anything is made', async () => {
    const sid = t.id();
    await expect(t.engine.createSandbox(sid, t.bundle({ args: ['true'], extra: setNamespacePath('mount', '/proc/self/ns/mnt') }))).rejects.toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      context: { field: 'linux.namespaces[4].path' },
    });
    expect(fs.existsSync(path.join(t.stateDir, sid))).toBe(false);
  });
});

const TYPE = 'io.kubernetes.cri.container-type';
const SANDBOX = 'io.kubernetes.cri.sandbox-id';

describeIf(['root', 'busybox', 'cgroups'])('cgroup namespaces (CLI)', () => {
  const { unshared } = useNamespaceHolders();
  let root = '';
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const bundle = (args: string[], extra: (c: OciConfig) => void) => {
    const b = makeBundle({ args, extra });
    bundles.push(b);
    return b.dir;
  };
  const pod = (id: string) => (c: OciConfig) => void (c.annotations = { [TYPE]: 'container', [SANDBOX]: id });
  const state = (id: string) => JSON.parse(cli('state', id).stdout) as { pid: number };
  const nsOf = (hostPid: number) => fs.readlinkSync(`/proc/${hostPid}/ns/cgroup`);

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-cgns');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) if (!id.startsWith('.')) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test("podman's pod: a container given /proc/<sandbox pid>/ns/cgroup shares the infra's; exec sees its cgroup at / in its own", () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '60'], both(ownCgroupNs, cgroupMount)), 'infra').code).toBe(0);
    const initPid = state('infra').pid;
    const [infraPid] = fs.readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const infraNs = nsOf(infraPid as number);
    // The pid `state` reports (paddock-init's) shows the infra's namespace too (decision 0045).
    expect(nsOf(initPid)).toBe(infraNs);
    // Shares it: exit 0 only in the infra (root) container's namespace.
    const check = `[ "$(readlink /proc/self/ns/cgroup)" = "${infraNs}" ] || exit 3`;
    expect(cli('run', '--bundle', bundle(['sh', '-c', check], both(pod('infra'), cgroupNsAt(`/proc/${initPid}/ns/cgroup`))), 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(cli('run', '--bundle', bundle(['sh', '-c', check], both(pod('infra'), ownCgroupNs)), 'apart').code).toBe(3);
    // Its own: created, exec'd into, every hierarchy at its root.
    expect(cli('create', '--bundle', bundle(['sleep', '60'], both(pod('infra'), ownCgroupNs, cgroupMount)), 'own')).toMatchObject({ code: 0, stderr: '' });
    expect(cli('start', 'own').code).toBe(0);
    const ex = cli('exec', 'own', 'cat', '/proc/self/cgroup');
    expect(ex).toMatchObject({ code: 0, stderr: '' });
    const lines = cgroupLines(ex.stdout);
    expect(lines.size).toBe(hostHierarchies());
    for (const [h, p] of lines) expect(`${h}:${p}`).toBe(`${h}:/`);
  });

  test("create then start: `state`'s pid is in the container's own cgroup namespace from create on, as runtime-tools' linux_ns_nopath reads it", () => {
    expect(cli('create', '--bundle', bundle(['sleep', '60'], ownCgroupNs), 'made')).toMatchObject({ code: 0, stderr: '' });
    const initPid = state('made').pid;
    const [held] = fs.readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(nsOf(held as number)).not.toBe(fs.readlinkSync('/proc/self/ns/cgroup'));
    expect(nsOf(initPid)).toBe(nsOf(held as number));
    expect(cli('start', 'made').code).toBe(0);
    expect(nsOf(initPid)).toBe(nsOf(held as number));
    // Still driven as before: an exec runs in the container's namespace, kill and delete end it.
    expect(cli('exec', 'made', 'readlink', '/proc/self/ns/cgroup')).toMatchObject({ code: 0, stdout: `${nsOf(held as number)}\n` });
    expect(cli('kill', 'made', 'KILL').code).toBe(0);
    expect(cli('delete', '--force', 'made').code).toBe(0);
  });

  test("without a cgroup namespace in the spec, `state`'s pid stays in the host's, as runtime-tools' linux_ns_itype reads it", () => {
    expect(cli('create', '--bundle', bundle(['sleep', '60'], () => undefined), 'plain')).toMatchObject({ code: 0, stderr: '' });
    expect(nsOf(state('plain').pid)).toBe(fs.readlinkSync('/proc/self/ns/cgroup'));
    expect(cli('delete', '--force', 'plain').code).toBe(0);
  });

  test('a pod container naming a foreign or missing cgroup namespace gets one line and nothing is added', async () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '60'], () => undefined), 'pod2').code).toBe(0);
    const other = await unshared(['--cgroup'], 'cgroup');
    for (const [id, p, msg] of [
      ['foreign', `/proc/${other}/ns/cgroup`, /^paddock: linux\.namespaces\[6\]\.path: .* is not the cgroup namespace of sandbox pod2/],
      ['missing', '/proc/999999999/ns/cgroup', /^paddock: linux\.namespaces\[6\]\.path: ENOENT \(\/proc\/999999999\/ns\/cgroup\)/],
    ] as const) {
      const r = cli('create', '--bundle', bundle(['true'], both(pod('pod2'), cgroupNsAt(p))), id);
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
      expect(cli('state', id).code).toBe(1);
    }
  });

  test('a sandbox created with a host cgroup namespace path joins it', async () => {
    const holder = await unshared(['--cgroup'], 'cgroup');
    const r = cli('run', '--bundle', bundle(['readlink', '/proc/self/ns/cgroup'], cgroupNsAt(`/proc/${holder}/ns/cgroup`)), 'joined');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.trim()).toBe(nsOf(holder));
    const bad = cli('run', '--bundle', bundle(['true'], cgroupNsAt('/proc/999999999/ns/cgroup')), 'badpath');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^paddock: linux\.namespaces\[6\]\.path: ENOENT/);
    expect(fs.existsSync(path.join(root, 'badpath'))).toBe(false);
  });
});
