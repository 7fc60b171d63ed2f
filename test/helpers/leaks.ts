import * as fs from 'node:fs';

/**
 * The sandbox dir a paddock-init serves (its argv[1]), or undefined for a zombie
 * (whose cmdline is empty) or a process that is gone.
 */
export function initSandboxDir(pid: number): string | undefined {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv[1] || undefined;
  } catch {
    return undefined;
  }
}

/** A process's parent pid from /proc, or undefined once it is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * Host pids of paddock-init processes (by comm name) that may belong to this test run:
 * those serving another run's state root (`/paddock-test-<pid>/`, a concurrent run on
 * the same machine) are left out.
 */
export function paddockInitPids(alsoUnder: readonly string[] = []): number[] {
  const mine = process.env.PADDOCK_TEST_ROOT ?? `/paddock-test-${process.pid}`;
  const concurrent = process.env.PADDOCK_TEST_CONCURRENT === '1';
  const out: number[] = [];
  const parents = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (comm !== 'paddock-init') continue;
      const dir = initSandboxDir(Number(d));
      if (dir && /\/paddock-test-\d+\//.test(dir) && !dir.includes(`${mine}/`)) continue;
      // Other runs on the machine (PADDOCK_TEST_CONCURRENT=1) drive podman too, whose
      // inits serve roots outside any test root: only this run's are counted, those under
      // its root and under the roots a test names (`alsoUnder`, e.g. podman's --root).
      if (concurrent && !dir?.includes(`${mine}/`) && !alsoUnder.some((r) => dir?.startsWith(`${r}/`))) continue;
      const ppid = parentPid(Number(d));
      if (ppid === undefined) continue; // exited meanwhile
      parents.set(Number(d), ppid);
      out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  // A container process init has forked but not exec'd yet (held by `prepare` or a
  // terminal's create) still carries init's name: it is part of its sandbox, not an init.
  return out.filter((p) => !parents.has(parents.get(p) ?? -1));
}

/** Every mount point in the host's mount table (a point mounted twice, twice). */
export function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter(Boolean);
}

/** The mount points in `now` beyond those in `before` (counted, so a second mount on one point shows). */
export function newMounts(before: readonly string[], now: readonly string[] = mountPoints()): string[] {
  const left = new Map<string, number>();
  for (const m of before) left.set(m, (left.get(m) ?? 0) + 1);
  return now.filter((m) => {
    const n = left.get(m) ?? 0;
    if (n > 0) left.set(m, n - 1);
    return n === 0;
  });
}

/** What tests name in the temp dir (`paddock-*`, podman's `pdk-*`): full paths. */
export function tempEntries(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dir = (require('node:os') as typeof import('node:os')).tmpdir();
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => /^(paddock|pdk)-/.test(n) && !/^paddock-test-\d+$/.test(n) && n !== 'paddock-test-bundles')
      .map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

/** Mount points in the host's mount table under `prefix`. */
export function mountsUnder(prefix: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(prefix));
}

/** Everything left below a directory (files, sockets, dirs). */
export function leftovers(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
/** Top-level cgroups the tests can cause: paddock's own, and podman's (cgroupfs manager). */
export const TEST_CGROUPS = ['paddock', 'libpod_parent'] as const;

/** Every directory of the named top-level cgroups, in every hierarchy, deepest first. */
export function cgroupDirs(names: readonly string[] = TEST_CGROUPS): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(`${d}/${e.name}`);
    out.push(d);
  };
  let hierarchies: string[] = [];
  try {
    hierarchies = fs.readdirSync(CGROUP_ROOT).map((h) => `${CGROUP_ROOT}/${h}`);
  } catch {
    return out;
  }
  // Pure v2: the names sit right under /sys/fs/cgroup; hybrid/v1: one level down.
  for (const base of [CGROUP_ROOT, ...hierarchies]) for (const n of names) if (fs.existsSync(`${base}/${n}/cgroup.procs`)) walk(`${base}/${n}`);
  return out;
}

/** rmdir the given cgroup directories (deepest first); returns those that would not go. */
export function removeCgroupDirs(dirs: readonly string[]): string[] {
  const left: string[] = [];
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') left.push(d);
    }
  }
  return left;
}

/** What the global setup found before the run, for the teardown to blame only this run. */
export interface Preexisting {
  readonly inits: number[];
  readonly cgroups: string[];
  readonly mounts: string[];
  readonly temp: string[];
}

/** Beside the run's state root (which the teardown removes whole), not inside it. */
export function preexistingFile(testRoot: string): string {
  return `${testRoot}.before.json`;
}
