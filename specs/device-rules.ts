/**
 * linux.resources.devices: the OCI device rules reduced to what the device cgroup
 * enforces, one model for both ways paddock enforces them (docs/decisions/0019):
 * the v1 `devices` controller (the rules written one by one to devices.allow/deny)
 * and a BPF_PROG_TYPE_CGROUP_DEVICE program on a cgroup2 directory
 * (actors/device-bpf.ts), which is generated from the reduced form below.
 *
 * The model is the v1 controller's, as the kernel implements it and runc emulates it:
 * a default (allow everything, as a fresh cgroup does, or deny everything after an
 * `a` rule with allow false) plus exceptions keyed by (type, major, minor). A rule
 * that goes against the default adds its access to the exception of exactly its key;
 * a rule that goes with the default takes its access out of the exception of exactly
 * its key; an `a` rule resets. A request is checked against the exceptions alone:
 *
 * - default deny: allowed when one exception covers the device and all the access
 *   asked for (an `open(O_RDWR)` asks for r and w at once);
 * - default allow: denied when one exception covers the device and any of the access.
 *
 * The kernel ignores a taking-away rule whose key differs from an overlapping
 * exception (`allow c 1:3; deny c 1:*` leaves 1:3 allowed, `allow c 1:*; deny c 1:3`
 * leaves 1:3 allowed too). Such a list would read as "the last matching rule wins"
 * and act otherwise, so it is refused (runc refuses the second form). What is
 * accepted therefore agrees with "the last matching rule wins" for every single kind
 * of access (r, w or m); the only difference left is that a request for r and w
 * together needs one allow exception holding both (fails closed).
 */

export type DeviceType = 'b' | 'c';
export const ACCESS = { m: 1, r: 2, w: 4 } as const;
export const ALL_ACCESS = 7;
/** Linux has 12-bit majors and 20-bit minors; the cgroup compares 32-bit numbers. */
export const DEVICE_NUMBER_MAX = 0xffffffff;
/** Exceptions a program may hold: keeps it far below the verifier's limits. */
export const MAX_DEVICE_EXCEPTIONS = 256;

/** One exception: `major`/`minor` -1 is any; `access` a mask of ACCESS bits. */
export interface DeviceException {
  readonly type: DeviceType;
  readonly major: number;
  readonly minor: number;
  readonly access: number;
}

/** The rules reduced: what the device cgroup ends up holding. */
export interface DeviceRuleSet {
  readonly defaultAllow: boolean;
  readonly exceptions: readonly DeviceException[];
}

export class DeviceRuleError extends Error {
  constructor(
    readonly code: 'ECONFIG_INVALID' | 'ECONFIG_UNSUPPORTED',
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'DeviceRuleError';
  }
}

/** "rwm" → mask; undefined for anything but 1..3 distinct letters of r, w, m. */
export function parseAccess(s: unknown): number | undefined {
  if (typeof s !== 'string' || s.length === 0 || s.length > 3) return undefined;
  let mask = 0;
  for (const ch of s) {
    const bit = (ACCESS as Record<string, number>)[ch];
    if (bit === undefined || (mask & bit) !== 0) return undefined;
    mask |= bit;
  }
  return mask;
}

export function accessString(mask: number): string {
  return `${mask & ACCESS.r ? 'r' : ''}${mask & ACCESS.w ? 'w' : ''}${mask & ACCESS.m ? 'm' : ''}`;
}

function deviceNumber(field: string, v: unknown): number {
  if (v === undefined || v === -1) return -1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > DEVICE_NUMBER_MAX) {
    throw new DeviceRuleError('ECONFIG_INVALID', field, `must be -1 (any) or an integer from 0 to ${DEVICE_NUMBER_MAX}`);
  }
  return v;
}

