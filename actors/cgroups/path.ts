import { PaddockError, SpecError } from '../../base/errors';

/**
 * Where a sandbox's cgroup goes, from the root container's `linux.cgroupsPath` and the
 * `--systemd-cgroup` flag (docs/decisions/0018). Pure: no file is touched here, so
 * every answer can be tested without root.
 *
 * - cgroupfs (no flag): an absolute path is below the root of every hierarchy; a
 *   relative one too (crun's rule: runc's "relative to the runtime's own cgroup" would
 *   give the library host and each CLI call a different place for one sandbox).
 * - systemd (the flag): `slice:prefix:name`, mapped to the directory systemd would
 *   make: `<expanded slice>/<prefix>-<name>.scope`. Only without a running systemd,
 *   since paddock has no D-Bus client to ask one for a scope.
 * - absent or "": paddock's default (`paddock/<key>-<id>`, sandboxCgroupPath), or with
 *   the flag runc's default `system.slice:paddock:<id>`.
 */

const FIELD = 'linux.cgroupsPath';

/** The result: `relPath` below each hierarchy root, or undefined for paddock's default. */
export interface ResolvedCgroupsPath {
  readonly relPath?: string;
  /** What was asked for, for messages and logs (the spec's string, or the systemd default). */
  readonly asked?: string;
}

export interface CgroupsPathOptions {
  /** `--systemd-cgroup` / EngineOptions.systemdCgroup. */
  readonly systemd: boolean;
  /** Whether systemd runs this host (`/run/systemd/system` exists). */
  readonly systemdRunning: boolean;
  /** Used by the systemd default (`system.slice:paddock:<id>`). */
  readonly sandboxId: string;
  /** The JSON path named in errors (a pod container's bundle says the same field). */
  readonly field?: string;
  /** The bundle directory, for the error's context. */
  readonly bundleDir?: string;
}

/**
 * Resolves a cgroupsPath. Throws SpecError ECONFIG_INVALID (a path that is not a
 * cgroup below the root, a malformed `slice:prefix:name`) or ECONFIG_UNSUPPORTED
 * (`--systemd-cgroup` on a host where systemd runs), naming the field.
 */
export function resolveCgroupsPath(value: string | undefined, opts: CgroupsPathOptions): ResolvedCgroupsPath {
  const field = opts.field ?? FIELD;
  const fail = (code: 'ECONFIG_INVALID' | 'ECONFIG_UNSUPPORTED', why: string): never => {
    throw new SpecError(code, `${field}: ${why}`, { field, ...(opts.bundleDir !== undefined ? { path: opts.bundleDir } : {}) });
  };
  if (opts.systemd) {
    if (opts.systemdRunning) {
      fail(
        'ECONFIG_UNSUPPORTED',
        '--systemd-cgroup: systemd runs this host and paddock cannot ask it for a scope (no D-Bus client); drop --systemd-cgroup and pass a cgroupfs path',
      );
    }
    const asked = value === undefined || value === '' ? `system.slice:paddock:${opts.sandboxId}` : value;
    const relPath = systemdToCgroupfs(asked, (why) => fail('ECONFIG_INVALID', why));
    return { relPath, asked };
  }
  if (value === undefined || value === '') return {};
  return { relPath: cleanCgroupfsPath(value, (why) => fail('ECONFIG_INVALID', why)), asked: value };
}

/**
 * A cgroupfs path made relative to the hierarchy root: `.` parts and repeated or
 * trailing slashes are dropped; `..` is refused (runc cleans it lexically, which turns
 * a typo into some other cgroup); so are NUL and a path naming the root itself.
 */
export function cleanCgroupfsPath(value: string, fail: (why: string) => never): string {
  if (value.includes('\0')) fail('must not contain a NUL byte');
  const parts = value.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) fail(`must not contain ".." components (got ${JSON.stringify(value)})`);
  if (parts.length === 0) fail(`must name a cgroup below the root, not the root itself (got ${JSON.stringify(value)})`);
  for (const p of parts) {
    // A name the kernel would take for one of its own files (cgroup.procs, memory.max, ...)
    // cannot be made; say so now rather than with an EEXIST from mkdir.
    if (p.startsWith('cgroup.')) fail(`component ${JSON.stringify(p)} is a name cgroupfs reserves`);
    if (Buffer.byteLength(p) > 255) fail(`component ${JSON.stringify(p.slice(0, 32))}... is longer than 255 bytes`);
  }
  return parts.join('/');
}

/**
 * `slice:prefix:name` → the cgroupfs path systemd gives that scope:
 * `system.slice:docker:abc` → `system.slice/docker-abc.scope`, `a-b.slice:p:n` →
 * `a.slice/a-b.slice/p-n.scope`. An empty slice is `system.slice` and an empty prefix
 * gives `name.scope`, as runc's systemd driver does; a name that ends in `.slice` is
 * itself a slice unit (runc's rule), at the path its own name gives.
 */
