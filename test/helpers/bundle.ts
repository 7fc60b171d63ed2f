/**
 * Throwaway OCI bundles for tests. Every bundle points at the one shared busybox
 * rootfs (test/fixtures/rootfs, built by test/fixtures/make-rootfs.sh) and keeps it
 * read-only, so tests never copy or modify it.
 */

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultSpec } from '../../specs/default-spec';
import { OciConfig } from '../../specs/oci';

/** Container ids 0..65535 map to host ids 100000..165535. */
export const TEST_USERNS = { hostId: 100000, size: 65536 } as const;

/**
 * In a jest run with the integration project (PADDOCK_TEST_ROOT set by the global setup)
 * bundles live under the run's root, so the teardown's leak check sees one a test left
 * behind; elsewhere (a unit run alone) in one shared folder under the temp dir.
 */
export const BUNDLES_DIR = process.env.PADDOCK_TEST_ROOT ? path.join(process.env.PADDOCK_TEST_ROOT, 'bundles') : path.join(os.tmpdir(), 'paddock-test-bundles');

const ROOTFS = path.resolve(__dirname, '..', 'fixtures', 'rootfs');

/** Absolute path of the shared fixture rootfs; throws if it has not been built. */
export function fixtureRootfs(): string {
  if (!fs.existsSync(path.join(ROOTFS, 'bin', 'busybox'))) {
    throw new Error(`fixture rootfs not built at ${ROOTFS}: run bash test/fixtures/make-rootfs.sh`);
  }
  return ROOTFS;
}

export interface MakeBundleOptions {
  args: string[];
  hostname?: string;
  /** Default true: TEST_USERNS. */
  userns?: boolean;
  /** Added to the default env (PATH, TERM); an entry with the same key replaces the default. */
  env?: string[];
  /** Default true. */
  readonlyRootfs?: boolean;
  /** Default: the shared fixture rootfs. */
  rootfs?: string;
  /** Last chance to edit the config before it is written. */
  extra?: (config: OciConfig) => void;
}

export interface TestBundle {
  readonly dir: string;
  cleanup(): void;
}

export function makeBundle(opts: MakeBundleOptions): TestBundle {
  const rootfs = opts.rootfs ?? fixtureRootfs();
  const config = defaultSpec({
    args: opts.args,
    rootfs,
    ...(opts.hostname !== undefined ? { hostname: opts.hostname } : {}),
    userns: opts.userns === false ? false : { ...TEST_USERNS },
  });
  if (config.root) config.root.readonly = opts.readonlyRootfs ?? true;
  if (opts.env && config.process) {
    const byKey = new Map<string, string>();
    for (const e of [...(config.process.env ?? []), ...opts.env]) byKey.set(e.split('=', 1)[0] ?? e, e);
    config.process.env = [...byKey.values()];
  }
  opts.extra?.(config);

  fs.mkdirSync(BUNDLES_DIR, { recursive: true });
  const dir = fs.mkdtempSync(path.join(BUNDLES_DIR, 'b-'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return {
    dir,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
