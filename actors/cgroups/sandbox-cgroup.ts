import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoName as nameOfErrno } from '../../base/errno';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciResources as MutableResources } from '../../specs/oci';
import { fnv1a32 } from '../../base/fnv';
import { readText } from '../../base/files';

type OciResources = DeepReadonly<MutableResources>;

/**
 * Each sandbox lives in its own cgroup: `paddock/<stateKey>-<sandboxId>` below the
 * root of every hierarchy paddock uses (docs/decisions/0009). The root container's
 * `linux.resources` are applied to it, `event()` reads its figures, and it is removed
 * after init is gone. Three layouts exist:
 *
 * - `v2`: cgroup2 at /sys/fs/cgroup with controllers; controllers are enabled down
 *   the parent chain through cgroup.subtree_control.
 * - `hybrid`: v1 controllers (memory, cpu, cpuacct, pids, freezer, cpuset) plus a
 *   controller-less cgroup2 tree (systemd's /sys/fs/cgroup/unified), where the sandbox
 *   also gets a directory, for cgroup.kill.
 * - `v1`: v1 controllers only.
 *
 * Every path here comes from a `CgroupLayout`, so tests can point it at a temp tree.
 */

export type CgroupMode = 'v2' | 'hybrid' | 'v1' | 'none';
/**
 * The child of a sandbox's cgroup that the freezer moves the containers' processes
 * into at pause, so paddock-init stays thawed (actors/cgroups/freezer.ts, docs/decisions/0014).
 */
export const CONTAINERS_CHILD = 'containers';
/**
 * On cgroup v2, the leaf of a sandbox's cgroup that paddock-init and what it forks move
 * into once the sandbox has pod-container children: v2 lets a cgroup with controllers
 * enabled for its children hold no process itself (docs/decisions/0022).
 */
export const INIT_CHILD = 'init';
export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer', 'cpuset', 'devices'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];
/** A hierarchy a file lives in: a v1 controller's mount, or the cgroup2 tree. */
export type Hierarchy = V1Controller | 'unified';

export interface CgroupLayout {
  readonly mode: CgroupMode;
  /** The cgroup2 mount (v2 and hybrid). */
  readonly unified?: string;
  /** v1 controller → its mount point (co-mounted controllers share one). */
  readonly v1: Readonly<Partial<Record<V1Controller, string>>>;
}

export class CgroupError extends Error {
  constructor(
    readonly errnoName: string,
    readonly file: string,
    readonly fullPath?: string,
    /** The sandbox's own directory exists and holds processes or child cgroups. */
    readonly inUse = false,
  ) {
    super(inUse ? `cgroup: EBUSY (${file} is in use: it holds processes or child cgroups)` : `cgroup: ${errnoName} (${file})`);
    this.name = 'CgroupError';
  }
}

// ---------------------------------------------------------------- detection

/** A mountinfo field with its octal escapes (\040 for a space) decoded. */
export function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The layout from /proc/self/mountinfo text. `controllersOf(dir)` reads a cgroup2
 * mount's cgroup.controllers (empty for systemd's hybrid `unified` tree).
 */
export function parseLayout(mountinfo: string, controllersOf: (dir: string) => string[]): CgroupLayout {
  const v1: Partial<Record<V1Controller, string>> = {};
  let unified: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const mountPoint = unescapeMount(line.slice(0, sep).split(' ')[4] ?? '');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup2') {
      if (unified === undefined || mountPoint === '/sys/fs/cgroup' || mountPoint === '/sys/fs/cgroup/unified') unified = mountPoint;
    } else if (fstype === 'cgroup') {
      for (const opt of superOpts.split(',')) {
        const c = opt as V1Controller;
        if ((V1_CONTROLLERS as readonly string[]).includes(c) && v1[c] === undefined) v1[c] = mountPoint;
      }
    }
  }
  const hasV1 = v1.memory !== undefined || v1.cpu !== undefined || v1.pids !== undefined;
  if (hasV1) return { mode: unified !== undefined ? 'hybrid' : 'v1', ...(unified !== undefined ? { unified } : {}), v1 };
  if (unified !== undefined && controllersOf(unified).length > 0) return { mode: 'v2', unified, v1: {} };
  // A cgroup2 tree without controllers and no v1: it can hold and kill, not limit.
  if (unified !== undefined) return { mode: 'v2', unified, v1: {} };
  return { mode: 'none', v1: {} };
}

