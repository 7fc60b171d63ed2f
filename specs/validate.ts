/**
 * Hand-written validator for config.json (OCI runtime spec v1.x, Linux subset).
 *
 * Every problem names the JSON path of the field at fault. Two kinds exist:
 * ECONFIG_INVALID (the config breaks the spec, or a limit of the wire format the
 * plan travels in) and ECONFIG_UNSUPPORTED (valid, but paddock cannot honour it and
 * ignoring it would weaken isolation or change behaviour). specs/UNSUPPORTED.md lists
 * the second kind and the few runc defaults that are tolerated.
 *
 * Unknown properties are ignored, as the spec requires of runtimes; properties the
 * spec defines but paddock does not implement are refused, never silently skipped.
 * The exceptions are fields no runtime could apply on this kernel (kernel memory
 * limits, a bind mount's data options): accepted, and logged as warnings naming the
 * field by specs/config-warnings.ts.
 */

import { SpecError } from '../base/errors';
import { MAX_STR } from '../protocols/messages';
import { allowsMknod, DeviceRuleError, effectiveDeviceRules, reduceDeviceRules } from './device-rules';
import { parseMount, PROPAGATION } from './mount-options';
import { NAMESPACE_TYPES, OciConfig, OciIdMapping } from './oci';
import { CAP_SETS, CAPABILITIES, isRlimitValue, RLIMITS, sysctlNamespace } from './process-security';
import { IGNORED_MEMORY_KEYS } from './config-warnings';
import { DEFAULT_DEVICES, DEVICE_TYPES, devicePath } from './device-nodes';
import { validateSeccomp } from './seccomp';

export type ProblemCode = 'ECONFIG_INVALID' | 'ECONFIG_UNSUPPORTED';

export interface ConfigProblem {
  readonly code: ProblemCode;
  readonly field: string;
  /** `field: reason`, ready to be an error message. */
  readonly message: string;
}

/** Wire-format list limits (docs/protocol.md): caught here so the error names a field. */
export const LIMITS = {
  args: 1024,
  env: 4096,
  mounts: 256,
  paths: 256,
  /** DEVICE strings of a plan: paddock's defaults plus linux.devices (podman --privileged lists the host's every node). */
  devices: 1024,
  additionalGids: 64,
  /** Kernel limit on lines in uid_map/gid_map since Linux 4.15. */
  idMappings: 340,
  /** HOST_NAME_MAX; also the limit for setdomainname(2). */
  hostname: 64,
  rlimits: 64,
  sysctls: 256,
  /** createContainer + startContainer hooks of one container (protocol HOOK). */
  containerHooks: 64,
} as const;

const U32_MAX = 0xffffffff;

/** What `runc spec` writes in every capability set. */
export const RUNC_DEFAULT_CAPS: readonly string[] = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

type Json = unknown;
type Obj = Record<string, Json>;

function isObj(v: Json): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isU32(v: Json): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

export class Checker {
  readonly problems: ConfigProblem[] = [];

  invalid(field: string, reason: string): void {
    this.problems.push({ code: 'ECONFIG_INVALID', field, message: `${field}: ${reason}` });
  }
  unsupported(field: string, reason: string): void {
    this.problems.push({ code: 'ECONFIG_UNSUPPORTED', field, message: `${field}: ${reason}` });
  }

  /** A string that can travel as a wire `str`: no NUL, at most MAX_STR bytes. */
  str(field: string, v: Json, what = 'a string'): v is string {
    if (typeof v !== 'string') {
      this.invalid(field, `must be ${what}`);
      return false;
    }
    if (v.includes('\0')) {
      this.invalid(field, 'must not contain a nul byte');
      return false;
    }
    if (Buffer.byteLength(v) > MAX_STR) {
      this.invalid(field, `must be at most ${MAX_STR} bytes`);
      return false;
    }
    return true;
  }

  absPath(field: string, v: Json): v is string {
    if (!this.str(field, v, 'an absolute path')) return false;
    if (!v.startsWith('/')) {
      this.invalid(field, 'must be an absolute path');
      return false;
    }
    return true;
  }

  bool(field: string, v: Json): v is boolean {
    if (typeof v !== 'boolean') {
      this.invalid(field, 'must be a boolean');
      return false;
    }
    return true;
  }

  u32(field: string, v: Json): v is number {
    if (!isU32(v)) {
      this.invalid(field, `must be an integer from 0 to ${U32_MAX}`);
      return false;
    }
    return true;
  }

  obj(field: string, v: Json): v is Obj {
    if (!isObj(v)) {
      this.invalid(field, 'must be an object');
      return false;
    }
    return true;
  }

  arr(field: string, v: Json, max?: number): v is Json[] {
    if (!Array.isArray(v)) {
      this.invalid(field, 'must be an array');
      return false;
    }
    if (max !== undefined && v.length > max) {
      this.invalid(field, `must have at most ${max} entries`);
      return false;
    }
    return true;
  }

