import * as fs from 'node:fs';
import * as path from 'node:path';
import { createActor, fromCallback, fromPromise, waitFor, type Actor } from 'xstate';
import type { HelperProcess, NetworkEmitted, NetworkEvent, networkMachine } from '../../machines/network.machine';
import type { RestartPolicy } from '../../machines/restart-policy';
import { grantsNetAdmin, resolvConf, type NetworkPlan } from '../../specs/network';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciConfig } from '../../specs/oci';
import type { Fd } from '../../native/facade';
import type { EngineCore } from '../engine/core';
import { PaddockError } from '../../base/errors';
import type { Runtime } from '../sandbox/runtime';
import type { SandboxPaths } from '../sandbox/state-store';
import { processStartTime } from '../sandbox/state-store';
import { writeFileAtomic } from '../../base/files';
import { readGateway } from './interfaces';
import { pastaArgs, startPasta, stopHelper, stopHelperAndWait } from './pasta';
import { checkPortsFree, findHelper } from './preflight';
import { stopBridge } from './bridged';
import { helperPidFile, loadNetworkRecord, networkLog, resolvConfFile, saveNetworkRecord, type NetworkRecord } from './record';

type UserPlan = Extract<NetworkPlan, { mode: 'user' }>;

/** A sandbox's network while this engine holds it: the helper's supervisor and what it records. */
export interface SandboxNetwork {
  readonly plan: UserPlan;
  readonly binary: string;
  record: NetworkRecord;
  actor?: Actor<typeof networkMachine>;
  /** It was up once (or found on reattach): losing it now fails the sandbox, where a first start that fails fails only the create. */
  established: boolean;
}

/** Bounds the wait for the first start (pasta's own readiness wait is 5 s). */
const FIRST_START_TIMEOUT_MS = 10_000;

/**
 * Everything a `user` plan needs that the host or the config decides, checked before
 * anything is made. Returns the helper binary. `hasUserns`: the config has (or
 * `userns: 'auto'` adds) a user namespace, which pasta joins to reach the sandbox's
 * network namespace without privilege.
 */
export async function checkUserNetwork(plan: UserPlan, config: DeepReadonly<OciConfig>, rootfs: string, hasUserns: boolean): Promise<string> {
  if (!hasUserns) {
    throw new PaddockError('EINVALID_ARGUMENT', "network.mode: user needs a user namespace (userns: 'auto', or one in linux.namespaces): pasta reaches the sandbox's network through it", {
      field: 'network.mode',
    });
  }
  if (!plan.egress && grantsNetAdmin(config)) {
    throw new PaddockError('EINVALID_ARGUMENT', 'network.egress: false cannot hold for a process granted CAP_NET_ADMIN (it could configure its interface itself)', {
      field: 'network.egress',
    });
  }
  if (plan.dns) {
    if ((config.mounts ?? []).some((m) => path.posix.normalize(m.destination) === '/etc/resolv.conf')) {
      throw new PaddockError('EINVALID_ARGUMENT', 'network.dns: the config mounts its own /etc/resolv.conf; paddock does not write over it', { field: 'network.dns' });
    }
    if (!isFile(path.join(rootfs, 'etc/resolv.conf'))) {
      throw new PaddockError('EINVALID_ARGUMENT', 'network.dns: the rootfs has no /etc/resolv.conf to mount the written one over', { field: 'network.dns' });
    }
  }
  const binary = findHelper('pasta');
  await checkPortsFree(plan.forwards);
  return binary;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The config with paddock's resolv.conf mounted read-only over the rootfs's (`dns:
 * true`). Its text is the same for every sandbox (pasta's forwarder address), so one
 * file in the state dir's root serves them all; it exists before the config is
 * validated (bind sources must) and outlives every sandbox, as `.userns.json` does.
 */
export function withResolvConf(config: OciConfig, stateDir: string): OciConfig {
  const file = resolvConfFile(stateDir);
  const text = resolvConf();
  let current: string | undefined;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== text) writeFileAtomic(file, text, 0o644);
  return {
    ...config,
    mounts: [...(config.mounts ?? []), { destination: '/etc/resolv.conf', type: 'bind', source: file, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] }],
  };
}

/**
 * Starts the network of a created sandbox (its init alive): the record first, then the
 * helper under its machine. Resolves once it is up; a helper that cannot start is
 * ENETWORK_UNAVAILABLE (the caller destroys the sandbox).
 */
export async function startNetwork(core: EngineCore, rt: Runtime, plan: UserPlan, binary: string, restart: RestartPolicy | undefined): Promise<void> {
  const net: SandboxNetwork = { plan, binary, record: { plan, ...(restart ? { restart } : {}) }, established: false };
  rt.network = net;
  saveNetworkRecord(rt.paths, net.record);
  const actor = runNetworkActor(core, rt, net);
  const snap = await waitFor(actor, (s) => s.value === 'up' || s.status === 'done', { timeout: FIRST_START_TIMEOUT_MS });
  if (snap.value !== 'up') {
    throw new PaddockError('ENETWORK_UNAVAILABLE', snap.context.lastError ?? 'network: the helper did not start', { sandboxId: rt.id, step: 'network' });
  }
}