let detected: CgroupLayout | undefined;

/** The host's layout, read once per process. */
export function detectLayout(): CgroupLayout {
  if (!detected) {
    let text = '';
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      // no /proc: no cgroups
    }
    detected = parseLayout(text, readControllers);
  }
  return detected;
}

function readControllers(dir: string): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * The sandbox's cgroup path below each hierarchy root. The state dir is hashed in, so
 * two engines (two state dirs) may both run a sandbox named `web` without meeting.
 * Sandboxes record the path they got in `cgroup.json` (0018); the hash only has to
 * tell state dirs on one host apart, so it is FNV-1a rather than a digest from
 * node:crypto, whose loading cost each CLI call several milliseconds.
 */
export function sandboxCgroupPath(stateDir: string, sandboxId: string): string {
  return `paddock/${stateDirKey(path.resolve(stateDir))}-${sandboxId}`;
}

/** FNV-1a (32 bits) of the resolved path, as 8 hex digits. */
export function stateDirKey(resolved: string): string {
  return fnv1a32(resolved);
}

// ---------------------------------------------------------------- pure conversions

/**
 * cpu.shares (2..262144) → cpu.weight (1..10000), the conversion crun and runc use
 * since 2025: 1024 maps to 100, the default of both, and the scale is logarithmic.
 */
export function sharesToWeight(shares: number): number {
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return Math.ceil(Math.pow(10, exponent));
}

/** OCI memory.swap is memory+swap; v2 memory.swap.max is swap alone. */
export function swapToV2(limit: number | undefined, swap: number): string {
  if (swap === -1) return 'max';
  if (limit === undefined || limit === -1) throw new CgroupError('EINVAL', 'memory.swap.max');
  return String(swap - limit);
}

export interface CgroupWrite {
  readonly hierarchy: Hierarchy;
  readonly file: string;
  readonly value: string;
}

/** A set figure; 0 means unset, as in runc. */
function num(v: unknown): number | undefined {
  return typeof v === 'number' && v !== 0 ? v : undefined;
}
function limitOrMax(v: number): string {
  return v < 0 ? 'max' : String(v);
}

/** The files `apply` writes, in order, for a layout's mode. Validated resources only. */
export function planWrites(mode: CgroupMode, res: OciResources | undefined): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  if (!res) return out;
  const v2 = mode === 'v2';
  const mem = res.memory;
  if (mem) {
    const limit = num(mem.limit);
    const reservation = num(mem.reservation);
    const swap = num(mem.swap);
    if (v2) {
      if (limit !== undefined) out.push({ hierarchy: 'unified', file: 'memory.max', value: limitOrMax(limit) });
      if (reservation !== undefined) out.push({ hierarchy: 'unified', file: 'memory.low', value: limitOrMax(reservation) });
      if (swap !== undefined) out.push({ hierarchy: 'unified', file: 'memory.swap.max', value: swapToV2(limit, swap) });
    } else {
      if (limit !== undefined) out.push({ hierarchy: 'memory', file: 'memory.limit_in_bytes', value: String(limit < 0 ? -1 : limit) });
      if (reservation !== undefined) out.push({ hierarchy: 'memory', file: 'memory.soft_limit_in_bytes', value: String(reservation < 0 ? -1 : reservation) });
      // memsw must stay >= limit: written after the limit (a fresh cgroup has both unlimited).
      if (swap !== undefined) out.push({ hierarchy: 'memory', file: 'memory.memsw.limit_in_bytes', value: String(swap < 0 ? -1 : swap) });
      // 0 is a value here (never swap), not "unset".
      if (typeof mem.swappiness === 'number') out.push({ hierarchy: 'memory', file: 'memory.swappiness', value: String(mem.swappiness) });
      if (mem.disableOOMKiller === true) out.push({ hierarchy: 'memory', file: 'memory.oom_control', value: '1' });
    }
  }
  const cpu = res.cpu;
  if (cpu) {
    const shares = num(cpu.shares);
    const quota = num(cpu.quota);
    const period = num(cpu.period);
    if (shares !== undefined) {
      out.push(v2 ? { hierarchy: 'unified', file: 'cpu.weight', value: String(sharesToWeight(shares)) } : { hierarchy: 'cpu', file: 'cpu.shares', value: String(shares) });
    }
    if (v2) {
      if (quota !== undefined || period !== undefined) {
        const q = quota === undefined || quota < 0 ? 'max' : String(quota);
        out.push({ hierarchy: 'unified', file: 'cpu.max', value: `${q} ${period ?? 100000}` });
      }
    } else {
      if (period !== undefined) out.push({ hierarchy: 'cpu', file: 'cpu.cfs_period_us', value: String(period) });
      if (quota !== undefined) out.push({ hierarchy: 'cpu', file: 'cpu.cfs_quota_us', value: String(quota < 0 ? -1 : quota) });
    }
    if (typeof cpu.cpus === 'string' && cpu.cpus !== '') out.push({ hierarchy: v2 ? 'unified' : 'cpuset', file: 'cpuset.cpus', value: cpu.cpus });
    if (typeof cpu.mems === 'string' && cpu.mems !== '') out.push({ hierarchy: v2 ? 'unified' : 'cpuset', file: 'cpuset.mems', value: cpu.mems });
  }
  const pids = num(res.pids?.limit);
  if (pids !== undefined) out.push({ hierarchy: v2 ? 'unified' : 'pids', file: 'pids.max', value: limitOrMax(pids) });
  return out;
}