  strMap(field: string, v: Json): v is Record<string, string> {
    if (!this.obj(field, v)) return false;
    let ok = true;
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== 'string') {
        this.invalid(`${field}.${k}`, 'must be a string');
        ok = false;
      }
    }
    return ok;
  }
}

/** Context the per-section checks need from other sections. */
interface Ctx {
  namespaces: Set<string>;
  /** Types given by path (joined, not created). */
  joined: Set<string>;
  userns: boolean;
}

/**
 * Every problem in `raw`, ECONFIG_INVALID ones first, each group in document order.
 * An empty list means `raw` is a config paddock can run.
 */
export function findConfigProblems(raw: Json): ConfigProblem[] {
  const c = new Checker();
  if (!isObj(raw)) {
    c.invalid('', 'config.json must contain a json object');
    return c.problems;
  }

  // Namespaces first: several rules elsewhere depend on which ones are asked for.
  const ctx = checkNamespaces(c, raw.linux);

  if (raw.ociVersion === undefined) c.invalid('ociVersion', 'is required');
  else if (c.str('ociVersion', raw.ociVersion) && !/^1\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(raw.ociVersion)) {
    c.invalid('ociVersion', `must be a 1.x semantic version, got "${raw.ociVersion}"`);
  }

  if (raw.root === undefined) c.invalid('root', 'is required');
  else if (c.obj('root', raw.root)) {
    const root = raw.root;
    if (root.path === undefined) c.invalid('root.path', 'is required');
    else if (c.str('root.path', root.path) && root.path === '') c.invalid('root.path', 'must not be empty');
    if (root.readonly !== undefined) c.bool('root.readonly', root.readonly);
  }

  checkProcess(c, raw.process, ctx);

  for (const key of ['hostname', 'domainname'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (!c.str(key, v)) continue;
    if (Buffer.byteLength(v) > LIMITS.hostname) c.invalid(key, `must be at most ${LIMITS.hostname} bytes`);
    // Runtime spec: setting a hostname without a new uts namespace is an error.
    else if (!ctx.namespaces.has('uts')) c.invalid(key, 'requires a uts namespace in linux.namespaces');
  }

  checkMounts(c, raw.mounts);
  checkHooks(c, raw.hooks);
  if (raw.annotations !== undefined) c.strMap('annotations', raw.annotations);
  if (raw.linux !== undefined) checkLinux(c, raw.linux, raw.process, ctx);

  for (const platform of ['windows', 'solaris', 'vm', 'zos']) {
    if (raw[platform] !== undefined) c.unsupported(platform, 'paddock runs linux containers only');
  }

  return [
    ...c.problems.filter((p) => p.code === 'ECONFIG_INVALID'),
    ...c.problems.filter((p) => p.code === 'ECONFIG_UNSUPPORTED'),
  ];
}

/** Throws a SpecError for the first problem; returns `raw`, now known to be a config. */
export function validateConfig(raw: Json, context: { path?: string } = {}): OciConfig {
  const problems = findConfigProblems(raw);
  const first = problems[0];
  if (first) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    throw new SpecError(first.code, first.message + more, { ...context, field: first.field });
  }
  return raw as OciConfig;
}

/**
 * Namespace types that cannot be given by path, and why. net, ipc, uts, user and cgroup
 * can: the sandbox's paddock-init joins them at launch (native/c/lib/launch.c,
 * docs/decisions/0013, 0021 and 0025). pid and cgroup can for a container added to a
 * sandbox (a pod's shared namespaces, actors/pod/namespaces.ts); a sandbox's own config
 * with a pid one is refused when it is planned (specs/plan.ts), since only there is it
 * known which.
 */
const UNJOINABLE: Readonly<Record<string, string>> = {
  time: 'time namespaces are not supported',
};

