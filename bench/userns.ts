/**
 * 1d. `userns: 'auto'` from the builder (docs/decisions/0028): create + start + wait of
 * /bin/true from a template (a host id range of the pool, an idmapped rootfs), as a
 * ratio to `crun run` of the same config (the builder's, with the range written in) in
 * the same run; and the cost of the idmapped rootfs per sandbox, two ways: the same
 * template with `idmapRootfs: false` in the same interleaved rounds, and the native
 * call itself timed inside the engine.
 *
 * Alone with `npm run bench -- userns`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { createEngine, buildSpec, type Engine, type SandboxTemplate } from '../index';
import type { NativeFacade } from '../native/facade';
import { have } from './podman';
import { median } from './stats';

export interface UsernsFigures {
  readonly runs: number;
  readonly medianMs: Record<string, number>;
  readonly minMs: Record<string, number>;
  /** paddock template (auto, idmapped) ÷ crun run of the same config. */
  readonly ratioToCrun: number;
  /** Median of (idmapped) − median of (idmapRootfs: false). */
  readonly idmapCostMs: number;
  /** The native idmap call alone (open_tree + mount_setattr + the throw-away child's setns + move_mount). */
  readonly idmapCallMedianMs: number;
}

/** The real facade, with idmapRootfs timed. */
function timedNative(calls: number[]): NativeFacade {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadNative } = require('../native/ffi') as { loadNative: () => NativeFacade };
  const real = loadNative();
  return new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'idmapRootfs' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      return (...args: unknown[]) => {
        const t0 = process.hrtime.bigint();
        try {
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        } finally {
          calls.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      };
    },
  });
}

async function timeTemplate(engine: Engine, id: string, tpl: SandboxTemplate, idmap: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  await engine.createSandbox(id, tpl, { stdio: 'ignore', ...(idmap ? {} : { idmapRootfs: false }) });
  await engine.startRoot(id);
  const st = await engine.wait(id, id);
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (st.exitCode !== 0) throw new Error(`paddock template /bin/true exited ${JSON.stringify(st)}`);
  await engine.destroy(id);
  return dt;
}

function timeCrun(bundle: string, id: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('crun', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', 'pipe'] });
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`crun run failed (${r.status}): ${r.stderr.toString().trim()}`);
  return dt;
}

export async function usernsSection(work: string, rootfs: string, runs: number, log: (s: string) => void): Promise<UsernsFigures | undefined> {
  const idmapCalls: number[] = [];
  const engine = await createEngine({ stateDir: path.join(work, 'state-userns'), logger: pino({ level: 'warn' }), native: timedNative(idmapCalls) });
  const tpl: SandboxTemplate = { rootfs, args: ['/bin/true'], hostname: 'bench' };
  // crun gets the builder's config for the same template, with a range written in (the
  // first of a pool of its own, so it never meets paddock's): the same namespaces,
  // default spec, read-only rootfs; crun sees the rootfs through the user namespace.
  const crunBundle = path.join(work, 'bundle-userns-crun');
  fs.mkdirSync(crunBundle, { recursive: true });
  fs.writeFileSync(path.join(crunBundle, 'config.json'), JSON.stringify(buildSpec(tpl, { hostId: 0x5000_0000, size: 65536 })));
  const t: Record<string, number[]> = { 'paddock template (auto, idmapped)': [], 'paddock template (auto, no idmap)': [] };
  const withCrun = have('crun');
  if (withCrun) t['crun run (same config)'] = [];
  let n = 0;
  const contenders: Array<[string, () => Promise<number>]> = [
    ['paddock template (auto, idmapped)', () => timeTemplate(engine, `u${n++}`, tpl, true)],
    ['paddock template (auto, no idmap)', () => timeTemplate(engine, `u${n++}`, tpl, false)],
    ...(withCrun ? [['crun run (same config)', async () => timeCrun(crunBundle, `bench-userns-${n++}`)] as [string, () => Promise<number>]] : []),
  ];
  try {
    for (let i = 0; i < 3 + runs; i++) {
      if (i === 3) idmapCalls.length = 0;
      for (let k = 0; k < contenders.length; k++) {
        const [name, run] = contenders[(i + k) % contenders.length] as [string, () => Promise<number>];
        const d = await run();
        if (i >= 3) t[name]?.push(d);
      }
    }
  } finally {
    for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
    await engine.close();
    if (withCrun) spawnSync('sh', ['-c', 'crun list -q 2>/dev/null | grep ^bench-userns- | xargs -r -n1 crun delete -f']);
  }
  const medianMs: Record<string, number> = {};
  const minMs: Record<string, number> = {};
  for (const [name, xs] of Object.entries(t)) {
    medianMs[name] = median(xs);
    minMs[name] = Math.min(...xs);
  }
  const crun = medianMs['crun run (same config)'] ?? NaN;
  const auto = medianMs['paddock template (auto, idmapped)'] as number;
  const figures: UsernsFigures = {
    runs,
    medianMs,
    minMs,
    ratioToCrun: auto / crun,
    idmapCostMs: auto - (medianMs['paddock template (auto, no idmap)'] as number),
    idmapCallMedianMs: median(idmapCalls),
  };
  log(`\n1d. userns: 'auto' from the builder: create + start + wait of /bin/true (medians of ${runs}, interleaved)`);
  log(`${'contender'.padEnd(36)} ${'median ms'.padStart(10)} ${'min ms'.padStart(8)} ${'÷ crun'.padStart(8)}`);
  for (const name of Object.keys(t)) {
    log(`${name.padEnd(36)} ${(medianMs[name] as number).toFixed(2).padStart(10)} ${(minMs[name] as number).toFixed(2).padStart(8)} ${((medianMs[name] as number) / crun).toFixed(2).padStart(8)}`);
  }
  log(`idmapped rootfs per sandbox: ${figures.idmapCostMs.toFixed(2)} ms by the difference of medians; the native call alone ${figures.idmapCallMedianMs.toFixed(2)} ms (median of ${idmapCalls.length})`);
  return figures;
}