/**
 * A reattached sandbox's network: with init alive, its helper is watched again (or, if
 * it died meanwhile, handled as an exit now: restarted or given up); with init gone,
 * the helper is stopped.
 */
export function reattachNetwork(core: EngineCore, rt: Runtime): void {
  const record = loadNetworkRecord(rt.paths);
  // A bridge sandbox found dead: its rules go now, its address at destroy.
  if (record?.plan.mode === 'bridge' && !rt.initAlive) stopBridge(rt.paths, record, false);
  if (!record || record.plan.mode !== 'user') return;
  if (!rt.initAlive) {
    if (record.helper) stopHelper(core.native, record.helper);
    return;
  }
  let binary: string;
  try {
    binary = findHelper('pasta');
  } catch (e) {
    // Uninstalled meanwhile: the running helper is still watched; a restart will fail.
    binary = 'pasta';
    rt.log.warn({ err: (e as Error).message }, 'pasta is no longer installed');
  }
  const net: SandboxNetwork = { plan: record.plan, binary, record, established: true };
  rt.network = net;
  runNetworkActor(core, rt, net, record.helper ?? { pid: 0, startTime: -1 });
}

/** The sandbox's supervisor is letting go (close, release, init's exit): stop watching; the helper is left as it is. */
export function detachNetwork(rt: Runtime): void {
  const actor = rt.network?.actor;
  if (!actor) return;
  rt.network = { ...(rt.network as SandboxNetwork), actor: undefined };
  actor.send({ type: 'stop' });
  actor.stop();
}

/**
 * The sandbox ended (init exited) or is destroyed: its network goes with it. The
 * machine is stopped first, so the helper's death is not taken for a crash.
 */
export async function stopNetwork(core: EngineCore, rt: Runtime, release = false): Promise<void> {
  detachNetwork(rt);
  const record = rt.network?.record ?? loadNetworkRecord(rt.paths);
  rt.network = undefined;
  if (record?.plan.mode === 'bridge') {
    if (stopBridge(rt.paths, record, release) && !core.closed) {
      core.emit({ type: 'network', sandboxId: rt.id, event: 'forwards', mode: 'bridge', forwards: record.plan.forwards, bound: false });
      core.emit({ type: 'network', sandboxId: rt.id, event: 'down', mode: 'bridge', reason: 'the sandbox ended' });
    }
    return;
  }
  if (!record?.helper) return;
  if (await stopHelperAndWait(core.native, record.helper)) {
    if (!core.closed) {
      core.emit({ type: 'network', sandboxId: rt.id, event: 'forwards', mode: 'user', forwards: record.plan.mode === 'user' ? record.plan.forwards : [], bound: false });
      core.emit({ type: 'network', sandboxId: rt.id, event: 'down', mode: 'user', reason: 'the sandbox ended' });
    }
  }
  if (fs.existsSync(rt.paths.dir)) saveNetworkRecord(rt.paths, { plan: record.plan, ...(record.restart ? { restart: record.restart } : {}) });
}

/** A half-made sandbox (its create never finished) may have a helper: stop it. */
export function stopOrphanHelper(core: EngineCore, paths: SandboxPaths): void {
  const record = loadNetworkRecord(paths);
  if (record?.helper) stopHelper(core.native, record.helper);
  if (record?.plan.mode === 'bridge') stopBridge(paths, record, true);
}

function runNetworkActor(core: EngineCore, rt: Runtime, net: SandboxNetwork, running?: HelperProcess): Actor<typeof networkMachine> {
  const machine = networkMachineDef().provide({
    actors: {
      startHelper: fromPromise<HelperProcess, { sandboxId: string }>(async () => {
        const initPid = rt.actor.getSnapshot().context.initHostPid;
        if (initPid === undefined || !rt.initAlive) throw new PaddockError('ESANDBOX_DEAD', `sandbox ${rt.id} is not running`, { sandboxId: rt.id });
        const ids = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
        const pidFile = helperPidFile(rt.paths);
        return startPasta(core.native, net.binary, pastaArgs(net.plan, initPid, pidFile, ids), pidFile, networkLog(rt.paths));
      }),
      watchHelper: fromCallback<NetworkEvent, { sandboxId: string; helper: HelperProcess }>(({ input, sendBack }) => watchHelper(core, input.helper, sendBack)),
    },
  });
  const actor = createActor(machine, {
    input: { sandboxId: rt.id, ...(net.record.restart ? { restart: net.record.restart } : {}), ...(running ? { running } : {}) },
    id: `network:${rt.id}`,
    systemId: `network:${rt.id}`,
    inspect: core.inspection.observe,
  });
  net.actor = actor;
  actor.on('up', (e) => onUp(core, rt, net, e));
  actor.on('down', (e) => onDown(core, rt, net, e));
  actor.on('gaveUp', (e) => onGaveUp(core, rt, net, e));
  actor.start();
  return actor;
}

