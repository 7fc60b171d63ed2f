import * as fs from 'node:fs';
import * as path from 'node:path';
import { createEngine, isPaddockError, type Engine } from '../../index';
import { BUNDLES_DIR, type makeBundle } from '../helpers/bundle';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, quietLogger } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';

/**
 * Bad input gets a typed error with a stable code and changes nothing: no sandbox in
 * list(), no state folder, no process.
 */
describeIf(['root', 'busybox'])('bad input', () => {
  const fx = useEngine('bad');
  const bundle = (opts: Parameters<typeof makeBundle>[0]) => fx.bundle(opts);
  let engine: Engine;
  let stateDir: string;
  beforeEach(() => {
    engine = fx.engine;
    stateDir = fx.stateDir;
  });

  async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(isPaddockError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    // One line, lowercase start, no trailing period.
    expect((err as Error).message).not.toMatch(/\n|\.$/);
    return err as Error;
  }

  function nothingChanged(id: string, initsBefore: number[]) {
    expect(engine.list().map((s) => s.id)).not.toContain(id);
    expect(fs.existsSync(path.join(stateDir, id))).toBe(false);
    expect(paddockInitPids().filter((p) => !initsBefore.includes(p))).toEqual([]);
  }

  test('missing bundle, missing config.json, malformed JSON, invalid field, missing rootfs', async () => {
    const inits = paddockInitPids();
    await expectCode(engine.createSandbox('x1', '/nonexistent/bundle'), 'EBUNDLE_NOT_FOUND');
    nothingChanged('x1', inits);

    fs.mkdirSync(BUNDLES_DIR, { recursive: true });
    const empty = fs.mkdtempSync(path.join(BUNDLES_DIR, 'empty-'));
    fx.track({ dir: empty, cleanup: () => fs.rmSync(empty, { recursive: true, force: true }) });
    await expectCode(engine.createSandbox('x2', empty), 'ECONFIG_MISSING');
    nothingChanged('x2', inits);

    fs.writeFileSync(path.join(empty, 'config.json'), '{"ociVersion": "1.0.2", "process": {');
    await expectCode(engine.createSandbox('x3', empty), 'ECONFIG_MALFORMED');
    nothingChanged('x3', inits);

    const bad = bundle({ args: ['true'], extra: (c) => ((c.process as { args: unknown }).args = []) });
    const err = await expectCode(engine.createSandbox('x4', bad), 'ECONFIG_INVALID');
    expect(err.message).toContain('process.args');
    nothingChanged('x4', inits);

    const noRoot = bundle({ args: ['true'], rootfs: '/nonexistent/rootfs' });
    await expectCode(engine.createSandbox('x5', noRoot), 'EROOTFS_MISSING');
    nothingChanged('x5', inits);
  });

  test('invalid and duplicate ids, unknown ids', async () => {
    const dir = bundle({ args: ['sleep', '30'] });
    await expectCode(engine.createSandbox('../evil', dir), 'EINVALID_ID');
    await engine.createSandbox('dup', dir);
    await expectCode(engine.createSandbox('dup', dir), 'ESANDBOX_EXISTS');
    expect(engine.list().filter((s) => s.id === 'dup')).toHaveLength(1);
    await expectCode(engine.startRoot('nope'), 'ESANDBOX_NOT_FOUND');
    await expectCode(engine.wait('dup', 'nope'), 'ECONTAINER_NOT_FOUND');
    await expectCode(engine.waitPid('dup', 4242), 'EPROCESS_NOT_FOUND');
    await expectCode(engine.destroy('nope'), 'ESANDBOX_NOT_FOUND');
  });

  test('startRoot twice, invalid signal, exec into a stopped container', async () => {
    const dir = bundle({ args: ['sleep', '30'] });
    await engine.createSandbox('twice', dir);
    await engine.startRoot('twice');
    await expectCode(engine.startRoot('twice'), 'EINVALID_STATE');
    await expectCode(engine.signal('twice', 'twice', 'SIGNOPE'), 'EINVALID_SIGNAL');
    await expectCode(engine.signal('twice', 'twice', 99), 'EINVALID_SIGNAL');
    expect(engine.isRunning('twice')).toBe(true);

    const quick = bundle({ args: ['true'] });
    await engine.createSandbox('done', quick);
    await engine.startRoot('done');
    await engine.wait('done', 'done', { timeoutMs: 10_000 });
    await expectCode(engine.execute('done', 'done', { args: ['true'] }), 'EINVALID_STATE');
    await expectCode(engine.signal('done', 'done', 'SIGTERM'), 'EINVALID_STATE');
  });

  test('a start whose execve fails names the step and leaves the sandbox created', async () => {
    const dir = bundle({ args: ['/no/such/binary'] });
    await engine.createSandbox('noexec', dir);
    const err = await expectCode(engine.startRoot('noexec'), 'ELAUNCH_STEP');
    expect(err.message).toMatch(/^execve: ENOENT/);
    expect(engine.list().find((s) => s.id === 'noexec')?.status).toBe('created');
  });

  test('overlapping uid maps are refused at validation, naming the field', async () => {
    const inits = paddockInitPids();
    const dir = bundle({
      args: ['true'],
      extra: (c) => {
        c.linux!.uidMappings = [
          { containerID: 0, hostID: 100000, size: 65536 },
          { containerID: 10, hostID: 300000, size: 10 },
        ];
      },
    });
    const err = await expectCode(engine.createSandbox('badmap', dir), 'ECONFIG_INVALID');
    expect(err.message).toMatch(/^linux\.uidMappings/);
    nothingChanged('badmap', inits);
  });

  test('engine options: a relative stateDir or seccompCacheDir, or an unknown exitReports, is EINVALID_ARGUMENT, and no engine is made', async () => {
    await expectCode(createEngine({ stateDir: 'relative/dir', logger: quietLogger(), reattach: false }), 'EINVALID_ARGUMENT');
    expect(fs.existsSync('relative')).toBe(false);
    const err = await expectCode(createEngine({ stateDir, logger: quietLogger(), reattach: false, exitReports: 'exactly-once' as never }), 'EINVALID_ARGUMENT');
    expect(err.message).toMatch(/exitReports must be 'at-most-once' or 'at-least-once', not "exactly-once"/);
    const err2 = await expectCode(createEngine({ stateDir: path.join(stateDir, 'never'), logger: quietLogger(), reattach: false, seccompCacheDir: 'kept' }), 'EINVALID_ARGUMENT');
    expect(err2.message).toMatch(/seccompCacheDir must be an absolute path/);
    expect(fs.existsSync(path.join(stateDir, 'never'))).toBe(false);
  });

  test('a launch that fails midway names the step and leaves nothing behind', async () => {
    const inits = paddockInitPids();
    const dir = bundle({ args: ['true'] });
    // An "init" that starts in the new namespaces and exits without reporting readiness.
    const broken = await createEngine({ stateDir, logger: quietLogger(), initPath: '/bin/true', reattach: false });
    try {
      const err = await expectCode(broken.createSandbox('midway', dir), 'ELAUNCH_STEP');
      expect((err as unknown as { context: { step?: string } }).context.step).toBe('ready');
      nothingChanged('midway', inits);
      expect(broken.list()).toEqual([]);
      // And an init binary that does not exist fails at the first step, naming it.
      const missing = await createEngine({ stateDir, logger: quietLogger(), initPath: '/nonexistent/paddock-init', reattach: false });
      const err2 = await expectCode(missing.createSandbox('noinit', dir), 'ELAUNCH_STEP');
      expect(err2.message).toMatch(/^open_init: ENOENT/);
      nothingChanged('noinit', inits);
      await missing.close();
    } finally {
      await broken.close();
    }
  });

  test('an id that makes the socket path too long fails before anything is created', async () => {
    const inits = paddockInitPids();
    // A valid 64-character id (podman's ids are that long) under this state dir.
    const id = 'x'.repeat(64);
    expect(`${stateDir}/${id}/control.sock`.length).toBeGreaterThan(107);
    const err = await expectCode(engine.createSandbox(id, bundle({ args: ['true'] })), 'ELAUNCH_STEP');
    expect(err.message).toMatch(/^state_dir: ENAMETOOLONG/);
    nothingChanged(id, inits);
  });

  test('pause/resume/checkpoint of a created sandbox are refused; a restore over its id too', async () => {
    const dir = bundle({ args: ['sleep', '30'] });
    await engine.createSandbox('ns', dir);
    await expectCode(engine.pause('ns'), 'EINVALID_STATE');
    await expectCode(engine.resume('ns'), 'EINVALID_STATE');
    expect(engine.list().find((s) => s.id === 'ns')?.status).toBe('created');
    await expectCode(engine.checkpoint('ns', { imagePath: '/tmp/x' }), 'EINVALID_STATE');
    await expectCode(engine.restore('ns', dir, { imagePath: '/tmp/x' }), 'ESANDBOX_EXISTS');
    expect(engine.list().find((s) => s.id === 'ns')?.status).toBe('created');
  });
});