function checkNamespaces(c: Checker, linux: Json): Ctx {
  const ctx: Ctx = { namespaces: new Set(), joined: new Set(), userns: false };
  const nss = isObj(linux) ? linux.namespaces : undefined;
  if (nss !== undefined && c.arr('linux.namespaces', nss)) {
    nss.forEach((ns, i) => {
      const f = `linux.namespaces[${i}]`;
      if (!c.obj(f, ns)) return;
      if (ns.type === undefined) {
        c.invalid(`${f}.type`, 'is required');
        return;
      }
      if (!c.str(`${f}.type`, ns.type)) return;
      if (!(NAMESPACE_TYPES as readonly string[]).includes(ns.type)) {
        c.invalid(`${f}.type`, `must be one of ${NAMESPACE_TYPES.join(', ')}`);
        return;
      }
      if (ctx.namespaces.has(ns.type)) {
        c.invalid(`${f}.type`, `duplicate ${ns.type} namespace`);
        return;
      }
      ctx.namespaces.add(ns.type);
      if (ns.type === 'time') c.unsupported(`${f}.type`, 'time namespaces are not supported');
      if (ns.path !== undefined && c.absPath(`${f}.path`, ns.path)) {
        const why = UNJOINABLE[ns.type];
        if (why !== undefined) c.unsupported(`${f}.path`, `joining an existing ${ns.type} namespace is not supported: ${why}`);
        else ctx.joined.add(ns.type);
      }
    });
  }
  ctx.userns = ctx.namespaces.has('user');
  // A mount namespace by path is joined and set up as runc does (decision 0034). From a
  // new user namespace setns would need CAP_SYS_ADMIN over the host's: never possible.
  // The container's child opens the file from paddock-init's mount namespace, a copy of
  // the host's into which the kernel never copies a bind-mounted mount namespace file:
  // only a /proc/<pid>/ns/mnt link reaches one from there.
  const mountNs = isObj(linux) && Array.isArray(linux.namespaces) ? linux.namespaces.findIndex((n) => isObj(n) && n.type === 'mount') : -1;
  const mountPath = mountNs >= 0 ? (linux as Obj & { namespaces: Obj[] }).namespaces[mountNs]?.path : undefined;
  if (ctx.joined.has('mount') && ctx.userns && !ctx.joined.has('user')) {
    c.unsupported(`linux.namespaces[${mountNs}].path`, 'a mount namespace given by path cannot be joined from a new user namespace (setns needs CAP_SYS_ADMIN over it); give the user namespace by path too, or drop one of them');
  } else if (ctx.joined.has('mount') && typeof mountPath === 'string' && !/^\/proc\/\d+\/(task\/\d+\/)?ns\/mnt$/.test(mountPath)) {
    c.unsupported(`linux.namespaces[${mountNs}].path`, `give /proc/<pid>/ns/mnt of a process in the namespace: a bind-mounted namespace file (${mountPath}) is not visible to paddock-init, as the kernel does not copy it into new mount namespaces`);
  }
  // No mount namespace listed: runc then mounts into its own (the host's) table, leaves
  // the mounts there and makes the host's "/" rprivate. Every paddock container gets a
  // mount namespace of its own all the same, as it gets a pid namespace: it only adds
  // isolation, and the host's table stays as it was (config-warnings.ts says so).
  return ctx;
}

function checkProcess(c: Checker, p: Json, ctx: Ctx): void {
  if (p === undefined) {
    c.invalid('process', 'is required');
    return;
  }
  if (!c.obj('process', p)) return;

  // A terminal needs a console socket, which is the caller's to give (create/exec
  // options), so only the type is checked here.
  if (p.terminal !== undefined) c.bool('process.terminal', p.terminal);
  if (p.consoleSize !== undefined && c.obj('process.consoleSize', p.consoleSize)) {
    // A winsize holds 16-bit rows and columns.
    if (c.u32('process.consoleSize.height', p.consoleSize.height) && p.consoleSize.height > 0xffff) c.invalid('process.consoleSize.height', 'must be at most 65535');
    if (c.u32('process.consoleSize.width', p.consoleSize.width) && p.consoleSize.width > 0xffff) c.invalid('process.consoleSize.width', 'must be at most 65535');
  }

  if (p.user === undefined) c.invalid('process.user', 'is required');
  else if (c.obj('process.user', p.user)) {
    const u = p.user;
    if (u.uid === undefined) c.invalid('process.user.uid', 'is required');
    else c.u32('process.user.uid', u.uid);
    if (u.gid === undefined) c.invalid('process.user.gid', 'is required');
    else c.u32('process.user.gid', u.gid);
    if (u.umask !== undefined && (!isU32(u.umask) || u.umask > 0o777)) {
      c.invalid('process.user.umask', 'must be an integer from 0 to 511 (0o777)');
    }
    if (u.additionalGids !== undefined && c.arr('process.user.additionalGids', u.additionalGids, LIMITS.additionalGids)) {
      u.additionalGids.forEach((g, i) => c.u32(`process.user.additionalGids[${i}]`, g));
    }
  }

  checkArgs(c, 'process.args', p.args);
  if (p.env !== undefined) checkEnv(c, 'process.env', p.env);
  if (p.cwd === undefined) c.invalid('process.cwd', 'is required');
  else c.absPath('process.cwd', p.cwd);

  checkProcessSecurity(c, 'process.', p);
  // Applied or refused by the host's LSMs at create (actors/containers/lsm.ts), not here: a
  // config is valid or not whatever host it lands on.
  for (const key of ['apparmorProfile', 'selinuxLabel'] as const) {
    if (p[key] !== undefined) c.str(`process.${key}`, p[key]);
  }
  for (const key of ['scheduler', 'ioPriority', 'execCPUAffinity'] as const) {
    if (p[key] !== undefined) c.unsupported(`process.${key}`, 'is not supported');
  }
}

export function checkArgs(c: Checker, field: string, args: Json): void {
  if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string')) {
    c.invalid(field, 'must be a non-empty array of strings');
    return;
  }
  if (args.length > LIMITS.args) {
    c.invalid(field, `must have at most ${LIMITS.args} entries`);
    return;
  }
  args.forEach((a, i) => c.str(`${field}[${i}]`, a));
  if (args[0] === '') c.invalid(`${field}[0]`, 'must not be empty');
}

