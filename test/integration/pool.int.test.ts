import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createEngine, type EngineEvent, type Pool, type PoolEvent } from '../../index';
import { detectLayout } from '../../actors/cgroups/sandbox-cgroup';
import { SandboxPaths } from '../../actors/sandbox/state-store';
import { findCgroup } from '../../actors/sandbox/launcher';
import { useEngine, useSuccessiveEngines } from '../helpers/engine-fixture';
import { describeIf, poll, quietLogger, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { useSubreaper } from '../helpers/subreaper';

/**
 * Warm pools over real sandboxes: members are real paddock-inits waiting in fresh
 * namespaces, acquire() starts their root container.
 */
describeIf(['root', 'busybox'])('warm pools (real sandboxes)', () => {
  const pools: Pool[] = [];
  // Declared before the fixture's, so it runs first: the fixture's destroy of a member
  // still launching would wait for that launch, which the pool owns.
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.drain();
  });
  const fx = useEngine('pool');
  const makePool = async (name: string, opts: Parameters<typeof fx.engine.pool>[1]) => {
    const p = await fx.engine.pool(name, opts);
    pools.push(p);
    return p;
  };
  const full = (p: Pool) => poll(() => (p.stats().idle === p.stats().size && p.stats().status === 'full' ? true : undefined), 20_000, `pool ${p.name} full`);
  /** Nothing of a sandbox is left: no process, no state dir, no cgroup. */
  const gone = (id: string, pid: number) => {
    expect(paddockInitPids()).not.toContain(pid);
    expect(fs.existsSync(path.join(fx.stateDir, id))).toBe(false);
    const layout = detectLayout();
    expect(findCgroup(new SandboxPaths(fx.stateDir, id), layout.mode === 'none' ? false : layout)).toBeUndefined();
  };

  test('a pool of 3 fills; 10 concurrent acquires get 10 distinct sandboxes that each run and exit with their own status; it refills', async () => {
    // Each member reads its exit status from its own stdin, so a mixed-up handle shows.
    const bundle = fx.bundle({ args: ['sh', '-c', 'read n; exit $n'] });
    const pool = await makePool('fill', { bundle, size: 3 });
    await full(pool);
    const idle = fx.engine.list().filter((s) => s.id.startsWith('fill-'));
    expect(idle.map((s) => [s.id, s.status])).toEqual([
      ['fill-1', 'created'],
      ['fill-2', 'created'],
      ['fill-3', 'created'],
    ]);

    const got = await Promise.all(Array.from({ length: 10 }, () => pool.acquire({ timeoutMs: 30_000 })));
    expect(new Set(got.map((g) => g.id)).size).toBe(10);
    expect(new Set(got.map((g) => g.pid)).size).toBe(10);
    for (const g of got) {
      expect(g.id).toMatch(/^fill-\d+$/);
      expect(g.container.containerId).toBe(g.id);
      expect(fx.engine.isRunning(g.id)).toBe(true);
    }
    got.forEach((g, i) => g.stdio!.stdin.end(`${i + 1}\n`));
    const statuses = await Promise.all(got.map((g) => fx.engine.wait(g.id, g.id, { timeoutMs: 20_000 })));
    expect(statuses.map((s) => s.exitCode)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Acquired sandboxes are the caller's: destroyed like any other.
    for (const g of got) await fx.engine.destroy(g.id);

    await full(pool);
    const stats = pool.stats();
    expect(stats).toMatchObject({ size: 3, idle: 3, waiting: 0, handedOut: 10, failures: 0 });
    expect(stats.launches).toBe(13);
  });

  test('a pool whose bundle breaks backs off between launches instead of spinning', async () => {
    const bundle = fx.bundle({ args: ['true'] });
    const pool = await makePool('brk', { bundle, size: 1, backoff: { initialMs: 50, factor: 2, maxMs: 200 } });
    await full(pool);
    const failures: Array<Extract<PoolEvent, { event: 'refillFailed' }> & { at: number }> = [];
    const sub = fx.engine.events$.subscribe((e: EngineEvent) => {
      if (e.type === 'pool' && e.pool === 'brk' && e.event === 'refillFailed') failures.push({ ...e, at: performance.now() });
    });
    try {
      // The rootfs goes away under the pool; its idle member is then lost, and every refill fails.
      const configPath = path.join(bundle, 'config.json');
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
      config.root.path = '/nonexistent-paddock-rootfs';
      fs.writeFileSync(configPath, JSON.stringify(config));
      await fx.engine.destroy('brk-1');
      await poll(() => (failures.length >= 5 ? true : undefined), 10_000, 'five failed launches');
      const launches = pool.stats().launches;
      expect(failures.slice(0, 5).map((f) => [f.attempt, f.retryInMs, f.error.code])).toEqual([
        [1, 50, 'EROOTFS_MISSING'],
        [2, 100, 'EROOTFS_MISSING'],
        [3, 200, 'EROOTFS_MISSING'],
        [4, 200, 'EROOTFS_MISSING'],
        [5, 200, 'EROOTFS_MISSING'],
      ]);
      // Each attempt waited out the backoff the previous one announced (a lower bound, not a timing figure).
      for (let i = 1; i < 5; i++) {
        const prev = failures[i - 1]!;
        expect(failures[i]!.at - prev.at).toBeGreaterThanOrEqual(prev.retryInMs - 1);
      }
      // 1 good launch + one launch per failure: nothing in between.
      expect(launches).toBe(1 + failures.length);
      expect(pool.stats()).toMatchObject({ status: 'backingOff', idle: 0 });
      // An acquirer waits, bounded, and hears why.
      await expect(pool.acquire({ timeoutMs: 100 })).rejects.toMatchObject({ code: 'ETIMEOUT', message: expect.stringContaining('rootfs') });
    } finally {
      sub.unsubscribe();
    }
  });

  test('drain rejects waiters, leaves nothing of the idle members and refuses later acquires', async () => {
    const bundle = fx.bundle({ args: ['true'] });
    const pool = await makePool('drn', { bundle, size: 3 });
    await full(pool);
    const members = fx.engine.list().filter((s) => s.id.startsWith('drn-')).map((s) => ({ id: s.id, pid: s.pid as number }));
    expect(members).toHaveLength(3);
    const drainedEvent = new Promise<EngineEvent>((resolve) => {
      const sub = fx.engine.events$.subscribe((e) => {
        if (e.type === 'pool' && e.event === 'drained' && e.pool === 'drn') {
          sub.unsubscribe();
          resolve(e);
        }
      });
    });
    await pool.drain();
    await expect(drainedEvent).resolves.toEqual({ type: 'pool', pool: 'drn', event: 'drained' });
    for (const m of members) gone(m.id, m.pid);
    expect(fx.engine.list()).toEqual([]);
    expect(pool.stats().status).toBe('drained');
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'EPOOL_DRAINED', name: 'PoolError' });
    // The name is free again.
    const again = await makePool('drn', { bundle, size: 1 });
    await full(again);
    expect(fx.engine.list().map((s) => s.id)).toEqual(['drn-1']);
  });

  test('a drain during a fill destroys the member still launching, and waiting acquirers are rejected', async () => {
    const bundle = fx.bundle({ args: ['true'] });
    const pool = await makePool('mid', { bundle, size: 2 });
    // Settled handlers attached at once: the drain rejects some before the test looks.
    const waiting = Promise.allSettled([1, 2, 3].map(() => pool.acquire({ timeoutMs: 20_000 })));
    await pool.drain();
    const results = await waiting;
    // The first launches may have served some; the rest were rejected by the drain.
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'EPOOL_DRAINED' });
      else await fx.engine.destroy(r.value.id);
    }
    expect(results.some((r) => r.status === 'rejected')).toBe(true);
    expect(fx.engine.list()).toEqual([]);
  });

  test('max age: idle members are replaced by fresh ones', async () => {
    const bundle = fx.bundle({ args: ['true'] });
    const pool = await makePool('age', { bundle, size: 1, maxAgeMs: 300 });
    await full(pool);
    const first = fx.engine.list().find((s) => s.id === 'age-1');
    expect(first).toBeDefined();
    await poll(() => (pool.stats().recycled >= 1 && pool.stats().idle === 1 ? true : undefined), 10_000, 'a recycled member');
    gone('age-1', first!.pid as number);
    expect(fx.engine.list().map((s) => s.id)).toEqual(['age-2']);
  });

  test('an idle member killed under the pool is replaced, never handed out', async () => {
    const bundle = fx.bundle({ args: ['true'] });
    const pool = await makePool('lost', { bundle, size: 1 });
    await full(pool);
    const pid = fx.engine.list().find((s) => s.id === 'lost-1')?.pid as number;
    process.kill(pid, 'SIGKILL');
    await poll(() => (fx.engine.list().some((s) => s.id === 'lost-2') && pool.stats().idle === 1 ? true : undefined), 10_000, 'a replacement');
    const got = await pool.acquire({ timeoutMs: 10_000 });
    expect(got.id).toBe('lost-2');
    expect(await fx.engine.wait(got.id, got.id, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    expect(fx.engine.list().some((s) => s.id === 'lost-1')).toBe(false);
  });

  test('bad input is refused with typed errors and creates nothing', async () => {
    const bundle = fx.bundle({ args: ['true'] });
    const e = fx.engine;
    await expect(e.pool('z', { bundle, size: 0 })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'size', pool: 'z' } });
    await expect(e.pool('z', { bundle, size: -2 })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'size' } });
    await expect(e.pool('z', { bundle, size: 1.5 })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'size' } });
    await expect(e.pool('z', { bundle, size: 1, maxAgeMs: -1 })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'maxAgeMs' } });
    await expect(e.pool('z', { bundle, size: 1, backoff: { initialMs: 0 } })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'backoff.initialMs' } });
    await expect(e.pool('../z', { bundle, size: 1 })).rejects.toMatchObject({ code: 'EINVALID_ID' });
    await expect(e.pool('z', { bundle: '/nonexistent-bundle', size: 1 })).rejects.toMatchObject({ code: 'EBUNDLE_NOT_FOUND' });
    await expect(e.pool('z', { bundle, size: 1, stdio: 'tty' as never })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'stdio' } });
    expect(e.list()).toEqual([]);
    const p = await makePool('dup', { bundle, size: 1 });
    await expect(e.pool('dup', { bundle, size: 1 })).rejects.toMatchObject({ code: 'EPOOL_EXISTS', name: 'PoolError', context: { pool: 'dup' } });
    await expect(p.acquire({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT' });
  });

  test('engine.close() drains its pools: no idle member outlives the engine', async () => {
    const stateDir = testStateDir('poolclose');
    const engine = await createEngine({ stateDir, logger: quietLogger() });
    try {
      const pool = await engine.pool('cls', { bundle: fx.bundle({ args: ['true'] }), size: 2 });
      await poll(() => (pool.stats().idle === 2 ? true : undefined), 20_000, 'pool full');
      const pids = engine.list().map((s) => s.pid as number);
      await engine.close();
      for (const pid of pids) expect(paddockInitPids()).not.toContain(pid);
      expect(fs.readdirSync(stateDir).filter((f) => f.startsWith('cls-'))).toEqual([]);
    } finally {
      for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
      await engine.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

/**
 * A supervisor that dies with a full pool leaves its idle members (created, prepared)
 * behind; the next supervisor's pool of the same name and bundle takes them over
 * instead of stranding them and launching new ones.
 */
describeIf(['root', 'busybox'])('warm pools across a supervisor crash', () => {
  const t = useSuccessiveEngines('poolx');
  useSubreaper();

  test('the members a SIGKILLed supervisor left are adopted, handed out and run', async () => {
    const bundle = t.bundle(['sh', '-c', 'echo adopted; exit 6']);
    const script = `
      const { createEngine } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'index.js'))});
      const pino = require('pino');
      (async () => {
        const e = await createEngine({ stateDir: ${JSON.stringify(t.stateDir)}, logger: pino({ level: 'silent' }) });
        const p = await e.pool('px', { bundle: ${JSON.stringify(bundle)}, size: 2 });
        const t0 = Date.now();
        while (p.stats().idle < 2 && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
        process.stdout.write('idle ' + p.stats().idle + '\\n');
        setInterval(() => {}, 1000);
      })().catch((err) => { process.stdout.write('error ' + err.message + '\\n'); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`pool supervisor did not fill: ${buf}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) {
          clearTimeout(timer);
          resolve(buf.trim());
        }
      });
    });
    expect(line).toBe('idle 2');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const e = await t.open();
    const left = e.list().map((s) => `${s.id}:${s.status}`).sort();
    expect(left).toEqual(['px-1:created', 'px-2:created']);
    const pool = await e.pool('px', { bundle, size: 2 });
    const got = await pool.acquire({ timeoutMs: 20_000 });
    expect(['px-1', 'px-2']).toContain(got.id);
    expect(await e.wait(got.id, got.id, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 6 });
    // Both leftovers were taken before anything new was launched.
    await poll(() => (pool.stats().idle === 2 ? true : undefined), 20_000, 'refill');
    // One new member replaces the one handed out; the other leftover is still idle.
    const ids = e.list().map((s) => s.id);
    expect(ids).toHaveLength(3);
    expect(ids).toEqual(expect.arrayContaining(['px-1', 'px-2']));
    await pool.drain();
    await e.destroy(got.id);
  });
});