/**
 * linux.resources.devices as v1 devices-cgroup writes: deny everything, then each
 * allow rule (`c 1:3 rwm`; -1 or absent major/minor is `*`). validate.ts only lets
 * through deny-all followed by allows of the standard devices.
 */
export function deviceWrites(res: OciResources | undefined): CgroupWrite[] {
  const rules = (res as { devices?: readonly { allow?: boolean; type?: string; major?: number; minor?: number; access?: string }[] } | undefined)?.devices;
  if (!rules || rules.length === 0) return [];
  const id = (n: number | undefined) => (n === undefined || n < 0 ? '*' : String(n));
  return rules.map((r) => ({
    hierarchy: 'devices' as const,
    file: r.allow ? 'devices.allow' : 'devices.deny',
    value: `${r.type ?? 'a'} ${id(r.major)}:${id(r.minor)} ${r.access ?? 'rwm'}`,
  }));
}

/** True when the resources ask for a limit (containerd's default cpu.shares 1024 and device rules do not). */
export function requestsLimits(res: OciResources | undefined): boolean {
  // swappiness and disableOOMKiller have no v2 file, but ask for a cgroup all the same.
  if (typeof res?.memory?.swappiness === 'number' || res?.memory?.disableOOMKiller === true) return true;
  return planWrites('v2', res).some((w) => !(w.file === 'cpu.weight' && res?.cpu?.shares === 1024));
}

/** Fields set that the cgroup v2 interface has no file for (warned about there, as crun does). */
export function v1OnlyMemoryFields(res: OciResources | undefined): string[] {
  const out: string[] = [];
  if (typeof res?.memory?.swappiness === 'number') out.push('linux.resources.memory.swappiness');
  if (res?.memory?.disableOOMKiller === true) out.push('linux.resources.memory.disableOOMKiller');
  return out;
}

/** v2 controllers a set of writes needs, plus the ones stats read. */
function v2Controllers(writes: readonly CgroupWrite[]): { needed: Set<string>; wanted: string[] } {
  const needed = new Set<string>();
  for (const w of writes) needed.add(w.file.slice(0, w.file.indexOf('.')));
  return { needed, wanted: [...new Set([...needed, 'memory', 'pids', 'cpu'])] };
}

// ---------------------------------------------------------------- the sandbox cgroup

export interface CgroupStats {
  readonly memoryBytes: number;
  readonly memoryLimitBytes?: number;
  readonly cpuUsageNs: number;
  readonly pids: number;
}

interface Dir {
  readonly hierarchy: Hierarchy;
  readonly root: string;
  readonly dir: string;
}