export function checkEnv(c: Checker, field: string, env: Json): void {
  if (!c.arr(field, env, LIMITS.env)) return;
  env.forEach((e, i) => {
    const f = `${field}[${i}]`;
    if (!c.str(f, e)) return;
    if (e.indexOf('=') <= 0) c.invalid(f, 'must have the form KEY=value');
  });
}

/**
 * capabilities, rlimits, noNewPrivileges and oomScoreAdj: shared by the config's
 * process section and exec options (`prefix` is `process.` or empty), since exec'd
 * processes get them too, as with `runc exec --process`.
 */
export function checkProcessSecurity(c: Checker, prefix: string, p: Obj): void {
  if (p.capabilities !== undefined) checkCapabilities(c, `${prefix}capabilities`, p.capabilities);
  if (p.rlimits !== undefined) checkRlimits(c, `${prefix}rlimits`, p.rlimits);
  if (p.noNewPrivileges !== undefined) c.bool(`${prefix}noNewPrivileges`, p.noNewPrivileges);
  if (p.oomScoreAdj !== undefined) {
    if (typeof p.oomScoreAdj !== 'number' || !Number.isInteger(p.oomScoreAdj) || p.oomScoreAdj < -1000 || p.oomScoreAdj > 1000) {
      c.invalid(`${prefix}oomScoreAdj`, 'must be an integer from -1000 to 1000');
    }
  }
}

/** A list of CAP_* names (exec's addCapabilities, `--cap`). */
export function checkCapabilityNames(c: Checker, field: string, list: Json): void {
  if (!c.arr(field, list)) return;
  for (const [i, cap] of list.entries()) {
    if (!c.str(`${field}[${i}]`, cap)) return;
    if (CAPABILITIES[cap] === undefined) {
      c.invalid(`${field}[${i}]`, `"${cap}" is not a known capability (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE)`);
      return;
    }
  }
}

function checkCapabilities(c: Checker, field: string, caps: Json): void {
  if (!c.obj(field, caps)) return;
  const sets: Partial<Record<(typeof CAP_SETS)[number], Set<string>>> = {};
  for (const set of CAP_SETS) {
    const f = `${field}.${set}`;
    const list = caps[set];
    if (list === undefined) continue;
    if (!c.arr(f, list)) return;
    for (const [i, cap] of list.entries()) {
      if (!c.str(`${f}[${i}]`, cap)) return;
      if (CAPABILITIES[cap] === undefined) {
        c.invalid(`${f}[${i}]`, `"${cap}" is not a known capability (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE)`);
        return;
      }
    }
    sets[set] = new Set(list as string[]);
  }
  // The kernel refuses these combinations (capset/PR_CAP_AMBIENT_RAISE fail with
  // EPERM); say which entry is at fault instead of failing at launch.
  const has = (set: (typeof CAP_SETS)[number], cap: string) => sets[set]?.has(cap) ?? false;
  (caps.effective as string[] | undefined)?.forEach((cap, i) => {
    if (!has('permitted', cap)) c.invalid(`${field}.effective[${i}]`, `${cap} must also be in permitted`);
  });
  // An ambient cap outside permitted or inheritable is accepted and skipped, as runc
  // does (`runc spec` writes one): configWarnings() names it at create.
}

function checkRlimits(c: Checker, field: string, rl: Json): void {
  if (!c.arr(field, rl, LIMITS.rlimits)) return;
  const seen = new Map<string, number>();
  for (const [i, r] of rl.entries()) {
    const f = `${field}[${i}]`;
    if (!c.obj(f, r)) continue;
    if (typeof r.type !== 'string' || RLIMITS[r.type] === undefined) {
      c.invalid(`${f}.type`, `must be one of ${Object.keys(RLIMITS).join(', ')}`);
    } else if (seen.has(r.type)) {
      c.invalid(`${f}.type`, `${r.type} is already set by ${field}[${seen.get(r.type)}]`);
    } else seen.set(r.type, i);
    const { hard, soft } = r;
    for (const [k, v] of [['hard', hard], ['soft', soft]] as const) {
      if (v === undefined) c.invalid(`${f}.${k}`, 'is required');
      else if (!isRlimitValue(v)) c.invalid(`${f}.${k}`, 'must be a non-negative integer');
    }
    if (isRlimitValue(soft) && isRlimitValue(hard) && soft > hard) {
      c.invalid(`${f}.soft`, 'must not exceed hard');
    }
  }
}

/**
 * Sysctls are written inside the sandbox's namespaces, so only namespaced ones
 * are allowed, and only when the config asks for that namespace (the same rules
 * runc applies); anything else would change the host.
 */
function checkSysctl(c: Checker, sysctl: Json, ctx: Ctx): void {
  if (!c.strMap('linux.sysctl', sysctl)) return;
  const entries = Object.entries(sysctl);
  if (entries.length > LIMITS.sysctls) {
    c.invalid('linux.sysctl', `must have at most ${LIMITS.sysctls} entries`);
    return;
  }
  for (const [key, value] of entries) {
    const f = `linux.sysctl.${key}`;
    if (!c.str(f, `${key}=${value}`, 'a string')) continue;
    const where = sysctlNamespace(key);
    if ('invalid' in where) c.invalid(f, where.invalid);
    else if ('unsupported' in where) c.unsupported(f, where.unsupported);
    else if (!ctx.namespaces.has(where.ns)) c.invalid(f, `requires a ${where.ns} namespace in linux.namespaces`);
  }
}

