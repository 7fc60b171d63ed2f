import * as fs from 'node:fs';
import { checkInspectOption } from '../inspect/inspect-option';
import { serveInspector } from '../inspect/server';
import * as path from 'node:path';
import { map, takeWhile, timer, type Observable } from 'rxjs';
import type { Readable } from 'node:stream';
import { waitFor, type Actor, type AnyActorRef } from 'xstate';
import { containerMachine } from '../../machines/container.machine';
import { isValidId, processActorId } from '../../machines/ids';
import type { ExitStatus } from '../../machines/types';
import { Kind, ProcState } from '../../protocols/messages';
import { bundleFromConfig, loadBundle, type Bundle } from '../../specs/load';
import { buildSpec, USERNS_ANNOTATION, type SandboxTemplate } from '../../specs/builder';
import { listsKvm, withKvm } from '../../specs/kvm';
import { checkKvmOption, requireKvm } from '../sandbox/kvm';
import { startOomEvents } from '../observe/oom';
import { readRuncStats, type RuncStats, type StatsDirs } from '../observe/runc-stats';
import type { SandboxCgroup } from '../cgroups/sandbox-cgroup';
import { readProcessStacks, type ContainerProcessStacks, type ContainerStacks, type SandboxStacks } from '../observe/stacks';
import type { KvmInfo } from '../../native/facade';
import { parseMount } from '../../specs/mount-options';
import type { OciConfig } from '../../specs/oci';
import { checkIdPool, checkPoolAgainstHost, withIdRange } from '../sandbox/id-pool';
import { checkOptionKeys } from '../../base/options';
import { CREATE_SANDBOX_KEYS, ENGINE_KEYS, HEALTH_KEYS, LOGS_KEYS, SHUTDOWN_KEYS, STATS_KEYS, SIGNAL_KEYS, START_CONTAINER_KEYS, WAIT_KEYS } from './option-keys';
import { keepSeccompIn } from '../containers/seccomp-cache';
import type { OciResources } from '../../specs/oci';
import { checkpoint as checkpointSandbox, checkRestore, restoreInto } from '../checkpoint/verbs';
import type {
  CheckpointOptions,
  CheckpointResult,
  RestoreOptions,
  CommandOutput,
  EngineCommand,
  ShutdownOptions,
  ShutdownReport,
  ContainerHandle,
  ContainerSummary,
  CreateSandboxOptions,
  Engine,
  EngineEvent,
  EngineOptions,
  ExecOptions,
  ExecResult,
  InspectorServer,
  ServeInspectorOptions,
  LogsOptions,
  Pool,
  PoolOptions,
  ProcessEntry,
  StatsEvent,
  StatsOptions,
  SandboxHandle,
  SandboxSummary,
  StartContainerOptions,
  SupervisorHandle,
  SupervisorSpec,
} from './api';
import { resolveCgroupsPath } from '../cgroups/path';
import { runCommands } from './command-stream';
import { checkConsole } from '../containers/console';
import { awaitStarted, holdContainer, holdWithConsole, releaseHeld } from '../containers/start';
import { deferred } from '../../base/deferred';
import { EngineCore } from './core';
import { runCreateHooks, runPoststartHooks, runPoststopHooks } from './lifecycle-hooks';
import { PaddockError, StateError, restoreError } from '../../base/errors';
import { execute } from '../containers/exec';
import { toExit } from '../sandbox/exit-reports';
import { resolveHealth } from '../sandbox/health';
import { hasHooks } from '../containers/oci-hooks';
import { startHealth } from '../sandbox/init-watch';
import { createRootLogger } from '../../base/logger';
import { checkLsmFields } from '../containers/lsm';
import { updateResources } from '../cgroups/update';
import { logConfigWarnings } from '../../specs/config-warnings';
import { freezeOrThaw, freezeOrThawContainer, isRootOf } from '../cgroups/pause';
import { signalCgroup } from '../pod/cgroups';
import { addContainer, destroyContainer, startContainer } from '../pod/containers';
import { PoolRegistry } from '../supervision/pool';
import { readProcess, processTree, statsOf, type ContainerStats } from '../observe/proc-stats';
import { reattach } from '../sandbox/reattach';
import { startSandboxActor } from '../sandbox/actor';
import { provideSandboxMachine } from '../sandbox/effects';
import { initExitsWithin, stopSandbox } from './shutdown';
import { parseSignal } from '../containers/signals';
import { SandboxPaths, listSandboxIds, loadSandbox, releaseLock } from '../sandbox/state-store';
import { tailFile } from '../containers/stdio-files';
import { checkLogSizeMax, checkStdio } from '../containers/stdio';
import { sandboxSummary } from '../sandbox/summary';
import { Supervision } from '../supervision/restart';
import { createSupervisorTree, engineLeafDriver } from '../supervision/tree';
import { newRuntime, type Runtime, type ContainerRuntime } from '../sandbox/runtime';
import { checkCreateNetwork, networkConfig, readInterfaces, resolveBridgeConfig, startCreateNetwork } from '../network';

export { deferred, type Deferred } from '../../base/deferred';

/** The directories runc-stats reads for a cgroup of paddock's. */
function statsDirs(cg: SandboxCgroup): StatsDirs {
  if (cg.layout.mode === 'v2') return { v2: true, ...(cg.dirOf('unified') ? { unified: cg.dirOf('unified') } : {}) };
  const d: { -readonly [K in keyof StatsDirs]: StatsDirs[K] } = { v2: false };
  for (const h of ['memory', 'cpu', 'cpuacct', 'pids'] as const) {
    const dir = cg.dirOf(h);
    if (dir !== undefined) d[h] = dir;
  }
  return d;
}

