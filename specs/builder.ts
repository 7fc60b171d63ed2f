/**
 * The secure builder (docs/decisions/0028): a complete config.json from a rootfs,
 * args, env and limits. Pure: a template in, a config out; nothing is read or made.
 *
 * It starts from {@link defaultSpec} (paddock's defaults: capabilities, no new
 * privileges, seccomp, masked and read-only paths) and always adds a user namespace and
 * a network namespace of the sandbox's own (only loopback) unless its `network` says
 * otherwise (specs/network.ts). The rootfs is read-only unless the template says
 * otherwise.
 */

import * as path from 'node:path';
import { PaddockError } from '../base/errors';
import { checkOptionKeys, knownKeys } from '../base/options';
import { defaultSpec, DEFAULT_PATH } from './default-spec';
import { applyNetworkPlan, planNetwork, type NetworkOption } from './network';
import { OciConfig } from './oci';

/** What a sandbox is made from when no OCI bundle is given (engine.createSandbox accepts one in place of a bundle path). */
export interface SandboxTemplate {
  /** Absolute path of the root filesystem. It is not changed: with `userns: 'auto'` the container sees it through an idmapped mount. */
  readonly rootfs: string;
  /** The process to run: argv, `args[0]` looked up in PATH as runc does. */
  readonly args: readonly string[];
  /** Environment: `{ NAME: value }` or `['NAME=value']`. PATH defaults to the usual one when absent. */
  readonly env?: Readonly<Record<string, string>> | readonly string[];
  /** Working directory inside the container (absolute; default `/`). */
  readonly cwd?: string;
  /** Container uid/gid of the process (default 0:0, the root of the sandbox's own user namespace, an unprivileged host id). */
  readonly user?: { readonly uid: number; readonly gid: number };
  /** Hostname in the sandbox's uts namespace (default `paddock`). */
  readonly hostname?: string;
  /** Mount the rootfs read-only (default true). */
  readonly readonlyRootfs?: boolean;
  /** cgroup limits of the sandbox. */
  readonly limits?: SandboxLimits;
  /**
   * The sandbox's network (default `'none'`: loopback only); `'host'` leaves the
   * network namespace out. `user` and `bridge` are served by the engine (createSandbox
   * reads this field; give it in one place only): the config has a namespace of its own.
   */
  readonly network?: NetworkOption;
}

/** Limits of a {@link SandboxTemplate}; each absent one is no limit. */
export interface SandboxLimits {
  /** Memory limit in bytes (cgroup memory.max / memory.limit_in_bytes). */
  readonly memoryBytes?: number;
  /** Most processes and threads at once (cgroup pids.max). */
  readonly pids?: number;
  /** CPU time as a number of CPUs (1.5: 150 ms per 100 ms period). */
  readonly cpus?: number;
}

/** Host ids for the sandbox's user namespace: container ids 0..size-1 map to hostId.. (uids and gids alike). */
export interface HostIdRange {
  readonly hostId: number;
  readonly size: number;
}

/** The annotation that asks paddock for a range of its id pool (library and CLI alike). */
export const USERNS_ANNOTATION = 'paddock.userns';

/**
 * Without `ids`, the config maps container ids to this placeholder range and carries
 * `"paddock.userns": "auto"`: paddock replaces the mapping with a range of its pool
 * at create. Just below paddock's default pool, so another runtime given the config as
 * is still runs it as ids no host user has.
 */
export const PLACEHOLDER_IDS: HostIdRange = Object.freeze({ hostId: 0x6000_0000 - 65_536, size: 65_536 });

export const TEMPLATE_KEYS = knownKeys<SandboxTemplate>()({ rootfs: 1, args: 1, env: 1, cwd: 1, user: 1, hostname: 1, readonlyRootfs: 1, limits: 1, network: 1 });
const LIMIT_KEYS = knownKeys<SandboxLimits>()({ memoryBytes: 1, pids: 1, cpus: 1 });
const USER_KEYS = ['uid', 'gid'];

const CPU_PERIOD_US = 100_000;

/**
 * A complete OCI config for `template`. With `ids` the user namespace maps to them;
 * without, it carries the `paddock.userns: auto` annotation (see PLACEHOLDER_IDS).
 * Bad input is an EINVALID_ARGUMENT naming the field (`template.args: ...`).
 */
