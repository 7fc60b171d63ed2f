/**
 * What runc's `events --stats` reports, read from a sandbox's (or a pod container's)
 * cgroup, v1 or v2, in runc's JSON shape (field names as runc's `types.Stats`, so a
 * consumer of `runc events` reads paddock's). A file the host does not have (no blkio
 * or hugetlb directory of the sandbox on v1, no swap accounting) leaves its part at
 * runc's empty value: "where the host has it".
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NetworkInterfaceStats } from '../network/interfaces';

export interface RuncCpuUsage {
  /** ns */
  total: number;
  /** ns per cpu (v1 only: v2 has no per-cpu figures, runc leaves it out there too). */
  percpu?: number[];
  percpu_kernel?: number[];
  percpu_user?: number[];
  /** ns in kernel / user mode */
  kernel: number;
  user: number;
}

export interface RuncThrottling {
  periods?: number;
  throttledPeriods?: number;
  /** ns */
  throttledTime?: number;
}

export interface RuncMemoryEntry {
  limit: number;
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface RuncBlkioEntry {
  major?: number;
  minor?: number;
  op?: string;
  value?: number;
}

export interface RuncStats {
  cpu: { usage: RuncCpuUsage; throttling: RuncThrottling };
  memory: { cache?: number; usage: RuncMemoryEntry; swap: RuncMemoryEntry; kernel: RuncMemoryEntry; kernelTCP: RuncMemoryEntry; raw?: Record<string, number> };
  pids: { current?: number; limit?: number };
  /** Counters of each interface of the sandbox's own network namespace (runc's `network_interfaces`). */
  network_interfaces?: NetworkInterfaceStats[];
  blkio: { ioServiceBytesRecursive?: RuncBlkioEntry[]; ioServicedRecursive?: RuncBlkioEntry[] };
  hugetlb: Record<string, { usage?: number; max?: number; failcnt: number }>;
}

/** The cgroup directories to read: v2 one unified dir; v1 one per controller (absent: not there). */
export interface StatsDirs {
  readonly v2: boolean;
  readonly unified?: string;
  readonly memory?: string;
  readonly cpu?: string;
  readonly cpuacct?: string;
  readonly pids?: string;
  readonly blkio?: string;
  readonly hugetlb?: string;
}

/** v1 "unlimited" is a page-rounded 2^63-1; v2 says "max". runc reports both as the number it read; 0 for "max". */
function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'max') return 0;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function read(dir: string | undefined, file: string): string | undefined {
  if (dir === undefined) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
}

/** `key value` lines (cpu.stat, memory.stat, memory.events). */
export function keyValues(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

const USER_HZ_NS = 1e9 / 100; // cpuacct.stat counts USER_HZ ticks (100 on Linux)

function hugePageSizes(): string[] {
  try {
    // hugepages-2048kB → 2MB, as runc names them.
    return fs
      .readdirSync('/sys/kernel/mm/hugepages')
      .map((d) => /^hugepages-(\d+)kB$/.exec(d)?.[1])
      .filter((x): x is string => x !== undefined)
      .map((kb) => {
        const n = Number(kb);
        return n >= 1 << 20 ? `${n >> 20}GB` : n >= 1 << 10 ? `${n >> 10}MB` : `${n}KB`;
      });
  } catch {
    return [];
  }
}

function v1Blkio(text: string | undefined): RuncBlkioEntry[] | undefined {
  const out: RuncBlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (\S+) (\d+)$/.exec(line.trim());
    if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3] as string, value: Number(m[4]) });
  }
  return out.length ? out : undefined;
}