export interface SandboxCgroupOptions {
  readonly cpuset?: boolean;
  readonly devices?: boolean;
  /**
   * The directories this sandbox made (absolute, parents first), as `made` reported
   * after create and the sandbox's state kept them (docs/decisions/0018). Given for a
   * `linux.cgroupsPath`: teardown then removes only these. Absent for paddock's own
   * `paddock/<key>-<id>`: every empty parent up to the root goes, as the `paddock/`
   * level is paddock's alone.
   */
  readonly made?: readonly string[];
}

export class SandboxCgroup {
  private readonly dirs: Dir[];
  /** Directories made by create() (or handed in on reattach), parents first. */
  private readonly madeDirs: string[] = [];
  private readonly ownsOnlyMade: boolean;

  /** `relPath` is below each hierarchy root (sandboxCgroupPath, or a resolved linux.cgroupsPath). */
  constructor(
    readonly layout: CgroupLayout,
    readonly relPath: string,
    opts: SandboxCgroupOptions = {},
  ) {
    this.ownsOnlyMade = opts.made !== undefined;
    if (opts.made) this.madeDirs.push(...opts.made);
    const dirs: Dir[] = [];
    const seen = new Set<string>();
    const add = (hierarchy: Hierarchy, root: string | undefined) => {
      if (root === undefined || seen.has(root)) return;
      seen.add(root);
      // Kept for the sandbox's life: one flat string, not path.join's tree of pieces (~1 KiB a sandbox over its hierarchies).
      dirs.push({ hierarchy, root, dir: Buffer.from(path.join(root, relPath)).toString() });
    };
    if (layout.mode === 'v2') add('unified', layout.unified);
    if (layout.mode === 'v1' || layout.mode === 'hybrid') {
      for (const c of ['memory', 'cpu', 'cpuacct', 'pids', 'freezer'] as const) add(c, layout.v1[c]);
      // An empty v1 cpuset refuses tasks: only made when cpus/mems are asked for.
      if (opts.cpuset) add('cpuset', layout.v1.cpuset);
      // Only when device rules are applied (a sandbox without a user namespace), or found
      // again on reattach so teardown removes it.
      const dev = layout.v1.devices;
      if (dev !== undefined && (opts.devices || fs.existsSync(path.join(dev, relPath)))) add('devices', dev);
      if (layout.mode === 'hybrid') add('unified', layout.unified);
    }
    // Found again from cgroup.json (reattach, a later CLI call): only the directories
    // this sandbox made are its own; a same-named one in another hierarchy (a cpuset or
    // devices directory someone else made) is not, and teardown must not remove it.
    const made = opts.made;
    this.dirs = made && made.length > 0 ? dirs.filter((d) => made.includes(d.dir)) : dirs;
  }

  /** The directories create() made, parents first: what teardown may remove. */
  get made(): string[] {
    return [...this.madeDirs];
  }

  /** Every directory of the sandbox (one per hierarchy mount). */
  get paths(): string[] {
    return this.dirs.map((d) => d.dir);
  }

  /** The directory a hierarchy's files live in (co-mounted controllers share one). */
  dirOf(h: Hierarchy): string | undefined {
    if (h === 'unified') return this.dirs.find((d) => d.hierarchy === 'unified')?.dir;
    const root = this.layout.mode === 'v2' ? this.layout.unified : this.layout.v1[h];
    return this.dirs.find((d) => d.root === root)?.dir;
  }

  /** True when at least one directory exists (reattach). */
  exists(): boolean {
    return this.dirs.some((d) => fs.existsSync(d.dir));
  }

  /**
   * Makes every directory (v2: enabling controllers down the parent chain), then
   * applies the limits. On failure removes what it made and throws CgroupError.
   */
  create(res: OciResources | undefined, opts: { deferPids?: boolean; devices?: boolean } = {}): void {
    if (this.dirs.length === 0) throw new CgroupError('ENOENT', 'no cgroup hierarchy is mounted');
    if (opts.devices && (this.layout.mode === 'v2' || this.dirOf('devices') === undefined)) {
      // `devices` asks for the v1 controller; cgroup v2 gets a device program instead (actors/cgroups/devices.ts).
      throw new CgroupError('ENOTSUP', 'devices: no v1 devices controller is mounted');
    }
    const all = [...planWrites(this.layout.mode, res), ...(opts.devices ? deviceWrites(res) : [])];
    const writes = opts.deferPids ? all.filter((w) => w.file !== 'pids.max') : all;
    try {
      for (const d of this.dirs) this.makeDir(d, writes);
      this.apply(writes);
    } catch (e) {
      this.undoCreate();
      throw e;
    }
  }

