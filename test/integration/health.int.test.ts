import * as fs from 'node:fs';
import { firstValueFrom, filter, timeout } from 'rxjs';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';

/**
 * The liveness probe against a real paddock-init: a sandbox whose init is stopped
 * (SIGSTOP: alive, but it no longer answers PING) is reported unhealthy and killed
 * through its pidfd, instead of being waited on for ever.
 */
describeIf(['root', 'busybox'])('health probe', () => {
  const t = useEngine('hl');
  useSubreaper();

  test('a sandbox that stops answering is reported unhealthy and killed', async () => {
    const sid = t.id();
    const unhealthy = firstValueFrom(
      t.engine.events$.pipe(
        filter((e) => e.type === 'unhealthy' && e.sandboxId === sid),
        timeout(15_000),
      ),
    );
    const exits: unknown[] = [];
    const sub = t.engine.events$.subscribe((e) => {
      if (e.type === 'exit' && e.sandboxId === sid) exits.push(e);
    });
    const h = await t.engine.createSandbox(sid, t.bundle({ args: ['sleep', '60'] }), {
      health: { intervalMs: 50, timeoutMs: 100, failureThreshold: 2 },
    });
    await t.engine.startRoot(sid);
    process.kill(h.pid, 'SIGSTOP');
    try {
      const e = await unhealthy;
      expect(e).toMatchObject({ type: 'unhealthy', sandboxId: sid, failures: 2 });
      expect((e as { reason: string }).reason).toMatch(/no (answer|reply)/);
      const status = await t.engine.wait(sid, sid, { timeoutMs: 10_000 });
      expect(status.exitCode).toBeNull();
      expect(t.engine.isRunning(sid)).toBe(false);
      // init died with its container unreaped: the exit is still reported, once, as lost.
      expect(exits).toEqual([expect.objectContaining({ containerId: sid, kind: 'container', lost: true, exit: { exitCode: null, signal: null } })]);
      sub.unsubscribe();
      expect(fs.existsSync(`/proc/${h.pid}/cmdline`) && fs.readFileSync(`/proc/${h.pid}/cmdline`).length > 0).toBe(false);
    } finally {
      try {
        process.kill(h.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
  });

  test('a sandbox that answers is left alone', async () => {
    const sid = t.id();
    const seen: string[] = [];
    const sub = t.engine.events$.subscribe((e) => {
      if (e.type === 'unhealthy') seen.push(e.sandboxId);
    });
    // A ping may take its time on a loaded machine (2 s is a sanity bound, not a latency
    // claim); the sandbox outlives that timeout, so an init that never answered would be
    // reported before it exits and this test would fail.
    await t.engine.createSandbox(sid, t.bundle({ args: ['sh', '-c', 'sleep 3; exit 4'] }), {
      health: { intervalMs: 20, timeoutMs: 2_000, failureThreshold: 1 },
    });
    await t.engine.startRoot(sid);
    expect(await t.engine.wait(sid, sid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 4, signal: null });
    sub.unsubscribe();
    expect(seen).toEqual([]);
  });

  test.each([
    [{ intervalMs: -1 }, 'health.intervalMs'],
    [{ timeoutMs: 0 }, 'health.timeoutMs'],
    [{ failureThreshold: 1.5 }, 'health.failureThreshold'],
    ['often', 'health'],
  ])('bad health options %j are EINVALID_ARGUMENT naming %s, and nothing is created', async (health, field) => {
    const sid = t.id();
    await expect(
      t.engine.createSandbox(sid, t.bundle({ args: ['true'] }), { health: health as never }),
    ).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field } });
    expect(t.engine.list()).toEqual([]);
    expect(fs.existsSync(`${t.stateDir}/${sid}`)).toBe(false);
  });
});
