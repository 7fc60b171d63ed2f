import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxCgroup, type CgroupLayout } from '../../../actors/cgroups/sandbox-cgroup';
import { containerFreezer, freezeContainer, freezeSandbox, killFrozen, killFrozenContainer, sandboxFreezer, thawContainer, thawSandbox } from '../../../actors/cgroups/freezer';

/**
 * The freezer against a fake cgroup tree of plain files (no root): which freezer is
 * picked, what is written where, the bounded wait and the thaw back on failure. The
 * kernel's side (moving tasks, freezing them) is covered by the pause integration test.
 */
describe('freezer (fake cgroup tree)', () => {
  let root: string;
  const REL = 'paddock/k-sb1';
  const INIT = 4242;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-freezer-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** A hybrid layout: a v1 freezer and a cgroup2 tree, each with the sandbox's directory. */
  function hybrid(opts: { v2Freeze?: boolean; v1Freezer?: boolean } = {}) {
    const layout: CgroupLayout = {
      mode: 'hybrid',
      unified: path.join(root, 'unified'),
      v1: { freezer: path.join(root, 'freezer'), memory: path.join(root, 'memory') },
    };
    const cg = new SandboxCgroup(layout, REL);
    for (const d of cg.paths) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'cgroup.procs'), `${INIT}\n`);
    }
    if (opts.v2Freeze !== false) fs.writeFileSync(path.join(cg.dirOf('unified') as string, 'cgroup.freeze'), '0');
    if (opts.v1Freezer !== false) fs.writeFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'THAWED');
    return cg;
  }

  test('v2 is preferred where the sandbox has cgroup.freeze; v1 on request or without it; none without either', () => {
    const cg = hybrid();
    expect(sandboxFreezer(cg)).toMatchObject({ kind: 'v2', dir: path.join(cg.dirOf('unified') as string, 'containers') });
    expect(sandboxFreezer(cg, 'v1')).toMatchObject({ kind: 'v1', dir: path.join(cg.dirOf('freezer') as string, 'containers') });
    fs.rmSync(path.join(cg.dirOf('unified') as string, 'cgroup.freeze'));
    expect(sandboxFreezer(cg)?.kind).toBe('v1');
    fs.rmSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'));
    expect(sandboxFreezer(cg)).toBeUndefined();
    expect(sandboxFreezer(undefined)).toBeUndefined();
  });

  test('v2: moves every process but init into <sandbox>/containers, writes cgroup.freeze 1, resolves on "frozen 1"', async () => {
    const cg = hybrid();
    const parent = cg.dirOf('unified') as string;
    fs.writeFileSync(path.join(parent, 'cgroup.procs'), `${INIT}\n77\n`);
    const fz = sandboxFreezer(cg)!;
    fs.mkdirSync(fz.dir);
    fs.writeFileSync(path.join(fz.dir, 'cgroup.events'), 'populated 1\nfrozen 0\n');
    const done = fz.freeze({ keep: [INIT], timeoutMs: 5_000 });
    // The kernel would report the freeze complete a moment later.
    setTimeout(() => fs.writeFileSync(path.join(fz.dir, 'cgroup.events'), 'populated 1\nfrozen 1\n'), 20);
    await done;
    expect(fs.readFileSync(path.join(fz.dir, 'cgroup.procs'), 'utf8')).toBe('77');
    expect(fs.readFileSync(path.join(fz.dir, 'cgroup.freeze'), 'utf8')).toBe('1');
    expect(fz.state()).toBe('frozen');
  });

  test('v2: a freeze that never completes fails with ETIMEOUT and is thawed back', async () => {
    const cg = hybrid();
    const fz = sandboxFreezer(cg)!;
    const err = await fz.freeze({ keep: [INIT], timeoutMs: 50, sandboxId: 'sb1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ETIMEOUT', context: { sandboxId: 'sb1', step: 'freeze', path: fz.dir } });
    expect((err as Error).message).toMatch(/^freeze: ETIMEOUT/);
    expect(fs.readFileSync(path.join(fz.dir, 'cgroup.freeze'), 'utf8')).toBe('0');
    expect(fz.state()).toBe('thawed');
  });

  test('v1: FROZEN then THAWED through freezer.state; thaw without a child does nothing', async () => {
    const cg = hybrid({ v2Freeze: false });
    const fz = sandboxFreezer(cg)!;
    expect(fz.kind).toBe('v1');
    await fz.thaw();
    expect(fs.existsSync(fz.dir)).toBe(false);
    await fz.freeze({ keep: [INIT], timeoutMs: 1_000 });
    expect(fs.readFileSync(path.join(fz.dir, 'freezer.state'), 'utf8')).toBe('FROZEN');
    await fz.thaw({ timeoutMs: 1_000 });
    expect(fs.readFileSync(path.join(fz.dir, 'freezer.state'), 'utf8')).toBe('THAWED');
  });

  test('the effects: ENOT_SUPPORTED without a freezer; thaw and killFrozen reach whichever child exists', async () => {
    await expect(freezeSandbox({ id: 'sb1' }, { keep: [INIT] })).rejects.toMatchObject({ code: 'ENOT_SUPPORTED', context: { sandboxId: 'sb1', verb: 'pause' } });
    await expect(thawSandbox({ id: 'sb1' })).resolves.toBeUndefined();
    expect(() => killFrozen({ id: 'sb1' })).not.toThrow();

    const cg = hybrid({ v2Freeze: false });
    await freezeSandbox({ id: 'sb1', cgroup: cg }, { keep: [INIT] });
    const child = path.join(cg.dirOf('freezer') as string, 'containers');
    expect(fs.readFileSync(path.join(child, 'freezer.state'), 'utf8')).toBe('FROZEN');
    killFrozen({ id: 'sb1', cgroup: cg });
    expect(fs.readFileSync(path.join(child, 'freezer.state'), 'utf8')).toBe('THAWED');
    // The child goes with the sandbox's cgroup.
    await cg.remove(1_000);
    expect(fs.existsSync(child)).toBe(false);
  });

  /** A pod container's own cgroup below the sandbox's (decision 0022), in both freezers. */
  function podCgroup(sandbox: SandboxCgroup, procs: string) {
    const cg = new SandboxCgroup(sandbox.layout, `${REL}/ctr-app`);
    for (const d of cg.paths) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'cgroup.procs'), procs);
    }
    fs.writeFileSync(path.join(cg.dirOf('unified') as string, 'cgroup.freeze'), '0');
    fs.writeFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'THAWED');
    return cg;
  }

  test("a pod container's freezer freezes its own directory and moves nothing", async () => {
    const sb = hybrid();
    const cg = podCgroup(sb, '91\n');
    expect(containerFreezer(cg)).toMatchObject({ kind: 'v2', dir: cg.dirOf('unified') });
    expect(containerFreezer(cg, 'v1')).toMatchObject({ kind: 'v1', dir: cg.dirOf('freezer') });
    await freezeContainer({ sandboxId: 'sb1', containerId: 'app', cgroup: cg }, { prefer: 'v1', timeoutMs: 1_000 });
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'utf8')).toBe('FROZEN');
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'cgroup.procs'), 'utf8')).toBe('91\n');
    expect(fs.existsSync(path.join(cg.dirOf('freezer') as string, 'containers'))).toBe(false);
    await thawContainer({ sandboxId: 'sb1', cgroup: cg }, { timeoutMs: 1_000 });
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'utf8')).toBe('THAWED');
    await expect(freezeContainer({ sandboxId: 'sb1', containerId: 'app' })).rejects.toMatchObject({ code: 'ENOT_SUPPORTED', context: { containerId: 'app', verb: 'pause' } });
    fs.writeFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'FROZEN');
    killFrozenContainer(cg);
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'utf8')).toBe('THAWED');
  });

  test("the sandbox's freeze takes its pod containers' cgroups and the v2 init leaf's processes; its thaw releases them all", async () => {
    const sb = hybrid({ v2Freeze: false });
    const v1 = sb.dirOf('freezer') as string;
    fs.writeFileSync(path.join(v1, 'cgroup.procs'), '');
    fs.mkdirSync(path.join(v1, 'init'));
    fs.writeFileSync(path.join(v1, 'init', 'cgroup.procs'), `${INIT}\n55\n`);
    const cg = podCgroup(sb, '91\n');
    await freezeSandbox({ id: 'sb1', cgroup: sb, podCgroups: [cg] }, { keep: [INIT], prefer: 'v1', timeoutMs: 1_000 });
    expect(fs.readFileSync(path.join(v1, 'containers', 'cgroup.procs'), 'utf8')).toBe('55');
    expect(fs.readFileSync(path.join(v1, 'containers', 'freezer.state'), 'utf8')).toBe('FROZEN');
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'utf8')).toBe('FROZEN');
    await thawSandbox({ id: 'sb1', cgroup: sb, podCgroups: [cg] }, { timeoutMs: 1_000 });
    expect(fs.readFileSync(path.join(v1, 'containers', 'freezer.state'), 'utf8')).toBe('THAWED');
    expect(fs.readFileSync(path.join(cg.dirOf('freezer') as string, 'freezer.state'), 'utf8')).toBe('THAWED');
    // The sandbox's removal takes every directory nested in it, the pod container's included.
    await sb.remove(1_000);
    for (const d of [...sb.paths, ...cg.paths]) expect(fs.existsSync(d)).toBe(false);
  });
});
