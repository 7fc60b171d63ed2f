/**
 * Loads an OCI bundle: a directory holding config.json and (usually) the rootfs.
 * Everything that can be checked before launch is checked here, so a bad bundle
 * fails with a SpecError naming the field instead of a launch step failing later.
 */

import * as fs from 'node:fs';
import * as path from 'path';
import { errnoOf } from '../base/errno';
import { SpecError } from '../base/errors';
import { DeepReadonly, deepFreeze } from './freeze';
import { locateJsonError } from './json-position';
import { parseMount } from './mount-options';
import { OciConfig } from './oci';
import { validateConfig } from './validate';

export interface Bundle {
  /** Absolute, symlink-free path of the bundle directory. */
  readonly dir: string;
  readonly config: DeepReadonly<OciConfig>;
  /** Absolute, symlink-free path of the root filesystem. */
  readonly rootfs: string;
}


/**
 * The last bundle loaded from each directory. Bundles are deep-frozen, so sandboxes made
 * from an unchanged bundle (a pool's members, a restart) share one copy of its config:
 * a few KiB of objects and strings each, and the parse and validation. Every load still
 * reads config.json and checks the rootfs and bind sources: the copy is reused only
 * when the text and the rootfs are the same. A handful of directories are kept.
 */
const lastLoaded = new Map<string, { text: string; bundle: Bundle }>();
const LAST_LOADED_MAX = 32;

// Synchronous fs calls on purpose: a handful of stats and one small read cost tens of
// microseconds each, while each promise-based call is a thread-pool round trip (~0.2 ms)
// on the path every sandbox start takes.
export async function loadBundle(bundleDir: string): Promise<Bundle> {
  const asked = path.resolve(bundleDir);
  let dir: string;
  try {
    const st = fs.statSync(asked);
    if (!st.isDirectory()) {
      throw new SpecError('EBUNDLE_NOT_FOUND', `bundle is not a directory: ${asked}`, { path: asked });
    }
    dir = fs.realpathSync(asked);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError('EBUNDLE_NOT_FOUND', `bundle directory not found: ${asked} (${errnoOf(e) ?? 'error'})`, { path: asked }, e);
  }

  const configPath = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch (e) {
    const why = errnoOf(e) === 'EISDIR' ? 'is not a regular file' : `cannot be read (${errnoOf(e) ?? 'error'})`;
    const msg = errnoOf(e) === 'ENOENT' ? `bundle has no config.json: ${dir}` : `config.json ${why}: ${configPath}`;
    throw new SpecError('ECONFIG_MISSING', msg, { path: configPath }, e);
  }

  // Same text: the validated config is reused; its rootfs and bind sources are checked
  // again all the same (they can change).
  const last = lastLoaded.get(dir);
  const config = last?.text === text ? last.bundle.config : parseConfig(text, configPath);
  const rootfs = resolveRootfs(dir, config);
  await checkBindSources(dir, config);
  if (last?.bundle.config === config && last.bundle.rootfs === rootfs) return last.bundle;

  // A reused config is frozen already: only the new wrapper needs it.
  const bundle = (config === last?.bundle.config ? Object.freeze({ dir, config, rootfs }) : deepFreeze({ dir, config, rootfs })) as Bundle;
  lastLoaded.delete(dir);
  lastLoaded.set(dir, { text, bundle });
  if (lastLoaded.size > LAST_LOADED_MAX) lastLoaded.delete(lastLoaded.keys().next().value as string);
  return bundle;
}

/**
 * A bundle made in memory (a template's, or one given a range of the id pool): `raw`
 * validated as if read from `<dir>/config.json`, which the engine writes when it makes
 * the sandbox's folder. root.path and bind sources must be absolute (nothing resolves
 * against a folder that does not exist yet).
 */
export async function bundleFromConfig(dir: string, raw: unknown): Promise<Bundle> {
  const config = validateConfig(raw as Parameters<typeof validateConfig>[0], { path: path.join(dir, 'config.json') });
  const rootfs = resolveRootfs(dir, config);
  await checkBindSources(dir, config);
  return deepFreeze({ dir, config, rootfs }) as Bundle;
}

/** config.json's text, parsed and validated (ECONFIG_MALFORMED, or the validator's errors). */
function parseConfig(text: string, configPath: string): DeepReadonly<OciConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const pos = locateJsonError(text);
    const where = pos ? `line ${pos.line} column ${pos.column}: ${pos.reason}` : String((e as Error).message).toLowerCase();
    throw new SpecError('ECONFIG_MALFORMED', `config.json: invalid json at ${where}`, { path: configPath }, e);
  }
  return validateConfig(raw, { path: configPath });
}

/** root.path, resolved against the bundle and free of symlinks; EROOTFS_MISSING when it is not a directory. */
function resolveRootfs(dir: string, config: DeepReadonly<OciConfig>): string {
  // validateConfig guarantees root.path is a non-empty string.
  const rootPath = path.resolve(dir, (config.root as { path: string }).path);
  let rootfs: string;
  try {
    const st = fs.statSync(rootPath);
    if (!st.isDirectory()) {
      throw new SpecError('EROOTFS_MISSING', `root.path: not a directory: ${rootPath}`, { field: 'root.path', path: rootPath });
    }
    rootfs = fs.realpathSync(rootPath);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError('EROOTFS_MISSING', `root.path: does not exist: ${rootPath}`, { field: 'root.path', path: rootPath }, e);
  }

  return rootfs;
}

/** A missing bind source would otherwise surface as a bare ENOENT from a mount step. */
async function checkBindSources(dir: string, config: DeepReadonly<OciConfig>): Promise<void> {
  for (const [i, m] of (config.mounts ?? []).entries()) {
    if (!parseMount(m.type, m.options ?? []).bind || m.source === undefined) continue;
    const src = path.resolve(dir, m.source);
    try {
      fs.statSync(src);
    } catch (e) {
      const field = `mounts[${i}].source`;
      throw new SpecError('ECONFIG_INVALID', `${field}: bind source does not exist: ${src}`, { field, path: src }, e);
    }
  }
}

/**
 * What `state` reports of a bundle after create: its annotations and its rootfs path,
 * read as they are, without validation. The bundle may be gone or changed since, and
 * the state stays reportable: {} when config.json cannot be read or parsed.
 */
export function bundleLabels(bundleDir: string): { rootfs?: string; annotations?: Record<string, string> } {
  let cfg: { annotations?: unknown; root?: { path?: unknown } } | null;
  try {
    cfg = JSON.parse(fs.readFileSync(path.join(bundleDir, 'config.json'), 'utf8')) as typeof cfg;
  } catch {
    return {};
  }
  const annotations = cfg?.annotations;
  const root = cfg?.root?.path;
  return {
    ...(typeof root === 'string' && root !== '' ? { rootfs: path.resolve(bundleDir, root) } : {}),
    ...(annotations !== null && typeof annotations === 'object' ? { annotations: annotations as Record<string, string> } : {}),
  };
}