function withoutInit(s: RuncStats, initPid: number | undefined): RuncStats {
  if (initPid === undefined) return s;
  let n: number;
  try {
    n = fs.readdirSync(`/proc/${initPid}/task`).length;
  } catch {
    return s; // init is gone
  }
  const current = Math.max(0, (s.pids.current ?? 0) - n);
  const limit = s.pids.limit ? Math.max(0, s.pids.limit - n) : s.pids.limit;
  return { ...s, pids: { current, ...(limit !== undefined ? { limit } : {}) } };
}

/**
 * runc's `network_interfaces`: the counters of the sandbox's own network namespace,
 * read through init's /proc entry. None for a sandbox on the host's network (those
 * would be the host's) or one that joins a namespace by path (someone else's).
 */
function withInterfaces(s: RuncStats, initPid: number | undefined, config: Bundle['config']): RuncStats {
  const own = (config.linux?.namespaces ?? []).some((ns) => ns.type === 'network' && ns.path === undefined);
  const interfaces = own && initPid !== undefined ? readInterfaces(initPid) : undefined;
  return interfaces ? { ...s, network_interfaces: interfaces } : s;
}

/** The bundle's `paddock.userns` annotation: 'auto' or absent; anything else is refused (a typo must not quietly drop the range). */
function usernsAnnotation(config: Bundle['config']): 'auto' | undefined {
  const v = config.annotations?.[USERNS_ANNOTATION];
  if (v === undefined) return undefined;
  if (v !== 'auto') {
    throw new PaddockError('ECONFIG_INVALID', `annotations.${USERNS_ANNOTATION}: must be "auto", not ${JSON.stringify(v)}`, { field: `annotations.${USERNS_ANNOTATION}` });
  }
  return 'auto';
}

function checkUsernsOptions(opts: CreateSandboxOptions): void {
  if (opts.userns !== undefined && opts.userns !== 'auto') {
    throw new PaddockError('EINVALID_ARGUMENT', `userns must be 'auto', not ${JSON.stringify(opts.userns)}`, { field: 'userns' });
  }
  if (opts.idmapRootfs !== undefined && typeof opts.idmapRootfs !== 'boolean') {
    throw new PaddockError('EINVALID_ARGUMENT', 'idmapRootfs must be a boolean', { field: 'idmapRootfs' });
  }
}

/**
 * A copy of a bundle's config that no longer depends on its folder: root.path and
 * relative bind sources made absolute, for the copy the engine writes into the
 * sandbox's own folder.
 */
function standalone(bundle: Bundle): OciConfig {
  const config = JSON.parse(JSON.stringify(bundle.config)) as OciConfig;
  config.root = { ...(config.root ?? { path: bundle.rootfs }), path: bundle.rootfs };
  config.mounts = config.mounts?.map((m) =>
    m.source !== undefined && parseMount(m.type, m.options ?? []).bind && !path.isAbsolute(m.source) ? { ...m, source: path.resolve(bundle.dir, m.source) } : m,
  );
  if (config.mounts === undefined) delete config.mounts;
  return config;
}

