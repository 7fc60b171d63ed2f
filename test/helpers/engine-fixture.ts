import * as fs from 'node:fs';
import { createEngine, type Engine } from '../../index';
import { makeBundle, type MakeBundleOptions, type TestBundle } from './bundle';
import { quietLogger, testStateDir } from './env';

/**
 * A fresh engine and state dir per test, and bundles made on demand; afterEach
 * destroys every sandbox, closes the engine and removes what the test made, also when
 * the test failed.
 */
export function useEngine(name: string) {
  const ctx = { engine: undefined as unknown as Engine, stateDir: '' };
  const bundles: TestBundle[] = [];
  beforeEach(async () => {
    ctx.stateDir = testStateDir(name);
    ctx.engine = await createEngine({ stateDir: ctx.stateDir, logger: quietLogger() });
  });
  afterEach(async () => {
    for (const s of ctx.engine.list()) await ctx.engine.destroy(s.id).catch(() => undefined);
    await ctx.engine.close();
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(ctx.stateDir, { recursive: true, force: true });
  });
  return {
    get engine(): Engine {
      return ctx.engine;
    },
    get stateDir(): string {
      return ctx.stateDir;
    },
    /** Writes a bundle (config.json over the shared busybox rootfs) removed after the test. */
    bundle(opts: MakeBundleOptions): string {
      const b = makeBundle(opts);
      bundles.push(b);
      return b.dir;
    },
    track(b: TestBundle): void {
      bundles.push(b);
    },
  };
}
