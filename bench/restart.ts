/**
 * Exit → restart launched, beyond the configured delay: how long the supervisor takes,
 * on top of the backoff it was told to wait, between learning that a sandbox's root
 * container exited and starting its relaunch. A sandbox running `sh -c 'exit 1'`
 * under 'always' with a constant 20 ms backoff restarts `runs` times; for each restart
 * the time from the engine's `exit` event to `restart.launched`, minus `delayMs`.
 */
import * as path from 'node:path';
import type { Engine, EngineEvent } from '../index';

export interface RestartFigure {
  readonly restarts: number;
  readonly delayMs: number;
  readonly medianBeyondDelayMs: number;
  readonly p90BeyondDelayMs: number;
  readonly maxBeyondDelayMs: number;
}

export async function benchRestart(engine: Engine, bundleDir: string, runs: number, median: (xs: number[]) => number): Promise<RestartFigure> {
  const id = 'restart-bench';
  const delayMs = 20;
  const beyond: number[] = [];
  let exitAt: number | undefined;
  let done!: () => void;
  let failed!: (e: Error) => void;
  const finished = new Promise<void>((res, rej) => {
    done = res;
    failed = rej;
  });
  const sub = engine.events$.subscribe((e: EngineEvent) => {
    if (e.type === 'exit' && e.sandboxId === id && e.containerId === id) exitAt = performance.now();
    if (e.type === 'restart.launched' && e.sandboxId === id && exitAt !== undefined) {
      beyond.push(performance.now() - exitAt - delayMs);
      exitAt = undefined;
      if (beyond.length >= runs) done();
    }
    if (e.type === 'restart.gaveUp' && e.sandboxId === id) failed(new Error(`gave up early: ${e.reason}`));
  });
  const timer = setTimeout(() => failed(new Error('restart bench timed out')), 120_000);
  try {
    await engine.createSandbox(id, path.resolve(bundleDir), {
      stdio: 'ignore',
      restart: { policy: 'always', maxRestarts: runs + 10, periodMs: 3_600_000, backoff: { initialMs: delayMs, maxMs: delayMs, factor: 1, jitter: 0 } },
    });
    await engine.startRoot(id);
    await finished;
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
    await engine.destroy(id).catch(() => undefined);
  }
  const sorted = [...beyond].sort((a, b) => a - b);
  return {
    restarts: beyond.length,
    delayMs,
    medianBeyondDelayMs: median(beyond),
    p90BeyondDelayMs: sorted[Math.floor(sorted.length * 0.9)] as number,
    maxBeyondDelayMs: sorted[sorted.length - 1] as number,
  };
}
