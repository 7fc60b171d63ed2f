/**
 * What the log cap costs (decision 0031): a container writes 50 MB with `seq` under no
 * cap (its file directly, decision 0002), a 64 MiB cap (init relays, never rotates) and
 * the default 4 MiB cap (init relays and rotates). Per run: the container's wall time
 * from start until its last stderr line is in its file, and the CPU time paddock-init
 * spent meanwhile (utime + stime from /proc). The order rotates each round.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../index';

export interface LogFigure {
  readonly cap: string;
  readonly medianWallMs: number;
  readonly medianInitCpuMs: number;
}

const LINES = 6_500_000; // ~50 MB of `seq` output
const TICK_MS = 1000 / 100; // USER_HZ

function cpuMs(pid: number): number {
  const f = (fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('bench: output did not complete');
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function benchLogs(engine: Engine, stateDir: string, bundleDir: string, runs: number, median: (xs: number[]) => number): Promise<LogFigure[]> {
  const caps: Array<[string, number]> = [['none (direct file)', 0], ['64 MiB (relay only)', 64 << 20], ['4 MiB (relay + rotation)', 4 << 20]];
  const wall = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  let n = 0;
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < caps.length; k++) {
      const [name, cap] = caps[(round + k) % caps.length] as [string, number];
      const id = `logs-${n++}`;
      const sb = await engine.createSandbox(id, bundleDir, { logSizeMax: cap });
      const errFile = path.join(stateDir, id, 'logs', `${id}.stderr`);
      const cpu0 = cpuMs(sb.pid);
      const t0 = process.hrtime.bigint();
      await engine.startRoot(id);
      await until(() => fs.statSync(errFile).size > 0, 120_000);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      (wall.get(name) ?? wall.set(name, []).get(name))?.push(ms);
      (cpu.get(name) ?? cpu.set(name, []).get(name))?.push(cpuMs(sb.pid) - cpu0);
      await engine.destroy(id);
    }
  }
  return caps.map(([name]) => ({ cap: name, medianWallMs: Math.round(median(wall.get(name) ?? [])), medianInitCpuMs: Math.round(median(cpu.get(name) ?? [])) }));
}

/** The container's command: 50 MB on stdout, then one line on stderr, then it idles until destroyed. */
export const LOGS_ARGS = ['sh', '-c', `seq 1 ${LINES}; echo done >&2; sleep 600`];
