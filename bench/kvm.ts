/**
 * 7. KVM in a sandbox (docs/decisions/0038): time from `createSandbox(..., { kvm: true })`
 * to the guest's first exit (test/fixtures/kvm-guest.c prints CLOCK_REALTIME at its
 * first KVM_EXIT_IO; realtime is not namespaced, so it compares with the supervisor's
 * clock), against the same program run directly on the host (spawn to first exit).
 * Both with and without a user namespace of the sandbox's own. Interleaved rounds.
 *
 * Alone with `npm run bench -- kvm` (or `bash bench/run.sh kvm`).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine } from '../index';
import { defaultSpec } from '../specs/default-spec';
import { median } from './stats';

export interface KvmFigures {
  readonly runs: number;
  /** Median ms from the start (spawn or createSandbox) to the guest's first exit. */
  readonly medianMs: Record<string, number>;
  readonly minMs: Record<string, number>;
  /** Each sandbox median ÷ the host's. */
  readonly ratioToHost: Record<string, number>;
}

function firstExitUs(out: string): number {
  const m = /^first_exit_us=(\d+)$/m.exec(out);
  if (!m) throw new Error(`kvm-guest printed no first exit: ${out}`);
  return Number(m[1]);
}

/** Wall-clock µs, finer than Date.now(): the guest's stamp is CLOCK_REALTIME. */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/** Builds the guest static into `work` (0755, so a mapped root can run it). */
export function buildGuest(root: string, work: string): string {
  const bin = path.join(work, 'kvm-guest');
  const r = spawnSync('gcc', ['-static', '-O2', '-o', bin, path.join(root, 'test', 'fixtures', 'kvm-guest.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc kvm-guest.c: ${r.stderr}`);
  fs.chmodSync(bin, 0o755);
  return bin;
}

export async function kvmSection(engine: Engine, work: string, rootfs: string, root: string, runs: number, log: (s: string) => void): Promise<KvmFigures | { skipped: string }> {
  const k = engine.kvm();
  if (!k.available) return { skipped: `no kvm: ${k.reason ?? ''}` };
  const guest = buildGuest(root, work);
  const bundle = (name: string, userns: boolean): string => {
    const dir = path.join(work, name);
    fs.mkdirSync(dir, { recursive: true });
    const config = defaultSpec({ args: ['/kvm-guest'], rootfs, ...(userns ? { userns: { hostId: 100000, size: 65536 } } : {}) });
    (config.mounts ??= []).push({ destination: '/kvm-guest', type: 'bind', source: guest, options: ['bind', 'ro'] });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  };
  const plain = bundle('bundle-kvm', false);
  const userns = bundle('bundle-kvm-userns', true);
  let n = 0;
  const sandbox = async (dir: string, auto: boolean): Promise<number> => {
    const id = `kvm${n++}`;
    const t0 = nowUs();
    const h = await engine.createSandbox(id, dir, { kvm: true, ...(auto ? { userns: 'auto' as const } : {}) });
    await engine.startRoot(id);
    const status = await engine.wait(id, id, { timeoutMs: 20_000 });
    let out = '';
    for await (const chunk of h.stdio!.stdout) out += String(chunk);
    await engine.destroy(id);
    if (status.exitCode !== 0) throw new Error(`kvm-guest in a sandbox failed: ${out}`);
    return (firstExitUs(out) - t0) / 1000;
  };
  const host = (): number => {
    const t0 = nowUs();
    const r = spawnSync(guest, [], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kvm-guest on the host failed: ${r.stdout}`);
    return (firstExitUs(r.stdout) - t0) / 1000;
  };
  const t: Record<string, number[]> = { host: [], 'sandbox (no userns)': [], 'sandbox (userns auto)': [] };
  for (let i = 0; i < runs + 2; i++) {
    const h = host();
    const p = await sandbox(plain, false);
    const u = await sandbox(userns, true);
    if (i < 2) continue; // warm-up
    t.host!.push(h);
    t['sandbox (no userns)']!.push(p);
    t['sandbox (userns auto)']!.push(u);
  }
  const medianMs: Record<string, number> = {};
  const minMs: Record<string, number> = {};
  for (const [k2, xs] of Object.entries(t)) {
    medianMs[k2] = Number(median(xs).toFixed(2));
    minMs[k2] = Number(Math.min(...xs).toFixed(2));
  }
  const ratioToHost: Record<string, number> = {};
  for (const k2 of Object.keys(t)) if (k2 !== 'host') ratioToHost[k2] = Number(((medianMs[k2] as number) / (medianMs.host as number)).toFixed(1));
  const figures = { runs, medianMs, minMs, ratioToHost };
  log(`kvm: start → guest's first exit ${JSON.stringify(figures)}`);
  return figures;
}