export function systemdToCgroupfs(value: string, fail: (why: string) => never): string {
  const parts = value.split(':');
  if (parts.length !== 3) fail(`expected "slice:prefix:name" with --systemd-cgroup, got ${JSON.stringify(value)}`);
  const [slice = '', prefix = '', name = ''] = parts;
  if (name === '') fail(`the name part of "slice:prefix:name" is empty (got ${JSON.stringify(value)})`);
  const parent = expandSlice(slice === '' ? 'system.slice' : slice, fail);
  // A slice as the name is its own unit: systemd places it by its name alone.
  if (name.endsWith('.slice')) return expandSlice(name, fail);
  const unit = prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`;
  checkUnitName(unit, fail);
  return parent === '' ? unit : `${parent}/${unit}`;
}

/**
 * A slice name → its cgroupfs path: `-.slice` is the root (""), `a-b-c.slice` is
 * `a.slice/a-b.slice/a-b-c.slice`. Dashes separate levels, so an empty level
 * (`a--b.slice`, `-a.slice`, `a-.slice`) is refused, as are `/` and a missing suffix.
 */
export function expandSlice(slice: string, fail: (why: string) => never): string {
  if (!slice.endsWith('.slice')) fail(`slice ${JSON.stringify(slice)} must end in ".slice"`);
  if (slice === '-.slice') return '';
  checkUnitName(slice, fail);
  const stem = slice.slice(0, -'.slice'.length);
  const levels = stem.split('-');
  if (levels.some((l) => l === '')) fail(`slice ${JSON.stringify(slice)} has an empty level (a leading, trailing or doubled "-")`);
  const out: string[] = [];
  for (let i = 1; i <= levels.length; i++) out.push(`${levels.slice(0, i).join('-')}.slice`);
  return out.join('/');
}

/** systemd unit names: at most 255 bytes of [A-Za-z0-9:_.\\-@]; no `/`, so no `..` path tricks either. */
function checkUnitName(unit: string, fail: (why: string) => never): void {
  if (Buffer.byteLength(unit) > 255) fail(`unit name ${JSON.stringify(unit.slice(0, 32))}... is longer than 255 bytes`);
  if (!/^[A-Za-z0-9:_.\\@-]+$/.test(unit)) fail(`${JSON.stringify(unit)} is not a valid systemd unit name`);
  if (unit.startsWith('.')) fail(`${JSON.stringify(unit)} is not a valid systemd unit name`);
}

/** The child of a sandbox's cgroup that holds a pod container without a path of its own. */
export const POD_CONTAINER_PREFIX = 'ctr-';
/**
 * Children of a sandbox's cgroup that paddock itself uses (actors/cgroups/sandbox-cgroup.ts): the
 * freezer's `containers` and, on cgroup v2, `init`. A pod container may not claim them.
 */
export const RESERVED_SANDBOX_CHILDREN: readonly string[] = ['containers', 'init'];

/** Where a pod container's own cgroup goes (docs/decisions/0022). */
export interface PodContainerCgroupPath {
  /** Below every hierarchy root. */
  readonly relPath: string;
  /** True when the spec named it (linux.cgroupsPath): teardown removes only what paddock made. */
  readonly custom: boolean;
  /** True when it is below the sandbox's cgroup (cgroup v2 then needs the sandbox's processes in a leaf). */
  readonly nested: boolean;
  /** The spec's string, for messages. */
  readonly asked?: string;
}

/**
 * A pod container's cgroup: its own linux.cgroupsPath when it names one (containerd and
 * kubelet give each container a sibling of the sandbox's, under the pod's parent, and
 * read stats and OOMs there), checked with the sandbox's rules; otherwise
 * `<sandbox>/ctr-<id>`, nested in the sandbox's cgroup.
 *
 * Throws SpecError ECONFIG_INVALID for a bad path or one naming a child paddock uses
 * itself, and PaddockError ECGROUP_IN_USE for the sandbox's own cgroup (it holds
 * paddock-init).
 */
export function podContainerCgroupPath(
  value: string | undefined,
  sandboxRelPath: string,
  containerId: string,
  opts: CgroupsPathOptions,
): PodContainerCgroupPath {
  const nestedDefault = { relPath: `${sandboxRelPath}/${POD_CONTAINER_PREFIX}${containerId}`, custom: false, nested: true };
  // Under --systemd-cgroup an absent path would mean runc's default scope for this id; a
  // pod container without a path goes below its sandbox instead, as without the flag.
  if (value === undefined || value === '') return nestedDefault;
  const field = opts.field ?? FIELD;
  const rel = resolveCgroupsPath(value, opts).relPath as string;
  if (rel === sandboxRelPath) {
    throw new PaddockError('ECGROUP_IN_USE', `${field}: ${JSON.stringify(value)} is the cgroup of the container's sandbox, which holds paddock-init; a pod container needs a cgroup of its own`, {
      field,
      ...(opts.bundleDir !== undefined ? { path: opts.bundleDir } : {}),
    });
  }
  const nested = rel.startsWith(`${sandboxRelPath}/`);
  const firstBelow = nested ? rel.slice(sandboxRelPath.length + 1).split('/')[0] : undefined;
  if (firstBelow !== undefined && RESERVED_SANDBOX_CHILDREN.includes(firstBelow)) {
    throw new SpecError('ECONFIG_INVALID', `${field}: ${JSON.stringify(value)} is below ${JSON.stringify(firstBelow)}, a child of the sandbox's cgroup that paddock uses itself`, {
      field,
      ...(opts.bundleDir !== undefined ? { path: opts.bundleDir } : {}),
    });
  }
  return { relPath: rel, custom: true, nested, asked: value };
}
