/**
 * 8. Checkpoint and restore with CRIU (docs/decisions/0040), beside runc's with the same
 * criu: a busybox counter (the test's) is checkpointed (killed) and restored, and each
 * step is timed. paddock: engine.checkpoint / engine.restore in process; runc:
 * `runc checkpoint` / `runc restore -d` as processes. Interleaved rounds, medians.
 *
 * Alone with `npm run bench -- checkpoint` (or `bash bench/run.sh checkpoint`).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../index';
import { findCriu } from '../actors/checkpoint/criu';
import { defaultSpec } from '../specs/default-spec';

const COUNTER = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.05; done'];

export interface CheckpointFigures {
  readonly runs: number;
  readonly criu: string;
  /** Median ms of each step, by contender. */
  readonly medianMs: Record<string, { checkpoint: number; restore: number }>;
  /** paddock's median ÷ runc's, per step. */
  readonly ratioToRunc?: { checkpoint: number; restore: number };
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function runc(criu: string, args: string[]): void {
  const r = spawnSync('runc', ['--criu', criu, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  if (r.status !== 0) throw new Error(`runc ${args.join(' ')}: ${r.stderr.toString().trim()}`);
}

/**
 * `runc run -d` or `restore -d` with pipes for the container's stdio, as conmon gives
 * (runc's checkpoint cannot dump a host file or Node's socketpairs as stdio): bash's
 * process substitutions make them, a `sleep` holds stdin's other end (its pid is
 * returned, to be killed after the round) and a `cat` drains the output.
 */
function runcDetached(criu: string, args: string[]): Promise<number> {
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const script = `exec 4< <(exec sleep 600); echo $!; exec runc --criu ${q(criu)} ${args.map(q).join(' ')} <&4 4<&- > >(exec cat >/dev/null) 2>/dev/null`;
  return new Promise((resolve, reject) => {
    const c = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.once('error', reject);
    c.once('exit', (code) => {
      const holder = Number(out.trim().split('\n')[0]);
      if (code === 0) resolve(holder);
      else {
        if (holder > 0) process.kill(holder);
        reject(new Error(`runc ${args.join(' ')} failed (${code})`));
      }
    });
  });
}

async function waitCount(read: () => number | undefined, atLeast: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((read() ?? 0) < atLeast) {
    if (Date.now() > deadline) throw new Error('the counter did not count');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function checkpointSection(engine: Engine, work: string, rootfs: string, runs: number, median: (xs: number[]) => number, log: (s: string) => void): Promise<CheckpointFigures | { skipped: string }> {
  let criu: string;
  try {
    criu = findCriu();
  } catch (e) {
    return { skipped: (e as Error).message };
  }
  const bundle = path.join(work, 'bundle-ckpt');
  fs.mkdirSync(bundle, { recursive: true });
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(defaultSpec({ args: COUNTER, rootfs })));
  const haveRunc = spawnSync('runc', ['--version'], { stdio: 'ignore' }).status === 0;
  const t: Record<string, { checkpoint: number[]; restore: number[] }> = { paddock: { checkpoint: [], restore: [] } };
  if (haveRunc) t.runc = { checkpoint: [], restore: [] };
  let n = 0;

  const paddockRound = async (): Promise<void> => {
    const id = `ck${n++}`;
    const img = path.join(work, `img-${id}`);
    await engine.createSandbox(id, bundle);
    await engine.startRoot(id);
    // The same start as runc's: a few turns of the loop before the dump.
    await new Promise((r) => setTimeout(r, 200));
    let t0 = process.hrtime.bigint();
    await engine.checkpoint(id, { imagePath: img });
    t.paddock?.checkpoint.push(ms(t0));
    await engine.destroy(id);
    t0 = process.hrtime.bigint();
    await engine.restore(id, bundle, { imagePath: img });
    t.paddock?.restore.push(ms(t0));
    await engine.destroy(id);
    fs.rmSync(img, { recursive: true, force: true });
  };

  const runcRound = async (): Promise<void> => {
    const id = `bench-ck-${process.pid}-${n++}`;
    const img = path.join(work, `img-${id}`);
    const shm = () => {
      const r = spawnSync('runc', ['exec', id, 'cat', '/dev/shm/n'], { encoding: 'utf8' });
      return r.status === 0 ? Number(r.stdout.trim()) : undefined;
    };
    const holders: number[] = [];
    try {
      holders.push(await runcDetached(criu, ['run', '-d', '--bundle', bundle, id]));
      await waitCount(shm, 3);
      let t0 = process.hrtime.bigint();
      runc(criu, ['checkpoint', '--image-path', img, id]);
      t.runc?.checkpoint.push(ms(t0));
      runc(criu, ['delete', '-f', id]);
      t0 = process.hrtime.bigint();
      holders.push(await runcDetached(criu, ['restore', '-d', '--image-path', img, '--bundle', bundle, id]));
      t.runc?.restore.push(ms(t0));
    } finally {
      spawnSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
      for (const h of holders) {
        try {
          process.kill(h);
        } catch {
          // gone
        }
      }
      fs.rmSync(img, { recursive: true, force: true });
    }
  };

  const rounds: Array<() => Promise<void>> = [paddockRound, ...(haveRunc ? [runcRound] : [])];
  for (let i = 0; i < runs + 1; i++) {
    for (let k = 0; k < rounds.length; k++) await (rounds[(i + k) % rounds.length] as () => Promise<void>)();
    // The first round warms caches: dropped.
    if (i === 0) for (const v of Object.values(t)) (v.checkpoint.length = 0), (v.restore.length = 0);
  }
  const medianMs: CheckpointFigures['medianMs'] = {};
  for (const [name, v] of Object.entries(t)) medianMs[name] = { checkpoint: median(v.checkpoint), restore: median(v.restore) };
  const p = medianMs.paddock as { checkpoint: number; restore: number };
  const r = medianMs.runc;
  log(`\n8. checkpoint / restore of a busybox counter with ${criu} (medians of ${runs}, interleaved)`);
  for (const [name, v] of Object.entries(medianMs)) log(`${name.padEnd(10)} checkpoint ${v.checkpoint.toFixed(1).padStart(7)} ms   restore ${v.restore.toFixed(1).padStart(7)} ms`);
  const ratioToRunc = r ? { checkpoint: p.checkpoint / r.checkpoint, restore: p.restore / r.restore } : undefined;
  if (ratioToRunc) log(`paddock ÷ runc: checkpoint ${ratioToRunc.checkpoint.toFixed(2)}, restore ${ratioToRunc.restore.toFixed(2)}`);
  return { runs, criu, medianMs, ...(ratioToRunc ? { ratioToRunc } : {}) };
}
