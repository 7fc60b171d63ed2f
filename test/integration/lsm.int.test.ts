/**
 * AppArmor/SELinux fields on this host: with the LSM off they are skipped with a
 * warning and the sandbox runs; with it on, the create is refused (actors/containers/lsm.ts).
 */
import * as fs from 'node:fs';
import { createEngine, type Engine } from '../../index';
import { isPaddockError } from '../../base/errors';
import { detectLsms } from '../../actors/containers/lsm';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { capturingLogger, describeIf, readAll, testStateDir } from '../helpers/env';

describeIf(['root', 'busybox'])('AppArmor / SELinux fields', () => {
  let engine: Engine | undefined;
  let stateDir = '';
  let bundle: TestBundle | undefined;
  const lines: Array<Record<string, unknown>> = [];

  beforeEach(async () => {
    lines.length = 0;
    stateDir = testStateDir('lsm');
    engine = await createEngine({ stateDir, logger: capturingLogger(lines) });
  });
  afterEach(async () => {
    for (const s of engine?.list() ?? []) await engine?.destroy(s.id).catch(() => undefined);
    await engine?.close();
    bundle?.cleanup();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test('labels for an LSM the host does not run: the sandbox runs, each field is a logged warning', async () => {
    const lsms = detectLsms();
    bundle = makeBundle({
      args: ['echo', 'ran'],
      extra: (c) => {
        c.process!.apparmorProfile = 'docker-default';
        c.process!.selinuxLabel = 'system_u:system_r:container_t:s0';
        c.linux!.mountLabel = 'system_u:object_r:container_file_t:s0:c1,c2';
      },
    });
    const e = engine as Engine;
    if (lsms.apparmor || lsms.selinux) {
      const err = await e.createSandbox('lsm1', bundle.dir).catch((x: unknown) => x);
      expect(isPaddockError(err, 'ECONFIG_UNSUPPORTED')).toBe(true);
      expect(e.list()).toEqual([]);
      return;
    }
    const h = await e.createSandbox('lsm1', bundle.dir);
    await e.startRoot('lsm1');
    expect(await e.wait('lsm1', 'lsm1', { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect(await readAll(h.stdio!.stdout)).toBe('ran\n');
    const warnings = lines.filter((l) => l.step === 'lsm');
    expect(warnings.map((l) => [l.level, l.sandboxId, l.field])).toEqual([
      [40, 'lsm1', 'process.apparmorProfile'],
      [40, 'lsm1', 'process.selinuxLabel'],
      [40, 'lsm1', 'linux.mountLabel'],
    ]);
  });
});
