import { SpecError } from './errors';

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

/**
 * A pod container's cgroupsPath (one that joins an existing sandbox), checked with the
 * same rules. The container runs in the sandbox's cgroup whatever it asks (runsc puts
 * the whole pod in the sandbox's cgroup too): the answer says whether the path asked
 * for is that cgroup or one below it, for the log line the engine writes.
 */
export function podContainerCgroupsPath(
  value: string | undefined,
  sandboxRelPath: string,
  opts: CgroupsPathOptions,
): { asked?: string; relPath?: string; relation: 'none' | 'same' | 'below' | 'elsewhere' } {
  if (value === undefined || value === '') return { relation: 'none' };
  const r = resolveCgroupsPath(value, opts);
  const rel = r.relPath as string;
  const relation = rel === sandboxRelPath ? 'same' : rel.startsWith(`${sandboxRelPath}/`) ? 'below' : 'elsewhere';
  return { asked: value, relPath: rel, relation };
}
