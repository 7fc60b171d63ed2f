import * as fs from 'node:fs';
import { createEngine, type Engine } from '../../index';
import { makeBundle, type MakeBundleOptions, type TestBundle } from './bundle';
import { quietLogger, readAll, testStateDir } from './env';

/**
 * A fresh engine and state dir per test, and bundles made on demand; afterEach
 * destroys every sandbox, closes the engine and removes what the test made, also when
 * the test failed.
 */
export function useEngine(name: string) {
  const ctx = { engine: undefined as unknown as Engine, stateDir: '' };
  let seq = 0;
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
    /** A fresh sandbox id for this test file (`<name>1`, `<name>2`, ...). */
    id(): string {
      return `${name}${++seq}`;
    },
    /** Create + start a sandbox whose root runs `args`; wait for it and read its output. */
    async run(args: string[], opts: Omit<MakeBundleOptions, 'args'> = {}) {
      const sid = this.id();
      const h = await ctx.engine.createSandbox(sid, this.bundle({ ...opts, args }));
      await ctx.engine.startRoot(sid);
      const status = await ctx.engine.wait(sid, sid, { timeoutMs: 20_000 });
      return { sid, status, stdout: await readAll(h.stdio!.stdout), stderr: await readAll(h.stdio!.stderr) };
    },
  };
}

/** The value of a `Name:\tvalue` line, as in /proc/self/status. */
export function statusField(out: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(out)?.[1];
}