function checkMounts(c: Checker, mounts: Json): void {
  if (mounts === undefined || !c.arr('mounts', mounts, LIMITS.mounts)) return;
  mounts.forEach((m, i) => {
    const f = `mounts[${i}]`;
    if (!c.obj(f, m)) return;
    if (m.destination === undefined) c.invalid(`${f}.destination`, 'is required');
    else if (c.absPath(`${f}.destination`, m.destination) && m.destination.split('/').every((s) => s === '' || s === '.')) {
      c.invalid(`${f}.destination`, 'must not be the root directory');
    }
    const typeOk = m.type === undefined || c.str(`${f}.type`, m.type);
    if (m.source !== undefined) c.str(`${f}.source`, m.source);
    let options: string[] = [];
    if (m.options !== undefined && c.arr(`${f}.options`, m.options)) {
      if (m.options.every((o, j) => c.str(`${f}.options[${j}]`, o))) options = m.options as string[];
    }
    for (const k of ['uidMappings', 'gidMappings'] as const) {
      if (m[k] !== undefined) c.unsupported(`${f}.${k}`, 'id-mapped mounts are not supported');
    }
    if (!typeOk) return;
    const parsed = parseMount(m.type as string | undefined, options);
    for (const p of parsed.problems) {
      if (p.unsupported) c.unsupported(`${f}.options[${p.index}]`, p.reason);
      else c.invalid(`${f}.options[${p.index}]`, p.reason);
    }
    if (!parsed.bind && m.type === undefined) c.invalid(`${f}.type`, 'is required unless the mount is a bind mount');
    if (parsed.bind && m.source === undefined) c.invalid(`${f}.source`, 'is required for a bind mount');
    if (parsed.data !== undefined && Buffer.byteLength(parsed.data) > MAX_STR) {
      c.invalid(`${f}.options`, `the data options must be at most ${MAX_STR} bytes together`);
    }
  });
}

/**
 * Hooks paddock runs on the host (actors/containers/oci-hooks.ts) and those paddock-init runs in the
 * container's namespaces (native/c/init/hooks.c).
 */
const KNOWN_HOOKS = new Set(['prestart', 'createRuntime', 'poststart', 'poststop', 'createContainer', 'startContainer']);

function checkHooks(c: Checker, hooks: Json): void {
  if (hooks === undefined || !c.obj('hooks', hooks)) return;
  for (const [k, v] of Object.entries(hooks)) {
    const f = `hooks.${k}`;
    if (!c.arr(f, v)) continue;
    if (v.length === 0) continue;
    // An unknown hook kind is refused rather than skipped: it would never run.
    if (!KNOWN_HOOKS.has(k)) {
      c.unsupported(f, 'is not a hook kind paddock knows');
      continue;
    }
    v.forEach((h, i) => checkHook(c, `${f}[${i}]`, h));
  }
  // Both kinds travel together in the container's plan (protocols: HOOK ≤ 64).
  const inContainer = ['createContainer', 'startContainer'].reduce((n, k) => n + (Array.isArray(hooks[k]) ? (hooks[k] as unknown[]).length : 0), 0);
  if (inContainer > LIMITS.containerHooks) c.invalid('hooks', `at most ${LIMITS.containerHooks} createContainer and startContainer hooks together`);
}

function checkHook(c: Checker, f: string, h: Json): void {
  if (!c.obj(f, h)) return;
  if (h.path === undefined) c.invalid(`${f}.path`, 'is required');
  else c.absPath(`${f}.path`, h.path);
  if (h.args !== undefined && c.arr(`${f}.args`, h.args, LIMITS.args)) {
    h.args.forEach((a, j) => c.str(`${f}.args[${j}]`, a));
  }
  if (h.env !== undefined) checkEnv(c, `${f}.env`, h.env);
  if (h.timeout !== undefined && (typeof h.timeout !== 'number' || !Number.isInteger(h.timeout) || h.timeout <= 0 || h.timeout > U32_MAX)) {
    c.invalid(`${f}.timeout`, 'must be a positive integer (seconds)');
  }
}

