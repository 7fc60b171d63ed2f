import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeFile } from '../base/remove-tree';

/**
 * Which sandbox a CLI container id lives in. A sandbox's own (root) container has the
 * sandbox's id and no entry; a container put into an existing sandbox (CRI annotations
 * `io.kubernetes.cri.container-type: container` + `io.kubernetes.cri.sandbox-id`) has
 * one file `<root>/.containers/<cid>` holding its sandbox id. The folder's name is not a
 * valid sandbox id (ids never start with '.'), so `list` and reattach never take it
 * for a sandbox.
 */
export const INDEX_DIR = '.containers';

export interface ContainerRef {
  readonly sandboxId: string;
  readonly containerId: string;
  /** True for a container added to a sandbox, false for a sandbox's root container. */
  readonly sub: boolean;
}

function entry(root: string, cid: string): string {
  return path.join(root, INDEX_DIR, cid);
}

/** Resolves a CLI id: its index entry if any, else the id is a sandbox's. */
export function resolveContainer(root: string, id: string): ContainerRef {
  // Ids are checked by the engine; one with a '/' or a leading '.' is never looked up here.
  if (!id.includes('/') && !id.startsWith('.')) {
    try {
      const sid = fs.readFileSync(entry(root, id), 'utf8').trim();
      if (sid) return { sandboxId: sid, containerId: id, sub: true };
    } catch {
      // No entry: a sandbox id (or nothing).
    }
  }
  return { sandboxId: id, containerId: id, sub: false };
}

export function isIndexed(root: string, cid: string): boolean {
  return !cid.includes('/') && !cid.startsWith('.') && fs.existsSync(entry(root, cid));
}

/** Written temp + rename: a reader sees the whole entry or none. */
export function recordContainer(root: string, cid: string, sandboxId: string): void {
  const dir = path.join(root, INDEX_DIR);
  const tmp = path.join(dir, `.${cid}.tmp-${process.pid}`);
  for (let attempt = 0; ; attempt++) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      fs.writeFileSync(tmp, `${sandboxId}\n`, { mode: 0o600 });
      fs.renameSync(tmp, entry(root, cid));
      return;
    } catch (e) {
      // A concurrent forget may have removed the (then empty) folder: make it again, once.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw e;
    }
  }
}

export function forgetContainer(root: string, cid: string): void {
  removeFile(entry(root, cid));
  removeDirIfEmpty(root);
}

/** Every container indexed into `sandboxId`. */
export function containersOf(root: string, sandboxId: string): string[] {
  const dir = path.join(root, INDEX_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.') && resolveContainer(root, n).sandboxId === sandboxId && isIndexed(root, n)).sort();
}

/** Drops the entries of a sandbox that is gone. */
export function forgetSandbox(root: string, sandboxId: string): void {
  for (const cid of containersOf(root, sandboxId)) removeFile(entry(root, cid));
  removeDirIfEmpty(root);
}

function removeDirIfEmpty(root: string): void {
  try {
    fs.rmdirSync(path.join(root, INDEX_DIR));
  } catch {
    // Not empty (another container), or already gone.
  }
}