function watchHelper(core: EngineCore, helper: HelperProcess, sendBack: (e: NetworkEvent) => void): () => void {
  let fd: Fd | undefined;
  let token: number | undefined;
  try {
    fd = core.native.pidfdOpen(helper.pid);
  } catch {
    fd = undefined;
  }
  // Opened first, compared second: a pid reused before the open is caught here.
  if (fd === undefined || processStartTime(helper.pid) !== helper.startTime) {
    if (fd !== undefined) core.native.closeFd(fd);
    const reason = helper.pid === 0 ? 'no helper was recorded' : `pasta (pid ${helper.pid}) exited while no supervisor watched it`;
    queueMicrotask(() => sendBack({ type: 'helper.exited', at: Date.now(), reason }));
    return () => undefined;
  }
  const pidfd = fd;
  token = core.watcher.watch(pidfd, (exit) => {
    token = undefined;
    const how = exit.signal ? `killed by signal ${exit.signal}` : exit.reaped ? `exited with status ${exit.exitCode}` : 'exited';
    sendBack({ type: 'helper.exited', at: Date.now(), reason: `pasta (pid ${helper.pid}) ${how}` });
  });
  return () => {
    if (token !== undefined) core.watcher.unwatch(token);
    try {
      core.native.closeFd(pidfd);
    } catch {
      // already closed
    }
  };
}

function onUp(core: EngineCore, rt: Runtime, net: SandboxNetwork, e: Extract<NetworkEmitted, { type: 'up' }>): void {
  const initPid = rt.actor.getSnapshot().context.initHostPid;
  const hostAddress = net.plan.egress && initPid !== undefined ? readGateway(initPid) : undefined;
  net.established = true;
  net.record = { plan: net.plan, ...(net.record.restart ? { restart: net.record.restart } : {}), helper: e.helper, ...(hostAddress ? { hostAddress } : {}) };
  if (fs.existsSync(rt.paths.dir)) saveNetworkRecord(rt.paths, net.record);
  rt.log.info({ helperPid: e.helper.pid, restarts: e.restarts, step: 'network' }, 'network up');
  if (core.closed) return;
  core.emit({ type: 'network', sandboxId: rt.id, event: 'up', mode: 'user', helperPid: e.helper.pid, ...(hostAddress ? { hostAddress } : {}), egress: net.plan.egress });
  core.emit({ type: 'network', sandboxId: rt.id, event: 'forwards', mode: 'user', forwards: net.plan.forwards, bound: true });
}

function onDown(core: EngineCore, rt: Runtime, net: SandboxNetwork, e: Extract<NetworkEmitted, { type: 'down' }>): void {
  net.record = { plan: net.plan, ...(net.record.restart ? { restart: net.record.restart } : {}) };
  if (fs.existsSync(rt.paths.dir)) saveNetworkRecord(rt.paths, net.record);
  rt.log.warn({ reason: e.reason, restartInMs: e.restartInMs, step: 'network' }, 'network helper died; restarting it');
  if (core.closed) return;
  core.emit({ type: 'network', sandboxId: rt.id, event: 'forwards', mode: 'user', forwards: net.plan.forwards, bound: false });
  core.emit({ type: 'network', sandboxId: rt.id, event: 'down', mode: 'user', reason: e.reason, ...(e.restartInMs !== undefined ? { restartInMs: e.restartInMs } : {}) });
}

/**
 * The helper cannot be kept: the sandbox is failed, as an unhealthy one is (SIGKILL
 * through init's pidfd; its exit and its restart policy follow as usual). Not for the
 * first start: createSandbox reports that one itself.
 */
function onGaveUp(core: EngineCore, rt: Runtime, net: SandboxNetwork, e: Extract<NetworkEmitted, { type: 'gaveUp' }>): void {
  net.record = { plan: net.plan, ...(net.record.restart ? { restart: net.record.restart } : {}) };
  if (fs.existsSync(rt.paths.dir)) saveNetworkRecord(rt.paths, net.record);
  if (!net.established) return;
  rt.log.warn({ reason: e.reason, step: 'network' }, 'network helper given up; killing the sandbox');
  if (!core.closed) {
    core.emit({ type: 'network', sandboxId: rt.id, event: 'forwards', mode: 'user', forwards: net.plan.forwards, bound: false });
    core.emit({ type: 'network', sandboxId: rt.id, event: 'down', mode: 'user', reason: e.reason, final: true });
  }
  if (rt.pidfd !== undefined && rt.initAlive) {
    try {
      core.native.pidfdSendSignal(rt.pidfd, 9);
    } catch (err) {
      rt.log.warn({ err }, 'could not kill the sandbox whose network is gone');
    }
  }
}

/** Built at its first use: a sandbox without a helper never loads it (docs/decisions/0007). */
function networkMachineDef(): typeof networkMachine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../machines/network.machine') as typeof import('../../machines/network.machine')).networkMachine;
}
