import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { LaunchedSandbox } from '../../machines/sandbox.machine';
import type { Fd, LaunchedInit, LaunchInitRequest, NativeFacade } from '../../native/facade';
import { NativeError } from '../../native/facade';
import { decode } from '../../protocols/decode';
import { encode } from '../../protocols/encode';
import type { Message } from '../../protocols/messages';
import { CLONE } from '../../protocols/messages';
import { namesNamespacePath, planSandbox, type JoinNamespace, type SandboxPlan } from '../../specs/plan';
import { ControlClient } from '../channels/control-client';
import { CgroupError, requestsLimits, SandboxCgroup, sandboxCgroupPath, v1OnlyMemoryFields, type CgroupLayout } from '../cgroups/sandbox-cgroup';
import { effectiveDeviceRules, isDefaultDeviceList } from '../../specs/device-rules';
import type { OciDeviceCgroup } from '../../specs/oci';
import { attachDevicePolicy, deviceEnforcement } from '../cgroups/devices';
import { ChannelError, LaunchError, PaddockError } from '../../base/errors';
import { EventSubscriber } from '../channels/event-subscriber';
import { raiseInitRlimits } from '../containers/rlimits';
import type { PidfdWatcher } from '../channels/pidfd-watcher';
import { acquireLockLocked, processStartTime, type SandboxPaths, type StdioMode } from './state-store';
import { readCgroupRecord, writeCgroupRecord } from '../cgroups/record';
import { removeTree } from '../../base/remove-tree';
import { bindKvmNode } from './kvm';
import { listsKvm } from '../../specs/kvm';
import type { Runtime } from './runtime';

export interface LaunchDeps {
  readonly native: NativeFacade;
  readonly watcher: PidfdWatcher;
  readonly initPath?: string;
  readonly requestTimeoutMs: number;
  readonly onEvent: (m: Message) => void;
  readonly onInitExit: () => void;
  readonly rootStdio: StdioMode;
  /** paddock-init's stderr when the root does not inherit the caller's stdio (EngineOptions.initStderr, deprecated; default none). */
  readonly initStderr?: 'inherit' | 'ignore';
  /** Where cgroups are mounted; false: no cgroup at all (stats from /proc). */
  readonly cgroups: CgroupLayout | false;
  /** EngineOptions.launchInit: paddock-init started elsewhere (paddockd's client). */
  readonly launchInit?: (req: LaunchInitRequest) => Promise<LaunchedInit> | undefined;
}

/**
 * Brings a sandbox up: state folder owned by the sandbox's root, SANDBOX_PLAN,
 * native launch of paddock-init into its namespaces, its readiness report, the pidfd
 * watch, and both channels (proved live before anyone relies on them). Any failure
 * undoes everything done so far, so a failed launch leaves nothing behind.
 */
