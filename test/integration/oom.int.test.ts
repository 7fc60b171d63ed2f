import { filter, firstValueFrom, take } from 'rxjs';
import type { EngineEvent } from '../../index';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf } from '../helpers/env';

/**
 * OOM events (issue 16): a container that allocates past its memory limit is killed by
 * the kernel's OOM killer; the engine reports `oom` (v1 eventfd on this host, or v2
 * memory.events) and the container's SIGKILL exit.
 */
describeIf(['root', 'busybox', 'cgroups'])('oom events', () => {
  const fx = useEngine('oom');
  const LIMIT = 24 << 20;

  test('allocating past a small limit: an oom event, then the exit by SIGKILL', async () => {
    const sid = fx.id();
    const events: EngineEvent[] = [];
    const sub = fx.engine.events$.subscribe((e) => {
      if ((e.type === 'oom' || e.type === 'exit') && e.sandboxId === sid) events.push(e);
    });
    try {
      const oom = firstValueFrom(fx.engine.events$.pipe(filter((e) => e.type === 'oom' && e.sandboxId === sid), take(1)));
      // dd's 64 MiB block buffer is filled from /dev/zero: past the limit at once.
      const dir = fx.bundle({
        args: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'],
        extra: (c) => {
          c.linux!.resources = { ...(c.linux!.resources ?? {}), memory: { limit: LIMIT, swap: LIMIT } };
          // The first victim whatever else is in the cgroup (paddock-init is too: 0038).
          c.process!.oomScoreAdj = 1000;
        },
      });
      await fx.engine.createSandbox(sid, dir, { stdio: 'ignore' });
      await fx.engine.startRoot(sid);
      const status = await fx.engine.wait(sid, sid, { timeoutMs: 20_000 });
      expect(status).toMatchObject({ exitCode: null, signal: 9 });
      await expect(oom).resolves.toMatchObject({ type: 'oom', sandboxId: sid, containerId: sid, oomKills: 1 });
      expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['oom', 'exit']));
      const exit = events.find((e) => e.type === 'exit');
      expect(exit).toMatchObject({ containerId: sid, kind: 'container', exit: { signal: 9 } });
    } finally {
      sub.unsubscribe();
    }
  });

  test('a container within its limit gives no oom event; destroying it (the cgroup goes) gives none either', async () => {
    const sid = fx.id();
    const seen: EngineEvent[] = [];
    const sub = fx.engine.events$.pipe(filter((e) => e.type === 'oom')).subscribe((e) => seen.push(e));
    try {
      const dir = fx.bundle({
        args: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1M', 'count=4'],
        extra: (c) => {
          c.linux!.resources = { ...(c.linux!.resources ?? {}), memory: { limit: LIMIT, swap: LIMIT } };
        },
      });
      await fx.engine.createSandbox(sid, dir, { stdio: 'ignore' });
      await fx.engine.startRoot(sid);
      expect(await fx.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
      await fx.engine.destroy(sid);
      // Events are delivered on the event loop: one more turn of it after destroy.
      await new Promise((r) => setImmediate(r));
      expect(seen).toEqual([]);
    } finally {
      sub.unsubscribe();
    }
  });
});
