import * as fs from 'node:fs';
import { createEngine, type CreateSandboxOptions, type Engine, type EngineOptions } from '../../index';
import { reapZombies } from './subreaper';
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
    async run(args: string[], opts: Omit<MakeBundleOptions, 'args'> = {}, create: CreateSandboxOptions = {}) {
      const sid = this.id();
      const h = await ctx.engine.createSandbox(sid, this.bundle({ ...opts, args }), create);
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

/**
 * For tests in which one supervisor follows another on the same state dir: `open()`
 * makes the next engine (it is closed after the test). afterEach closes them all, then
 * a last engine stops and destroys whatever the test left (restart state included),
 * also when it failed; bundles and the state dir go, and orphaned inits are reaped.
 * The caller also calls useSubreaper() (inits of a dead supervisor are its orphans).
 */
export function useSuccessiveEngines(name: string) {
  const ctx = { stateDir: '' };
  const engines: Engine[] = [];
  const bundles: TestBundle[] = [];
  beforeEach(() => {
    ctx.stateDir = testStateDir(name);
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close().catch(() => undefined);
    const last = await createEngine({ stateDir: ctx.stateDir, logger: quietLogger() });
    await last.shutdown({ mode: 'stop', graceMs: 0 });
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(ctx.stateDir, { recursive: true, force: true });
    reapZombies();
  });
  return {
    get stateDir(): string {
      return ctx.stateDir;
    },
    /** The next supervisor on the state dir (createEngine options may be added). */
    async open(options: Partial<EngineOptions> = {}): Promise<Engine> {
      const e = await createEngine({ stateDir: ctx.stateDir, logger: quietLogger(), ...options });
      engines.push(e);
      return e;
    },
    /** Keeps an engine made elsewhere (closed after the test like the others). */
    adopt(e: Engine): Engine {
      engines.push(e);
      return e;
    },
    /** A bundle over the shared rootfs whose root runs `args`, removed after the test. */
    bundle(args: string[]): string {
      const b = makeBundle({ args });
      bundles.push(b);
      return b.dir;
    },
  };
}
