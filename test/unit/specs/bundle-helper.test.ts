import * as fs from 'fs';
import * as path from 'path';
import { BUNDLES_DIR, fixtureRootfs, makeBundle } from '../../helpers/bundle';
import { loadBundle } from '../../../specs/load';
import { planContainer, planSandbox } from '../../../specs/plan';
import { seccompOf } from '../../../actors/containers/seccomp-cache';
import { tempDirs } from './helpers';
import { testIf } from '../../helpers/env';

const tmp = tempDirs();
afterEach(() => tmp.cleanup());

describe('makeBundle', () => {
  it('writes a loadable bundle with a user namespace by default, and cleans up', async () => {
    const rootfs = tmp.make();
    const b = makeBundle({ args: ['echo', 'hi'], hostname: 'h1', env: ['A=1', 'TERM=dumb'], rootfs });
    try {
      expect(path.dirname(b.dir)).toBe(BUNDLES_DIR);
      const loaded = await loadBundle(b.dir);
      expect(loaded.rootfs).toBe(fs.realpathSync(rootfs));
      expect(loaded.config.root?.readonly).toBe(true);
      expect(loaded.config.process?.env).toEqual([expect.stringMatching(/^PATH=/), 'TERM=dumb', 'A=1']);
      const sb = planSandbox(loaded);
      expect(sb).toMatchObject({ uidMap: '0 100000 65536\n', hostUidForRoot: 100000, hostname: 'h1' });
      expect(planContainer(loaded, {}, { seccomp: seccompOf(loaded.config) }).args).toEqual(['echo', 'hi']);
    } finally {
      b.cleanup();
    }
    expect(fs.existsSync(b.dir)).toBe(false);
  });

  it('honours userns false, readonlyRootfs false and extra', async () => {
    const b = makeBundle({
      args: ['true'],
      userns: false,
      readonlyRootfs: false,
      rootfs: tmp.make(),
      extra: (c) => { c.process!.cwd = '/tmp'; },
    });
    try {
      const loaded = await loadBundle(b.dir);
      expect(loaded.config.linux?.uidMappings).toBeUndefined();
      expect(loaded.config.root?.readonly).toBe(false);
      expect(loaded.config.process?.cwd).toBe('/tmp');
      expect(planSandbox(loaded).hostUidForRoot).toBe(0);
    } finally {
      b.cleanup();
    }
  });

  testIf(['fixture-rootfs'])('uses the fixture rootfs when it is built', () => {
    const b = makeBundle({ args: ['sh'] });
    try {
      const config = JSON.parse(fs.readFileSync(path.join(b.dir, 'config.json'), 'utf8'));
      expect(config.root.path).toBe(fixtureRootfs());
      expect(path.isAbsolute(config.root.path)).toBe(true);
    } finally {
      b.cleanup();
    }
  });
});