/** Both keys can name one device: same type, and each number equal or a wildcard on either side. */
function overlaps(a: DeviceException, b: { type: DeviceType; major: number; minor: number }): boolean {
  const num = (x: number, y: number) => x === -1 || y === -1 || x === y;
  return a.type === b.type && num(a.major, b.major) && num(a.minor, b.minor);
}

/**
 * Reduces the rules (validated here, field by field) to the device cgroup's state.
 * Throws DeviceRuleError naming `${field}[i]...` for a malformed rule
 * (ECONFIG_INVALID) or one the device cgroup cannot express (ECONFIG_UNSUPPORTED).
 */
export function reduceDeviceRules(rules: unknown, field = 'linux.resources.devices'): DeviceRuleSet {
  if (!Array.isArray(rules)) throw new DeviceRuleError('ECONFIG_INVALID', field, 'must be an array');
  let defaultAllow = true;
  // Keyed by "type major minor", in the order first added (the program's order).
  let exceptions = new Map<string, DeviceException>();
  rules.forEach((raw: unknown, i) => {
    const f = `${field}[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DeviceRuleError('ECONFIG_INVALID', f, 'must be an object');
    const r = raw as Record<string, unknown>;
    if (typeof r.allow !== 'boolean') throw new DeviceRuleError('ECONFIG_INVALID', `${f}.allow`, 'must be a boolean');
    const type = r.type ?? 'a';
    if (type !== 'a' && type !== 'b' && type !== 'c') throw new DeviceRuleError('ECONFIG_INVALID', `${f}.type`, 'must be "a", "b" or "c"');
    const major = deviceNumber(`${f}.major`, r.major);
    const minor = deviceNumber(`${f}.minor`, r.minor);
    const access = r.access === undefined ? ALL_ACCESS : parseAccess(r.access);
    if (access === undefined) throw new DeviceRuleError('ECONFIG_INVALID', `${f}.access`, 'must be one to three distinct letters of "rwm"');
    if (type === 'a') {
      // The device cgroup reads `a` as "every device, every access" whatever follows it.
      if (major !== -1 || minor !== -1 || access !== ALL_ACCESS) {
        throw new DeviceRuleError('ECONFIG_UNSUPPORTED', f, 'a rule of type "a" applies to every device with every access: give major -1, minor -1 and access "rwm", or type "b"/"c"');
      }
      defaultAllow = r.allow;
      exceptions = new Map();
      return;
    }
    const key = `${type} ${major} ${minor}`;
    const mine = exceptions.get(key);
    if (r.allow !== defaultAllow) {
      // Against the default: widen the exception of exactly this key.
      if (exceptions.size >= MAX_DEVICE_EXCEPTIONS && mine === undefined) {
        throw new DeviceRuleError('ECONFIG_UNSUPPORTED', f, `more than ${MAX_DEVICE_EXCEPTIONS} distinct device rules`);
      }
      exceptions.set(key, { type, major, minor, access: (mine?.access ?? 0) | access });
      return;
    }
    // With the default: take access out of exactly this key's exception. Any other
    // exception sharing a device and an access would keep it, silently.
    for (const [k, ex] of exceptions) {
      if (k !== key && overlaps(ex, { type, major, minor }) && (ex.access & access) !== 0) {
        throw new DeviceRuleError(
          'ECONFIG_UNSUPPORTED',
          f,
          `the device cgroup cannot take "${accessString(ex.access & access)}" of ${type} ${num(major)}:${num(minor)} out of the earlier ${ex.type} ${num(ex.major)}:${num(ex.minor)} rule; name the same major and minor, or reorder the rules`,
        );
      }
    }
    if (mine !== undefined) {
      const left = mine.access & ~access;
      if (left === 0) exceptions.delete(key);
      else exceptions.set(key, { ...mine, access: left });
    }
  });
  return { defaultAllow, exceptions: [...exceptions.values()] };
}

function num(n: number): string {
  return n === -1 ? '*' : String(n);
}

/**
 * What runc appends to every spec's device rules (its AllowedDevices), so a container
 * can always mknod, and open the standard devices, ttys and /dev/net/tun, whatever the
 * spec's rules before them say. podman and containerd write "deny all" and rely on
 * it: without these a container without a user namespace would not even have
 * /dev/null (docs/decisions/0019).
 */
export const RUNTIME_DEFAULT_DEVICE_RULES: readonly OciDeviceRule[] = [
  { allow: true, type: 'c', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'b', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
];

interface OciDeviceRule {
  readonly allow: boolean;
  readonly type: DeviceType;
  readonly major: number;
  readonly minor: number;
  readonly access: string;
}

/**
 * The allow rules runc and containerd add after deny-all for the standard devices:
 * null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9, tty 5:0, console 5:1,
 * ptmx 5:2 and the pts 136:*.
 */
const DEFAULT_DEVICE_ALLOWS = new Set(['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:1', '5:2', '136:*']);

function isDefaultDeviceAllow(rule: unknown): boolean {
  if (typeof rule !== 'object' || rule === null) return false;
  const r = rule as Record<string, unknown>;
  if (r.allow !== true || r.type !== 'c') return false;
  if (typeof r.access !== 'string' || !/^[rwm]{1,3}$/.test(r.access)) return false;
  const major = typeof r.major === 'number' ? String(r.major) : undefined;
  const minor = r.minor === undefined || r.minor === -1 ? '*' : typeof r.minor === 'number' ? String(r.minor) : undefined;
  return major !== undefined && minor !== undefined && DEFAULT_DEVICE_ALLOWS.has(`${major}:${minor}`);
}

/**
 * The list runc, podman and containerd write by default: deny everything, optionally
 * followed by allows of the standard devices only. Inside a user namespace it grants
 * nothing the kernel does not already keep the container from (it cannot use nodes
 * it makes, and sees only the devices bound in), so a sandbox whose cgroup cannot be
 * made may run without it there (actors/sandbox/launcher.ts).
 */
export function isDefaultDeviceList(rules: readonly unknown[]): boolean {
  const [first, ...rest] = rules;
  if (typeof first !== 'object' || first === null) return false;
  const f = first as Record<string, unknown>;
  const denyAll =
    f.allow === false &&
    f.access === 'rwm' &&
    (f.type === undefined || f.type === 'a') &&
    (f.major === undefined || f.major === -1) &&
    (f.minor === undefined || f.minor === -1);
  return denyAll && rest.every(isDefaultDeviceAllow);
}

/** Whether the reduced rules let a process make (mknod) that node: `m` for it, as the kernel checks. */
export function allowsMknod(set: DeviceRuleSet, type: DeviceType, major: number, minor: number): boolean {
  const covers = (e: DeviceException) =>
    e.type === type && (e.major === -1 || e.major === major) && (e.minor === -1 || e.minor === minor) && (e.access & ACCESS.m) !== 0;
  return set.defaultAllow ? !set.exceptions.some(covers) : set.exceptions.some(covers);
}

/**
 * The rules the device cgroup gets: the spec's, then the runtime's defaults, as runc.
 * None: none. Under a default that allows (no deny-all), an allow only counts where
 * it names exactly the key of an earlier deny (the kernel ignores the rest), so only
 * those defaults are appended: the others would change nothing and only be refused as
 * inexpressible. Throws DeviceRuleError for rules reduceDeviceRules refuses.
 */
export function effectiveDeviceRules<T>(rules: readonly T[] | undefined): readonly (T | OciDeviceRule)[] {
  if (!rules || rules.length === 0) return [];
  const set = reduceDeviceRules(rules);
  const extra = set.defaultAllow
    ? RUNTIME_DEFAULT_DEVICE_RULES.filter((d) => set.exceptions.some((e) => e.type === d.type && e.major === d.major && e.minor === d.minor))
    : RUNTIME_DEFAULT_DEVICE_RULES;
  return [...rules, ...extra];
}