export async function launchSandbox(rt: Runtime, deps: LaunchDeps): Promise<LaunchedSandbox> {
  const plan = planSandbox(rt.bundle);
  const owner = { uid: plan.hostUidForRoot, gid: hostIdForRoot(plan.gidMap) ?? plan.hostUidForRoot };
  rt.owner = owner;
  // sun_path holds 108 bytes with its NUL: a longer state path cannot carry the control
  // socket, and init would only fail later with a bare EINVAL from bind.
  const longest = Math.max(Buffer.byteLength(rt.paths.controlSock), Buffer.byteLength(rt.paths.eventsSock));
  if (longest > 107) {
    throw new LaunchError(`state_dir: ENAMETOOLONG (${rt.paths.controlSock} is ${longest} bytes; unix socket paths allow 107: use a shorter state dir / --root)`, {
      sandboxId: rt.id,
      step: 'state_dir',
      errno: 36,
      path: rt.paths.dir,
    });
  }
  if (owner.uid !== 0) checkReachable(rt);
  // Opened before anything is made, so a bad path fails the create with nothing to undo.
  const joins = openJoinedNamespaces(rt, plan.joinNamespaces ?? [], deps.native);
  try {
    checkJoinedUserMaps(rt, joins, plan.joinedUserMaps, deps.native);
  } catch (e) {
    closeJoined(joins);
    throw e;
  }
  const undo: Array<() => void> = [];
  try {
    fs.mkdirSync(rt.paths.dir, { mode: 0o700 });
    undo.push(() => removeTree(rt.paths.dir));
    // Owned from the first moment, so another engine's reattach never judges it abandoned.
    acquireLockLocked(rt.paths);
    fs.mkdirSync(rt.paths.logsDir, { mode: 0o700 });
    fs.mkdirSync(rt.paths.stdinDir, { mode: 0o700 });
    for (const d of [rt.paths.dir, rt.paths.logsDir, rt.paths.stdinDir]) fs.chownSync(d, owner.uid, owner.gid);
    if (rt.generatedConfig !== undefined) {
      // Root's only (0700 in a folder the sandbox's root owns): init never reads it.
      fs.mkdirSync(rt.bundle.dir, { mode: 0o700 });
      fs.writeFileSync(path.join(rt.bundle.dir, 'config.json'), rt.generatedConfig, { mode: 0o600 });
    }
    fs.writeFileSync(
      rt.paths.planFile,
      encode({
        type: 'SANDBOX_PLAN',
        sandboxId: rt.id,
        ...(plan.hostname ? { hostname: plan.hostname } : {}),
        ...(plan.domainname ? { domainname: plan.domainname } : {}),
        loUp: plan.loUp,
        ...(rt.logSizeMax ? { logSizeMax: BigInt(rt.logSizeMax) } : {}),
      }),
      { mode: 0o644 },
    );

    // Made and limited before init exists, so a limit the kernel refuses fails the
    // create with nothing started.
    rt.cgroup = makeCgroup(rt, deps.cgroups, deps.native);

    const initPath = deps.initPath ?? defaultInitPath();
    const inherit = deps.rootStdio === 'inherit';
    let launched;
    try {
      const req: LaunchInitRequest = {
        initPath,
        sandboxDir: rt.paths.dir,
        cloneFlags: plan.cloneFlags,
        ...(plan.uidMap ? { uidMap: plan.uidMap } : {}),
        ...(plan.gidMap ? { gidMap: plan.gidMap } : {}),
        // Detached (decision 0031): /dev/null unless the sandbox asked for our stdio, so
        // nothing of ours stays open for as long as the sandbox lives.
        stdio: inherit ? [0, 1, 2] : [undefined, undefined, deps.initStderr === 'inherit' ? 2 : undefined],
        ...(joins.length > 0 ? { joinNamespaces: joins.map((j) => ({ type: j.flag, fd: j.fd })) } : {}),
        ...(rt.cgroup ? { cgroup: rt.cgroup.birthplace() } : {}),
      };
      launched = (await deps.launchInit?.(req)) ?? deps.native.launchInit(req);
    } catch (e) {
      if (e instanceof NativeError) {
        throw new LaunchError(`${e.step}: ${e.errnoName}${e.step === 'setns' && joins.length > 0 ? ` (joining ${joins.map((j) => j.path).join(', ')})` : ''}`, { sandboxId: rt.id, step: e.step, errno: e.errno }, e);
      }
      throw e;
    } finally {
      closeJoined(joins);
    }
    rt.pidfd = launched.pidfd;
    rt.initAlive = true;
    // Written before anything can fail, so a supervisor that dies mid-create leaves a
    // sandbox the next engine can find and kill (its state.json does not exist yet).
    fs.writeFileSync(rt.paths.pidFile, `${launched.pid} ${processStartTime(launched.pid) ?? 0}\n`);
    undo.push(() => {
      try {
        deps.native.pidfdSendSignal(launched.pidfd, 9);
      } catch {
        // already gone
      }
    });
    rt.watchToken = deps.watcher.watch(launched.pidfd, () => deps.onInitExit());
    // init forks containers only on START_CONTAINER, long after this: every container
    // process inherits the cgroup. (Without a user namespace init is already running
    // here, but it starts nothing before that request.) The launch placed it as it was
    // born (birthplace, docs/decisions/0046): place() writes only where it could not.
    if (rt.cgroup) {
      try {
        rt.cgroup.place(launched.pid);
      } catch (e) {
        // An init that died at once cannot be placed (ESRCH): its readiness report, read
        // next, names the step that really failed.
        if (!(e instanceof CgroupError && e.errnoName === 'ESRCH')) throw cgroupLaunchError(rt, e);
      }
    }

    const ready = await readReadyReport(launched.readyFd, deps.requestTimeoutMs);
    if (ready.type === 'ERROR') {
      const step = ready.step ?? 'init';
      throw new LaunchError(`${step}: ${errnoName(ready.errno)}${ready.msg ? ` (${ready.msg})` : ''}`, {
        sandboxId: rt.id,
        step,
        ...(ready.errno !== undefined ? { errno: ready.errno } : {}),
      });
    }
    if (ready.type !== 'OK') throw new ChannelError('EPROTOCOL', `unexpected ready report ${ready.type}`, { sandboxId: rt.id });
    // After the readiness report: init has made its mount namespace a slave by then, so
    // the mount cannot propagate back to the host; and before any container is forked
    // (on START_CONTAINER, below us), so each one's copy of the namespace has it.
    if (rt.idmapRootfs !== undefined) {
      try {
        deps.native.idmapRootfs(launched.pidfd, rt.idmapRootfs);
      } catch (e) {
        if (!(e instanceof NativeError)) throw e;
        const hint = e.step === 'idmap_mount_setattr' && e.errnoName === 'EINVAL' ? '; the filesystem cannot be idmapped: idmapRootfs: false shows it unmapped' : '';
        throw new LaunchError(`${e.step}: ${e.errnoName} (${rt.idmapRootfs}${hint})`, { sandboxId: rt.id, step: e.step, errno: e.errno, path: rt.idmapRootfs }, e);
      }
    }
    // Same moment as the idmapped rootfs, for the same reasons (decision 0038).
    if ((plan.cloneFlags & CLONE.NEWUSER) !== 0 && listsKvm(rt.bundle.config)) {
      bindKvmNode(rt.bundle.config, rt.paths.dir, launched.pidfd, deps.native, rt.id);
    }
    ownSockets(rt);
    closeStateDir(rt);
    // Before init forks the root container (its START comes after this): see actors/containers/rlimits.ts.
    try {
      raiseInitRlimits(deps.native, launched.pid, rt.bundle.config, rt.bundle.config.process?.rlimits);
    } catch (e) {
      if (!(e instanceof NativeError)) throw e;
      throw new LaunchError(`prlimit: ${e.errnoName} (${e.message})`, { sandboxId: rt.id, step: 'prlimit', errno: e.errno }, e);
    }
    // init's own threads are all there now and no container has started: see limitPids.
    const pidsLimit = rt.bundle.config.linux?.resources?.pids?.limit;
    if (rt.cgroup && typeof pidsLimit === 'number' && pidsLimit > 0) {
      try {
        rt.cgroup.limitPids(pidsLimit);
      } catch (e) {
        throw cgroupLaunchError(rt, e);
      }
    }

    // init reports ready once both sockets listen, so these connect at the first try
    // (connecting earlier only meets nanomsg's reconnect backoff, measured +7 ms).
    openChannels(rt, deps.requestTimeoutMs, deps.onEvent);
    await proveSubscribed(rt, deps.requestTimeoutMs);
    rt.log.debug({ step: 'launch', hostPid: launched.pid }, 'sandbox ready');
    return {
      initPid: ready.pid ?? 1,
      initHostPid: launched.pid,
      initStartTime: processStartTime(launched.pid) ?? 0,
    };
  } catch (e) {
    closeJoined(joins);
    rt.control?.close();
    rt.events?.close();
    rt.eventsSub?.unsubscribe();
    rt.control = undefined;
    rt.events = undefined;
    for (const u of undo.reverse()) u();
    if (rt.pidfd !== undefined) {
      // The watcher reaps init; wait for it so no zombie or process outlives the failure.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([rt.initExited.promise, new Promise<void>((r) => (timer = setTimeout(r, 2_000)))]);
      clearTimeout(timer);
    }
    await removeCgroup(rt);
    throw e;
  }
}

