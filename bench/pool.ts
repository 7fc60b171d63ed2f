/**
 * Warm-pool and idle-memory figures (issue 4), run by bench/run.ts:
 *
 *  - pool.acquire() until its container runs, against a cold createSandbox + startRoot
 *    of the same bundle in the same run (interleaved). Before each acquire the pool is
 *    let refill, so the figure is the acquire itself and not a queue behind a launch.
 *  - N idle supervised sandboxes (default 1000; `npm run bench -- pool`): supervisor heap
 *    and RSS per sandbox, paddock-init RSS per sandbox, host tasks and fds they take.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import type { Engine, Pool } from '../index';
import { median } from './stats';

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A full pool: every member idle and no launch in flight. */
const isFull = (p: Pool) => {
  const s = p.stats();
  return s.status === 'full' && s.idle === s.size;
};

export async function benchAcquire(engine: Engine, bundle: string, runs: number): Promise<Record<string, number>> {
  const pool = await engine.pool('bench', { bundle, size: 2, stdio: 'ignore' });
  const acquire: number[] = [];
  const cold: number[] = [];
  let n = 0;
  try {
    for (let i = 0; i < runs + 3; i++) {
      await until(() => isFull(pool), 20_000, 'the pool to refill');
      let t0 = process.hrtime.bigint();
      const got = await pool.acquire();
      const a = ms(t0);
      await engine.destroy(got.id);
      await until(() => isFull(pool), 20_000, 'the pool to refill');
      const id = `cold${n++}`;
      t0 = process.hrtime.bigint();
      await engine.createSandbox(id, bundle, { stdio: 'ignore' });
      await engine.startRoot(id);
      const c = ms(t0);
      await engine.destroy(id);
      if (i >= 3) {
        acquire.push(a);
        cold.push(c);
      }
    }
  } finally {
    await pool.drain();
  }
  const am = median(acquire);
  const cm = median(cold);
  return { acquireMedianMs: am, acquireMinMs: Math.min(...acquire), coldCreateStartMedianMs: cm, ratio: am / cm };
}

function statusKiB(pid: number | 'self', field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

function tasksOf(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

/** The host's limits that bound how many sandboxes fit (each init has nng's threads). */
export function hostLimits(): Record<string, number | string> {
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8').trim();
    } catch {
      return 'n/a';
    }
  };
  const nofile = /Max open files\s+(\d+)\s+(\d+)/.exec(read('/proc/self/limits'));
  const nproc = /Max processes\s+(\S+)\s+(\S+)/.exec(read('/proc/self/limits'));
  return {
    pidMax: Number(read('/proc/sys/kernel/pid_max')),
    threadsMax: Number(read('/proc/sys/kernel/threads-max')),
    maxUserNamespaces: Number(read('/proc/sys/user/max_user_namespaces')),
    openFilesSoft: Number(nofile?.[1]),
    openFilesHard: Number(nofile?.[2]),
    maxProcesses: nproc?.[1] ?? 'n/a',
    hostTasksNow: fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).reduce((acc, d) => acc + tasksOf(Number(d)), 0),
  };
}

/**
 * `count` sandboxes each running an idle `sleep`, all supervised by one engine. Memory
 * is measured after a full GC against a baseline taken once the engine's lazy parts
 * (native layer, watcher) are loaded by a first sandbox.
 */
export async function benchIdle(engine: Engine, bundle: string, count: number, log: (s: string) => void): Promise<Record<string, unknown>> {
  const warm = 'idlewarm';
  await engine.createSandbox(warm, bundle, { stdio: 'ignore' });
  await engine.startRoot(warm);
  await engine.destroy(warm);
  const base = await settledMemory(0);
  const fds0 = fs.readdirSync('/proc/self/fd').length;
  const tasks0 = hostLimits().hostTasksNow as number;
  const ids = Array.from({ length: count }, (_, i) => `idle${i}`);
  const t0 = process.hrtime.bigint();
  let made = 0;
  let failure: string | undefined;
  // A few at a time: enough to overlap the launches' waits, few enough for 2 cores.
  const width = 4;
  const half = Math.max(width, Math.floor(count / 2 / width) * width);
  let mid: MemoryPoint | undefined;
  try {
    for (let i = 0; i < ids.length; i += width) {
      await Promise.all(
        ids.slice(i, i + width).map(async (id) => {
          await engine.createSandbox(id, bundle, { stdio: 'ignore' });
          await engine.startRoot(id);
          made++;
        }),
      );
      if ((i + width) % 200 === 0) log(`    ${i + width} sandboxes up (${(ms(t0) / 1000).toFixed(1)} s)`);
      if (i + width === half && half < count) mid = await settledMemory(made);
    }
  } catch (e) {
    failure = `sandbox ${made + 1} failed: ${(e as Error).message}`;
    log(`    stopped at ${made}: ${failure}`);
  }
  const upMs = ms(t0);
  const end = await settledMemory(made);
  const heapPer = (end.heapUsed - base.heapUsed) / made;
  const rssPer = (end.rss - base.rss) / made;
  // The cost of one more sandbox, from the second half alone: what the first half paid
  // for process-wide growth (V8's young generation, malloc arenas) is not in it.
  const marginal = mid && made > mid.sandboxes ? (end.rss - mid.rss) / (made - mid.sandboxes) : NaN;
  const fdsPer = (fs.readdirSync('/proc/self/fd').length - fds0) / made;
  const live = engine.list().filter((s) => s.id.startsWith('idle') && s.status === 'running');
  const initRss = live.map((s) => statusKiB(s.pid as number, 'VmRSS'));
  const initPss = live.slice(0, 50).map((s) => pssKiB(s.pid as number));
  const initTasks = live.slice(0, 50).map((s) => tasksOf(s.pid as number));
  const tasksPer = ((hostLimits().hostTasksNow as number) - tasks0) / made;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < ids.length; i += 16) {
    await Promise.all(ids.slice(i, i + 16).map((id) => engine.destroy(id).catch(() => undefined)));
  }
  const downMs = ms(t1);
  const left = engine.list().filter((s) => s.id.startsWith('idle')).length;
  return {
    asked: count,
    running: live.length,
    ...(failure ? { failure } : {}),
    allUpMs: upMs,
    supervisorHeapPerSandboxBytes: heapPer,
    supervisorRssPerSandboxBytes: rssPer,
    supervisorRssMarginalPerSandboxBytes: marginal,
    youngGenerationKiB: end.youngKiB,
    supervisorFdsPerSandbox: fdsPer,
    initRssMedianKiB: median(initRss),
    initPssMedianKiB: median(initPss),
    initThreadsMedian: median(initTasks),
    hostTasksPerSandbox: tasksPer,
    destroyAllMs: downMs,
    leftAfterDestroy: left,
  };
}

