/**
 * Turns a validated bundle into the immutable plans paddock-init executes.
 *
 * Split of namespaces: the sandbox (paddock-init) is cloned into the user, pid, ipc,
 * uts and net namespaces the root container's spec asks for, plus always a mount
 * namespace of its own; a user, ipc, uts, net or cgroup namespace given by path is
 * joined instead. Each container then gets a fresh mount and pid namespace (and a
 * cgroup namespace if asked, unless the sandbox joined one) from init, which also does
 * the rootfs work.
 */

import * as path from 'path';
import { SpecError } from '../base/errors';
import { CLONE, HookKind, HookPlan, MountPlan, ProcessPlan } from '../protocols/messages';
import { planDevices } from './device-nodes';
import { DeepReadonly, deepFreeze } from './freeze';
import { Bundle } from './load';
import { PROPAGATION, parseMount } from './mount-options';
import { OciCapabilities, OciConfig, OciHook, OciIdMapping, OciProcess, OciRlimit } from './oci';
import { capsPlan, rlimitsPlan, withCapabilities } from './process-security';
import type { CompiledSeccomp } from './seccomp';
import { Checker, checkArgs, checkCapabilityNames, checkEnv, checkProcessSecurity, isMapped, LIMITS } from './validate';

export { CLONE } from '../protocols/messages';

export { DEFAULT_DEVICES } from './device-nodes';

export interface SandboxPlan {
  readonly cloneFlags: number;
  /** Text for /proc/<pid>/uid_map: one "containerID hostID size" line per mapping. */
  readonly uidMap?: string;
  readonly gidMap?: string;
  /** Host uid that container uid 0 maps to (0 without a user namespace). */
  readonly hostUidForRoot: number;
  readonly hostname?: string;
  readonly domainname?: string;
  /** Bring lo up: only in a network namespace the sandbox made itself. */
  readonly loUp: boolean;
  /**
   * Namespaces given by path (linux.namespaces[i].path), joined instead of created;
   * their flags are not in cloneFlags. `field` names the spec entry for errors.
   */
  readonly joinNamespaces?: readonly JoinNamespace[];
  /**
   * With a user namespace given by path: the spec's mappings, which the joined
   * namespace's must equal (checked at launch; nothing is written to its maps).
   */
  readonly joinedUserMaps?: { readonly uidMap: string; readonly gidMap: string };
}

export interface JoinNamespace {
  readonly type: 'network' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'pid';
  readonly flag: number;
  readonly path: string;
  readonly field: string;
}

export interface StdioPlan {
  readonly stdinPath?: string;
  readonly stdoutPath?: string;
  readonly stderrPath?: string;
  /** Bits 0/1/2: hand init's own fd 0/1/2 to the process. */
  readonly stdioInherit?: number;
}

export interface ExecOptions extends StdioPlan {
  readonly args: readonly string[];
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly user?: { readonly uid: number; readonly gid: number; readonly additionalGids?: readonly number[] };
  /** Override the container's process.capabilities / rlimits / noNewPrivileges, as `runc exec --process` can. */
  readonly capabilities?: DeepReadonly<OciCapabilities>;
  readonly rlimits?: readonly DeepReadonly<OciRlimit>[];
  readonly noNewPrivileges?: boolean;
  /** Added to bounding, effective and permitted, as `runc exec --cap` does. */
  readonly addCapabilities?: readonly string[];
}

type Config = DeepReadonly<OciConfig>;

const SANDBOX_NAMESPACES: ReadonlyArray<readonly [string, number]> = [
  ['user', CLONE.NEWUSER],
  ['ipc', CLONE.NEWIPC],
  ['uts', CLONE.NEWUTS],
  ['network', CLONE.NEWNET],
];

function hasNamespace(config: Config, type: string): boolean {
  return (config.linux?.namespaces ?? []).some((ns) => ns.type === type);
}

/** A namespace of that type given by path (joined rather than made). */
export function namesNamespacePath(config: Config, type: string): boolean {
  return (config.linux?.namespaces ?? []).some((ns) => ns.type === type && ns.path !== undefined && ns.path !== '');
}