interface OpenedNamespace extends JoinNamespace {
  fd: number;
}

const NS_FLAG_NAME: Readonly<Record<number, string>> = {
  [CLONE.NEWNET]: 'network',
  [CLONE.NEWIPC]: 'ipc',
  [CLONE.NEWUTS]: 'uts',
  [CLONE.NEWUSER]: 'user',
  [CLONE.NEWPID]: 'pid',
  [CLONE.NEWNS]: 'mount',
  [CLONE.NEWCGROUP]: 'cgroup',
};

/**
 * Opens each namespace file the spec gives by path and checks it is a namespace of
 * the type its entry names: `linux.namespaces[2].path: ENOENT (/run/netns/x)`. On any
 * failure the ones already opened are closed again.
 */
function openJoinedNamespaces(rt: Runtime, joins: readonly JoinNamespace[], native: NativeFacade): OpenedNamespace[] {
  const opened: OpenedNamespace[] = [];
  const fail = (j: JoinNamespace, what: string, errno?: number, cause?: unknown): never => {
    closeJoined(opened);
    throw new LaunchError(`${j.field}: ${what} (${j.path})`, { sandboxId: rt.id, step: 'namespace_path', field: j.field, path: j.path, ...(errno !== undefined ? { errno } : {}) }, cause);
  };
  for (const j of joins) {
    let fd: number;
    try {
      // libuv opens every fd O_CLOEXEC: no other child of this process inherits it.
      fd = fs.openSync(j.path, fs.constants.O_RDONLY);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return fail(j, err.code ?? 'EIO', typeof err.errno === 'number' ? -err.errno : undefined, e);
    }
    opened.push({ ...j, fd });
    let type: number;
    try {
      type = native.namespaceType(fd as Fd);
    } catch (e) {
      if (e instanceof NativeError && e.errnoName === 'ENOTTY') return fail(j, 'not a namespace file', e.errno, e);
      if (e instanceof NativeError) return fail(j, e.errnoName, e.errno, e);
      throw e;
    }
    if (type !== j.flag) {
      const got = NS_FLAG_NAME[type] ?? `0x${type.toString(16)}`;
      fail(j, `not a ${j.type} namespace but ${/^[aeiou]/.test(got) ? 'an' : 'a'} ${got} one`);
    }
  }
  return opened;
}