function checkMappings(c: Checker, field: string, v: Json): OciIdMapping[] | undefined {
  if (!c.arr(field, v, LIMITS.idMappings)) return undefined;
  const out: OciIdMapping[] = [];
  v.forEach((m, i) => {
    const f = `${field}[${i}]`;
    if (!c.obj(f, m)) return;
    let ok = true;
    for (const k of ['containerID', 'hostID', 'size'] as const) {
      if (m[k] === undefined) {
        c.invalid(`${f}.${k}`, 'is required');
        ok = false;
      } else if (!c.u32(`${f}.${k}`, m[k])) ok = false;
    }
    if (!ok) return;
    const mapping = m as unknown as OciIdMapping;
    if (mapping.size === 0) {
      c.invalid(`${f}.size`, 'must be positive');
      return;
    }
    if (mapping.containerID + mapping.size - 1 > U32_MAX || mapping.hostID + mapping.size - 1 > U32_MAX) {
      c.invalid(`${f}.size`, 'the range must end at or below 4294967295');
      return;
    }
    // The kernel refuses overlapping ranges on either side of a map.
    for (const [j, prev] of out.entries()) {
      if (overlaps(prev.containerID, prev.size, mapping.containerID, mapping.size)) {
        c.invalid(`${f}.containerID`, `overlaps ${field}[${j}]`);
        return;
      }
      if (overlaps(prev.hostID, prev.size, mapping.hostID, mapping.size)) {
        c.invalid(`${f}.hostID`, `overlaps ${field}[${j}]`);
        return;
      }
    }
    out.push(mapping);
  });
  return out.length === v.length ? out : undefined;
}

function overlaps(a: number, an: number, b: number, bn: number): boolean {
  return a < b + bn && b < a + an;
}