export interface MemoryPoint {
  readonly sandboxes: number;
  /** Bytes resident, from the page tables (smaps_rollup): process.memoryUsage().rss reads
   *  the kernel's cached counters, which lag behind frees by megabytes. */
  readonly rss: number;
  readonly heapUsed: number;
  /** V8's young generation as committed now: sized by allocation rate, up to 2 x the
   *  max semi-space (16 MiB by default), whatever the number of sandboxes. */
  readonly youngKiB: number;
}

export async function settledMemory(sandboxes: number): Promise<MemoryPoint> {
  await new Promise((r) => setTimeout(r, 500));
  global.gc?.();
  global.gc?.();
  const rollup = fs.readFileSync('/proc/self/smaps_rollup', 'utf8');
  const young = v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space');
  return {
    sandboxes,
    rss: Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? NaN) * 1024,
    heapUsed: process.memoryUsage().heapUsed,
    youngKiB: Math.round((young?.space_size ?? NaN) / 1024),
  };
}

/** Proportional set size: a static init's text is shared between all of them, RSS counts it in each. */
function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return Number(m?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

type WriteBundle = (dir: string, args: string[], userns: boolean) => string;

/** Section 4 of every run: acquire against cold create + start. */
export async function poolSection(engine: Engine, work: string, write: WriteBundle, runs: number, log: (s: string) => void): Promise<Record<string, number>> {
  const bundle = write(`${work}/bundle-pool`, ['sleep', '3600'], true);
  const r = await benchAcquire(engine, bundle, runs);
  log(`\n5. warm pool: acquire() until the container runs, against cold create + start (medians of ${runs}, interleaved)`);
  log(`pool.acquire() ${r.acquireMedianMs!.toFixed(2)} ms (min ${r.acquireMinMs!.toFixed(2)}); cold create + start ${r.coldCreateStartMedianMs!.toFixed(2)} ms; ratio ${r.ratio!.toFixed(2)}`);
  return r;
}

/** `npm run bench -- pool [N]`: section 5 and N (default 1000) idle supervised sandboxes. */
export async function idleSection(engine: Engine, work: string, write: WriteBundle, count: number, log: (s: string) => void): Promise<Record<string, unknown>> {
  const bundle = write(`${work}/bundle-idle-many`, ['sleep', '3600'], true);
  const limits = hostLimits();
  log(`\n6. ${count} idle supervised sandboxes (host: pid_max ${limits.pidMax}, threads-max ${limits.threadsMax}, open files ${limits.openFilesSoft}/${limits.openFilesHard}, tasks now ${limits.hostTasksNow})`);
  const r = await benchIdle(engine, bundle, count, log);
  // V8 flags that shape the heap, e.g. the capped young generation of the second run.
  const flags = process.execArgv.filter((a) => a.startsWith('--max-semi-space-size')).join(' ');
  const kib = (b: unknown) => ((b as number) / 1024).toFixed(1);
  log(`running ${r.running}/${count}${r.failure ? ` (${String(r.failure)})` : ''}, all up in ${((r.allUpMs as number) / 1000).toFixed(1)} s, destroyed in ${((r.destroyAllMs as number) / 1000).toFixed(1)} s, left ${r.leftAfterDestroy}`);
  log(
    `supervisor per sandbox${flags ? ` (${flags})` : ''}: heap ${kib(r.supervisorHeapPerSandboxBytes)} KiB, RSS ${kib(r.supervisorRssPerSandboxBytes)} KiB ` +
      `(one more sandbox, second half: ${kib(r.supervisorRssMarginalPerSandboxBytes)} KiB; young generation ${r.youngGenerationKiB} KiB), ${(r.supervisorFdsPerSandbox as number).toFixed(1)} fds`,
  );
  log(`paddock-init per sandbox: RSS median ${r.initRssMedianKiB} KiB, PSS median ${r.initPssMedianKiB} KiB, ${r.initThreadsMedian} threads; host tasks per sandbox ${(r.hostTasksPerSandbox as number).toFixed(1)}`);
  return { ...r, limits };
}