/** "0 100000 65536" lines as sorted triples, so the order of the entries does not matter. */
function normalMap(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/).filter(Boolean).map(Number))
    .filter((t) => t.length === 3)
    .sort((a, b) => (a[0] as number) - (b[0] as number))
    .map((t) => t.join(' '))
    .join(', ');
}

/**
 * A user namespace given by path keeps its own id maps; the spec's must be the same
 * ones (as runc checks), or every uid the spec reasons about (process.user, the owner
 * of the state dir, exec users) would mean another host id than the one it gets.
 */
function checkJoinedUserMaps(rt: Runtime, joins: readonly OpenedNamespace[], want: SandboxPlan['joinedUserMaps'], native: NativeFacade): void {
  const j = joins.find((x) => x.type === 'user');
  if (j === undefined || want === undefined) return;
  const fail = (what: string, field: string, errno?: number, cause?: unknown): never => {
    throw new LaunchError(`${field}: ${what} (${j.path})`, { sandboxId: rt.id, step: 'namespace_path', field, path: j.path, ...(errno !== undefined ? { errno } : {}) }, cause);
  };
  const st = fs.fstatSync(j.fd);
  const own = fs.statSync('/proc/self/ns/user');
  if (st.ino === own.ino && st.dev === own.dev) fail("is the supervisor's own user namespace (leave the path out to make a new one)", j.field);
  let got;
  try {
    got = native.userNamespaceMaps(j.fd as Fd);
  } catch (e) {
    if (e instanceof NativeError) return fail(`cannot read its id maps: ${e.step}: ${e.errnoName}`, j.field, e.errno, e);
    throw e;
  }
  for (const [k, field] of [['uidMap', 'linux.uidMappings'], ['gidMap', 'linux.gidMappings']] as const) {
    const have = normalMap(got[k]);
    if (have !== normalMap(want[k])) {
      fail(`does not match the joined user namespace's ${k === 'uidMap' ? 'uid_map' : 'gid_map'} (namespace: ${have || 'none'}; spec: ${normalMap(want[k]) || 'none'})`, field);
    }
  }
}