  /** Removes what this create made, deepest first; a directory made by someone else is never touched. */
  private undoCreate(): void {
    for (const dir of [...this.madeDirs].reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOTEMPTY' && !isCgroupFs(dir)) fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    this.madeDirs.length = 0;
  }

  private makeDir(d: Dir, writes: readonly CgroupWrite[], attempt = 0): void {
    const parts = this.relPath.split('/');
    let cur = d.root;
    const v2 = this.layout.mode === 'v2' && d.hierarchy === 'unified';
    const { needed, wanted } = v2Controllers(writes);
    for (let i = 0; i < parts.length; i++) {
      if (v2) this.enableControllers(cur, needed, wanted);
      cur = path.join(cur, parts[i] as string);
      const leaf = i === parts.length - 1;
      try {
        fs.mkdirSync(cur);
        this.madeDirs.push(cur);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
        // The shared parent was removed by a sibling sandbox's teardown just now: walk again.
        if (code === 'ENOENT' && i > 0 && attempt < 3) return this.makeDir(d, writes, attempt + 1);
        if (code !== 'EEXIST') throw new CgroupError(code, path.relative(d.root, cur) || cur, cur);
        if (leaf) {
          // Left over by a supervisor that died, or made by hand: reusable only if empty
          // (no process, no child cgroup); a cgroup in use is another sandbox's or
          // someone else's, and two sandboxes never share one (docs/decisions/0018).
          try {
            fs.rmdirSync(cur);
          } catch (re) {
            const rc = (re as NodeJS.ErrnoException).code;
            throw new CgroupError(rc ?? 'EEXIST', path.relative(d.root, cur), cur, rc === 'EBUSY' || rc === 'ENOTEMPTY');
          }
          try {
            fs.mkdirSync(cur);
            this.madeDirs.push(cur);
          } catch (me) {
            throw new CgroupError((me as NodeJS.ErrnoException).code ?? 'EEXIST', path.relative(d.root, cur), cur);
          }
        }
      }
      if (d.hierarchy === 'cpuset') inheritCpuset(cur);
    }
  }

  private enableControllers(dir: string, needed: Set<string>, wanted: readonly string[]): void {
    const available = readControllers(dir);
    let enabled: string[] = [];
    try {
      enabled = fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/);
    } catch {
      // read below as missing
    }
    for (const c of wanted) {
      if (enabled.includes(c)) continue;
      if (!available.includes(c)) {
        if (needed.has(c)) throw new CgroupError('ENOTSUP', `controller ${c} is not available in ${dir}`);
        continue;
      }
      try {
        fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), `+${c}`);
      } catch (e) {
        if (needed.has(c)) throw new CgroupError((e as NodeJS.ErrnoException).code ?? 'EIO', 'cgroup.subtree_control', path.join(dir, 'cgroup.subtree_control'));
      }
    }
  }

  /** Writes resources (or already-planned writes) into the sandbox's files. */
  apply(resOrWrites: OciResources | readonly CgroupWrite[] | undefined): void {
    const writes = Array.isArray(resOrWrites) ? (resOrWrites as CgroupWrite[]) : planWrites(this.layout.mode, resOrWrites as OciResources | undefined);
    for (const w of writes) {
      const dir = this.dirOf(w.hierarchy);
      if (dir === undefined) throw new CgroupError('ENOENT', w.file);
      writeFile(path.join(dir, w.file), w.file, w.value);
    }
  }

  /** One of the sandbox's files, trimmed; undefined when it does not exist or cannot be read (update). */
  read(h: Hierarchy, file: string): string | undefined {
    const dir = this.dirOf(h);
    return dir === undefined ? undefined : readText(path.join(dir, file))?.trim();
  }

  /**
   * pids.max = `limit` + the tasks in the cgroup now. Called once paddock-init (with
   * its nng worker threads) is in and ready and before any container starts, so the
   * limit counts the containers' tasks only, as with runc where no runtime process
   * stays in the container's cgroup. Returns the value written.
   */
  limitPids(limit: number): number {
    const dir = this.dirOf(this.layout.mode === 'v2' ? 'unified' : 'pids');
    if (dir === undefined) throw new CgroupError('ENOENT', 'pids.max');
    const current = readNumber(path.join(dir, 'pids.current')) ?? 0;
    const value = limit + current;
    writeFile(path.join(dir, 'pids.max'), 'pids.max', String(value));
    return value;
  }

  /** The cgroup.procs file of every hierarchy, for a process that moves itself in (criu restore, docs/decisions/0040). */
  procsFiles(): string[] {
    return this.dirs.map((d) => path.join(d.dir, 'cgroup.procs'));
  }

  /**
   * Where a launch can place init as it is born (LaunchInitRequest.cgroup): the v1
   * `tasks` files, and the cgroup2 directory. See place() for what follows.
   */
  birthplace(): { tasks: string[]; dir?: string } {
    const tasks: string[] = [];
    let dir: string | undefined;
    for (const d of this.dirs) {
      if (d.hierarchy === 'unified') dir = d.dir;
      else tasks.push(path.join(d.dir, 'tasks'));
    }
    return { tasks, ...(dir !== undefined ? { dir } : {}) };
  }

  /**
   * Moves a process into every hierarchy's cgroup it is not in yet, as /proc/PID/cgroup
   * shows it: after a launch that placed init as it was born (birthplace) nothing is
   * written, and a write of cgroup.procs, which waits for an RCU grace period, is saved.
   */
  place(pid: number, text: string | undefined = procCgroup(pid)): void {
    for (const dir of this.missing(text)) writeFile(path.join(dir, 'cgroup.procs'), 'cgroup.procs', String(pid));
  }

  /** The directories a process is not in, as its /proc/PID/cgroup `text` shows; every one when unknown. */
  missing(text: string | undefined): string[] {
    const expected = `/${this.relPath}`;
    return this.dirs.filter((d) => text === undefined || cgroupOf(text, d.hierarchy) !== expected).map((d) => d.dir);
  }

  /** Moves a process (all its threads) into the sandbox's cgroup in every hierarchy. */
  addProcess(pid: number): void {
    this.place(pid, undefined);
  }

  /**
   * The sandbox's figures; undefined when nothing can be read. `initPid`'s tasks are
   * left out of `pids`, so it counts what pids.limit limits (see limitPids).
   */
  stats(initPid?: number): CgroupStats | undefined {
    const v2 = this.layout.mode === 'v2';
    const memDir = this.dirOf(v2 ? 'unified' : 'memory');
    const cpuDir = this.dirOf(v2 ? 'unified' : 'cpuacct');
    const pidsDir = this.dirOf(v2 ? 'unified' : 'pids');
    const memory = memDir ? readNumber(path.join(memDir, v2 ? 'memory.current' : 'memory.usage_in_bytes')) : undefined;
    const limit = memDir ? readNumber(path.join(memDir, v2 ? 'memory.max' : 'memory.limit_in_bytes')) : undefined;
    let cpu: number | undefined;
    if (cpuDir && v2) {
      const m = /^usage_usec (\d+)$/m.exec(readText(path.join(cpuDir, 'cpu.stat')) ?? '');
      if (m) cpu = Number(m[1]) * 1000;
    } else if (cpuDir) cpu = readNumber(path.join(cpuDir, 'cpuacct.usage'));
    let pids = pidsDir ? readNumber(path.join(pidsDir, 'pids.current')) : undefined;
    if (pids !== undefined && initPid !== undefined) {
      try {
        pids = Math.max(0, pids - fs.readdirSync(`/proc/${initPid}/task`).length);
      } catch {
        // init is gone
      }
    }
    if (memory === undefined && cpu === undefined && pids === undefined) return undefined;
    return {
      memoryBytes: memory ?? 0,
      // v1 reports "unlimited" as a huge page-rounded number.
      ...(limit !== undefined && limit < 2 ** 62 ? { memoryLimitBytes: limit } : {}),
      cpuUsageNs: cpu ?? 0,
      pids: pids ?? 0,
    };
  }

  /** SIGKILL every process in the cgroup: cgroup.kill where a cgroup2 dir exists, else one by one. */
  kill(): void {
    const unified = this.dirOf('unified');
    if (unified && fs.existsSync(path.join(unified, 'cgroup.kill'))) {
      writeFile(path.join(unified, 'cgroup.kill'), 'cgroup.kill', '1');
      return;
    }
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** Host pids in the cgroup, including those the freezer and the v2 init leaf moved into their children. */
  pids(): number[] {
    const d = this.dirs[0];
    if (!d) return [];
    const text = [d.dir, path.join(d.dir, CONTAINERS_CHILD), path.join(d.dir, INIT_CHILD)].map((dir) => readText(path.join(dir, 'cgroup.procs')) ?? '').join('\n');
    return text.split('\n').filter(Boolean).map(Number);
  }

  /**
   * cgroup v2 only: moves every process of the sandbox's own directory into its
   * `init` leaf, so that controllers can be enabled for children (pod containers'
   * cgroups) without breaking the "no internal processes" rule. Repeated while init
   * forks meanwhile (a child forked before its parent moved lands in the parent), and
   * bounded. Idempotent; a no-op on v1/hybrid, whose unified tree has no controllers.
   * Returns how to put things back when this call made the leaf (the first pod
   * container of the sandbox), for a pod container whose cgroup then fails: see undoLeaf.
   */
  moveProcessesToLeaf(): (() => void) | undefined {
    if (this.layout.mode !== 'v2') return undefined;
    const dir = this.dirOf('unified');
    if (dir === undefined) return undefined;
    const leaf = path.join(dir, INIT_CHILD);
    let undo: (() => void) | undefined;
    try {
      fs.mkdirSync(leaf);
      const enabled = readText(path.join(dir, 'cgroup.subtree_control')) ?? '';
      undo = () => undoLeaf(dir, leaf, enabled);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new CgroupError(code ?? 'EIO', INIT_CHILD, leaf);
    }
    try {
      this.moveAll(dir, leaf);
    } catch (e) {
      undo?.();
      throw e;
    }
    return undo;
  }

  /** Moves every process of `dir` into its `leaf`, repeated while they fork meanwhile (bounded). */
  private moveAll(dir: string, leaf: string): void {
    for (let pass = 0; pass < 50; pass++) {
      const left = (readText(path.join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean);
      if (left.length === 0) return;
      for (const pid of left) {
        try {
          fs.writeFileSync(path.join(leaf, 'cgroup.procs'), pid);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new CgroupError((e as NodeJS.ErrnoException).code ?? 'EIO', `${INIT_CHILD}/cgroup.procs`, leaf);
        }
      }
      // A plain directory (tests' fake tree) moves nothing: one pass is all it gets.
      if (!isCgroupFs(dir)) return;
    }
    throw new CgroupError('EBUSY', `${path.relative(this.layout.unified ?? '/', dir)}: processes kept forking while moving them into ${INIT_CHILD}`, dir);
  }

  /**
   * rmdir every directory; a directory still holding exiting tasks answers EBUSY, so
   * it is retried for up to `timeoutMs`. Throws the last CgroupError if one remains.
   */
  async remove(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = this.tryRemove();
      if (left === undefined) return;
      if (Date.now() > deadline) throw left;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** One pass of rmdir (used when undoing a create, where no task was ever added). */
  removeSync(): void {
    this.tryRemove();
  }

  private tryRemove(): CgroupError | undefined {
    let err: CgroupError | undefined;
    for (const d of this.dirs) {
      // Children first: the freezer's (after a pause), the v2 init leaf, and pod
      // containers' cgroups nested here that nobody removed (a crash, a failed
      // destroy). Absent or still busy: the parent's rmdir below says which.
      removeChildren(d.dir);
      try {
        fs.rmdirSync(d.dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          this.removeEmptyParents(d);
          continue;
        }
        if (code === 'ENOTEMPTY' && !isCgroupFs(d.dir)) {
          // A fake tree (tests): plain files stand in for the kernel's.
          fs.rmSync(d.dir, { recursive: true, force: true });
          this.removeEmptyParents(d);
          continue;
        }
        err = new CgroupError(code ?? 'EIO', path.relative(d.root, d.dir), d.dir);
        continue;
      }
      this.removeEmptyParents(d);
    }
    return err;
  }

  /**
   * The shared `paddock/` level goes with its last sandbox: a parent that still holds
   * another sandbox answers ENOTEMPTY/EBUSY and stays. For a linux.cgroupsPath only the
   * parents this sandbox made go (docs/decisions/0018): one that existed before is
   * someone else's (kubelet's pod cgroup, an admin's slice).
   */
  private removeEmptyParents(d: Dir): void {
    for (let dir = path.dirname(d.dir); dir.startsWith(`${d.root}/`); dir = path.dirname(dir)) {
      if (this.ownsOnlyMade && !this.madeDirs.includes(dir)) return;
      try {
        fs.rmdirSync(dir);
      } catch {
        return;
      }
    }
  }
}

/** rmdir every directory below `dir`, deepest first; failures are left to the caller's rmdir of `dir`. */
function removeChildren(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const child = path.join(dir, e.name);
    removeChildren(child);
    try {
      fs.rmdirSync(child);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' && !isCgroupFs(child)) fs.rmSync(child, { recursive: true, force: true });
    }
  }
}

/** Whether `dir` is on a cgroup filesystem, v1 or v2 (true when it cannot be told: never rm -rf what might be one). */
export function isCgroupFs(dir: string): boolean {
  try {
    const st = fs.statfsSync(dir);
    // CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC
    return st.type === 0x27e0eb || st.type === 0x63677270;
  } catch {
    return true;
  }
}

/** A fresh v1 cpuset has empty cpus and mems and refuses tasks: copy the parent's. */
function inheritCpuset(dir: string): void {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const own = readText(path.join(dir, f));
    if (own !== undefined && own.trim() !== '') continue;
    const parent = readText(path.join(path.dirname(dir), f));
    if (parent !== undefined && parent.trim() !== '') writeFile(path.join(dir, f), f, parent.trim());
  }
}

