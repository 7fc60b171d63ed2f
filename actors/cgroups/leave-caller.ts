import * as fs from 'node:fs';
import { errnoOf } from '../../base/errno';
import { unescapeMount } from './sandbox-cgroup';

/**
 * A paddockd that a call starts on demand begins life in that call's cgroups: under
 * podman, conmon's scope (docs/decisions/0044). It outlives the call by design, so it
 * must not stay there: systemd stops a scope's leftover processes when the scope ends,
 * podman cannot remove a cgroup that still holds a process, and the call's limits and
 * accounting would be charged with every later call's work. It moves itself to the root
 * of each cgroup hierarchy, where a daemon started at boot lives (in a cgroup namespace,
 * the namespace's root). A paddockd started by hand or by a service manager keeps the
 * cgroup it was given: only the native client's on-demand start asks for this.
 */

/** Every cgroup and cgroup2 mount point in a mountinfo text, each hierarchy once. */
export function hierarchyMounts(mountinfo: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    // One hierarchy mounted twice (a bind, a second mount) is still one to leave; its
    // super options name it (v1 controllers or name=), cgroup2 is a single tree.
    const key = fstype === 'cgroup2' ? 'cgroup2' : superOpts.split(',').filter((o) => o !== 'rw' && o !== 'ro').sort().join(',');
    if (seen.has(key) || fields[3] !== '/') continue;
    seen.add(key);
    out.push(unescapeMount(fields[4] ?? ''));
  }
  return out;
}

export interface LeaveResult {
  /** Hierarchy mounts whose root now holds this process. */
  readonly moved: string[];
  /** Those it could not enter, with the errno (a delegated v2 subtree: EACCES, ENOENT). */
  readonly failed: { mount: string; errno: string }[];
}

/** Moves the calling process (all its threads) into the root cgroup of every hierarchy. */
export function moveSelfToRootCgroups(mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): LeaveResult {
  const moved: string[] = [];
  const failed: { mount: string; errno: string }[] = [];
  for (const mount of hierarchyMounts(mountinfo)) {
    try {
      // "0" names the writer: cgroup.procs moves its whole thread group.
      fs.writeFileSync(`${mount}/cgroup.procs`, '0');
      moved.push(mount);
    } catch (e) {
      failed.push({ mount, errno: errnoOf(e) ?? 'EIO' });
    }
  }
  return { moved, failed };
}
