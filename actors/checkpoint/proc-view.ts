/**
 * What a dump must tell CRIU about a container, read from /proc: the pid of its root in
 * paddock-init's pid namespace, its process tree, the mounts it got from the host
 * (external to its mount namespace), and the files it holds that lie outside it (its
 * stdin FIFO, its output files). The parsers are pure; the readers are thin.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface MountEntry {
  readonly id: number;
  /** major:minor of the filesystem. */
  readonly dev: string;
  /** The part of the filesystem mounted (a bind mount's source within it). */
  readonly root: string;
  readonly mountpoint: string;
  /** The mount's own options (`ro,nosuid,...`), not the filesystem's. */
  readonly options: string;
  readonly fstype: string;
}

/** /proc/PID/mountinfo's octal escapes (\040 for a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const f = (left ?? '').split(' ');
    const fstype = (right ?? '').split(' ')[0];
    if (f.length < 5 || !fstype) continue;
    out.push({ id: Number(f[0]), dev: f[2] as string, root: unescape(f[3] as string), mountpoint: unescape(f[4] as string), options: f[5] ?? '', fstype });
  }
  return out;
}

/** Filesystems CRIU makes again from its images (their content, or nothing to keep). */
const REMADE = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2']);

function within(root: string, prefix: string): boolean {
  return prefix === '/' || root === prefix || root.startsWith(`${prefix}/`);
}

export interface ExternalMount {
  /** CRIU's key for it: the mountpoint in the container. */
  readonly key: string;
  /** What it shows, as a host path: given again at restore (`--external mnt[KEY]:PATH`). */
  readonly hostPath: string;
}

/**
 * The container's mounts that come from the host: not its root (restored on the bundle's
 * rootfs), and neither a filesystem CRIU makes again nor a bind of another mount of the
 * container. Each is named by the host path it shows: the host mount of the same
 * filesystem whose root holds its root, deepest first. A mount with no such host mount
 * is left to CRIU (which then says what it cannot do).
 */
export function externalMounts(container: readonly MountEntry[], host: readonly MountEntry[]): ExternalMount[] {
  const out: ExternalMount[] = [];
  for (const m of container) {
    if (m.mountpoint === '/') continue;
    const inside = container.some((o) => o !== m && o.dev === m.dev && within(m.root, o.root) && o.root !== m.root);
    if (inside) continue;
    if (REMADE.has(m.fstype) && m.root === '/') continue;
    const candidates = host.filter((h) => h.dev === m.dev && within(m.root, h.root)).sort((a, b) => b.root.length - a.root.length);
    const h = candidates[0];
    if (h === undefined) continue;
    const rest = h.root === '/' ? m.root : m.root.slice(h.root.length);
    out.push({ key: m.mountpoint, hostPath: path.join(h.mountpoint, rest) });
  }
  return out;
}

/** The pid of a host pid in the pid namespace `depth` levels below the host's (NSpid's fields). */
export function parseNsPid(status: string, depth: number): number | undefined {
  const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
  const pids = (line ?? '').slice(6).trim().split(/\s+/).map(Number);
  const p = pids[depth];
  return p !== undefined && Number.isInteger(p) && p > 0 ? p : undefined;
}

/** How deep a process's pid namespace is below the host's: 0 for the host's own. */
export function nsDepth(hostPid: number): number {
  const line = fs.readFileSync(`/proc/${hostPid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
  return (line ?? '').slice(6).trim().split(/\s+/).length - 1;
}

/** `hostPid` as paddock-init sees it (in init's pid namespace). */
export function pidInInit(hostPid: number, initHostPid: number): number | undefined {
  return parseNsPid(fs.readFileSync(`/proc/${hostPid}/status`, 'utf8'), nsDepth(initHostPid));
}

/** A process and all its descendants (host pids), through /proc/PID/task/TID/children. */
export function processTree(hostPid: number): number[] {
  const out: number[] = [];
  const todo = [hostPid];
  while (todo.length > 0) {
    const pid = todo.pop() as number;
    out.push(pid);
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const t of tasks) {
      try {
        for (const c of fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean)) todo.push(Number(c));
      } catch {
        // thread gone
      }
    }
  }
  return out;
}

/** Whether two processes share the namespace `ns` (pid, mnt, ...). */
export function sameNamespace(a: number, b: number, ns: string): boolean {
  return fs.readlinkSync(`/proc/${a}/ns/${ns}`) === fs.readlinkSync(`/proc/${b}/ns/${ns}`);
}

/** How a descriptor of the dumped tree is found again at restore. */
export interface OutsideFile {
  readonly fd: number;
  /** pipe: its other end is outside the tree; file: it lies outside the container's mounts. */
  readonly kind: 'pipe' | 'file';
  /** CRIU's name for it (`pipe:[INODE]`, `file[MNT:INODE]` in hex). */
  readonly key: string;
  /** The host path it had (files only). */
  readonly path?: string;
}

/**
 * The descriptors of `hostPid` that CRIU must be told about: files on mounts the
 * container does not have (as an external file at dump, an inherited fd at restore) and
 * pipes (an inherited fd at restore, so output goes on into paddock's files).
 */
export function outsideFiles(hostPid: number, containerMountIds: ReadonlySet<number>, only?: readonly number[]): OutsideFile[] {
  const out: OutsideFile[] = [];
  let fds: number[];
  try {
    fds = only ? [...only] : fs.readdirSync(`/proc/${hostPid}/fd`).map(Number);
  } catch {
    return out;
  }
  for (const fd of fds) {
    let target: string;
    let info: string;
    try {
      target = fs.readlinkSync(`/proc/${hostPid}/fd/${fd}`);
      info = fs.readFileSync(`/proc/${hostPid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const pipe = /^pipe:\[(\d+)\]$/.exec(target);
    if (pipe) {
      // The form criu gives a pipe whose other end is outside the tree (readlink's).
      out.push({ fd, kind: 'pipe', key: `pipe:[${pipe[1]}]` });
      continue;
    }
    if (!target.startsWith('/')) continue; // sockets, anon inodes: CRIU's own business
    const mnt = Number(/^mnt_id:\s*(\d+)/m.exec(info)?.[1]);
    if (!Number.isInteger(mnt) || containerMountIds.has(mnt)) continue;
    let ino: bigint;
    try {
      ino = fs.statSync(`/proc/${hostPid}/fd/${fd}`, { bigint: true }).ino;
    } catch {
      continue;
    }
    out.push({ fd, kind: 'file', key: `file[${mnt.toString(16)}:${ino.toString(16)}]`, path: target });
  }
  return out;
}
