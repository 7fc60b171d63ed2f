/**
 * paddock's record beside CRIU's images (`paddock-checkpoint.json`): what a restore must
 * give CRIU again that the images do not hold — the host paths of the external mounts,
 * how the root process's stdio was connected, whether the sandbox had a user namespace.
 * Written last, so its presence means the dump succeeded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PaddockError } from '../../base/errors';
import { writeFileAtomic } from '../../base/files';
import type { ExternalMount, OutsideFile } from './proc-view';

export const RECORD_FILE = 'paddock-checkpoint.json';
export const RECORD_VERSION = 1;

export interface CheckpointRecord {
  readonly version: number;
  readonly sandboxId: string;
  readonly containerId: string;
  readonly createdAt: string;
  readonly rootfs: string;
  readonly mounts: readonly ExternalMount[];
  /** The root process's fds 0–2 that pointed outside the container. */
  readonly stdio: readonly OutsideFile[];
  /** Files of the tree outside the container other than its stdio (named, never given back). */
  readonly otherFiles: readonly OutsideFile[];
  readonly userns: boolean;
  /** The container's root mount was read-only (restored so again). */
  readonly rootReadonly?: boolean;
}

export function writeRecord(imagePath: string, record: CheckpointRecord): void {
  writeFileAtomic(path.join(imagePath, RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o600, true);
}

/** The record of a checkpoint in `imagePath`; ECHECKPOINT_INVALID when there is none that paddock wrote. */
export function readRecord(imagePath: string): CheckpointRecord {
  const file = path.join(imagePath, RECORD_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${RECORD_FILE}` : `${RECORD_FILE} does not parse`;
    throw new PaddockError('ECHECKPOINT_INVALID', `${imagePath} is not a paddock checkpoint: ${why}`, { path: imagePath, field: 'imagePath' });
  }
  const r = parsed as Partial<CheckpointRecord>;
  if (r.version !== RECORD_VERSION || typeof r.containerId !== 'string' || !Array.isArray(r.mounts) || !Array.isArray(r.stdio)) {
    throw new PaddockError('ECHECKPOINT_INVALID', `${imagePath} is not a paddock checkpoint of version ${RECORD_VERSION}`, { path: imagePath, field: 'imagePath' });
  }
  if (!fs.existsSync(path.join(imagePath, 'inventory.img'))) {
    throw new PaddockError('ECHECKPOINT_INVALID', `${imagePath} is not a paddock checkpoint: CRIU's inventory.img is missing`, { path: imagePath, field: 'imagePath' });
  }
  return r as CheckpointRecord;
}