export function isMapped(maps: readonly OciIdMapping[], id: number): boolean {
  return maps.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

function checkLinux(c: Checker, linux: Json, process: Json, ctx: Ctx): void {
  if (!c.obj('linux', linux)) return;

  const maps: Partial<Record<'uidMappings' | 'gidMappings', OciIdMapping[]>> = {};
  for (const k of ['uidMappings', 'gidMappings'] as const) {
    const f = `linux.${k}`;
    if (linux[k] === undefined) {
      if (ctx.userns) c.invalid(f, 'is required with a user namespace');
      continue;
    }
    if (!ctx.userns) {
      c.invalid(f, 'requires a user namespace in linux.namespaces');
      continue;
    }
    const m = checkMappings(c, f, linux[k]);
    if (m && m.length === 0) c.invalid(f, 'must not be empty with a user namespace');
    else if (m) {
      maps[k] = m;
      // paddock-init itself runs as root of the user namespace; unmapped, it could
      // not create a file or change to another id.
      if (!isMapped(m, 0)) c.unsupported(f, `container ${k === 'uidMappings' ? 'uid' : 'gid'} 0 must be mapped`);
    }
  }
  // setuid/setgid/setgroups to an unmapped id fails inside the namespace: say so now.
  const user = isObj(process) && isObj(process.user) ? process.user : undefined;
  if (user && maps.uidMappings && isU32(user.uid) && !isMapped(maps.uidMappings, user.uid)) {
    c.invalid('process.user.uid', `${user.uid} is not mapped by linux.uidMappings`);
  }
  if (user && maps.gidMappings) {
    if (isU32(user.gid) && !isMapped(maps.gidMappings, user.gid)) {
      c.invalid('process.user.gid', `${user.gid} is not mapped by linux.gidMappings`);
    }
    if (Array.isArray(user.additionalGids)) {
      user.additionalGids.forEach((g, i) => {
        if (isU32(g) && !isMapped(maps.gidMappings ?? [], g)) {
          c.invalid(`process.user.additionalGids[${i}]`, `${g} is not mapped by linux.gidMappings`);
        }
      });
    }
  }

  for (const k of ['maskedPaths', 'readonlyPaths'] as const) {
    const v = linux[k];
    if (v !== undefined && c.arr(`linux.${k}`, v, LIMITS.paths)) {
      v.forEach((p, i) => c.absPath(`linux.${k}[${i}]`, p));
    }
  }

  if (linux.rootfsPropagation !== undefined && c.str('linux.rootfsPropagation', linux.rootfsPropagation)) {
    if (PROPAGATION[linux.rootfsPropagation] === undefined) {
      c.invalid('linux.rootfsPropagation', `must be one of ${Object.keys(PROPAGATION).join(', ')}`);
    }
  }

  if (linux.sysctl !== undefined) checkSysctl(c, linux.sysctl, ctx);
  if (linux.resources !== undefined) checkResources(c, linux.resources);
  if (linux.seccomp !== undefined) checkSeccomp(c, linux.seccomp);
  if (linux.devices !== undefined) checkDevices(c, linux.devices, ctx.userns ? maps : undefined);
  if (!ctx.userns && Array.isArray(linux.devices) && isObj(linux.resources)) checkDevicesMknod(c, linux.devices, linux.resources.devices);
  // Its meaning depends on --systemd-cgroup (an engine option), so the path itself is
  // checked at create by actors/cgroups/path.ts (docs/decisions/0018).
  if (linux.cgroupsPath !== undefined) c.str('linux.cgroupsPath', linux.cgroupsPath);
  if (linux.mountLabel !== undefined) c.str('linux.mountLabel', linux.mountLabel);
  for (const k of ['intelRdt', 'personality', 'timeOffsets', 'memoryPolicy', 'netDevices']) {
    if (linux[k] !== undefined) c.unsupported(`linux.${k}`, 'is not supported');
  }
}

/**
 * linux.devices (specs/device-nodes.ts makes them). As runc: a node's path must be
 * under /dev, its type one of c, b, u, p, and a c/b/u node needs major and minor.
 * fileMode may carry the type bits (Docker writes 8630); only 0o7777 of it is used.
 * A FIFO in a user namespace is owned by ids that namespace must map.
 */
function checkDevices(c: Checker, devices: Json, maps: Partial<Record<'uidMappings' | 'gidMappings', OciIdMapping[]>> | undefined): void {
  if (!c.arr('linux.devices', devices, LIMITS.devices - DEFAULT_DEVICES.length)) return;
  const seen = new Map<string, number>();
  devices.forEach((d, i) => {
    const f = `linux.devices[${i}]`;
    if (!c.obj(f, d)) return;
    if (d.type === undefined) c.invalid(`${f}.type`, 'is required');
    else if (c.str(`${f}.type`, d.type) && !DEVICE_TYPES.includes(d.type)) {
      c.invalid(`${f}.type`, `must be one of ${DEVICE_TYPES.join(', ')} (char, block, unbuffered char, fifo), got "${d.type}"`);
    }
    if (d.path === undefined) c.invalid(`${f}.path`, 'is required');
    else if (c.absPath(`${f}.path`, d.path)) {
      const p = devicePath(d.path);
      // A newline separates the fields of the wire string (docs/protocol.md).
      if (!p.startsWith('/dev/') || d.path.includes('\n')) c.invalid(`${f}.path`, `must be a path under /dev, got "${d.path}"`);
      else if (seen.has(p)) c.invalid(`${f}.path`, `${p} is already linux.devices[${seen.get(p)}]`);
      else seen.set(p, i);
    }
    const node = d.type !== 'p';
    for (const k of ['major', 'minor'] as const) {
      if (d[k] === undefined) {
        if (node && DEVICE_TYPES.includes(d.type as string)) c.invalid(`${f}.${k}`, `is required for a type "${String(d.type)}" device`);
      } else c.u32(`${f}.${k}`, d[k]);
    }
    for (const k of ['fileMode', 'uid', 'gid'] as const) if (d[k] !== undefined) c.u32(`${f}.${k}`, d[k]);
    if (maps && !node) {
      if (isU32(d.uid) && maps.uidMappings && !isMapped(maps.uidMappings, d.uid)) c.invalid(`${f}.uid`, `${d.uid} is not mapped by linux.uidMappings`);
      if (isU32(d.gid) && maps.gidMappings && !isMapped(maps.gidMappings, d.gid)) c.invalid(`${f}.gid`, `${d.gid} is not mapped by linux.gidMappings`);
    }
  });
}

/**
 * paddock-init makes the nodes while the sandbox's device cgroup already holds its
 * rules, and the cgroup checks mknod too. The runtime's defaults appended to a list
 * allow mknod of everything (specs/device-rules.ts), so only a list that keeps an
 * allowing default and denies `m` for a listed node stops it; runc would make that
 * node before applying the rules. Refused rather than failing at launch.
 */
function checkDevicesMknod(c: Checker, devices: Json[], rules: Json): void {
  if (!Array.isArray(rules) || rules.length === 0) return;
  let set;
  try {
    set = reduceDeviceRules(effectiveDeviceRules(rules));
  } catch (e) {
    if (e instanceof DeviceRuleError) return; // reported by checkResources
    throw e;
  }
  devices.forEach((d, i) => {
    if (!isObj(d) || !['c', 'b', 'u'].includes(d.type as string) || !isU32(d.major) || !isU32(d.minor)) return;
    const type = d.type === 'b' ? 'b' : 'c';
    if (!allowsMknod(set, type, d.major, d.minor)) {
      c.unsupported(`linux.devices[${i}]`, `linux.resources.devices denies mknod (m) of ${type} ${d.major}:${d.minor}, and paddock makes the node under those rules`);
    }
  });
}

/**
 * linux.seccomp: specs/seccomp.ts validates it (pure JS, no libseccomp); its first
 * problem is reported with the field it names. The filter is compiled by specs/plan.ts.
 */
function checkSeccomp(c: Checker, seccomp: Json): void {
  try {
    validateSeccomp(seccomp);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    const field = err.context.field ?? 'linux.seccomp';
    const prefix = `${field}: `;
    const reason = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    if (err.code === 'ECONFIG_UNSUPPORTED') c.unsupported(field, reason);
    else c.invalid(field, reason);
  }
}

/**
 * memory {limit, reservation, swap}, cpu {shares, quota, period, cpus, mems} and
 * pids {limit} are applied to the sandbox's cgroup (actors/cgroups/sandbox-cgroup.ts); 0 means unset,
 * as in runc. Everything else is refused. Device rules: any list the device cgroup can
 * express (specs/device-rules.ts) is applied, with or without a user namespace, through
 * the v1 devices controller or a cgroup v2 device program (docs/decisions/0019, 0034).
 */
function checkResources(c: Checker, res: Json): void {
  if (!c.obj('linux.resources', res)) return;
  for (const [k, v] of Object.entries(res)) {
    const f = `linux.resources.${k}`;
    if (k === 'memory') {
      checkMemory(c, v);
      continue;
    }
    if (k === 'cpu') {
      checkCpu(c, v);
      continue;
    }
    if (k === 'pids') {
      if (!c.obj(f, v)) continue;
      for (const key of Object.keys(v)) if (key !== 'limit') c.unsupported(`${f}.${key}`, 'is not supported');
      if (v.limit !== undefined) resourceInt(c, `${f}.limit`, v.limit, -1, Number.MAX_SAFE_INTEGER);
      continue;
    }
    if (k !== 'devices') {
      c.unsupported(f, 'is not applied (supported: memory, cpu, pids)');
      continue;
    }
    if (!c.arr(f, v)) continue;
    if (v.length === 0) continue;
    try {
      reduceDeviceRules(v, f);
      // What the cgroup gets: the spec's rules and then runc's standard allows.
      reduceDeviceRules(effectiveDeviceRules(v), f);
    } catch (e) {
      if (!(e instanceof DeviceRuleError)) throw e;
      if (e.code === 'ECONFIG_INVALID') c.invalid(e.field, e.reason);
      else c.unsupported(e.field, e.reason);
    }
  }
}

/**
 * The problems of a linux.resources object on its own, for `update` (actors/cgroups/update.ts):
 * the same checks as at create; fields are named `linux.resources.<key>...`.
 */
export function findResourceProblems(res: Json): ConfigProblem[] {
  const c = new Checker();
  checkResources(c, res);
  return c.problems;
}

/** An integer in [min, max] (0 always allowed: unset). */
function resourceInt(c: Checker, field: string, v: Json, min: number, max: number, what?: string): v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || (v !== 0 && (v < min || v > max))) {
    c.invalid(field, `must be ${what ?? `an integer from ${min} to ${max}`}`);
    return false;
  }
  return true;
}