function closeJoined(opened: OpenedNamespace[]): void {
  for (const o of opened.splice(0)) fs.closeSync(o.fd);
}

/** Connects REQ and SUB, then proves the subscription live (see proveSubscribed). */
export async function connectChannels(rt: Runtime, timeoutMs: number, onEvent: (m: Message) => void): Promise<void> {
  // A sandbox made before decision 0030 has init-owned 0755 sockets: take them over
  // now. A failure here leaves them as they were (init checks its peers anyway).
  try {
    ownSockets(rt);
  } catch (e) {
    rt.log.warn({ err: e, step: 'own_sockets' }, 'could not take over the sandbox\'s sockets');
  }
  openChannels(rt, timeoutMs, onEvent);
  await proveSubscribed(rt, timeoutMs);
}

function openChannels(rt: Runtime, timeoutMs: number, onEvent: (m: Message) => void): void {
  rt.control = new ControlClient(rt.id, rt.paths.controlSock, timeoutMs);
  rt.events = new EventSubscriber(rt.paths.eventsSock, rt.log);
  rt.probed = new Promise<void>((resolve) => {
    rt.eventsSub = rt.events?.events$.subscribe((m) => {
      if (m.type === 'EV_PROBE') resolve();
      else onEvent(m);
    });
  });
}

/**
 * PUB/SUB drops what is published before the subscriber is connected, so before
 * anyone relies on events, PROBE_EVENTS makes init publish EV_PROBE until one arrives.
 */
async function proveSubscribed(rt: Runtime, timeoutMs: number): Promise<void> {
  const control = rt.control as ControlClient;
  const probed = rt.probed as Promise<void>;
  const deadline = Date.now() + timeoutMs;
  let got = false;
  void probed.then(() => (got = true));
  // init publishes EV_PROBE by itself when a subscriber attaches; PROBE_EVENTS is
  // the fallback (a subscriber that attached before we listened, or an older init).
  await within(probed, 20);
  while (!got) {
    if (Date.now() > deadline) throw new ChannelError('ETIMEOUT', 'event channel did not come up', { sandboxId: rt.id, step: 'subscribe' });
    await control.request({ type: 'PROBE_EVENTS' });
    // The probe is published before the reply is sent; give the SUB socket a moment.
    await within(probed, 1);
  }
}

/**
 * SIGKILLs init (the kernel then kills every process in its pid namespace), waits for
 * its pidfd, then removes the cgroups:
 * `removeContainerCgroups` first (pod containers' own, decision 0022), so that a parent
 * the sandbox made and a sibling pod cgroup shares is empty when the sandbox's goes.
 */
