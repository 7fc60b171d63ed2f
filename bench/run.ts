/**
 * paddock benchmarks, side by side with crun and runc in the same run.
 *
 *  1. create + start + wait of a sandbox running /bin/true (library, in process),
 *     against `crun run` and `runc run` of the same bundle; iterations interleave the
 *     contenders so they share machine state. Medians and ratios.
 *  1b. the CLI: `paddock run` against `node -e 0` + `crun run`.
 *  1c. `podman run --rm IMAGE true` with paddock, crun and runc as podman's runtime
 *     (bench/podman.ts); alone with `npm run bench -- podman`.
 *  1e. the native client with a warm paddockd against `crun run`, the first call apart,
 *     RSS of a call and of an idle paddockd (bench/resident.ts); alone with
 *     `npm run bench -- resident`.
 *  1d. `userns: 'auto'` from the builder against `crun run` of the same config, and the
 *     cost of the idmapped rootfs (bench/userns.ts); alone with `npm run bench -- userns`.
 *  2. paddock-init resident memory with an idle container; supervisor heap per idle sandbox.
 *  3. 100 sandboxes started concurrently from one engine: all reach running, all exit
 *     cleanly; throughput.
 *  4. exit → restart launched, beyond the configured backoff (bench/restart.ts).
 *  5. warm pool: acquire() against cold create + start (bench/pool.ts).
 *  1e. only with `npm run bench -- network`: create + start + wait per network mode as a
 *     ratio to `none`, and 1 GiB through a `user` forward against the host's loopback
 *     (bench/network.ts).
 *  6. only with `npm run bench -- pool [N]`: N (1000) idle supervised sandboxes.
 *  7. only with `bash bench/run.sh inspect [N]`: the inspector's overhead, exit → page
 *     latency in chromium, N (1000) sandboxes on one page (bench/inspect.ts).
 *  7. only with `npm run bench -- kvm`: createSandbox({ kvm: true }) to a guest's first
 *     exit, against the same guest on the host (bench/kvm.ts).
 *  8. only with `npm run bench -- checkpoint`: checkpoint and restore of a counter,
 *     against runc's with the same criu (bench/checkpoint.ts).
 *
 * Run with `npm run bench` (root). Results also go to .bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { createEngine, type Engine } from '../index';
import { defaultSpec } from '../specs/default-spec';
import { benchRestart } from './restart';
import { benchLogs, LOGS_ARGS } from './logs';
import { have, podmanSection } from './podman';
import { idleSection, poolSection, settledMemory } from './pool';
import { usernsSection } from './userns';
import { networkSection } from './network';
import { inspectSection } from './inspect';
import { kvmSection } from './kvm';
import { residentSection } from './resident';
import { checkpointSection } from './checkpoint';
import { median } from './stats';

const ROOT = path.resolve(__dirname, '..', '..');
const ROOTFS = path.join(ROOT, 'test', 'fixtures', 'rootfs');
const RUNS = Number(process.env.RUNS ?? 40);
const WARMUP = 3;

function writeBundle(dir: string, args: string[], userns: boolean): string {
  fs.mkdirSync(dir, { recursive: true });
  const config = defaultSpec({ args, rootfs: ROOTFS, hostname: 'bench', ...(userns ? { userns: { hostId: 100000, size: 65536 } } : {}) });
  if (config.root) config.root.readonly = true;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/**
 * The idle section again in a fresh process with other V8 flags. V8 grows its young
 * generation to 2 x 16 MiB under the launch burst and keeps it: memory of the process,
 * not of any sandbox. A service running thousands of sandboxes can cap it
 * (`node --max-semi-space-size=1`); this run shows what each sandbox costs then.
 */
function idleInChild(count: number, v8Flags: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--expose-gc', ...v8Flags, __filename, 'idle', String(count)], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    timeout: 15 * 60_000,
  });
  const out = r.output[3]?.toString() ?? '';
  if (r.status !== 0 || !out) return { error: `idle run with ${v8Flags.join(' ')} failed (status ${r.status}, ${r.signal ?? 'no signal'})` };
  return { v8Flags, ...(JSON.parse(out) as Record<string, unknown>) };
}

