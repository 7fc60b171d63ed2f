import * as fs from 'node:fs';
import { type SandboxPaths } from '../sandbox/state-store';
import { writeFileAtomic } from '../../base/files';

/**
 * `cgroup.json` in a sandbox's folder: the cgroups paddock made for it, so that a
 * later process (a reattaching supervisor, `paddock delete --force` after a crash, the
 * clean-up of a half-made create) removes exactly those (docs/decisions/0018, 0022).
 */

/** One cgroup paddock made (the sandbox's, or a pod container's own). */
export interface OwnedCgroupRecord {
  /** Below every hierarchy root. */
  readonly relPath: string;
  /** True for a linux.cgroupsPath: teardown removes only `made`. */
  readonly custom: boolean;
  /** The directories paddock made, parents first (absolute). */
  readonly made: readonly string[];
}

export interface CgroupRecord extends OwnedCgroupRecord {
  /** The own cgroups of the sandbox's pod containers, by container id. */
  readonly containers?: Readonly<Record<string, OwnedCgroupRecord>>;
}

export function writeCgroupRecord(paths: SandboxPaths, rec: CgroupRecord): void {
  writeFileAtomic(paths.cgroupFile, `${JSON.stringify(rec)}\n`, 0o644);
}

export function readCgroupRecord(paths: SandboxPaths): CgroupRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(paths.cgroupFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const r = JSON.parse(text) as Partial<CgroupRecord>;
    const own = ownedOf(r);
    if (!own) return undefined;
    const containers: Record<string, OwnedCgroupRecord> = {};
    if (r.containers !== null && typeof r.containers === 'object') {
      for (const [cid, c] of Object.entries(r.containers)) {
        const o = ownedOf(c);
        if (o) containers[cid] = o;
      }
    }
    return { ...own, ...(Object.keys(containers).length > 0 ? { containers } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Adds (or, with `rec` undefined, drops) one pod container's cgroup in the record.
 * Preconditions: the sandbox's lock is held (every engine call on it does) and the
 * sandbox's own record exists (a pod container gets a cgroup only inside one).
 */
export function recordPodCgroupLocked(paths: SandboxPaths, containerId: string, rec: OwnedCgroupRecord | undefined): void {
  const cur = readCgroupRecord(paths);
  if (!cur) {
    if (rec === undefined) return;
    throw Object.assign(new Error(`${paths.cgroupFile} is missing or unreadable`), { code: 'ENOENT' });
  }
  const containers = { ...(cur.containers ?? {}) };
  if (rec === undefined) delete containers[containerId];
  else containers[containerId] = rec;
  const { containers: _old, ...own } = cur;
  writeCgroupRecord(paths, { ...own, ...(Object.keys(containers).length > 0 ? { containers } : {}) });
}

function ownedOf(r: unknown): OwnedCgroupRecord | undefined {
  const o = r as Partial<OwnedCgroupRecord> | null;
  if (o === null || typeof o !== 'object') return undefined;
  if (typeof o.relPath !== 'string' || o.relPath === '' || o.relPath.split('/').includes('..') || !Array.isArray(o.made)) return undefined;
  return { relPath: o.relPath, custom: o.custom === true, made: o.made.filter((m): m is string => typeof m === 'string') };
}