function mapText(maps: readonly DeepReadonly<OciIdMapping>[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

export function hostIdFor(maps: readonly DeepReadonly<OciIdMapping>[], id: number): number | undefined {
  const m = maps.find((x) => id >= x.containerID && id < x.containerID + x.size);
  return m === undefined ? undefined : m.hostID + (id - m.containerID);
}

export function planSandbox(bundle: Pick<Bundle, 'config'>): SandboxPlan {
  const { config } = bundle;
  // pid is new unless the spec names one: init is then pid 1 of the sandbox and reaps
  // what it starts. Given by path, init is born in that namespace (not its pid 1) and
  // makes itself a subreaper there, and the root container joins it too, as runc's
  // process does (docs/decisions/0036).
  let cloneFlags = namesNamespacePath(config, 'pid') ? CLONE.NEWNS : CLONE.NEWNS | CLONE.NEWPID;
  const joins: JoinNamespace[] = [];
  (config.linux?.namespaces ?? []).forEach((ns, i) => {
    const flag = SANDBOX_NAMESPACES.find(([type]) => type === ns.type)?.[1];
    if (flag === undefined) {
      if (ns.type === 'pid' && ns.path !== undefined && ns.path !== '') {
        joins.push({ type: 'pid', flag: CLONE.NEWPID, path: ns.path, field: `linux.namespaces[${i}].path` });
        return;
      }
      // A mount namespace by path is joined by the container (planContainer); the
      // sandbox's paddock-init keeps a mount namespace of its own.
      if (ns.type === 'mount') return;
      // A cgroup namespace by path is joined by init at launch, so its containers,
      // made without one of their own, live in it (docs/decisions/0025).
      if (ns.type === 'cgroup' && ns.path !== undefined && ns.path !== '') {
        joins.push({ type: 'cgroup', flag: CLONE.NEWCGROUP, path: ns.path, field: `linux.namespaces[${i}].path` });
        return;
      }
      // mount: the validator refuses a path for it; plans may be built from configs
      // that skipped it.
      if (ns.path !== undefined && ns.path !== '') {
        throw new SpecError('ECONFIG_UNSUPPORTED', `linux.namespaces[${i}].path: joining an existing ${ns.type} namespace is not supported`, {
          field: `linux.namespaces[${i}].path`,
        });
      }
      return;
    }
    if (ns.path === undefined || ns.path === '') cloneFlags |= flag;
    else if (ns.type === 'network' || ns.type === 'ipc' || ns.type === 'uts' || ns.type === 'user') {
      joins.push({ type: ns.type, flag, path: ns.path, field: `linux.namespaces[${i}].path` });
    } else {
      // The validator refuses these; plans may be built from configs that skipped it.
      throw new SpecError('ECONFIG_UNSUPPORTED', `linux.namespaces[${i}].path: joining an existing ${ns.type} namespace is not supported`, {
        field: `linux.namespaces[${i}].path`,
      });
    }
  });

  // Only in a network namespace the sandbox made itself: a joined one belongs to whoever
  // made it (a pod, `ip netns`), and without one the sandbox is in the host's (`runc spec
  // --rootless` lists none), whose lo is not ours to touch and which a new user
  // namespace could not change anyway (SIOCSIFFLAGS: EPERM).
  const loUp = (cloneFlags & CLONE.NEWNET) !== 0;
  const plan: { -readonly [K in keyof SandboxPlan]: SandboxPlan[K] } = { cloneFlags, hostUidForRoot: 0, loUp };
  if (joins.length > 0) plan.joinNamespaces = joins;
  if (hasNamespace(config, 'user')) {
    const uidMappings = config.linux?.uidMappings ?? [];
    const gidMappings = config.linux?.gidMappings ?? [];
    const root = hostIdFor(uidMappings, 0);
    if (root === undefined) {
      // paddock-init runs as uid 0 of the namespace; unmapped, it could not create
      // a single file. The validator rejects this, but plans may be built from
      // configs that never went through it.
      throw new SpecError('ECONFIG_UNSUPPORTED', 'linux.uidMappings: container uid 0 must be mapped', {
        field: 'linux.uidMappings',
      });
    }
    if (joins.some((j) => j.type === 'user')) plan.joinedUserMaps = { uidMap: mapText(uidMappings), gidMap: mapText(gidMappings) };
    else {
      plan.uidMap = mapText(uidMappings);
      plan.gidMap = mapText(gidMappings);
    }
    plan.hostUidForRoot = root;
  }
  if (config.hostname !== undefined) plan.hostname = config.hostname;
  if (config.domainname !== undefined) plan.domainname = config.domainname;
  return deepFreeze(plan);
}

function argError(field: string, reason: string): never {
  throw new SpecError('EINVALID_ARGUMENT', `${field}: ${reason}`, { field });
}

function stdioPlan(stdio: StdioPlan, prefix: string): StdioPlan {
  const out: { -readonly [K in keyof StdioPlan]: StdioPlan[K] } = {};
  for (const k of ['stdinPath', 'stdoutPath', 'stderrPath'] as const) {
    const v = stdio[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0')) argError(`${prefix}${k}`, 'must be an absolute path');
    out[k] = v;
  }
  const inh = stdio.stdioInherit;
  if (inh !== undefined) {
    if (!Number.isInteger(inh) || inh < 0 || inh > 7) argError(`${prefix}stdioInherit`, 'must be an integer from 0 to 7');
    out.stdioInherit = inh;
  }
  return out;
}

function mountPlan(bundleDir: string, m: NonNullable<Config['mounts']>[number]): MountPlan {
  const parsed = parseMount(m.type, m.options ?? []);
  const out: { -readonly [K in keyof MountPlan]: MountPlan[K] } = {
    destination: normalizeDest(m.destination),
    type: parsed.type,
    flags: parsed.flags,
  };
  if (m.source !== undefined) out.source = parsed.bind ? path.resolve(bundleDir, m.source) : m.source;
  if (parsed.data !== undefined) out.data = parsed.data;
  if (parsed.propagation !== undefined) out.propagation = parsed.propagation;
  return out;
}

function normalizeDest(dest: string): string {
  const n = path.posix.normalize(dest);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

type MutablePlan = { -readonly [K in keyof ProcessPlan]: ProcessPlan[K] };

/** capabilities, rlimits, no_new_privs, oom score: from a validated process section. */
function securityPlan(plan: MutablePlan, proc: Pick<DeepReadonly<OciProcess>, 'capabilities' | 'rlimits' | 'noNewPrivileges' | 'oomScoreAdj'>): void {
  // Absent is empty, as in runc: a spec grants capabilities, never inherits root's
  // (docs/decisions/0026). An ambient cap the kernel would refuse is skipped (warned
  // about at create, configWarnings()).
  plan.capabilities = capsPlan(proc.capabilities ?? {});
  if (proc.rlimits !== undefined && proc.rlimits.length > 0) plan.rlimits = rlimitsPlan(proc.rlimits);
  if (proc.noNewPrivileges === true) plan.noNewPrivileges = true;
  if (proc.oomScoreAdj !== undefined) plan.oomScoreAdj = proc.oomScoreAdj;
}

/**
 * The filter is compiled by the caller (actors/containers/seccomp-cache.ts: an effect,
 * through libseccomp) and handed in. A config that asks for seccomp and comes without
 * its filter is a bug in the caller, never a reason to run the process unfiltered.
 */
function seccompPlan(plan: MutablePlan, seccomp: unknown, compiled: CompiledSeccomp | undefined): void {
  if (seccomp === undefined || seccomp === null) return;
  if (compiled === undefined) throw new Error('linux.seccomp is set but its compiled filter was not passed to the plan');
  plan.seccompBpf = compiled.bpf;
  plan.seccompFlags = compiled.flags;
}

/** ociVersion of the state JSON hooks read (the runtime-spec version it follows). */
export const HOOK_STATE_OCI_VERSION = '1.0.2';
/** Seconds a hook may run when its `timeout` is unset (runc: forever; docs/decisions/0010). */
export const DEFAULT_CONTAINER_HOOK_TIMEOUT_S = 30;

/**
 * createContainer and startContainer hooks for paddock-init, and the state JSON they
 * read without `status` and `pid` (init adds both: it alone knows the pid). A hook
 * without `env` gets the container process's environment, as under runc, whose init
 * runs these hooks after taking on that environment.
 */
function hooksPlan(plan: MutablePlan, bundle: Bundle, containerId: string | undefined): void {
  const { config } = bundle;
  const hooks: HookPlan[] = [];
  const add = (kind: HookPlan['kind'], list: readonly DeepReadonly<OciHook>[] | undefined) => {
    for (const h of list ?? []) {
      hooks.push({
        kind,
        path: h.path,
        ...(h.args !== undefined && h.args.length > 0 ? { args: [...h.args] } : {}),
        env: [...(h.env ?? config.process?.env ?? [])],
        timeoutSec: h.timeout ?? DEFAULT_CONTAINER_HOOK_TIMEOUT_S,
      });
    }
  };
  add(HookKind.CREATE_CONTAINER, config.hooks?.createContainer);
  add(HookKind.START_CONTAINER, config.hooks?.startContainer);
  if (hooks.length === 0) return;
  if (containerId === undefined) argError('containerId', 'is required for a plan with container hooks');
  plan.hooks = hooks;
  plan.hookState = JSON.stringify({
    ociVersion: HOOK_STATE_OCI_VERSION,
    id: containerId,
    bundle: bundle.dir,
    ...(config.annotations !== undefined ? { annotations: config.annotations } : {}),
  });
}

/** The plan for a container's root process, sent with START_CONTAINER. */
/** What a container's plan needs besides its bundle: `seccomp` is linux.seccomp compiled (required when the config has one). */
export interface ContainerPlanInputs {
  containerId?: string;
  seccomp?: CompiledSeccomp;
}

export function planContainer(bundle: Bundle, stdio: StdioPlan = {}, opts: ContainerPlanInputs = {}): ProcessPlan {
  const { config } = bundle;
  const proc = config.process;
  if (proc === undefined) {
    throw new SpecError('ECONFIG_INVALID', 'process: is required', { field: 'process' });
  }
  // A mount namespace given by path is joined by the container's child and set up
  // there, as runc does (docs/decisions/0034); otherwise the container gets a new one.
  const mountNsPath = (config.linux?.namespaces ?? []).find((ns) => ns.type === 'mount' && ns.path !== undefined && ns.path !== '')?.path;
  let nsFlags = mountNsPath === undefined ? CLONE.NEWNS | CLONE.NEWPID : CLONE.NEWPID;
  // A pid namespace given by path: init was born in it, and the container is made in
  // it (its children are), not in one nested below it.
  if (namesNamespacePath(config, 'pid')) nsFlags &= ~CLONE.NEWPID;
  // A cgroup filesystem inside a user namespace can only be mounted from a cgroup
  // namespace the container owns (EPERM otherwise), and without one it would show the
  // host's whole hierarchy: asking for a cgroup mount implies a private cgroup
  // namespace, as crun does on cgroup v2 (docs/decisions/0008).
  // A cgroup namespace given by path is joined instead (by init for a sandbox's root
  // container, by the container itself in a pod, docs/decisions/0025): never a new one.
  const wantsCgroupMount = (config.mounts ?? []).some((m) => m.type === 'cgroup' || m.type === 'cgroup2');
  if ((hasNamespace(config, 'cgroup') || wantsCgroupMount) && !namesNamespacePath(config, 'cgroup')) nsFlags |= CLONE.NEWCGROUP;

  const plan: MutablePlan = {
    args: [...proc.args],
    env: [...(proc.env ?? [])],
    cwd: proc.cwd,
    uid: proc.user.uid,
    gid: proc.user.gid,
    ...stdioPlan(stdio, 'stdio.'),
    rootfs: bundle.rootfs,
    rootfsReadonly: config.root?.readonly ?? false,
    mounts: (config.mounts ?? []).map((m) => mountPlan(bundle.dir, m)),
    maskedPaths: [...(config.linux?.maskedPaths ?? [])],
    readonlyPaths: [...(config.linux?.readonlyPaths ?? [])],
    devices: planDevices(config),
    nsFlags,
  };
  if (proc.user.additionalGids !== undefined) plan.additionalGids = [...proc.user.additionalGids];
  if (proc.user.umask !== undefined) plan.umask = proc.user.umask;
  if (proc.terminal === true) {
    // The console socket is the engine's to add: it is a per-call endpoint.
    plan.terminal = true;
    if (proc.consoleSize) {
      plan.consoleRows = proc.consoleSize.height;
      plan.consoleCols = proc.consoleSize.width;
    }
  }
  const prop = config.linux?.rootfsPropagation;
  if (prop !== undefined) plan.rootfsPropagation = PROPAGATION[prop];
  securityPlan(plan, proc);
  const sysctls = Object.entries(config.linux?.sysctl ?? {}).map(([k, v]) => `${k}=${v}`);
  if (sysctls.length > 0) plan.sysctls = sysctls;
  seccompPlan(plan, config.linux?.seccomp, opts.seccomp);
  hooksPlan(plan, bundle, opts.containerId);
  if (mountNsPath !== undefined) plan.mountNsPath = mountNsPath;
  return deepFreeze(plan);
}

/**
 * The plan for a process exec'd into a running container: no rootfs, it joins the
 * container's namespaces. Defaults (env, cwd, user, umask) come from the container's
 * own process section, as `runc exec` does.
 */
export function planExec(opts: ExecOptions, containerSpec: Config, seccomp?: CompiledSeccomp): ProcessPlan {
  if (typeof opts !== 'object' || opts === null) argError('options', 'must be an object');
  const c = new Checker();
  checkArgs(c, 'args', opts.args);
  if (opts.env !== undefined) checkEnv(c, 'env', opts.env);
  if (opts.cwd !== undefined) c.absPath('cwd', opts.cwd);
  const user = opts.user;
  if (user !== undefined && c.obj('user', user)) {
    c.u32('user.uid', user.uid);
    c.u32('user.gid', user.gid);
    if (user.additionalGids !== undefined && c.arr('user.additionalGids', user.additionalGids, LIMITS.additionalGids)) {
      user.additionalGids.forEach((g, i) => c.u32(`user.additionalGids[${i}]`, g));
    }
  }
  checkProcessSecurity(c, '', opts as unknown as Record<string, unknown>);
  if (opts.addCapabilities !== undefined) checkCapabilityNames(c, 'addCapabilities', opts.addCapabilities);
  const first = c.problems[0];
  if (first) throw new SpecError('EINVALID_ARGUMENT', first.message, { field: first.field });

  const proc = containerSpec.process;
  const uid = user?.uid ?? proc?.user.uid ?? 0;
  const gid = user?.gid ?? proc?.user.gid ?? 0;
  const additionalGids = user ? user.additionalGids : proc?.user.additionalGids;
  if (hasNamespace(containerSpec, 'user')) {
    const uidMappings = containerSpec.linux?.uidMappings ?? [];
    const gidMappings = containerSpec.linux?.gidMappings ?? [];
    if (!isMapped(uidMappings, uid)) argError('user.uid', `${uid} is not mapped in the container's user namespace`);
    if (!isMapped(gidMappings, gid)) argError('user.gid', `${gid} is not mapped in the container's user namespace`);
    additionalGids?.forEach((g, i) => {
      if (!isMapped(gidMappings, g)) argError(`user.additionalGids[${i}]`, `${g} is not mapped in the container's user namespace`);
    });
  }

  const plan: MutablePlan = {
    args: [...opts.args],
    env: [...(opts.env ?? proc?.env ?? [])],
    uid,
    gid,
    ...stdioPlan(opts, ''),
  };
  const cwd = opts.cwd ?? proc?.cwd;
  if (cwd !== undefined) plan.cwd = cwd;
  if (additionalGids !== undefined) plan.additionalGids = [...additionalGids];
  if (proc?.user.umask !== undefined) plan.umask = proc.user.umask;
  // The container's process-security settings apply to every process in it (runc
  // exec does the same), unless the exec options override them.
  const caps = opts.capabilities ?? proc?.capabilities;
  securityPlan(plan, {
    capabilities: opts.addCapabilities !== undefined && opts.addCapabilities.length > 0 ? withCapabilities(caps ?? {}, opts.addCapabilities) : caps,
    rlimits: opts.rlimits ?? proc?.rlimits,
    noNewPrivileges: opts.noNewPrivileges ?? proc?.noNewPrivileges,
    oomScoreAdj: proc?.oomScoreAdj,
  });
  // As runc exec: the exec'd process gets the container's seccomp filter.
  seccompPlan(plan, containerSpec.linux?.seccomp, seccomp);
  return deepFreeze(plan);
}
