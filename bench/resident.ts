/**
 * Section 1e (decision 0044): the native client with a warm paddockd, side by side with
 * crun and runc in one run. `npm run bench -- resident` runs it alone.
 *
 *  - `paddock run` of /bin/true through the client and a warm paddockd ÷ `crun run` of
 *    the same bundle (interleaved, rotating order, medians);
 *  - the first call, which starts paddockd, apart (each round on a fresh root);
 *  - peak RSS of one `run` call of the client, crun and runc (GNU time's %M);
 *  - RSS of an idle paddockd holding 0, 1 and 100 running containers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

type Log = (line: string) => void;
type Median = (xs: number[]) => number;

/** One call, timed. No pipe of ours: a detached container keeps the caller's stdio (as with runc). */
function timed(argv: readonly string[], env?: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0] as string, argv.slice(1), { stdio: 'ignore', ...(env ? { env } : {}), timeout: 60_000 });
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}, ${r.signal ?? 'no signal'})`);
  return dt;
}

/** Peak RSS (kB) of one call, as GNU time reports it. */
function peakRss(argv: readonly string[], env?: NodeJS.ProcessEnv): number {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}), timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().trim()}`);
  const lines = r.stderr.toString().trim().split('\n');
  return Number(lines[lines.length - 1]);
}

function daemonPid(root: string): number {
  return Number(fs.readFileSync(path.join(root, 'paddockd.lock'), 'utf8').split(' ')[0]);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

function stopDaemon(root: string): void {
  let pid: number;
  try {
    pid = daemonPid(root);
  } catch {
    return;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && fs.existsSync(path.join(root, 'paddockd.lock'))) spawnSync('sleep', ['0.02']);
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export async function residentSection(
  work: string,
  repo: string,
  trueBundle: string,
  sleepBundle: string,
  peers: readonly string[],
  runs: number,
  median: Median,
  log: Log,
): Promise<Record<string, unknown>> {
  const client = path.join(repo, 'native', 'build', 'paddock');
  const env = { ...process.env, PADDOCK_DAEMON_IDLE_MS: '600000' };
  const root = path.join(work, 'resident-root');
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  let n = 0;
  const out: Record<string, unknown> = {};
  try {
    // The first call of a root: Node, the engine, then the call.
    const first: number[] = [];
    for (let i = 0; i < Math.min(runs, 10); i++) {
      const r = path.join(work, `resident-first-${i}`);
      first.push(timed([client, '--root', r, 'run', '--bundle', trueBundle, `f${i}`], env));
      stopDaemon(r);
    }

    const t: Record<string, number[]> = { 'paddock run (client, warm paddockd)': [] };
    for (const p of peers) t[`${p} run`] = [];
    const contenders: Array<[string, () => number]> = [
      ['paddock run (client, warm paddockd)', () => timed([client, '--root', root, 'run', '--bundle', trueBundle, `w${n++}`], env)],
      ...peers.map((p): [string, () => number] => [`${p} run`, () => timed([p, 'run', '--bundle', trueBundle, `res-${p}-${n++}`])]),
    ];
    for (let i = 0; i < 3 + runs; i++) {
      for (let k = 0; k < contenders.length; k++) {
        const [name, run] = contenders[(i + k) % contenders.length] as [string, () => number];
        const d = run();
        if (i >= 3) t[name]?.push(d);
      }
    }
    const crun = t['crun run'] ? median(t['crun run']) : NaN;
    log(`\n1e. the native client and a warm paddockd: run of /bin/true (medians of ${runs}, interleaved)`);
    const warm: Record<string, unknown> = {};
    for (const [name, xs] of Object.entries(t)) {
      const m = median(xs);
      warm[name] = { medianMs: m, minMs: Math.min(...xs), ratioToCrun: m / crun };
      log(`${name.padEnd(38)} ${m.toFixed(2).padStart(8)} ms  ÷ crun ${(m / crun).toFixed(2)}`);
    }
    log(`${'first call (starts paddockd)'.padEnd(38)} ${median(first).toFixed(2).padStart(8)} ms  (median of ${first.length}, apart)`);
    out.warm = warm;
    out.firstCallMs = median(first);

    const rss: Record<string, number> = {};
    const samples: Record<string, number[]> = { 'paddock (client)': [] };
    for (const p of peers) samples[p] = [];
    for (let i = 0; i < 5; i++) {
      samples['paddock (client)']?.push(peakRss([client, '--root', root, 'run', '--bundle', trueBundle, `m${n++}`], env));
      for (const p of peers) samples[p]?.push(peakRss([p, 'run', '--bundle', trueBundle, `rss-${p}-${n++}`]));
    }
    for (const [k, xs] of Object.entries(samples)) rss[k] = median(xs);
    log(`peak RSS of one run call (kB, median of 5): ${Object.entries(rss).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    out.callPeakRssKiB = rss;

    // An idle paddockd: what it holds settles, then three readings a second apart.
    const idle: Record<string, number> = {};
    const pid = daemonPid(root);
    const reading = async () => {
      const xs: number[] = [];
      for (let i = 0; i < 3; i++) {
        await settle(1000);
        xs.push(rssKiB(pid));
      }
      return median(xs);
    };
    idle['0'] = await reading();
    const ids: string[] = [];
    const add = (count: number) => {
      for (let i = 0; i < count; i++) {
        const id = `idle${ids.length}`;
        timed([client, '--root', root, 'run', '-d', '--bundle', sleepBundle, id], env);
        ids.push(id);
      }
    };
    add(1);
    idle['1'] = await reading();
    add(99);
    idle['100'] = await reading();
    log(`idle paddockd RSS (kB): 0 containers ${idle['0']}, 1: ${idle['1']}, 100: ${idle['100']} (per container ${((idle['100'] - idle['1']) / 99).toFixed(0)})`);
    out.idleDaemonRssKiB = idle;
    for (const id of ids) timed([client, '--root', root, 'delete', '--force', id], env);
  } finally {
    stopDaemon(root);
  }
  return out;
}
