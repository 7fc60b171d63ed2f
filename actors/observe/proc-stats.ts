import * as fs from 'node:fs';

/**
 * Figures read from the host's /proc for a set of process trees: how `event()`
 * measures a container that is not its sandbox's root, or any container of a sandbox
 * without a cgroup (docs/decisions/0005, 0009): the root process and exec'd processes
 * that init reports, plus every descendant of them.
 */

export interface ProcessInfo {
  readonly hostPid: number;
  readonly ppid: number;
  readonly command: string;
  readonly rssBytes: number;
  readonly cpuNs: number;
}

export interface ContainerStats {
  readonly pids: number;
  /** From /proc: summed RSS. From the sandbox's cgroup: its memory usage (memory.current / memory.usage_in_bytes) and limit. */
  readonly memory: { readonly rssBytes: number; readonly limitBytes?: number };
  readonly cpu: { readonly usageNs: number };
  /** Where the figures come from: the sandbox's cgroup (root container), or /proc (absent). */
  readonly source?: 'cgroup' | 'proc';
}

const PAGE = 4096;
const TICK_NS = 1e9 / 100;

export function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const command = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    const statm = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return {
      hostPid: pid,
      ppid: Number(f[1]),
      command,
      rssBytes: Number(statm[1]) * PAGE,
      cpuNs: (Number(f[11]) + Number(f[12])) * TICK_NS,
    };
  } catch {
    return undefined;
  }
}

/** The process and all its descendants, breadth first, through /proc/<pid>/task/<tid>/children. */
export function processTree(rootPid: number): number[] {
  const out: number[] = [];
  const queue = [rootPid];
  const seen = new Set<number>();
  while (queue.length) {
    const pid = queue.shift() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    if (!fs.existsSync(`/proc/${pid}`)) continue;
    out.push(pid);
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (kids) for (const k of kids.split(' ')) queue.push(Number(k));
      } catch {
        // The task went away meanwhile.
      }
    }
  }
  return out;
}

export function statsOf(roots: readonly number[]): ContainerStats {
  let pids = 0;
  let rss = 0;
  let cpu = 0;
  const seen = new Set<number>();
  for (const root of roots) {
    for (const pid of processTree(root)) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      const p = readProcess(pid);
      if (!p) continue;
      pids++;
      rss += p.rssBytes;
      cpu += p.cpuNs;
    }
  }
  return { pids, memory: { rssBytes: rss }, cpu: { usageNs: cpu } };
}