function checkMemory(c: Checker, v: Json): void {
  const f = 'linux.resources.memory';
  if (!c.obj(f, v)) return;
  for (const key of Object.keys(v)) {
    // kernel and kernelTCP: accepted with a warning (specs/config-warnings.ts).
    if (!['limit', 'reservation', 'swap', 'swappiness', 'disableOOMKiller', ...IGNORED_MEMORY_KEYS].includes(key)) c.unsupported(`${f}.${key}`, 'is not supported');
  }
  // v1's memory.swappiness and memory.oom_control, as runc writes them (a v2 host has
  // neither: warned about there, actors/sandbox/launcher.ts).
  if (v.swappiness !== undefined && (typeof v.swappiness !== 'number' || !Number.isSafeInteger(v.swappiness) || v.swappiness < 0 || v.swappiness > 100)) {
    c.invalid(`${f}.swappiness`, 'must be an integer from 0 to 100');
  }
  if (v.disableOOMKiller !== undefined) c.bool(`${f}.disableOOMKiller`, v.disableOOMKiller);
  const bytes = 'an integer number of bytes, or -1 (unlimited)';
  const ok = (k: string) => v[k] === undefined || resourceInt(c, `${f}.${k}`, v[k], -1, Number.MAX_SAFE_INTEGER, bytes);
  for (const k of IGNORED_MEMORY_KEYS) ok(k);
  const limitOk = ok('limit');
  ok('reservation');
  if (ok('swap') && limitOk && typeof v.swap === 'number' && v.swap > 0) {
    const limit = typeof v.limit === 'number' ? v.limit : 0;
    if (limit <= 0) c.invalid(`${f}.swap`, 'needs linux.resources.memory.limit (swap counts memory plus swap)');
    else if (v.swap < limit) c.invalid(`${f}.swap`, `must be at least linux.resources.memory.limit (${limit}): it counts memory plus swap`);
  }
}

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

function checkCpu(c: Checker, v: Json): void {
  const f = 'linux.resources.cpu';
  if (!c.obj(f, v)) return;
  for (const key of Object.keys(v)) {
    if (!['shares', 'quota', 'period', 'cpus', 'mems'].includes(key)) c.unsupported(`${f}.${key}`, 'is not supported');
  }
  if (v.shares !== undefined) resourceInt(c, `${f}.shares`, v.shares, 2, 262144);
  if (v.quota !== undefined) resourceInt(c, `${f}.quota`, v.quota, -1, Number.MAX_SAFE_INTEGER, 'an integer number of microseconds (at least 1000), or -1 (unlimited)');
  if (typeof v.quota === 'number' && v.quota > 0 && v.quota < 1000) c.invalid(`${f}.quota`, 'must be at least 1000 microseconds');
  if (v.period !== undefined) resourceInt(c, `${f}.period`, v.period, 1000, 1000000);
  for (const k of ['cpus', 'mems'] as const) {
    if (v[k] === undefined) continue;
    if (c.str(`${f}.${k}`, v[k]) && v[k] !== '' && !CPU_LIST.test(v[k] as string)) c.invalid(`${f}.${k}`, 'must be a list such as "0-3,6"');
  }
}