export async function destroySandboxResources(rt: Runtime, native: NativeFacade, readExits: () => void, removeContainerCgroups?: () => Promise<void>): Promise<void> {
  if (rt.initAlive && rt.pidfd !== undefined) {
    try {
      native.pidfdSendSignal(rt.pidfd, 9);
    } catch (e) {
      if (!(e instanceof NativeError && e.errnoName === 'ESRCH')) throw e;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        rt.initExited.promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new PaddockError('ETIMEOUT', `sandbox ${rt.id} did not exit after SIGKILL`, { sandboxId: rt.id, step: 'destroy' })),
            8_000,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
  readExits();
  // Before the cgroup goes: its removal would wake the v1 eventfd for nothing.
  rt.oom?.stop();
  rt.oom = undefined;
  await removeContainerCgroups?.();
  await removeCgroup(rt);
  rt.eventsSub?.unsubscribe();
  rt.events?.close();
  rt.control?.close();
  rt.events = undefined;
  rt.control = undefined;
}

/**
 * The sandbox's cgroup with the root container's limits applied. When it cannot be
 * made: a spec that asks for limits fails the create (nothing is left); one that asks
 * for none runs without a cgroup, with a warning (stats then come from /proc).
 */
function makeCgroup(rt: Runtime, layout: CgroupLayout | false, native: NativeFacade): SandboxCgroup | undefined {
  const resources = rt.bundle.config.linux?.resources;
  // Device rules go to the v1 devices cgroup or a device program on the cgroup2
  // directory (actors/cgroups/devices.ts), with or without a user namespace (decision 0034).
  // Inside one the default list (deny all, standard allows) grants nothing the kernel
  // does not already refuse there, so a sandbox that asks for no more may run without
  // a cgroup where none can be made, as before.
  const userns = (rt.bundle.config.linux?.namespaces ?? []).some((n) => n.type === 'user');
  const rules = resources?.devices ?? [];
  const hasDevices = rules.length > 0 && !(userns && isDefaultDeviceList(rules));
  // A cgroup asked for by path is asked for like a limit: never skipped (decision 0018).
  const custom = rt.cgroupsPath?.relPath;
  // In a pid namespace the spec names, init is not its pid 1: what the container leaves
  // behind is reparented to that namespace's init, not killed with the sandbox, so the
  // cgroup is what destroy kills it through (runc's way too; decision 0036).
  const joinsPid = namesNamespacePath(rt.bundle.config, 'pid');
  const wanted = requestsLimits(resources) || hasDevices || custom !== undefined || joinsPid;
  if (layout === false || layout.mode === 'none') {
    if (!wanted) return undefined;
    const field = joinsPid && !requestsLimits(resources) && !hasDevices ? 'linux.namespaces' : custom !== undefined && !requestsLimits(resources) ? 'linux.cgroupsPath' : 'linux.resources';
    throw new LaunchError(`cgroup: ENOENT (no cgroup hierarchy is available; ${field} asks for a cgroup)`, { sandboxId: rt.id, step: 'cgroup', field });
  }
  // v2 has no per-cgroup swappiness nor an OOM-killer switch: nothing could apply them
  // there (crun ignores them too), so they are warned about rather than refused.
  if (layout.mode === 'v2') {
    for (const field of v1OnlyMemoryFields(resources)) rt.log.warn({ field, step: 'config' }, `${field} ignored: cgroup v2 has no such setting`);
  }
  const via = deviceEnforcement(layout, resources?.devices);
  const devices = via === 'v1';
  const cpuset = typeof resources?.cpu?.cpus === 'string' || typeof resources?.cpu?.mems === 'string';
  const cg = new SandboxCgroup(layout, custom ?? sandboxCgroupPath(rt.paths.stateDir, rt.id), { cpuset, devices, ...(custom !== undefined ? { made: [] } : {}) });
  try {
    // The spec's device rules and then runc's standard allows (specs/device-rules.ts).
    const deviceRules = via === 'none' ? [] : (effectiveDeviceRules(resources?.devices) as OciDeviceCgroup[]);
    cg.create(devices ? { ...resources, devices: deviceRules } : resources, { deferPids: true, devices });
    if (via === 'bpf') {
      try {
        attachDevicePolicy(native, cg.dirOf('unified'), deviceRules);
      } catch (e) {
        cg.removeSync();
        throw e;
      }
      rt.log.debug({ step: 'cgroup', dir: cg.dirOf('unified') }, 'device program attached');
    }
  } catch (e) {
    if (wanted) throw cgroupLaunchError(rt, e);
    rt.log.warn({ step: 'cgroup', err: (e as Error).message }, 'no cgroup for the sandbox: its stats come from /proc');
    return undefined;
  }
  try {
    // Before init is placed in it: a supervisor that dies from here on leaves a record
    // the next one (or `paddock delete`) finds the cgroup by.
    writeCgroupRecord(rt.paths, { relPath: cg.relPath, custom: custom !== undefined, made: cg.made });
  } catch (e) {
    cg.removeSync();
    throw new LaunchError(`cgroup: ${(e as NodeJS.ErrnoException).code ?? 'EIO'} (writing ${rt.paths.cgroupFile})`, { sandboxId: rt.id, step: 'cgroup', path: rt.paths.cgroupFile }, e);
  }
  return cg;
}

/**
 * The sandbox's cgroup again (reattach, `paddock delete`, a half-made create): from
 * `cgroup.json` in its folder, else (a sandbox made before that record existed) the
 * default path recomputed from its id; undefined if it is gone.
 */
export function findCgroup(paths: SandboxPaths, layout: CgroupLayout | false): SandboxCgroup | undefined {
  if (layout === false || layout.mode === 'none') return undefined;
  const rec = readCgroupRecord(paths);
  const cg = rec
    ? new SandboxCgroup(layout, rec.relPath, { cpuset: true, ...(rec.custom ? { made: rec.made } : {}) })
    : new SandboxCgroup(layout, sandboxCgroupPath(paths.stateDir, paths.sandboxId), { cpuset: true });
  return cg.exists() ? cg : undefined;
}

function cgroupLaunchError(rt: Runtime, e: unknown): Error {
  if (!(e instanceof CgroupError)) return e as Error;
  if (e.inUse) {
    const asked = rt.cgroupsPath?.asked;
    return new PaddockError(
      'ECGROUP_IN_USE',
      `linux.cgroupsPath: cgroup ${e.fullPath ?? e.file}${asked !== undefined ? ` (asked as ${JSON.stringify(asked)})` : ''} is in use: it holds processes or child cgroups (another sandbox's, or someone else's)`,
      { sandboxId: rt.id, step: 'cgroup', field: 'linux.cgroupsPath', ...(e.fullPath ? { path: e.fullPath } : {}) },
      e,
    );
  }
  return new LaunchError(e.message, { sandboxId: rt.id, step: 'cgroup', ...(e.fullPath ? { path: e.fullPath } : {}) }, e);
}

/** Kills what is left in the cgroup and removes it (once init is gone). Failures are logged. */
async function removeCgroup(rt: Runtime): Promise<void> {
  const cg = rt.cgroup;
  if (!cg) return;
  try {
    cg.kill();
  } catch {
    // nothing left to kill, or no cgroup.kill
  }
  try {
    await cg.remove();
    rt.cgroup = undefined;
  } catch (e) {
    rt.log.warn({ step: 'cgroup', err: (e as Error).message, paths: cg.paths }, 'could not remove the sandbox cgroup');
  }
}

/**
 * init made its sockets 0600 but owned by its own uid, which in a user namespace is
 * the sandbox's root (host 100000): any process running as that host uid could
 * connect, such as a container of another sandbox with the same id range that can see
 * this path. Only the supervisor may (decision 0030): it takes the sockets over. init
 * never opens them by path again. A supervisor that is not root (it cannot chown) keeps
 * init's owner; init's peer check still refuses everyone but the supervisor's uid.
 */
function ownSockets(rt: Runtime): void {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  for (const sock of [rt.paths.controlSock, rt.paths.eventsSock]) {
    try {
      const st = fs.lstatSync(sock);
      if (!st.isSocket()) throw new LaunchError(`state_dir: ${sock} is not a socket`, { sandboxId: rt.id, step: 'own_sockets', path: sock });
      if (st.uid !== uid || st.gid !== gid) fs.lchownSync(sock, uid, gid);
      if ((st.mode & 0o777) !== 0o600) fs.chmodSync(sock, 0o600);
    } catch (e) {
      if (e instanceof LaunchError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EPERM' && uid !== 0) continue;
      throw new LaunchError(`own_sockets: ${err.code ?? 'EIO'} (${sock})`, { sandboxId: rt.id, step: 'own_sockets', path: sock }, e);
    }
  }
}

/**
 * The sandbox's folder becomes the supervisor's, 0700, once init is ready (decision
 * 0030): it was the sandbox root's so that init could make its sockets and logs there.
 * From now on init reaches only what it owns below it, logs/ and stdin/, through fds it
 * opened at startup (native/c/init/statedir.c); nobody else, a process of another
 * sandbox that runs as the same host uid included, can walk in. A supervisor that is not
 * root cannot chown: the folder keeps its owner.
 */
function closeStateDir(rt: Runtime): void {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  try {
    fs.chownSync(rt.paths.dir, uid, gid);
    fs.chmodSync(rt.paths.dir, 0o700);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EPERM' && uid !== 0) return;
    throw new LaunchError(`close_state_dir: ${err.code ?? 'EIO'} (${rt.paths.dir})`, { sandboxId: rt.id, step: 'close_state_dir', path: rt.paths.dir }, e);
  }
}

/**
 * A user-namespaced init runs as an unprivileged host uid and must be able to walk
 * down to its folder; a 0700 ancestor would fail deep inside init as EACCES, so say
 * which directory is in the way, before anything is created.
 */
function checkReachable(rt: Runtime): void {
  let dir = path.dirname(rt.paths.dir);
  for (;;) {
    const st = fs.statSync(dir);
    if ((st.mode & 0o001) === 0) {
      throw new LaunchError(
        `state_dir: EACCES (${dir} is mode ${(st.mode & 0o777).toString(8)}; a user-namespaced sandbox needs o+x on every directory above its state)`,
        { sandboxId: rt.id, step: 'state_dir', errno: 13, path: dir },
      );
    }
    const up = path.dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}

function readReadyReport(fd: Fd, timeoutMs: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const sock = new net.Socket({ fd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new LaunchError('init: no readiness report', { step: 'ready' }));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      const buf = Buffer.concat(chunks);
      if (buf.length === 0) {
        reject(new LaunchError('init: exited before reporting readiness', { step: 'ready' }));
        return;
      }
      try {
        resolve(decode(buf));
      } catch (e) {
        reject(new ChannelError('EPROTOCOL', `bad readiness report: ${(e as Error).message}`, { step: 'ready' }));
      }
    });
  });
}

/** Host id that maps to id 0 inside, from "inside outside count" lines. */
function hostIdForRoot(map: string | undefined): number | undefined {
  if (!map) return undefined;
  for (const line of map.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside !== undefined && outside !== undefined && count !== undefined && inside <= 0 && 0 < inside + count) return outside - inside;
  }
  return undefined;
}

function errnoName(errno: number | undefined): string {
  if (errno === undefined) return 'failed';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { errnoName: name } = require('../../base/errno') as { errnoName: (n: number) => string };
  return name(errno);
}

function defaultInitPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { initBinaryPath } = require('../../native/paths') as { initBinaryPath: () => string };
  return initBinaryPath();
}

/**
 * Waits for `p` at most `ms`. The timer is ref'd (an unref'd one would let the process
 * exit mid-await) and cleared as soon as `p` wins, so it never holds up an exit.
 */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