/**
 * Creates an engine over a state directory. When the directory already holds
 * sandboxes (a supervisor restart), the engine reattaches to them before it
 * resolves: every machine is restored and every exit recorded meanwhile is read.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const engine = new PaddockEngine(options);
  if (options.reattach !== false) await engine.reattachAll();
  return engine;
}

class PaddockEngine implements Engine {
  readonly events$: Observable<EngineEvent>;
  /** The sandboxes, their native facade and their state writes, shared with the modules this engine uses. */
  private readonly core: EngineCore;
  /** The core's runtime table (the same Map), under the name tests look it up by. */
  private readonly runtimes: Map<string, Runtime>;
  private readonly shutdownParticipants = new Set<(mode: 'detach' | 'stop') => Promise<void> | void>();
  /** Restart policies (actors/supervision/restart.ts); fed by this engine's events. */
  private readonly supervision: Supervision;
  /** Warm pools (actors/supervision/pool.ts); built on this engine's own commands. */
  private readonly pools: PoolRegistry;
  /** Live views (serveInspector) that close() closes. */
  private readonly inspectorServers = new Set<InspectorServer>();

  constructor(options: EngineOptions) {
    checkOptionKeys(options, ENGINE_KEYS, 'createEngine options');
    if (!options || typeof options.stateDir !== 'string' || !path.isAbsolute(options.stateDir)) {
      throw new PaddockError('EINVALID_ARGUMENT', 'stateDir must be an absolute path');
    }
    if (options.idPool !== undefined) checkPoolAgainstHost(checkIdPool(options.idPool));
    if (options.bridge !== undefined) resolveBridgeConfig(options.bridge);
    if (options.exitReports !== undefined && options.exitReports !== 'at-most-once' && options.exitReports !== 'at-least-once') {
      throw new PaddockError('EINVALID_ARGUMENT', `exitReports must be 'at-most-once' or 'at-least-once', not ${JSON.stringify(options.exitReports)}`);
    }
    if (options.launchInit !== undefined && typeof options.launchInit !== 'function') {
      throw new PaddockError('EINVALID_ARGUMENT', 'launchInit must be a function');
    }
    if (options.seccompCacheDir !== undefined && (typeof options.seccompCacheDir !== 'string' || !path.isAbsolute(options.seccompCacheDir))) {
      throw new PaddockError('EINVALID_ARGUMENT', 'seccompCacheDir must be an absolute path');
    }
    // Refused here, before anything is made, rather than at each createSandbox.
    checkLogSizeMax(undefined, options.logSizeMax);
    if (options.initStderr !== undefined && options.initStderr !== 'inherit' && options.initStderr !== 'ignore') {
      throw new PaddockError('EINVALID_ARGUMENT', `initStderr must be 'inherit' or 'ignore', not ${JSON.stringify(options.initStderr)}`);
    }
    checkInspectOption(options.inspect);
    const log = options.logger ?? createRootLogger();
    fs.mkdirSync(options.stateDir, { recursive: true, mode: 0o711 });
    // Sandboxes run as unprivileged host ids and must traverse the root to reach their folder.
    fs.chmodSync(options.stateDir, 0o711);
    if (options.seccompCacheDir !== undefined) keepSeccompIn(options.seccompCacheDir);
    this.core = new EngineCore(options, log, provideSandboxMachine);
    this.runtimes = this.core.runtimes;
    this.events$ = this.core.subject.asObservable();
    this.supervision = new Supervision(this, this.core.stateDir, log, (e) => this.core.emit(e));
    this.supervision.inspect = this.core.inspect;
    this.pools = new PoolRegistry({
      createSandbox: (id, bundle, opts) => this.createSandbox(id, bundle, opts),
      startRoot: (id) => this.startRoot(id),
      destroy: (id) => this.destroy(id),
      list: () => this.list(),
      events$: this.events$,
      publish: (e) => this.core.emit(e),
      log,
      inspect: this.core.inspect,
    });
  }

  // ---------------------------------------------------------------- commands

  async createSandbox(id: string, bundleOrTemplate: string | SandboxTemplate, opts: CreateSandboxOptions = {}): Promise<SandboxHandle> {
    this.core.ensureOpen();
    checkOptionKeys(opts, CREATE_SANDBOX_KEYS, 'createSandbox options');
    if (!isValidId(id)) throw new PaddockError('EINVALID_ID', `invalid sandbox id ${JSON.stringify(id)}`, { sandboxId: String(id) });
    const stdio = checkStdio(opts.stdio);
    if (typeof opts.health === 'object') checkOptionKeys(opts.health, HEALTH_KEYS, 'createSandbox options.health');
    const logSizeMax = checkLogSizeMax(opts.logSizeMax, this.core.options.logSizeMax);
    const health = resolveHealth(opts.health);
    const restart = this.supervision.validate(opts.restart);
    checkUsernsOptions(opts);
    const kvm = checkKvmOption(opts.kvm);
    const paths = new SandboxPaths(this.core.stateDir, id);
    if (this.runtimes.has(id) || fs.existsSync(paths.dir)) {
      throw new StateError('ESANDBOX_EXISTS', `sandbox ${id} already exists`, { sandboxId: id });
    }
    // Validation happens before anything is created, so bad input changes nothing.
    const template = typeof bundleOrTemplate === 'string' ? undefined : bundleOrTemplate;
    let bundle = template ? await bundleFromConfig(path.join(paths.dir, 'bundle'), buildSpec(template)) : await loadBundle(bundleOrTemplate as string);
    checkConsole(bundle.config.process?.terminal === true, opts.consoleSocket, { sandboxId: id });
    checkLsmFields(bundle.config, this.core.log.child({ sandboxId: id }), this.core.options.lsms);
    logConfigWarnings(bundle.config, this.core.log.child({ sandboxId: id }));
    const auto = template !== undefined || opts.userns === 'auto' || usernsAnnotation(bundle.config) === 'auto';
    // Before anything is made: a host without KVM fails the create with nothing to undo.
    if (kvm || listsKvm(bundle.config)) requireKvm(this.core.native, id);
    const hasUserns = auto || (bundle.config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
    const network = await checkCreateNetwork(this.core, opts.network, template?.network, bundle.config, bundle.rootfs, hasUserns);
    // What a relaunch is made from again: the template, or the caller's bundle (the copy
    // written into the sandbox's folder goes with it at destroy).
    const origin = template ?? bundle.dir;
    const cgroupsPath = resolveCgroupsPath(bundle.config.linux?.cgroupsPath, this.core.cgroupsPathOptions(id, bundle.dir));
    if (this.runtimes.has(id) || fs.existsSync(paths.dir)) {
      throw new StateError('ESANDBOX_EXISTS', `sandbox ${id} already exists`, { sandboxId: id });
    }
    // Last of all, so a refusal above leaves the pool untouched; from here on any
    // failure frees the range again.
    let generatedConfig: string | undefined;
    if (auto || kvm || network !== undefined) {
      const range = auto ? this.core.idPool.allocate(id) : undefined;
      try {
        let config = standalone(bundle);
        if (range !== undefined) config = withIdRange(config, range);
        if (kvm) config = withKvm(config);
        if (network !== undefined) config = networkConfig(config, network, this.core.stateDir);
        bundle = await bundleFromConfig(path.join(paths.dir, 'bundle'), config);
        generatedConfig = JSON.stringify(config, null, 2);
      } catch (e) {
        if (range !== undefined) this.core.releaseIds(id);
        throw e;
      }
    }
    const rootId = id;
    const rt = newRuntime({
      id,
      paths,
      log: this.core.log.child({ sandboxId: id }),
      bundle,
      owner: { uid: 0, gid: 0 },
      containers: new Map([[rootId, { id: rootId, bundle, stdio, done: deferred<void>(), ...(opts.noPivot ? { noPivot: true } : {}) }]]),
      execCounter: 0,
      rootStdio: stdio,
      logSizeMax,
      createdAt: new Date().toISOString(),
      ...(health ? { health } : {}),
      cgroupsPath,
      ...(generatedConfig !== undefined ? { generatedConfig } : {}),
      ...(auto && opts.idmapRootfs !== false ? { idmapRootfs: bundle.rootfs } : {}),
    });
    this.runtimes.set(id, rt);
    this.core.supervisor.send({ type: 'sandbox.register', sandboxId: id });
    const actor = startSandboxActor(this.core, rt, { input: { sandboxId: id, bundleDir: bundle.dir } });
    const snap = await waitFor(actor, (s) => s.value !== 'creating', { timeout: 60_000 });
    if (snap.value === 'failed') {
      const error = snap.context.error;
      await this.core.forget(rt, true);
      throw restoreError(error, id, 'ELAUNCH_STEP');
    }
    actor.send({ type: 'container.add', containerId: rootId, bundleDir: bundle.dir });
    startOomEvents(this.core, rt, rootId);
    if (bundle.config.hooks !== undefined && hasHooks(bundle.config.hooks)) this.core.hooks.set(id, bundle.config.hooks);
    this.core.persistNow(rt);
    try {
      await startCreateNetwork(this.core, rt, network, restart);
    } catch (e) {
      await this.destroy(id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after its network failed to start'));
      throw e;
    }
    if (opts.consoleSocket !== undefined) {
      try {
        await holdWithConsole(this.core, rt, rootId, opts.consoleSocket);
      } catch (e) {
        await this.destroy(id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed console hand-off'));
        throw e;
      }
    }
    await runCreateHooks(this.core, rt, snap.context.initHostPid as number, (sandboxId) => this.destroy(sandboxId));
    if (opts.prepare === true && opts.consoleSocket === undefined) {
      try {
        await holdContainer(this.core, rt, rootId);
      } catch (e) {
        await this.destroy(id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed prepare'));
        throw e;
      }
    }
    startHealth(this.core, rt);
    const root = rt.containers.get(rootId) as ContainerRuntime;
    this.supervision.register(id, undefined, origin, opts, restart);
    return {
      id,
      pid: snap.context.initHostPid as number,
      rootContainerId: rootId,
      ...(root.streams ? { stdio: root.streams } : {}),
    };
  }

  kvm(): KvmInfo {
    this.core.ensureOpen();
    return this.core.native.kvmProbe();
  }

  async startRoot(sandboxId: string): Promise<ContainerHandle> {
    const rt = this.core.get(sandboxId);
    const snap = rt.actor.getSnapshot();
    // The state a start is taken in, read without computing a transition (each can() is
    // one, ~0.1 ms on an acquire's path); anything else gets the machine's own answer.
    if (!(snap.status === 'active' && snap.value === 'created' && snap.context.rootContainerId !== undefined)) this.core.requireCan(rt, { type: 'start' }, 'start');
    const rootId = snap.context.rootContainerId as string;
    // A prepared root whose held process died (killed, or its sandbox's exit seen) is
    // stopped: as runc, it cannot be started, rather than "started" into its exit.
    const root = (snap.children[rootId] as unknown as Actor<typeof containerMachine> | undefined)?.getSnapshot();
    if (root && root.value === 'stopped') {
      throw new StateError('EINVALID_STATE', `cannot start container ${rootId}: it is ${String(root.value)}`, { sandboxId, containerId: rootId, verb: 'start', state: String(root.value) });
    }
    // The start is decided (the machines accept it): a held root is released now, and
    // the machines' transitions run while the kernel does its execve (0020). A root
    // container has no cgroup of its own to be placed in first; pod containers do.
    const c = rt.containers.get(rootId);
    // A created container takes `start` unconditionally (machines/container.machine.ts).
    if (c && root?.value === 'created' && releaseHeld(rt, c, root.context.prepared)) c.releasedEarly = true;
    rt.actor.send({ type: 'start' });
    const handle = await awaitStarted(this.core, rt, rootId);
    await runPoststartHooks(this.core, rt);
    return handle;
  }

  async addContainer(sandboxId: string, containerId: string, bundleDir: string, opts: StartContainerOptions = {}): Promise<ContainerSummary> {
    checkOptionKeys(opts, START_CONTAINER_KEYS, 'addContainer options');
    return addContainer(this.core, this.supervision, sandboxId, containerId, bundleDir, opts);
  }

  async startContainer(sandboxId: string, containerId: string, bundleDir?: string, opts: StartContainerOptions = {}): Promise<ContainerHandle> {
    checkOptionKeys(opts, START_CONTAINER_KEYS, 'startContainer options');
    return startContainer(this.core, this.supervision, sandboxId, containerId, bundleDir, opts);
  }

  execute(sandboxId: string, containerId: string, opts: ExecOptions): Promise<ExecResult> {
    return execute(this.core, sandboxId, containerId, opts);
  }

  async processes(sandboxId: string, containerId: string): Promise<ProcessEntry[]> {
    const rt = this.core.get(sandboxId);
    this.core.containerActor(rt, containerId);
    const reply = await this.core.control(rt).request({ type: 'PROCESSES', cid: containerId });
    const out: ProcessEntry[] = [];
    const seen = new Set<number>();
    for (const row of reply.procs ?? []) {
      if (row.state !== ProcState.RUNNING) continue;
      for (const hostPid of processTree(row.hostPid)) {
        if (seen.has(hostPid)) continue;
        seen.add(hostPid);
        const info = readProcess(hostPid);
        if (!info) continue;
        const own = hostPid === row.hostPid;
        out.push({
          containerId,
          ...(own ? { pid: row.pid } : {}),
          hostPid,
          ppid: info.ppid,
          command: info.command,
          kind: own ? (row.kind === Kind.CONTAINER ? 'container' : 'exec') : 'descendant',
        });
      }
    }
    return out;
  }

  stats$(sandboxId: string, opts: StatsOptions = {}): Observable<StatsEvent> {
    checkOptionKeys(opts, STATS_KEYS, 'stats options');
    const intervalMs = opts.intervalMs ?? 5000;
    if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs <= 0) {
      throw new PaddockError('EINVALID_ARGUMENT', `intervalMs must be a positive integer, not ${String(intervalMs)}`, { sandboxId, field: 'intervalMs' });
    }
    const rt = this.core.get(sandboxId);
    const root = rt.actor.getSnapshot().context.rootContainerId ?? sandboxId;
    const id = opts.containerId ?? root;
    this.core.containerActor(rt, id);
    // A pod container's own cgroup (0022); the root container's is the sandbox's.
    const cgroup = id === root ? rt.cgroup : rt.containers.get(id)?.cgroup;
    if (cgroup === undefined) {
      throw new PaddockError('ENOT_SUPPORTED', `container ${id} of sandbox ${sandboxId} has no cgroup to read usage from`, { sandboxId, containerId: id });
    }
    const dirs = statsDirs(cgroup);
    // paddock-init's own threads sit in the sandbox's cgroup and its pids.max was raised
    // by as many (limitPids): both leave them out, so pids reads as the spec's limit.
    const initPid = id === root ? rt.actor.getSnapshot().context.initHostPid : undefined;
    return timer(0, intervalMs).pipe(
      takeWhile(() => this.isRunning(sandboxId)),
      map((): StatsEvent => ({ type: 'stats', id, data: withInterfaces(withoutInit(readRuncStats(dirs), initPid), initPid, rt.bundle.config) })),
    );
  }

  async event(sandboxId: string, containerId: string): Promise<ContainerStats> {
    const rt = this.core.get(sandboxId);
    this.core.containerActor(rt, containerId);
    const reply = await this.core.control(rt).request({ type: 'PROCESSES', cid: containerId });
    const roots = (reply.procs ?? []).filter((r) => r.state === ProcState.RUNNING).map((r) => r.hostPid);
    // The root container is measured by the sandbox's cgroup (with init, and the pod
    // containers nested in it); a pod container by its own (decision 0022); one without
    // a cgroup from /proc.
    const ctx = rt.actor.getSnapshot().context;
    const own = rt.containers.get(containerId)?.cgroup;
    const cg = containerId === ctx.rootContainerId ? rt.cgroup?.stats(ctx.initHostPid) : own?.stats();
    if (cg) {
      return {
        pids: cg.pids,
        memory: { rssBytes: cg.memoryBytes, ...(cg.memoryLimitBytes !== undefined ? { limitBytes: cg.memoryLimitBytes } : {}) },
        cpu: { usageNs: cg.cpuUsageNs },
        source: 'cgroup',
      };
    }
    return statsOf(roots);
  }

  async update(sandboxId: string, resources: OciResources, opts: { containerId?: string } = {}): Promise<OciResources> {
    this.core.ensureOpen();
    return updateResources(this.core, { sandboxId, ...(opts.containerId !== undefined ? { containerId: opts.containerId } : {}) }, resources);
  }

  async wait(sandboxId: string, containerId: string, opts: { timeoutMs?: number } = {}): Promise<ExitStatus> {
    checkOptionKeys(opts, WAIT_KEYS, 'wait options');
    const rt = this.core.get(sandboxId);
    const c = this.core.containerActor(rt, containerId);
    const stopped = waitFor(c, (s) => s.value === 'stopped', { timeout: opts.timeoutMs ?? Infinity });
    // List, then watch — concurrently: the exit event usually wins, and a WAIT sent to an
    // init that is exiting would only be answered by the channel closing.
    if (c.getSnapshot().value !== 'stopped') void this.catchUpContainer(rt, containerId);
    const snap = await stopped;
    return snap.context.exit ?? { exitCode: null, signal: null };
  }

  async waitPid(sandboxId: string, pid: number, opts: { timeoutMs?: number } = {}): Promise<ExitStatus> {
    checkOptionKeys(opts, WAIT_KEYS, 'waitPid options');
    const rt = this.core.get(sandboxId);
    if (!Number.isInteger(pid) || pid <= 0) throw new PaddockError('EINVALID_ARGUMENT', `invalid pid ${pid}`, { sandboxId });
    const ref = rt.actor.getSnapshot().children[processActorId(pid)] as AnyActorRef | undefined;
    if (!ref) throw new StateError('EPROCESS_NOT_FOUND', `no process ${pid} in sandbox ${sandboxId}`, { sandboxId, pid });
    const exec = rt.execs.get(pid);
    const exited = waitFor(ref, (s: { value: unknown }) => s.value === 'exited', { timeout: opts.timeoutMs ?? Infinity });
    if (exec && rt.initAlive && ref.getSnapshot().value !== 'exited') {
      // List, then watch (concurrently, as in wait()).
      this.core.control(rt)
        .request({ type: 'WAIT_PID', cid: exec.containerId, pid })
        .then((r) => {
          if (r.state === ProcState.EXITED) this.core.exits.deliver(rt, exec.containerId, pid, 'exec', toExit(r.exitCode, r.signal));
        })
        .catch(() => undefined); // init may be exiting; the pidfd path delivers from exits.log
    }
    const snap = await exited;
    return (snap as { context: { exit?: ExitStatus } }).context.exit ?? { exitCode: null, signal: null };
  }

  async signal(sandboxId: string, containerId: string, signal: string | number, opts: { pid?: number; all?: boolean } = {}): Promise<void> {
    checkOptionKeys(opts, SIGNAL_KEYS, 'signal options');
    const rt = this.core.get(sandboxId);
    const signo = parseSignal(signal);
    const c = this.core.containerActor(rt, containerId);
    if (!c.getSnapshot().can({ type: 'signal' })) {
      throw new StateError('EINVALID_STATE', `cannot signal container ${containerId}: it is ${String(c.getSnapshot().value)}`, {
        sandboxId,
        containerId,
        verb: 'signal',
        state: String(c.getSnapshot().value),
      });
    }
    this.supervision.userSignal(sandboxId, containerId, signo, opts);
    try {
      await this.core.control(rt).request({
        type: 'SIGNAL',
        cid: containerId,
        signo,
        ...(opts.pid !== undefined ? { pid: opts.pid } : {}),
        ...(opts.all ? { all: true } : {}),
      });
    } catch (e) {
      // init exits with its root container, and a signal that ends the container can
      // lose init's reply (the channel closes first). If init's exit follows at once, the
      // signal did its work, as `runc kill` would report; its exit is reported as usual.
      if (!(e instanceof PaddockError) || e.code !== 'ECONTROL' || !(await initExitsWithin(rt, 1_000))) throw e;
      return;
    }
    // init knows the processes it forked; the container's own cgroup also holds what they forked (runc's kill --all).
    const own = rt.containers.get(containerId)?.cgroup;
    if (opts.all && own) signalCgroup(own, signo);
    c.send({ type: 'signal' });
  }

  destroyContainer(sandboxId: string, containerId: string): Promise<void> {
    return destroyContainer(this.core, this.supervision, sandboxId, containerId);
  }

  async destroy(sandboxId: string): Promise<void> {
    const rt = this.core.get(sandboxId);
    this.supervision.userStop(sandboxId);
    if (!rt.actor.getSnapshot().can({ type: 'destroy' })) {
      // Already being destroyed by a concurrent call: wait for that one.
      await waitFor(rt.actor, (s) => s.status === 'done' || s.value === 'failed', { timeout: 30_000 });
    } else {
      rt.actor.send({ type: 'destroy' });
      const snap = await waitFor(rt.actor, (s) => s.status === 'done' || s.value === 'failed', { timeout: 30_000 });
      if (snap.status !== 'done') throw restoreError(snap.context.error, sandboxId, 'ECONTROL');
      const hooks = this.core.hooks.get(sandboxId);
      await this.core.forget(rt, false);
      await runPoststopHooks(this.core, rt, hooks);
      return;
    }
    await this.core.forget(rt, false);
  }

  isRunning(sandboxId: string): boolean {
    const rt = this.runtimes.get(sandboxId);
    return !!rt && rt.initAlive && rt.actor.getSnapshot().hasTag('alive');
  }

  list(): SandboxSummary[] {
    return [...this.runtimes.values()].map((rt) => sandboxSummary(rt)).sort((a, b) => a.id.localeCompare(b.id));
  }

  logs(sandboxId: string, containerId: string, opts: LogsOptions = {}): Readable {
    checkOptionKeys(opts, LOGS_KEYS, 'logs options');
    const rt = this.core.get(sandboxId);
    const c = this.core.containerActor(rt, containerId);
    const stream = opts.stream ?? 'stdout';
    let name = containerId;
    let done: Promise<unknown>;
    if (opts.pid !== undefined) {
      const e = rt.execs.get(opts.pid);
      if (!e || e.containerId !== containerId) {
        throw new StateError('EPROCESS_NOT_FOUND', `no process ${opts.pid} in container ${containerId}`, { sandboxId, containerId, pid: opts.pid });
      }
      name = e.name;
      done = e.done.promise;
    } else {
      done = waitFor(c, (s) => s.value === 'stopped', { timeout: Infinity });
    }
    return tailFile(rt.paths.log(name, stream), { follow: opts.follow ?? false, done });
  }

  async stacks(sandboxId: string): Promise<SandboxStacks> {
    const rt = this.core.get(sandboxId);
    // init's own table first: a sandbox whose init does not answer fails here, typed.
    const reply = await this.core.control(rt).request({ type: 'STACKS' });
    const initPid = rt.actor.getSnapshot().context.initHostPid;
    const init = initPid !== undefined ? readProcessStacks(initPid) : undefined;
    if (init === undefined) {
      throw new StateError('EINVALID_STATE', `cannot read the stacks of sandbox ${sandboxId}: its init is gone`, { sandboxId, verb: 'stacks' });
    }
    const containers: ContainerStacks[] = [];
    for (const c of sandboxSummary(rt).containers) {
      if (c.hostPid === undefined || c.status === 'stopped' || c.status === 'failed') continue;
      const procs = await this.processes(sandboxId, c.id).catch(() => [] as ProcessEntry[]);
      const processes: ContainerProcessStacks[] = [];
      for (const p of procs) {
        const st = readProcessStacks(p.hostPid);
        if (st) processes.push({ ...st, kind: p.kind, ...(p.pid !== undefined ? { pid: p.pid } : {}) });
      }
      containers.push({ containerId: c.id, processes });
    }
    return { sandboxId, init: { ...init, table: reply.text ?? '' }, containers };
  }

  /**
   * Freezes the sandbox's containers (actors/cgroups/freezer.ts, docs/decisions/0014), or with
   * `containerId` a pod container alone, in its own cgroup (decision 0022).
   */
  async pause(sandboxId: string, containerId?: string): Promise<void> {
    if (containerId !== undefined && !isRootOf(this.core, sandboxId, containerId)) return freezeOrThawContainer(this.core, sandboxId, containerId, 'pause');
    await freezeOrThaw(this.core, sandboxId, 'pause', 'pausing', 'paused');
  }

  async resume(sandboxId: string, containerId?: string): Promise<void> {
    if (containerId !== undefined && !isRootOf(this.core, sandboxId, containerId)) return freezeOrThawContainer(this.core, sandboxId, containerId, 'resume');
    await freezeOrThaw(this.core, sandboxId, 'resume', 'resuming', 'running');
  }

  async checkpoint(sandboxId: string, opts: CheckpointOptions): Promise<CheckpointResult> {
    return checkpointSandbox(this.core, sandboxId, opts);
  }

  async restore(sandboxId: string, bundle: string, opts: RestoreOptions): Promise<SandboxHandle> {
    this.core.ensureOpen();
    if (this.runtimes.has(sandboxId)) throw new StateError('ESANDBOX_EXISTS', `sandbox ${sandboxId} already exists`, { sandboxId });
    checkRestore(this.core, opts);
    // The root container is planned and not started: the restore takes the place of its start.
    const handle = await this.createSandbox(sandboxId, bundle, { stdio: opts.stdio ?? 'pipe', ...(opts.logSizeMax !== undefined ? { logSizeMax: opts.logSizeMax } : {}) });
    return restoreInto(this.core, handle, opts, (id) => this.destroy(id));
  }

  supervise(spec: SupervisorSpec): SupervisorHandle {
    this.core.ensureOpen();
    const driver = engineLeafDriver(this);
    const tree = createSupervisorTree(spec, { ...driver, inspect: this.core.inspect });
    // 'stop' ends the tree as OTP does (children newest first); trees are not persisted,
    // so after 'detach' their sandboxes run on unsupervised.
    this.onShutdown((mode) => (mode === 'stop' ? tree.stop() : undefined));
    return tree;
  }

  async pool(name: string, opts: PoolOptions): Promise<Pool> {
    this.core.ensureOpen();
    return this.pools.create(name, opts);
  }

  async close(): Promise<void> {
    if (this.core.closed) return;
    // Idle pool members have no owner once the engine is gone (docs/decisions/0016).
    await this.pools.drainAll();
    this.core.closed = true;
    this.supervision.close();
    for (const rt of this.runtimes.values()) {
      this.core.persistNow(rt);
      this.core.detach(rt);
      releaseLock(rt.paths);
      rt.actor.stop();
    }
    this.runtimes.clear();
    this.core.hooks.clear();
    this.core.closeWatcher();
    this.core.supervisor.send({ type: 'close' });
    this.core.subject.complete();
    await Promise.all([...this.inspectorServers].map((s) => s.close()));
    this.core.inspection.close();
  }

  async serveInspector(opts: ServeInspectorOptions = {}): Promise<InspectorServer> {
    this.core.ensureOpen();
    const server = await serveInspector(
      {
        hub: this.core.inspection,
        events$: this.events$,
        log: this.core.log,
        stats$: (id, o) => this.stats$(id, o),
        signal: (id, cid, sig) => this.signal(id, cid, sig),
        pause: (id) => this.pause(id),
        resume: (id) => this.resume(id),
      },
      opts,
    );
    const close = server.close;
    const tracked: InspectorServer = {
      ...server,
      close: async () => {
        this.inspectorServers.delete(tracked);
        await close();
      },
    };
    this.inspectorServers.add(tracked);
    return tracked;
  }

  run(commands$: Observable<EngineCommand>): Observable<CommandOutput> {
    this.core.ensureOpen();
    return runCommands(this, commands$);
  }

  /**
   * Work that must end before the sandboxes are stopped or left (restart supervisors,
   * pools): registered by those modules, run first by shutdown().
   */
  onShutdown(fn: (mode: 'detach' | 'stop') => Promise<void> | void): () => void {
    this.shutdownParticipants.add(fn);
    return () => this.shutdownParticipants.delete(fn);
  }

  async shutdown(opts: ShutdownOptions = {}): Promise<ShutdownReport> {
    checkOptionKeys(opts, SHUTDOWN_KEYS, 'shutdown options');
    const mode = opts.mode ?? 'detach';
    const graceMs = opts.graceMs ?? 10_000;
    if (mode !== 'detach' && mode !== 'stop') {
      throw new PaddockError('EINVALID_ARGUMENT', `shutdown mode must be 'detach' or 'stop', not ${JSON.stringify(mode)}`, { field: 'mode' });
    }
    if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) {
      throw new PaddockError('EINVALID_ARGUMENT', 'graceMs must be a number >= 0', { field: 'graceMs' });
    }
    this.core.ensureOpen();
    // Nothing may restart or refill what is being stopped ('detach' keeps the restart
    // state on disk for the next engine; close() persists it).
    if (mode === 'stop') this.supervision.stopAll();
    // Pools: idle members have no owner after the engine (both modes), and no refill may start now.
    await this.pools.drainAll();
    for (const fn of [...this.shutdownParticipants]) {
      try {
        await fn(mode);
      } catch (e) {
        this.core.log.warn({ err: e }, 'shutdown: a supervisor did not stop cleanly');
      }
    }
    for (const rt of this.runtimes.values()) {
      rt.healthActor?.stop();
      rt.healthActor = undefined;
    }
    if (mode === 'detach') {
      const detached = [...this.runtimes.keys()].filter((id) => this.isRunning(id)).sort();
      await this.close();
      return { stopped: [], killed: [], detached };
    }
    const stopped: string[] = [];
    const killed: string[] = [];
    await Promise.all(
      [...this.runtimes.values()].map(async (rt) => {
        if (rt.observer) return;
        if (rt.initAlive && (await stopSandbox(rt, graceMs, {
          signal: (cid, sig) => this.signal(rt.id, cid, sig, { all: true }),
          resume: () => this.resume(rt.id),
          killInit: () => rt.pidfd !== undefined && this.core.native.pidfdSendSignal(rt.pidfd, 9),
        }))) killed.push(rt.id);
        else stopped.push(rt.id);
        await this.destroy(rt.id).catch((e) => rt.log.warn({ err: e }, 'shutdown: destroy failed'));
      }),
    );
    await this.close();
    return { stopped: stopped.sort(), killed: killed.sort(), detached: [] };
  }

  // ---------------------------------------------------------------- reattach

  /**
   * Gives up ownership of a sandbox but keeps watching it: the lock is released and this
   * engine stops persisting its state, while its channels still deliver exits. For a
   * one-shot caller that only waits (`paddock exec`), so other calls on the sandbox
   * (`kill`, `stop`) are not held up for as long as the exec'd process runs.
   */
  release(sandboxId: string): void {
    const rt = this.core.get(sandboxId);
    this.core.persistNow(rt);
    rt.observer = true;
    releaseLock(rt.paths);
  }

  async detach(sandboxId: string): Promise<boolean> {
    const rt = this.runtimes.get(sandboxId);
    if (rt === undefined) return true;
    if ([...rt.containers.values()].some((c) => c.held !== undefined || c.releasing !== undefined)) return false;
    if (!rt.observer) {
      this.core.persistNow(rt);
      releaseLock(rt.paths);
    }
    await this.core.forget(rt, false);
    return true;
  }

  refresh(sandboxId: string): boolean {
    const rt = this.core.get(sandboxId);
    if (!rt.observer) return false;
    if (!fs.existsSync(rt.paths.dir)) {
      // Deleted by its owner: nothing is left to watch.
      void this.core.forget(rt, false);
      return true;
    }
    if (['stopped', 'failed', 'destroyed'].includes(String(rt.actor.getSnapshot().value))) return false;
    const saved = loadSandbox(rt.paths);
    if (!saved || JSON.stringify(saved.snapshot) === JSON.stringify(rt.actor.getPersistedSnapshot())) return false;
    rt.actor.stop();
    startSandboxActor(this.core, rt, { snapshot: saved.snapshot });
    // Exits recorded meanwhile (init writes them before it publishes them).
    this.core.exits.readLog(rt);
    return true;
  }

  /**
   * Reattaches one sandbox from the state dir (what a one-shot caller such as the
   * CLI does instead of reattaching them all). ESANDBOX_NOT_FOUND if it has no state.
   */
  async attach(sandboxId: string): Promise<void> {
    this.core.ensureOpen();
    if (this.runtimes.has(sandboxId)) return;
    if (!isValidId(sandboxId)) throw new PaddockError('EINVALID_ID', `invalid sandbox id ${JSON.stringify(sandboxId)}`, { sandboxId: String(sandboxId) });
    await reattach(this.core, sandboxId);
    if (!this.runtimes.has(sandboxId)) throw new StateError('ESANDBOX_NOT_FOUND', `no sandbox ${sandboxId}`, { sandboxId });
  }

  /** Restores every sandbox found in the state dir (see createEngine). */
  async attachAll(): Promise<string[]> {
    this.core.ensureOpen();
    await this.reattachAll();
    return [...this.runtimes.keys()].sort();
  }

  async reattachAll(): Promise<void> {
    this.supervision.load();
    for (const id of listSandboxIds(this.core.stateDir)) {
      if (this.runtimes.has(id)) continue;
      try {
        await reattach(this.core, id);
      } catch (e) {
        const err = e instanceof PaddockError ? e : new PaddockError('ESTATE_CORRUPT', (e as Error).message, { sandboxId: id });
        this.core.log.warn({ sandboxId: id, err }, 'could not reattach sandbox');
        this.core.emit({ type: 'error', sandboxId: id, error: err });
      }
    }
    this.supervision.resume();
  }

  // ---------------------------------------------------------------- helpers

  private async catchUpContainer(rt: Runtime, containerId: string): Promise<void> {
    if (!rt.initAlive) return;
    try {
      const r = await this.core.control(rt).request({ type: 'WAIT', cid: containerId });
      if (r.state === ProcState.EXITED) {
        const pid = (this.core.containerActor(rt, containerId).getSnapshot().context.pid ?? 0) as number;
        this.core.exits.deliver(rt, containerId, pid, 'container', toExit(r.exitCode, r.signal));
      }
    } catch {
      // Not started yet, or init is going away: the event channel or pidfd will tell.
    }
  }
}