function readV1(d: StatsDirs): RuncStats {
  const percpu = read(d.cpuacct, 'cpuacct.usage_percpu')?.trim().split(/\s+/).map(Number);
  const percpuUser = read(d.cpuacct, 'cpuacct.usage_percpu_user')?.trim().split(/\s+/).map(Number);
  const percpuSys = read(d.cpuacct, 'cpuacct.usage_percpu_sys')?.trim().split(/\s+/).map(Number);
  const cstat = keyValues(read(d.cpuacct, 'cpuacct.stat'));
  const thr = keyValues(read(d.cpu, 'cpu.stat'));
  const mstat = keyValues(read(d.memory, 'memory.stat'));
  const entry = (prefix: string): RuncMemoryEntry => ({
    limit: num(read(d.memory, `${prefix}.limit_in_bytes`)) ?? 0,
    usage: num(read(d.memory, `${prefix}.usage_in_bytes`)) ?? 0,
    max: num(read(d.memory, `${prefix}.max_usage_in_bytes`)) ?? 0,
    failcnt: num(read(d.memory, `${prefix}.failcnt`)) ?? 0,
  });
  const hugetlb: RuncStats['hugetlb'] = {};
  if (d.hugetlb !== undefined) {
    for (const size of hugePageSizes()) {
      hugetlb[size] = {
        usage: num(read(d.hugetlb, `hugetlb.${size}.usage_in_bytes`)) ?? 0,
        max: num(read(d.hugetlb, `hugetlb.${size}.max_usage_in_bytes`)) ?? 0,
        failcnt: num(read(d.hugetlb, `hugetlb.${size}.failcnt`)) ?? 0,
      };
    }
  }
  const blkio: RuncStats['blkio'] = {};
  const bytes = v1Blkio(read(d.blkio, 'blkio.throttle.io_service_bytes_recursive'));
  const ios = v1Blkio(read(d.blkio, 'blkio.throttle.io_serviced_recursive'));
  if (bytes) blkio.ioServiceBytesRecursive = bytes;
  if (ios) blkio.ioServicedRecursive = ios;
  return {
    cpu: {
      usage: {
        total: num(read(d.cpuacct, 'cpuacct.usage')) ?? 0,
        ...(percpu && percpu.every(Number.isFinite) ? { percpu } : {}),
        ...(percpuSys && percpuSys.every(Number.isFinite) ? { percpu_kernel: percpuSys } : {}),
        ...(percpuUser && percpuUser.every(Number.isFinite) ? { percpu_user: percpuUser } : {}),
        kernel: (cstat.system ?? 0) * USER_HZ_NS,
        user: (cstat.user ?? 0) * USER_HZ_NS,
      },
      throttling: { periods: thr.nr_periods ?? 0, throttledPeriods: thr.nr_throttled ?? 0, throttledTime: thr.throttled_time ?? 0 },
    },
    memory: {
      cache: mstat.cache ?? 0,
      usage: entry('memory'),
      swap: entry('memory.memsw'),
      kernel: entry('memory.kmem'),
      kernelTCP: entry('memory.kmem.tcp'),
      raw: mstat,
    },
    pids: { current: num(read(d.pids, 'pids.current')) ?? 0, limit: num(read(d.pids, 'pids.max')) ?? 0 },
    blkio,
    hugetlb,
  };
}

function readV2(d: StatsDirs): RuncStats {
  const u = d.unified;
  const cstat = keyValues(read(u, 'cpu.stat'));
  const mstat = keyValues(read(u, 'memory.stat'));
  const mev = keyValues(read(u, 'memory.events'));
  const swapEv = keyValues(read(u, 'memory.swap.events'));
  const blkio: RuncStats['blkio'] = {};
  const bytes: RuncBlkioEntry[] = [];
  const ios: RuncBlkioEntry[] = [];
  for (const line of (read(u, 'io.stat') ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const kv = Object.fromEntries((m[3] as string).split(' ').map((p) => p.split('=') as [string, string]));
    const dev = { major: Number(m[1]), minor: Number(m[2]) };
    bytes.push({ ...dev, op: 'Read', value: Number(kv.rbytes ?? 0) }, { ...dev, op: 'Write', value: Number(kv.wbytes ?? 0) });
    ios.push({ ...dev, op: 'Read', value: Number(kv.rios ?? 0) }, { ...dev, op: 'Write', value: Number(kv.wios ?? 0) });
  }
  if (bytes.length) blkio.ioServiceBytesRecursive = bytes;
  if (ios.length) blkio.ioServicedRecursive = ios;
  const hugetlb: RuncStats['hugetlb'] = {};
  for (const size of hugePageSizes()) {
    const cur = num(read(u, `hugetlb.${size}.current`));
    if (cur === undefined) continue;
    hugetlb[size] = { usage: cur, max: num(read(u, `hugetlb.${size}.max`)) ?? 0, failcnt: keyValues(read(u, `hugetlb.${size}.events`)).max ?? 0 };
  }
  const memUsage = num(read(u, 'memory.current')) ?? 0;
  const swapUsage = num(read(u, 'memory.swap.current'));
  return {
    cpu: {
      usage: { total: (cstat.usage_usec ?? 0) * 1000, kernel: (cstat.system_usec ?? 0) * 1000, user: (cstat.user_usec ?? 0) * 1000 },
      throttling: { periods: cstat.nr_periods ?? 0, throttledPeriods: cstat.nr_throttled ?? 0, throttledTime: (cstat.throttled_usec ?? 0) * 1000 },
    },
    memory: {
      cache: mstat.file ?? 0,
      usage: { limit: num(read(u, 'memory.max')) ?? 0, usage: memUsage, max: num(read(u, 'memory.peak')) ?? 0, failcnt: mev.max ?? 0 },
      // runc reports v2 swap as memory + swap, as v1's memsw.
      swap: { limit: num(read(u, 'memory.swap.max')) ?? 0, usage: swapUsage === undefined ? 0 : memUsage + swapUsage, failcnt: swapEv.max ?? 0 },
      kernel: { limit: 0, failcnt: 0 },
      kernelTCP: { limit: 0, failcnt: 0 },
      raw: mstat,
    },
    pids: { current: num(read(u, 'pids.current')) ?? 0, limit: num(read(u, 'pids.max')) ?? 0 },
    blkio,
    hugetlb,
  };
}

export function readRuncStats(d: StatsDirs): RuncStats {
  return d.v2 ? readV2(d) : readV1(d);
}