function writeFile(full: string, file: string, value: string): void {
  try {
    fs.writeFileSync(full, value);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CgroupError(err.code ?? (typeof err.errno === 'number' ? nameOfErrno(-err.errno) : 'EIO'), file, full);
  }
}

/** /proc/PID/cgroup; undefined when the process is gone or there is no procfs (the writes then tell which). */
function procCgroup(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
}

/** A hierarchy's cgroup in /proc/PID/cgroup text ("4:memory:/a/b", "0::/a/b"). */
export function cgroupOf(text: string, h: Hierarchy): string | undefined {
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const mine = h === 'unified' ? controllers === '' : controllers.split(',').includes(h);
    if (mine) return line.slice(second + 1);
  }
  return undefined;
}

function readNumber(full: string): number | undefined {
  const t = readText(full)?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Puts a sandbox's cgroup2 directory back as it was before moveProcessesToLeaf made its
 * `init` leaf: the controllers enabled for children since then are switched off again
 * (a directory with domain controllers for its children may hold no process), the
 * processes move back up and the leaf goes. Best effort: what fails stays as it is, and
 * the sandbox's destroy removes the leaf with the rest.
 */
function undoLeaf(dir: string, leaf: string, enabledBefore: string): void {
  const before = new Set(enabledBefore.split(/\s+/).filter(Boolean));
  const now = (readText(path.join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/).filter(Boolean);
  for (const c of now.filter((c) => !before.has(c)).reverse()) {
    try {
      fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), `-${c}`);
    } catch {
      return; // still needed below (another child): leave the leaf as it is
    }
  }
  for (let pass = 0; pass < 50; pass++) {
    const left = (readText(path.join(leaf, 'cgroup.procs')) ?? '').split('\n').filter(Boolean);
    if (left.length === 0) break;
    for (const pid of left) {
      try {
        fs.writeFileSync(path.join(dir, 'cgroup.procs'), pid);
      } catch {
        // gone meanwhile, or refused: the rmdir below then fails and the leaf stays
      }
    }
    if (!isCgroupFs(dir)) break;
  }
  try {
    fs.rmdirSync(leaf);
  } catch {
    // processes left in it: it stays, and goes with the sandbox's cgroup
  }
}