export function buildSpec(template: SandboxTemplate, ids?: HostIdRange): OciConfig {
  checkTemplate(template);
  if (ids !== undefined) checkIds(ids);
  const spec = defaultSpec({
    args: [...template.args],
    rootfs: template.rootfs,
    ...(template.hostname !== undefined ? { hostname: template.hostname } : {}),
    userns: ids ?? PLACEHOLDER_IDS,
  });
  const proc = spec.process as NonNullable<OciConfig['process']>;
  proc.env = envList(template.env);
  if (template.cwd !== undefined) proc.cwd = template.cwd;
  if (template.user !== undefined) proc.user = { uid: template.user.uid, gid: template.user.gid };
  (spec.root as NonNullable<OciConfig['root']>).readonly = template.readonlyRootfs ?? true;
  const linux = spec.linux as NonNullable<OciConfig['linux']>;
  // defaultSpec's choices, made sure of: these two are the builder's promise.
  const ns = linux.namespaces ?? (linux.namespaces = []);
  for (const type of ['user', 'network'] as const) if (!ns.some((n) => n.type === type)) ns.push({ type });
  const limits = template.limits;
  if (limits !== undefined && Object.values(limits).some((v) => v !== undefined)) {
    linux.resources = {
      ...(linux.resources ?? {}),
      ...(limits.memoryBytes !== undefined ? { memory: { limit: limits.memoryBytes } } : {}),
      ...(limits.pids !== undefined ? { pids: { limit: limits.pids } } : {}),
      ...(limits.cpus !== undefined ? { cpu: { quota: Math.round(limits.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US } } : {}),
    };
  }
  const network = planNetwork(template.network, 'template.network');
  const out = network ? applyNetworkPlan(spec, network) : spec;
  if (ids === undefined) out.annotations = { ...(out.annotations ?? {}), [USERNS_ANNOTATION]: 'auto' };
  return out;
}

function bad(field: string, what: string): never {
  throw new PaddockError('EINVALID_ARGUMENT', `template.${field}: ${what}`, { field: `template.${field}` });
}

const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** Every field of a template, by name and type; nothing is assumed about unknown keys. */
export function checkTemplate(t: SandboxTemplate): void {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new PaddockError('EINVALID_ARGUMENT', 'template: must be an object', { field: 'template' });
  checkOptionKeys(t, TEMPLATE_KEYS, 'template');
  if (typeof t.rootfs !== 'string' || !path.isAbsolute(t.rootfs)) bad('rootfs', 'must be an absolute path');
  if (!Array.isArray(t.args) || t.args.length === 0 || !t.args.every((a) => typeof a === 'string')) bad('args', 'must be a non-empty array of strings');
  if (t.args[0] === '') bad('args', 'args[0] must not be empty');
  if (t.env !== undefined) {
    if (Array.isArray(t.env)) {
      t.env.forEach((e, i) => {
        if (typeof e !== 'string' || !/^[^=]+=/.test(e)) bad(`env[${i}]`, 'must be a NAME=value string');
      });
    } else if (typeof t.env === 'object' && t.env !== null) {
      for (const [k, v] of Object.entries(t.env)) {
        if (k === '' || k.includes('=') || k.includes('\0')) bad(`env.${k}`, 'is not a valid variable name');
        if (typeof v !== 'string') bad(`env.${k}`, 'must be a string');
      }
    } else bad('env', 'must be an object of strings or an array of NAME=value strings');
  }
  if (t.cwd !== undefined && (typeof t.cwd !== 'string' || !t.cwd.startsWith('/'))) bad('cwd', 'must be an absolute path');
  if (t.user !== undefined) {
    checkOptionKeys(t.user, USER_KEYS, 'template.user');
    if (!isInt(t.user.uid, 0) || !isInt(t.user.gid, 0) || t.user.uid >= 65_536 || t.user.gid >= 65_536) bad('user', 'uid and gid must be integers from 0 to 65535 (ids of the sandbox\'s range)');
  }
  if (t.hostname !== undefined && (typeof t.hostname !== 'string' || t.hostname === '' || t.hostname.length > 64)) bad('hostname', 'must be 1 to 64 characters');
  if (t.readonlyRootfs !== undefined && typeof t.readonlyRootfs !== 'boolean') bad('readonlyRootfs', 'must be a boolean');
  if (t.limits !== undefined) {
    checkOptionKeys(t.limits, LIMIT_KEYS, 'template.limits');
    const l = t.limits;
    if (l.memoryBytes !== undefined && !isInt(l.memoryBytes, 1 << 20)) bad('limits.memoryBytes', 'must be an integer of at least 1 MiB');
    if (l.pids !== undefined && !isInt(l.pids, 1)) bad('limits.pids', 'must be a positive integer');
    if (l.cpus !== undefined && !(typeof l.cpus === 'number' && Number.isFinite(l.cpus) && l.cpus >= 0.01)) bad('limits.cpus', 'must be a number of at least 0.01');
  }
  planNetwork(t.network, 'template.network');
}

function checkIds(ids: HostIdRange): void {
  if (typeof ids !== 'object' || ids === null || !isInt(ids.hostId, 1) || !isInt(ids.size, 1) || ids.hostId + ids.size - 1 > 0xffff_fffe) {
    throw new PaddockError('EINVALID_ARGUMENT', 'ids: hostId and size must be positive integers within the host id space (hostId 0 would map the container to host root)', { field: 'ids' });
  }
}

function envList(env: SandboxTemplate['env']): string[] {
  const list = env === undefined ? [] : Array.isArray(env) ? [...(env as readonly string[])] : Object.entries(env).map(([k, v]) => `${k}=${v}`);
  if (!list.some((e) => e.startsWith('PATH='))) list.unshift(DEFAULT_PATH);
  return list;
}