function timeCli(argv: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.toString().trim()}`);
  return dt;
}

async function timePaddock(engine: Engine, id: string, bundle: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await engine.createSandbox(id, bundle, { stdio: 'ignore' });
  await engine.startRoot(id);
  const st = await engine.wait(id, id);
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (st.exitCode !== 0) throw new Error(`paddock /bin/true exited ${JSON.stringify(st)}`);
  await engine.destroy(id);
  return dt;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-'));
  fs.chmodSync(work, 0o711);
  const results: Record<string, unknown> = { host: `${os.type()} ${os.release()}, ${os.cpus().length} cpus`, runs: RUNS };
  const engine = await createEngine({ stateDir: path.join(work, 'state'), logger: pino({ level: 'warn' }) });
  try {
    if (process.argv[2] === 'idle') {
      // Child run of idleInChild: the idle section alone, its result as JSON on fd 3.
      const r = await idleSection(engine, work, writeBundle, Number(process.argv[3] ?? 1000), console.log);
      fs.writeSync(3, JSON.stringify(r));
      return;
    }
    if (process.argv[2] === 'podman') {
      // The podman figure alone.
      results.podman = podmanSection(work, ROOTFS, path.join(ROOT, 'dist', 'cli', 'paddock.js'), RUNS, median, console.log, path.join(ROOT, 'native', 'build', 'paddock'));
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'podman-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'resident') {
      // The resident figures alone (decision 0044).
      const peers = ['crun', 'runc'].filter(have);
      const t = writeBundle(path.join(work, 'bundle'), ['/bin/true'], false);
      const s = writeBundle(path.join(work, 'bundle-sleep'), ['sleep', '600'], false);
      results.resident = await residentSection(work, ROOT, t, s, peers, RUNS, median, console.log);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'resident-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'userns') {
      // The userns figures alone.
      results.userns = await usernsSection(work, ROOTFS, RUNS, console.log);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'userns-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'network') {
      // The network figures alone (docs/decisions/0041): `bash bench/run.sh network`.
      results.network = await networkSection(work, ROOTFS, RUNS, console.log);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'network-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'kvm') {
      results.kvm = await kvmSection(engine, work, ROOTFS, ROOT, RUNS, console.log);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'kvm-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'checkpoint') {
      results.checkpoint = await checkpointSection(engine, work, ROOTFS, Number(process.env.RUNS ?? 10), median, console.log);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'checkpoint-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'logs') {
      // The log-cap figures alone (decision 0031): `bash bench/run.sh logs`.
      const bundle = writeBundle(path.join(work, 'bundle-logs'), LOGS_ARGS, true);
      results.logs = await benchLogs(engine, path.join(work, 'state'), bundle, Number(process.env.RUNS ?? 5), median);
      console.log(JSON.stringify(results.logs, null, 2));
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'logs-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'inspect') {
      // The inspector's figures alone (decision 0042): `bash bench/run.sh inspect [N]`.
      results.inspect = await inspectSection(work, writeBundle, Number(process.env.RUNS ?? RUNS), Number(process.argv[3] ?? 1000), console.log);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'inspect-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    if (process.argv[2] === 'pool') {
      // The pool figures alone (the 1,000-sandbox part takes a while).
      results.pool = await poolSection(engine, work, writeBundle, RUNS, console.log);
      const count = Number(process.argv[3] ?? 1000);
      results.idle = await idleSection(engine, work, writeBundle, count, console.log);
      results.idleCappedYoungGeneration = idleInChild(count, ['--max-semi-space-size=1']);
      fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, '.bench', 'pool-results.json'), JSON.stringify(results, null, 2));
      return;
    }
    // ---- 1. cold path, side by side -------------------------------------------------
    const plain = writeBundle(path.join(work, 'bundle'), ['/bin/true'], false);
    const userns = writeBundle(path.join(work, 'bundle-userns'), ['/bin/true'], true);
    const t: Record<string, number[]> = { 'paddock (no userns)': [], 'paddock (userns)': [] };
    const peers = ['crun', 'runc'].filter(have);
    for (const p of peers) t[`${p} run`] = [];
    let n = 0;
    // Each round runs every contender once; the order rotates so none always runs
    // right after another's teardown (runc's, notably, slows whoever comes next).
    const contenders: Array<[string, () => Promise<number>]> = [
      ['paddock (no userns)', () => timePaddock(engine, `b${n++}`, plain)],
      ['paddock (userns)', () => timePaddock(engine, `b${n++}`, userns)],
      ...peers.map((p): [string, () => Promise<number>] => [`${p} run`, async () => timeCli([p, 'run', '--bundle', plain, `bench-${p}-${n++}`])]),
    ];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (let k = 0; k < contenders.length; k++) {
        const [name, run] = contenders[(i + k) % contenders.length] as [string, () => Promise<number>];
        const d = await run();
        if (i >= WARMUP) t[name]?.push(d);
      }
    }
    const crun = t['crun run'] ? median(t['crun run']) : NaN;
    console.log(`\n1. create + start + wait of /bin/true (medians of ${RUNS}, interleaved)`);
    console.log(`${'contender'.padEnd(24)} ${'median ms'.padStart(10)} ${'min ms'.padStart(8)} ${'÷ crun'.padStart(8)}`);
    const cold: Record<string, unknown> = {};
    for (const [name, xs] of Object.entries(t)) {
      const m = median(xs);
      cold[name] = { medianMs: m, minMs: Math.min(...xs), ratioToCrun: m / crun };
      console.log(`${name.padEnd(24)} ${m.toFixed(2).padStart(10)} ${Math.min(...xs).toFixed(2).padStart(8)} ${(m / crun).toFixed(2).padStart(8)}`);
    }
    results.coldPath = cold;

    // ---- 1b. the CLI path: `paddock run` against `node -e 0` + `crun run` ----------------
    const cliPath = path.join(ROOT, 'dist', 'cli', 'paddock.js');
    const cliRoot = path.join(work, 'cli-root');
    fs.mkdirSync(cliRoot, { mode: 0o711 });
    const c: Record<string, number[]> = { 'paddock run (CLI)': [], 'node -e 0': [] };
    if (peers.includes('crun')) c['crun run'] = [];
    const cliContenders: Array<[string, () => number]> = [
      ['paddock run (CLI)', () => timeCli([process.execPath, cliPath, '--root', cliRoot, 'run', '--bundle', plain, `cli-${n++}`])],
      ['node -e 0', () => timeCli([process.execPath, '-e', '0'])],
      ...(peers.includes('crun') ? [['crun run', () => timeCli(['crun', 'run', '--bundle', plain, `bench-crun-${n++}`])] as [string, () => number]] : []),
    ];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (let k = 0; k < cliContenders.length; k++) {
        const [name, run] = cliContenders[(i + k) % cliContenders.length] as [string, () => number];
        const d = run();
        if (i >= WARMUP) c[name]?.push(d);
      }
    }
    const cliMed = median(c['paddock run (CLI)'] ?? []);
    const nodeMed = median(c['node -e 0'] ?? []);
    const crunMed = c['crun run'] ? median(c['crun run']) : NaN;
    results.cli = { paddockRunMs: cliMed, nodeStartMs: nodeMed, crunRunMs: crunMed, ratio: cliMed / (nodeMed + crunMed) };
    console.log(`\n1b. CLI: paddock run ${cliMed.toFixed(1)} ms, node -e 0 ${nodeMed.toFixed(1)} ms, crun run ${crunMed.toFixed(1)} ms (medians of ${RUNS})`);
    console.log(`    (paddock run) / (node -e 0 + crun run) = ${(cliMed / (nodeMed + crunMed)).toFixed(2)}`);

    // ---- 1e. the native client and a warm paddockd ---------------------------------------
    results.resident = await residentSection(work, ROOT, plain, writeBundle(path.join(work, 'bundle-sleep'), ['sleep', '600'], false), peers, RUNS, median, console.log);

    // ---- 1c. podman run --rm, by runtime ----------------------
    // Fewer rounds: each is three podman runs of 0.3-1 s.
    const podmanFigures = podmanSection(work, ROOTFS, cliPath, Math.min(RUNS, 15), median, console.log, path.join(ROOT, 'native', 'build', 'paddock'));
    if (podmanFigures) results.podman = podmanFigures;

    // ---- 1d. userns: 'auto' from the builder, and the idmapped rootfs --------------------
    results.userns = await usernsSection(work, ROOTFS, RUNS, console.log);

    // ---- 2. memory ----------------------------------------------------------------------
    const idle = writeBundle(path.join(work, 'bundle-idle'), ['sleep', '600'], true);
    const h = await engine.createSandbox('idle0', idle, { stdio: 'ignore' });
    await engine.startRoot('idle0');
    await new Promise((r) => setTimeout(r, 200));
    const initRss = rssKiB(h.pid);
    await engine.destroy('idle0');
    const N = 100;
    const before = await settledMemory(0);
    const ids = Array.from({ length: N }, (_, i) => `idle${i + 1}`);
    for (const id of ids) {
      await engine.createSandbox(id, idle, { stdio: 'ignore' });
      await engine.startRoot(id);
    }
    const after = await settledMemory(N);
    const heapPer = (after.heapUsed - before.heapUsed) / N;
    const rssPer = (after.rss - before.rss) / N;
    const initRssAll = ids.map((id) => rssKiB(engine.list().find((s) => s.id === id)?.pid as number));
    await Promise.all(ids.map((id) => engine.destroy(id)));
    results.memory = { initRssKiB: initRss, initRssMedianKiBOf100: median(initRssAll), supervisorHeapPerSandboxBytes: heapPer, supervisorRssPerSandboxBytes: rssPer };
    console.log(`\n2. memory`);
    console.log(`paddock-init RSS with an idle container: ${initRss} KiB (median over ${N}: ${median(initRssAll)} KiB)`);
    // RSS from the page tables after full GCs (bench/pool.ts); at 100 sandboxes, V8 resizing
    // its heap after the sections above still shows in it: `npm run bench -- pool` is the figure.
    console.log(`supervisor heap per idle sandbox: ${(heapPer / 1024).toFixed(1)} KiB; RSS per idle sandbox: ${(rssPer / 1024).toFixed(1)} KiB (of 100; see section 6)`);

    // ---- 3. 100 concurrent ----------------------------------------------------------------
    const short = writeBundle(path.join(work, 'bundle-short'), ['sleep', '3'], true);
    const many = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const t0 = process.hrtime.bigint();
    await Promise.all(many.map(async (id) => {
      await engine.createSandbox(id, short, { stdio: 'ignore' });
      await engine.startRoot(id);
    }));
    const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const running = engine.list().filter((s) => many.includes(s.id) && s.status === 'running').length;
    const st = await Promise.all(many.map((id) => engine.wait(id, id)));
    const clean = st.filter((s) => s.exitCode === 0).length;
    await Promise.all(many.map((id) => engine.destroy(id)));
    results.concurrent = { sandboxes: 100, allStartedMs: startMs, perSecond: 100 / (startMs / 1000), running, exitedCleanly: clean };
    console.log(`\n3. 100 sandboxes started concurrently: all running after ${startMs.toFixed(0)} ms (${(100 / (startMs / 1000)).toFixed(0)}/s); running ${running}/100, exited 0: ${clean}/100`);

    // ---- 4. restart latency ------------------------------------------------------------------
    const failing = writeBundle(path.join(work, 'bundle-fail'), ['sh', '-c', 'exit 1'], true);
    const r = await benchRestart(engine, failing, Math.max(30, RUNS), median);
    results.restart = r;
    console.log(`\n4. exit → restart launched, beyond the configured ${r.delayMs} ms backoff (over ${r.restarts} restarts): median ${r.medianBeyondDelayMs.toFixed(2)} ms, p90 ${r.p90BeyondDelayMs.toFixed(2)} ms, max ${r.maxBeyondDelayMs.toFixed(2)} ms (target ≤ 5 ms)`);
    results.pool = await poolSection(engine, work, writeBundle, RUNS, console.log);
  } finally {
    for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
    await engine.close();
    for (const p of ['crun', 'runc']) if (have(p)) spawnSync('sh', ['-c', `${p} list -q 2>/dev/null | grep ^bench- | xargs -r -n1 ${p} delete -f`]);
    fs.rmSync(work, { recursive: true, force: true });
  }
  fs.mkdirSync(path.join(ROOT, '.bench'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, '.bench', 'results.json'), JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exit(1);
});
