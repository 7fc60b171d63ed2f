import * as fs from 'node:fs';
import { TEST_ROOT } from './env';
import { cgroupDirs, initSandboxDir, leftovers, mountsUnder, newMounts, paddockInitPids, preexistingFile, removeCgroupDirs, tempEntries, type Preexisting } from './leaks';

/**
 * The run fails if anything leaked: a paddock-init process, a mount, a file under the
 * test state root, or a cgroup (paddock's, or podman's when it drove paddock). Leftovers are cleaned after the check so the next run starts clean.
 */
export default async function globalTeardown(): Promise<void> {
  const file = preexistingFile(TEST_ROOT);
  const pre = JSON.parse(fs.readFileSync(file, 'utf8')) as Preexisting;
  fs.rmSync(file, { force: true });
  const before = new Set(pre.inits);
  // New since the setup, and not serving another run's state root (a concurrent run on
  // the same machine); zombies have no cmdline and count as ours. With other runs on the
  // machine (PADDOCK_TEST_CONCURRENT=1), paddockInitPids lists only this run's own.
  const ours = (p: number) => {
    if (before.has(p)) return false;
    const dir = initSandboxDir(p);
    return dir === undefined || !/\/paddock-test-\d+\//.test(dir) || dir.startsWith(`${TEST_ROOT}/`);
  };
  const deadline = Date.now() + 3000;
  let leakedInits = paddockInitPids().filter(ours);
  while (leakedInits.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    leakedInits = paddockInitPids().filter(ours);
  }
  // Alone on the machine, every mount and temp entry this run added is its own: bundles,
  // bind sources and pinned namespaces live outside the state root too. With other runs
  // (PADDOCK_TEST_CONCURRENT=1) only what is under this run's root can be blamed on it.
  const concurrent = process.env.PADDOCK_TEST_CONCURRENT === '1';
  const mounts = concurrent ? mountsUnder(TEST_ROOT) : newMounts(pre.mounts);
  const tempBefore = new Set(pre.temp);
  const temps = concurrent ? [] : tempEntries().filter((t) => !tempBefore.has(t));
  const files = leftovers(TEST_ROOT).filter((f) => !/\/[^/]+-[A-Za-z0-9]{6}$/.test(f) && f !== `${TEST_ROOT}/bundles`);
  for (const pid of leakedInits) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const cgroupsBefore = new Set(pre.cgroups);
  // PADDOCK_TEST_CONCURRENT=1: other test runs share this machine (developers' parallel
  // worktrees), so new cgroups may be theirs; they are neither removed nor reported.
  const cgroups = concurrent ? [] : cgroupDirs().filter((d) => !cgroupsBefore.has(d));
  removeCgroupDirs(cgroups);
  fs.rmSync(TEST_ROOT, { recursive: true, force: true });
  for (const t of temps) if (!mounts.some((m) => m.startsWith(`${t}/`) || m === t)) fs.rmSync(t, { recursive: true, force: true });
  const problems = [
    ...leakedInits.map((p) => `leaked paddock-init pid ${p}`),
    ...mounts.map((m) => `leaked mount ${m}`),
    ...files.map((f) => `leaked file ${f}`),
    ...temps.map((t) => `leaked temp entry ${t}`),
    ...cgroups.map((c) => `leaked cgroup ${c}`),
  ];
  if (problems.length) throw new Error(`resources leaked by the integration tests:\n${problems.join('\n')}`);
}
