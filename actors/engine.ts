import * as fs from 'node:fs';
import * as path from 'node:path';
import { Subject, type Observable } from 'rxjs';
import type { Readable } from 'node:stream';
import { createActor, fromPromise, waitFor, type Actor, type AnyActorRef } from 'xstate';
import { containerMachine } from '../machines/container.machine';
import { isValidId, processActorId } from '../machines/ids';
import { sandboxMachine, type LaunchedSandbox } from '../machines/sandbox.machine';
import { supervisorMachine } from '../machines/supervisor.machine';
import type { ExitStatus, LifecycleStatus } from '../machines/types';
import type { NativeFacade } from '../native/facade';
import type { MessageOf, ProcessPlan } from '../protocols/messages';
import { Kind, ProcState } from '../protocols/messages';
import { loadBundle, type Bundle } from '../specs/load';
import { planContainer, planExec } from '../specs/plan';
import type { OciHooks } from '../specs/oci';
import type {
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
  LogsOptions,
  Pool,
  PoolOptions,
  ProcessEntry,
  SandboxHandle,
  SandboxSummary,
  StartContainerOptions,
  StdioHandles,
} from './api';
import { ControlClient, encodeRequest } from './control-client';
import { hasHooks, runHooks, runHooksWarn, type HookState, type Hooks } from './hooks';
import { ChannelError, PaddockError, SpecError, StateError } from './errors';
import { createRootLogger, type Logger } from './logger';
import { checkLsmFields } from './lsm';
import { heldProcessDead, HeldRelease, stillHeld } from './held-release';
import { podContainerCgroupPath, resolveCgroupsPath, type CgroupsPathOptions } from './cgroups-path';
import { launchSandbox, destroySandboxResources, connectChannels, findCgroup, type Runtime, type ContainerRuntime } from './launcher';
import { detectLayout, type CgroupLayout, type SandboxCgroup } from './cgroups';
import { freezeContainer, freezeSandbox, killFrozen, killFrozenContainer, thawContainer, thawSandbox, type FreezerHost } from './freezer';
import { findPodCgroups, makePodCgroup, placeInPodCgroup, placeTreeInPodCgroup, removePodCgroup } from './pod-cgroups';
import { PidfdWatcher } from './pidfd-watcher';
import { resolveHealth, startHealthCheck } from './health';
import { runCommands } from './command-stream';
import { ExitReports, toExit } from './exit-reports';
import { withConsole } from './console';
import { initExitsWithin, stopSandbox } from './shutdown';
import { readProcess, processTree, statsOf, type ContainerStats } from './proc-stats';
import { parseSignal } from './signals';
import { PoolRegistry } from './pool';
import {
  SandboxPaths,
  STATE_VERSION,
  acquireLock,
  acquireLockLocked,
  listSandboxIds,
  loadSandbox,
  processParent,
  processStartTime,
  releaseLock,
  saveSandboxLocked,
  type PersistedSandbox,
  type StdioMode,
} from './state-store';
import { closedWritable, openStdinFifo, tailFile } from './stdio';
import { Supervision } from './supervision';
import { createSupervisorTree, engineLeafDriver, type SupervisorHandle, type SupervisorSpec } from './supervision-tree';
import { removeFile, removeTree } from './remove-tree';
import { podNamespaces, type PodSandboxView } from './pod-namespaces';
import { podContainerPlan, podExecPlan } from './pod-plan';

/** Sandbox states worth persisting; transient ones would replay an in-flight effect on restore. */
const STABLE = new Set(['created', 'running', 'paused', 'stopped', 'failed']);

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
  private readonly subject = new Subject<EngineEvent>();
  readonly events$ = this.subject.asObservable();
  private readonly log: Logger;
  private readonly stateDir: string;
  private readonly runtimes = new Map<string, Runtime>();
  /** OCI hooks of each sandbox's root container (persisted in state.json; actors/hooks.ts). */
  private readonly hooks = new Map<string, Hooks>();
  private readonly supervisor = createActor(supervisorMachine);
  private nativeImpl: NativeFacade | undefined;
  private watcherImpl: PidfdWatcher | undefined;
  private closed = false;
  private readonly shutdownParticipants = new Set<(mode: 'detach' | 'stop') => Promise<void> | void>();
  private readonly machine: typeof sandboxMachine;
  /** Restart policies (actors/supervision.ts); fed by this engine's events. */
  private readonly supervision: Supervision;
  /** Warm pools (actors/pool.ts); built on this engine's own commands. */
  private readonly pools: PoolRegistry;

  constructor(private readonly options: EngineOptions) {
    if (!options || typeof options.stateDir !== 'string' || !path.isAbsolute(options.stateDir)) {
      throw new PaddockError('EINVALID_ARGUMENT', 'stateDir must be an absolute path');
    }
    if (options.exitReports !== undefined && options.exitReports !== 'at-most-once' && options.exitReports !== 'at-least-once') {
      throw new PaddockError('EINVALID_ARGUMENT', `exitReports must be 'at-most-once' or 'at-least-once', not ${JSON.stringify(options.exitReports)}`);
    }
    this.stateDir = options.stateDir;
    this.log = options.logger ?? createRootLogger();
    this.exits = new ExitReports({
      emit: (e) => this.subject.next(e),
      persist: (rt) => this.persist(rt),
      replaceFile: this.replaceFile,
      delivery: options.exitReports ?? 'at-most-once',
    });
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o711 });
    // Sandboxes run as unprivileged host ids and must traverse the root to reach their folder.
    fs.chmodSync(this.stateDir, 0o711);
    this.supervisor.start();
    this.supervision = new Supervision(this, this.stateDir, this.log, (e) => this.subject.next(e));
    this.supervision.inspect = options.inspect;
    this.pools = new PoolRegistry({
      createSandbox: (id, bundle, opts) => this.createSandbox(id, bundle, opts),
      startRoot: (id) => this.startRoot(id),
      destroy: (id) => this.destroy(id),
      list: () => this.list(),
      events$: this.events$,
      publish: (e) => this.subject.next(e),
      log: this.log,
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.machine = sandboxMachine.provide({
      actors: {
        launchSandbox: fromPromise<LaunchedSandbox, { sandboxId: string }>(({ input }) => this.launch(input.sandboxId)),
        destroySandbox: fromPromise<void, { sandboxId: string }>(({ input }) => this.teardown(input.sandboxId)),
        freezeSandbox: fromPromise<void, { sandboxId: string; initHostPid?: number }>(({ input }) =>
          freezeSandbox(freezerHost(this.mustRuntime(input.sandboxId)), { keep: input.initHostPid !== undefined ? [input.initHostPid] : [], timeoutMs: this.requestTimeout }),
        ),
        thawSandbox: fromPromise<void, { sandboxId: string }>(({ input }) => thawSandbox(freezerHost(this.mustRuntime(input.sandboxId)), { timeoutMs: this.requestTimeout })),
        container: containerMachine.provide({
          actors: {
            startContainer: fromPromise(({ input }) => this.startProcess(input.sandboxId, input.containerId)),
          },
        }),
      },
    });
  }

  /** State writes go through the native exchange: no ext4 flush on each one (decision 0016). */
  private readonly replaceFile = (tmp: string, target: string): void => this.native.replaceFile(tmp, target);
  /** Exit reports from exits.log, once each (actors/exit-reports.ts, decisions 0003/0017). */
  private readonly exits: ExitReports;

  private get native(): NativeFacade {
    if (!this.nativeImpl) {
      if (this.options.native) this.nativeImpl = this.options.native;
      else {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { loadNative } = require('../native/ffi') as { loadNative: () => NativeFacade };
        this.nativeImpl = loadNative();
      }
    }
    return this.nativeImpl;
  }

  private cgroupsPathOptions(sandboxId: string, bundleDir: string): CgroupsPathOptions {
    return {
      systemd: this.options.systemdCgroup === true,
      systemdRunning: this.options.systemdRunning ?? fs.existsSync('/run/systemd/system'),
      sandboxId,
      bundleDir,
    };
  }

  /**
   * Where a pod container's own cgroup goes: its linux.cgroupsPath (containerd's
   * sibling of the sandbox's), else nested in the sandbox's (decision 0022). Checked
   * before anything is made.
   */
  private podCgroupPath(rt: Runtime, containerId: string, bundle: Bundle) {
    const sandboxRel = rt.cgroup?.relPath ?? rt.cgroupsPath?.relPath ?? '';
    return podContainerCgroupPath(bundle.config.linux?.cgroupsPath, sandboxRel, containerId, { ...this.cgroupsPathOptions(rt.id, bundle.dir), sandboxId: rt.id });
  }

  /** Where cgroups are mounted (EngineOptions.cgroups, else the host's, detected once). */
  private get cgroupLayout(): CgroupLayout | false {
    return this.options.cgroups ?? detectLayout();
  }

  private get watcher(): PidfdWatcher {
    if (!this.watcherImpl) this.watcherImpl = new PidfdWatcher(this.native);
    return this.watcherImpl;
  }

  // ---------------------------------------------------------------- commands

  async createSandbox(id: string, bundleDir: string, opts: CreateSandboxOptions = {}): Promise<SandboxHandle> {
    this.ensureOpen();
    if (!isValidId(id)) throw new PaddockError('EINVALID_ID', `invalid sandbox id ${JSON.stringify(id)}`, { sandboxId: String(id) });
    const stdio = this.checkStdio(opts.stdio);
    const health = resolveHealth(opts.health);
    const restart = this.supervision.validate(opts.restart);
    const paths = new SandboxPaths(this.stateDir, id);
    if (this.runtimes.has(id) || fs.existsSync(paths.dir)) {
      throw new StateError('ESANDBOX_EXISTS', `sandbox ${id} already exists`, { sandboxId: id });
    }
    // Validation happens before anything is created, so bad input changes nothing.
    const bundle = await loadBundle(bundleDir);
    checkConsole(bundle.config.process?.terminal === true, opts.consoleSocket, { sandboxId: id });
    checkLsmFields(bundle.config, this.log.child({ sandboxId: id }), this.options.lsms);
    const cgroupsPath = resolveCgroupsPath(bundle.config.linux?.cgroupsPath, this.cgroupsPathOptions(id, bundle.dir));
    if (this.runtimes.has(id) || fs.existsSync(paths.dir)) {
      throw new StateError('ESANDBOX_EXISTS', `sandbox ${id} already exists`, { sandboxId: id });
    }
    const rootId = id;
    const rt: Runtime = {
      id,
      paths,
      log: this.log.child({ sandboxId: id }),
      bundle,
      owner: { uid: 0, gid: 0 },
      containers: new Map([[rootId, { id: rootId, bundle, stdio, done: deferred<void>(), ...(opts.noPivot ? { noPivot: true } : {}) }]]),
      execs: new Map(),
      execCounter: 0,
      seenExits: new Set(),
      exitsRead: 0,
      containerExits: new Map(),
      initExited: deferred<void>(),
      initAlive: false,
      rootStdio: stdio,
      createdAt: new Date().toISOString(),
      actor: undefined as unknown as Runtime['actor'],
      persistQueued: false,
      ...(health ? { health } : {}),
      cgroupsPath,
    };
    this.runtimes.set(id, rt);
    this.supervisor.send({ type: 'sandbox.register', sandboxId: id });
    const actor = this.startSandboxActor(rt, { input: { sandboxId: id, bundleDir: bundle.dir } });
    const snap = await waitFor(actor, (s) => s.value !== 'creating', { timeout: 60_000 });
    if (snap.value === 'failed') {
      const error = snap.context.error;
      await this.forget(rt, true);
      throw restoreError(error, id, 'ELAUNCH_STEP');
    }
    actor.send({ type: 'container.add', containerId: rootId, bundleDir: bundle.dir });
    if (bundle.config.hooks !== undefined && hasHooks(bundle.config.hooks)) this.hooks.set(id, bundle.config.hooks);
    this.persistNow(rt);
    if (opts.consoleSocket !== undefined) {
      try {
        await this.holdWithConsole(rt, rootId, opts.consoleSocket);
      } catch (e) {
        await this.destroy(id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed console hand-off'));
        throw e;
      }
    }
    await this.runCreateHooks(rt, snap.context.initHostPid as number);
    if (opts.prepare === true && opts.consoleSocket === undefined) {
      try {
        await this.holdContainer(rt, rootId);
      } catch (e) {
        await this.destroy(id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed prepare'));
        throw e;
      }
    }
    this.startHealth(rt);
    const root = rt.containers.get(rootId) as ContainerRuntime;
    this.supervision.register(id, undefined, bundle.dir, opts, restart);
    return {
      id,
      pid: snap.context.initHostPid as number,
      rootContainerId: rootId,
      ...(root.streams ? { stdio: root.streams } : {}),
    };
  }

  async startRoot(sandboxId: string): Promise<ContainerHandle> {
    const rt = this.get(sandboxId);
    this.requireCan(rt, { type: 'start' }, 'start');
    const rootId = rt.actor.getSnapshot().context.rootContainerId as string;
    // A prepared root whose held process died (killed, or its sandbox's exit seen) is
    // stopped: as runc, it cannot be started, rather than "started" into its exit.
    const root = (rt.actor.getSnapshot().children[rootId] as unknown as Actor<typeof containerMachine> | undefined)?.getSnapshot();
    if (root && root.value === 'stopped') {
      throw new StateError('EINVALID_STATE', `cannot start container ${rootId}: it is ${String(root.value)}`, { sandboxId, containerId: rootId, verb: 'start', state: String(root.value) });
    }
    // The start is decided (the machines accept it): a held root is released now, and
    // the machines' transitions run while the kernel does its execve (0020). A root
    // container has no cgroup of its own to be placed in first; pod containers do.
    const c = rt.containers.get(rootId);
    if (c && root?.value === 'created' && root.can({ type: 'start' }) && this.releaseHeld(rt, c, root.context.prepared)) c.releasedEarly = true;
    rt.actor.send({ type: 'start' });
    const handle = await this.awaitStarted(rt, rootId);
    await this.runPoststartHooks(rt);
    return handle;
  }

  async addContainer(sandboxId: string, containerId: string, bundleDir: string, opts: StartContainerOptions = {}): Promise<ContainerSummary> {
    const rt = this.get(sandboxId);
    if (!isValidId(containerId)) throw new PaddockError('EINVALID_ID', `invalid container id ${JSON.stringify(containerId)}`, { sandboxId });
    const stdio = this.checkStdio(opts.stdio);
    const restart = this.supervision.validate(opts.restart);
    const snap = rt.actor.getSnapshot();
    if (snap.context.containers[containerId] !== undefined || rt.containers.has(containerId)) {
      throw new StateError('ECONTAINER_EXISTS', `container ${containerId} already exists in sandbox ${sandboxId}`, { sandboxId, containerId });
    }
    this.requireCan(rt, { type: 'container.add', containerId, bundleDir: '/' }, 'addContainer');
    const bundle = await loadBundle(bundleDir);
    refuseHooks(bundle);
    const where = this.podCgroupPath(rt, containerId, bundle);
    const podNs = podNamespaces(bundle.config, this.podView(rt), containerId);
    checkConsole(bundle.config.process?.terminal === true, opts.consoleSocket, { sandboxId, containerId });
    checkLsmFields(bundle.config, rt.log.child({ containerId }), this.options.lsms);
    if (rt.containers.has(containerId)) {
      throw new StateError('ECONTAINER_EXISTS', `container ${containerId} already exists in sandbox ${sandboxId}`, { sandboxId, containerId });
    }
    // Its own cgroup, limits applied, before anything else is made (decision 0022).
    const cgroup = makePodCgroup({
      layout: this.cgroupLayout,
      sandbox: rt.cgroup,
      paths: rt.paths,
      sandboxId,
      containerId,
      where,
      resources: bundle.config.linux?.resources,
      userns: [rt.bundle, bundle].some((b) => (b.config.linux?.namespaces ?? []).some((n) => n.type === 'user')),
      owner: rt.owner,
      native: this.native,
      log: rt.log,
    });
    rt.containers.set(containerId, { id: containerId, bundle, stdio, done: deferred<void>(), ...(cgroup ? { cgroup } : {}), ...podNs });
    try {
      this.prepareStdio(rt, containerId, containerId, stdio);
    } catch (e) {
      rt.containers.delete(containerId);
      if (cgroup) await removePodCgroup(cgroup, rt.paths, containerId, rt.log);
      throw e;
    }
    rt.actor.send({ type: 'container.add', containerId, bundleDir: bundle.dir });
    this.persistNow(rt);
    this.supervision.register(sandboxId, containerId, bundle.dir, opts, restart);
    if (opts.consoleSocket !== undefined) {
      try {
        await this.holdWithConsole(rt, containerId, opts.consoleSocket);
      } catch (e) {
        await this.destroyContainer(sandboxId, containerId).catch((d) => rt.log.warn({ err: d }, 'could not remove the container after a failed console hand-off'));
        throw e;
      }
    } else if (opts.prepare === true) {
      try {
        await this.holdContainer(rt, containerId);
      } catch (e) {
        await this.destroyContainer(sandboxId, containerId).catch((d) => rt.log.warn({ err: d }, 'could not remove the container after a failed prepare'));
        throw e;
      }
    }
    return this.summary(rt).containers.find((c) => c.id === containerId) as ContainerSummary;
  }

  async startContainer(sandboxId: string, containerId: string, bundleDir?: string, opts: StartContainerOptions = {}): Promise<ContainerHandle> {
    const rt = this.get(sandboxId);
    const registered = rt.containers.has(containerId) && rt.actor.getSnapshot().context.containers[containerId] !== undefined;
    if (!registered && bundleDir === undefined) {
      throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
    }
    if (registered && bundleDir !== undefined) {
      throw new StateError('ECONTAINER_EXISTS', `container ${containerId} already exists in sandbox ${sandboxId}`, { sandboxId, containerId });
    }
    if (!registered) await this.addContainer(sandboxId, containerId, bundleDir as string, opts);
    if (containerId === rt.actor.getSnapshot().context.rootContainerId) {
      throw new StateError('EINVALID_STATE', `container ${containerId} is the root of sandbox ${sandboxId}: use startRoot`, { sandboxId, containerId, verb: 'startContainer' });
    }
    const c = this.containerActor(rt, containerId);
    if (!c.getSnapshot().can({ type: 'start' }) || !rt.actor.getSnapshot().can({ type: 'container.start', containerId })) {
      throw new StateError('EINVALID_STATE', `cannot start container ${containerId}: it is ${String(c.getSnapshot().value)} in a ${String(rt.actor.getSnapshot().value)} sandbox`, {
        sandboxId,
        containerId,
        verb: 'startContainer',
        state: String(c.getSnapshot().value),
      });
    }
    const cr = rt.containers.get(containerId) as ContainerRuntime;
    if (!cr.plan) {
      // Registered by another process and its bundle could not be planned again here
      // (or names namespaces by path, which need the running sandbox to resolve).
      Object.assign(cr, podNamespaces(cr.bundle.config, this.podView(rt), containerId));
      cr.plan = this.containerPlan(cr, reattachedStdio(rt.paths, containerId, cr.stdio), rt);
    }
    // A container with its own cgroup is moved into it while held before its execve
    // (decision 0022): one not prepared yet is prepared now, one round trip more.
    try {
      if (cr.cgroup && c.getSnapshot().context.prepared === undefined) await this.holdContainer(rt, containerId);
      rt.actor.send({ type: 'container.start', containerId });
      return await this.awaitStarted(rt, containerId);
    } catch (e) {
      if (!registered) {
        // A container added and started in one call that failed to start is not kept: the sandbox is as it was.
        rt.actor.send({ type: 'container.remove', containerId });
        this.closeContainerStdio(rt.containers.get(containerId));
        rt.containers.get(containerId)?.held?.dispose();
        rt.containers.delete(containerId);
        this.supervision.drop(sandboxId, containerId);
        if (cr.cgroup) await removePodCgroup(cr.cgroup, rt.paths, containerId, rt.log);
      }
      this.persistNow(rt);
      throw e;
    }
  }

  async execute(sandboxId: string, containerId: string, opts: ExecOptions): Promise<ExecResult> {
    const rt = this.get(sandboxId);
    const c = this.containerActor(rt, containerId);
    if (!c.getSnapshot().can({ type: 'exec' })) {
      throw new StateError('EINVALID_STATE', `cannot exec into container ${containerId}: it is ${c.getSnapshot().value as string}`, {
        sandboxId,
        containerId,
        verb: 'exec',
        state: String(c.getSnapshot().value),
      });
    }
    const cont = rt.containers.get(containerId);
    if (!cont) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
    const stdio = this.checkStdio(opts.stdio);
    const terminal = opts.terminal === true;
    checkConsole(terminal, opts.consoleSocket, { sandboxId, containerId });
    const name = `${containerId}.exec-${++rt.execCounter}`;
    const plan = podExecPlan(planExec(
      {
        args: opts.args as string[],
        ...(opts.env ? { env: opts.env as string[] } : {}),
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.user ? { user: opts.user as { uid: number; gid: number; additionalGids?: number[] } } : {}),
        ...(opts.capabilities !== undefined ? { capabilities: opts.capabilities } : {}),
        ...(opts.rlimits !== undefined ? { rlimits: opts.rlimits } : {}),
        ...(opts.noNewPrivileges !== undefined ? { noNewPrivileges: opts.noNewPrivileges } : {}),
      },
      cont.bundle.config,
    ), cont, rt);
    // A terminal replaces fds 0-2 in the process, so it needs no files or FIFO.
    const io = this.prepareStdio(rt, name, undefined, terminal ? 'ignore' : stdio);
    let reply: MessageOf<'OK'>;
    try {
      reply = terminal
        ? await withConsole(this.native, this.requestTimeout, rt, opts.consoleSocket as string, (endpoint) =>
            this.control(rt).request({ type: 'EXEC', cid: containerId, plan: { ...plan, terminal: true, consoleSocket: endpoint } }),
          (r) => this.control(rt).request({ type: 'SIGNAL', cid: containerId, signo: 9, pid: r.pid as number }).then(() => undefined),
          )
        : await this.control(rt).request({ type: 'EXEC', cid: containerId, plan: { ...plan, ...io.plan } });
    } catch (e) {
      io.close();
      throw e;
    }
    const pid = reply.pid as number;
    const hostPid = reply.hostPid as number;
    if (cont.cgroup) {
      // init forks and execs at once: moved with what it forked as soon as its pid is known (decision 0022).
      try {
        placeTreeInPodCgroup(cont.cgroup, hostPid, { sandboxId, containerId }, processTree);
      } catch (e) {
        rt.log.warn({ containerId, hostPid, err: (e as Error).message, step: 'cgroup' }, "exec'd process could not be moved into its container's cgroup");
      }
    }
    const done = deferred<void>();
    rt.execs.set(pid, { name, containerId, done, stdinFd: io.stdinFd });
    c.send({ type: 'exec' });
    rt.actor.send({ type: 'process.add', containerId, pid, hostPid });
    // Its exit may have been delivered before it was registered (see pendingExits).
    const child = rt.actor.getSnapshot().children[processActorId(pid)] as AnyActorRef | undefined;
    if (child?.getSnapshot().value === 'exited') done.resolve();
    this.persistNow(rt);
    const streams = io.streams(done.promise);
    rt.log.child({ containerId }).debug({ pid, hostPid, step: 'exec' }, 'exec started');
    return { pid, hostPid, ...(streams ?? {}) };
  }

  async processes(sandboxId: string, containerId: string): Promise<ProcessEntry[]> {
    const rt = this.get(sandboxId);
    this.containerActor(rt, containerId);
    const reply = await this.control(rt).request({ type: 'PROCESSES', cid: containerId });
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

  async event(sandboxId: string, containerId: string): Promise<ContainerStats> {
    const rt = this.get(sandboxId);
    this.containerActor(rt, containerId);
    const reply = await this.control(rt).request({ type: 'PROCESSES', cid: containerId });
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

  async wait(sandboxId: string, containerId: string, opts: { timeoutMs?: number } = {}): Promise<ExitStatus> {
    const rt = this.get(sandboxId);
    const c = this.containerActor(rt, containerId);
    const stopped = waitFor(c, (s) => s.value === 'stopped', { timeout: opts.timeoutMs ?? Infinity });
    // List, then watch — concurrently: the exit event usually wins, and a WAIT sent to an
    // init that is exiting would only be answered by the channel closing.
    if (c.getSnapshot().value !== 'stopped') void this.catchUpContainer(rt, containerId);
    const snap = await stopped;
    return snap.context.exit ?? { exitCode: null, signal: null };
  }

  async waitPid(sandboxId: string, pid: number, opts: { timeoutMs?: number } = {}): Promise<ExitStatus> {
    const rt = this.get(sandboxId);
    if (!Number.isInteger(pid) || pid <= 0) throw new PaddockError('EINVALID_ARGUMENT', `invalid pid ${pid}`, { sandboxId });
    const ref = rt.actor.getSnapshot().children[processActorId(pid)] as AnyActorRef | undefined;
    if (!ref) throw new StateError('EPROCESS_NOT_FOUND', `no process ${pid} in sandbox ${sandboxId}`, { sandboxId, pid });
    const exec = rt.execs.get(pid);
    const exited = waitFor(ref, (s: { value: unknown }) => s.value === 'exited', { timeout: opts.timeoutMs ?? Infinity });
    if (exec && rt.initAlive && ref.getSnapshot().value !== 'exited') {
      // List, then watch (concurrently, as in wait()).
      this.control(rt)
        .request({ type: 'WAIT_PID', cid: exec.containerId, pid })
        .then((r) => {
          if (r.state === ProcState.EXITED) this.exits.deliver(rt, exec.containerId, pid, 'exec', toExit(r.exitCode, r.signal));
        })
        .catch(() => undefined); // init may be exiting; the pidfd path delivers from exits.log
    }
    const snap = await exited;
    return (snap as { context: { exit?: ExitStatus } }).context.exit ?? { exitCode: null, signal: null };
  }

  async signal(sandboxId: string, containerId: string, signal: string | number, opts: { pid?: number; all?: boolean } = {}): Promise<void> {
    const rt = this.get(sandboxId);
    const signo = parseSignal(signal);
    const c = this.containerActor(rt, containerId);
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
      await this.control(rt).request({
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

  async destroyContainer(sandboxId: string, containerId: string): Promise<void> {
    const rt = this.get(sandboxId);
    const c = this.containerActor(rt, containerId);
    const sandboxState = String(rt.actor.getSnapshot().value);
    if (sandboxState === 'paused' || sandboxState === 'pausing' || sandboxState === 'resuming') {
      // Its processes are frozen: resume first, or destroy the whole sandbox.
      throw new StateError('EINVALID_STATE', `cannot destroy container ${containerId}: sandbox ${sandboxId} is ${sandboxState}`, { sandboxId, containerId, verb: 'destroyContainer', state: sandboxState });
    }
    if (containerId === rt.actor.getSnapshot().context.rootContainerId) {
      throw new StateError('EINVALID_STATE', `container ${containerId} is the root of sandbox ${sandboxId}: destroy the sandbox instead`, {
        sandboxId,
        containerId,
        verb: 'destroyContainer',
      });
    }
    this.supervision.userStop(sandboxId, containerId);
    const cgroup = rt.containers.get(containerId)?.cgroup;
    // Paused alone: its tasks must be able to die (v1 holds even SIGKILL while frozen).
    killFrozenContainer(cgroup);
    // A container that was only added (never started) has nothing in paddock-init.
    if (rt.initAlive && c.getSnapshot().value !== 'created') {
      await this.control(rt).request({ type: 'DESTROY_CONTAINER', cid: containerId });
    }
    if (cgroup) await removePodCgroup(cgroup, rt.paths, containerId, rt.log);
    this.exits.readLog(rt);
    rt.actor.send({ type: 'container.remove', containerId });
    this.closeContainerStdio(rt.containers.get(containerId));
    rt.containers.get(containerId)?.held?.dispose();
    rt.containers.delete(containerId);
    for (const [pid, e] of rt.execs) if (e.containerId === containerId) rt.execs.delete(pid);
    this.removeContainerFiles(rt, containerId);
    this.persistNow(rt);
  }

  /** The stdin FIFOs and log files of a destroyed container and its exec'd processes, so its id can be used again. */
  private removeContainerFiles(rt: Runtime, containerId: string): void {
    for (const dir of [rt.paths.stdinDir, rt.paths.logsDir]) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        if (n.startsWith(`${containerId}.`) && /^(exec-\d+\.)?(stdout|stderr|fifo)$/.test(n.slice(containerId.length + 1))) {
          removeFile(path.join(dir, n));
        }
      }
    }
  }

  async destroy(sandboxId: string): Promise<void> {
    const rt = this.get(sandboxId);
    this.supervision.userStop(sandboxId);
    if (!rt.actor.getSnapshot().can({ type: 'destroy' })) {
      // Already being destroyed by a concurrent call: wait for that one.
      await waitFor(rt.actor, (s) => s.status === 'done' || s.value === 'failed', { timeout: 30_000 });
    } else {
      rt.actor.send({ type: 'destroy' });
      const snap = await waitFor(rt.actor, (s) => s.status === 'done' || s.value === 'failed', { timeout: 30_000 });
      if (snap.status !== 'done') throw restoreError(snap.context.error, sandboxId, 'ECONTROL');
      const hooks = this.hooks.get(sandboxId);
      await this.forget(rt, false);
      await this.runPoststopHooks(rt, hooks);
      return;
    }
    await this.forget(rt, false);
  }

  isRunning(sandboxId: string): boolean {
    const rt = this.runtimes.get(sandboxId);
    return !!rt && rt.initAlive && rt.actor.getSnapshot().hasTag('alive');
  }

  list(): SandboxSummary[] {
    return [...this.runtimes.values()].map((rt) => this.summary(rt)).sort((a, b) => a.id.localeCompare(b.id));
  }

  logs(sandboxId: string, containerId: string, opts: LogsOptions = {}): Readable {
    const rt = this.get(sandboxId);
    const c = this.containerActor(rt, containerId);
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

  async stacks(sandboxId: string): Promise<string> {
    const rt = this.get(sandboxId);
    const reply = await this.control(rt).request({ type: 'STACKS' });
    return reply.text ?? '';
  }

  /**
   * Freezes the sandbox's containers (actors/freezer.ts, docs/decisions/0014), or with
   * `containerId` a pod container alone, in its own cgroup (decision 0022).
   */
  async pause(sandboxId: string, containerId?: string): Promise<void> {
    if (containerId !== undefined && !this.isRootOf(sandboxId, containerId)) return this.freezeOrThawContainer(sandboxId, containerId, 'pause');
    await this.freezeOrThaw(sandboxId, 'pause', 'pausing', 'paused');
  }

  async resume(sandboxId: string, containerId?: string): Promise<void> {
    if (containerId !== undefined && !this.isRootOf(sandboxId, containerId)) return this.freezeOrThawContainer(sandboxId, containerId, 'resume');
    await this.freezeOrThaw(sandboxId, 'resume', 'resuming', 'running');
  }

  private isRootOf(sandboxId: string, containerId: string): boolean {
    return this.get(sandboxId).actor.getSnapshot().context.rootContainerId === containerId;
  }

  /**
   * One pod container: only while its sandbox runs (a paused sandbox is resumed as a
   * whole), and only from running (pause) or paused (resume), as runc says it.
   */
  private async freezeOrThawContainer(sandboxId: string, containerId: string, verb: 'pause' | 'resume'): Promise<void> {
    const rt = this.get(sandboxId);
    const c = this.containerActor(rt, containerId);
    const sandboxState = String(rt.actor.getSnapshot().value);
    if (sandboxState !== 'running') {
      throw new StateError('EINVALID_STATE', `cannot ${verb} container ${containerId}: sandbox ${sandboxId} is ${sandboxState}`, { sandboxId, containerId, verb, state: sandboxState });
    }
    if (!c.getSnapshot().can({ type: verb })) {
      throw new StateError('EINVALID_STATE', `cannot ${verb} container ${containerId}: it is ${String(c.getSnapshot().value)}`, { sandboxId, containerId, verb, state: String(c.getSnapshot().value) });
    }
    const cgroup = rt.containers.get(containerId)?.cgroup;
    const host = { sandboxId, containerId, ...(cgroup ? { cgroup } : {}) };
    if (verb === 'pause') await freezeContainer(host, { timeoutMs: this.requestTimeout });
    else await thawContainer(host, { timeoutMs: this.requestTimeout });
    c.send({ type: verb });
    this.persistNow(rt);
  }

  private async freezeOrThaw(sandboxId: string, verb: 'pause' | 'resume', busy: string, want: string): Promise<void> {
    const rt = this.get(sandboxId);
    this.requireCan(rt, { type: verb }, verb);
    rt.actor.send({ type: verb });
    // The freezer bounds its own wait (requestTimeoutMs); this only guards a wedged actor.
    const snap = await waitFor(rt.actor, (s) => s.value !== busy, { timeout: this.requestTimeout * 4 });
    this.persistNow(rt);
    if (snap.value !== want) {
      if (snap.context.error) throw restoreError(snap.context.error, sandboxId, 'ECONTROL');
      throw new StateError('EINVALID_STATE', `cannot ${verb} sandbox ${sandboxId}: it is ${String(snap.value)}`, { sandboxId, verb, state: String(snap.value) });
    }
  }

  async checkpoint(sandboxId: string, _imageDir: string): Promise<void> {
    this.get(sandboxId);
    throw new PaddockError('ENOT_SUPPORTED', 'checkpoint is not supported yet', { sandboxId, verb: 'checkpoint' });
  }

  async restore(sandboxId: string, _imageDir: string): Promise<void> {
    throw new PaddockError('ENOT_SUPPORTED', 'restore is not supported yet', { sandboxId, verb: 'restore' });
  }

  supervise(spec: SupervisorSpec): SupervisorHandle {
    this.ensureOpen();
    const driver = engineLeafDriver(this);
    const tree = createSupervisorTree(spec, this.options.inspect ? { ...driver, inspect: this.options.inspect } : driver);
    // 'stop' ends the tree as OTP does (children newest first); trees are not persisted,
    // so after 'detach' their sandboxes run on unsupervised.
    this.onShutdown((mode) => (mode === 'stop' ? tree.stop() : undefined));
    return tree;
  }

  async pool(name: string, opts: PoolOptions): Promise<Pool> {
    this.ensureOpen();
    return this.pools.create(name, opts);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Idle pool members have no owner once the engine is gone (docs/decisions/0016).
    await this.pools.drainAll();
    this.closed = true;
    this.supervision.close();
    for (const rt of this.runtimes.values()) {
      this.persistNow(rt);
      this.detach(rt);
      releaseLock(rt.paths);
      rt.actor.stop();
    }
    this.runtimes.clear();
    this.hooks.clear();
    this.watcherImpl?.close();
    this.supervisor.send({ type: 'close' });
    this.subject.complete();
  }

  run(commands$: Observable<EngineCommand>): Observable<CommandOutput> {
    this.ensureOpen();
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
    const mode = opts.mode ?? 'detach';
    const graceMs = opts.graceMs ?? 10_000;
    if (mode !== 'detach' && mode !== 'stop') {
      throw new PaddockError('EINVALID_ARGUMENT', `shutdown mode must be 'detach' or 'stop', not ${JSON.stringify(mode)}`, { field: 'mode' });
    }
    if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) {
      throw new PaddockError('EINVALID_ARGUMENT', 'graceMs must be a number >= 0', { field: 'graceMs' });
    }
    this.ensureOpen();
    // Nothing may restart or refill what is being stopped ('detach' keeps the restart
    // state on disk for the next engine; close() persists it).
    if (mode === 'stop') this.supervision.stopAll();
    // Pools: idle members have no owner after the engine (both modes), and no refill may start now.
    await this.pools.drainAll();
    for (const fn of [...this.shutdownParticipants]) {
      try {
        await fn(mode);
      } catch (e) {
        this.log.warn({ err: e }, 'shutdown: a supervisor did not stop cleanly');
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
          killInit: () => rt.pidfd !== undefined && this.native.pidfdSendSignal(rt.pidfd, 9),
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
   * Reattaches one sandbox from the state dir (what a one-shot caller such as the
   * CLI does instead of reattaching them all). ESANDBOX_NOT_FOUND if it has no state.
   */
  /**
   * Gives up ownership of a sandbox but keeps watching it: the lock is released and this
   * engine stops persisting its state, while its channels still deliver exits. For a
   * one-shot caller that only waits (`paddock exec`), so other calls on the sandbox
   * (`kill`, `stop`) are not held up for as long as the exec'd process runs.
   */
  release(sandboxId: string): void {
    const rt = this.get(sandboxId);
    this.persistNow(rt);
    rt.observer = true;
    releaseLock(rt.paths);
  }

  async attach(sandboxId: string): Promise<void> {
    this.ensureOpen();
    if (this.runtimes.has(sandboxId)) return;
    if (!isValidId(sandboxId)) throw new PaddockError('EINVALID_ID', `invalid sandbox id ${JSON.stringify(sandboxId)}`, { sandboxId: String(sandboxId) });
    await this.reattach(sandboxId);
    if (!this.runtimes.has(sandboxId)) throw new StateError('ESANDBOX_NOT_FOUND', `no sandbox ${sandboxId}`, { sandboxId });
  }

  /** Restores every sandbox found in the state dir (see createEngine). */
  async attachAll(): Promise<string[]> {
    this.ensureOpen();
    await this.reattachAll();
    return [...this.runtimes.keys()].sort();
  }

  async reattachAll(): Promise<void> {
    this.supervision.load();
    for (const id of listSandboxIds(this.stateDir)) {
      if (this.runtimes.has(id)) continue;
      try {
        await this.reattach(id);
      } catch (e) {
        const err = e instanceof PaddockError ? e : new PaddockError('ESTATE_CORRUPT', (e as Error).message, { sandboxId: id });
        this.log.warn({ sandboxId: id, err }, 'could not reattach sandbox');
        this.subject.next({ type: 'error', sandboxId: id, error: err });
      }
    }
    this.supervision.resume();
  }

  private async reattach(id: string): Promise<void> {
    if (!isValidId(id)) return;
    const paths = new SandboxPaths(this.stateDir, id);
    const saved = loadSandbox(paths);
    if (!saved) {
      this.removeHalfCreated(paths);
      return;
    }
    await acquireLock(paths, this.options.lockTimeoutMs ?? 0);
    const snapshot = saved.snapshot as { context?: { bundleDir?: string; initHostPid?: number; initStartTime?: number } };
    const bundleDir = snapshot.context?.bundleDir ?? '';
    const containers = new Map<string, ContainerRuntime>();
    let rootBundle: Bundle | undefined;
    for (const [cid, c] of Object.entries(saved.containers)) {
      let bundle: Bundle;
      try {
        bundle = await loadBundle(c.bundleDir);
      } catch {
        // The bundle may be gone; exec then fails, but statuses and logs still work.
        bundle = { dir: c.bundleDir, config: { ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/' } }, rootfs: '' } as unknown as Bundle;
      }
      if (!rootBundle) rootBundle = bundle;
      const cr: ContainerRuntime = { id: cid, bundle, stdio: c.stdio, done: deferred<void>(), ...(c.noPivot ? { noPivot: true } : {}) };
      // A container created by another process and not started yet: plan it again.
      // Its log files are reused; a stdin FIFO lost its writer with that process.
      // A pod container is planned when it is started (above): its namespace paths need
      // the running sandbox to resolve, its cgroup files the sandbox's cgroups.
      if (bundle.rootfs && bundle === rootBundle) {
        try {
          cr.plan = this.containerPlan(cr, reattachedStdio(paths, cid, c.stdio));
        } catch {
          // The bundle changed under us; starting it will fail with the planning error.
        }
      }
      containers.set(cid, cr);
    }
    const rt: Runtime = {
      id,
      paths,
      log: this.log.child({ sandboxId: id }),
      bundle: rootBundle ?? ({ dir: bundleDir } as unknown as Bundle),
      owner: { uid: saved.ownerUid, gid: saved.ownerGid },
      containers,
      execs: new Map(),
      execCounter: saved.execCounter,
      seenExits: new Set(),
      exitsRead: 0,
      containerExits: new Map(),
      initExited: deferred<void>(),
      initAlive: false,
      rootStdio: 'ignore',
      createdAt: saved.createdAt ?? saved.savedAt,
      actor: undefined as unknown as Runtime['actor'],
      persistQueued: false,
      ...(saved.health ? { health: saved.health } : {}),
    };
    this.runtimes.set(id, rt);
    const hooks = saved.hooks ?? containers.get(id)?.bundle.config.hooks;
    if (hooks !== undefined && hasHooks(hooks)) this.hooks.set(id, hooks);
    this.supervisor.send({ type: 'sandbox.register', sandboxId: id });
    const actor = this.startSandboxActor(rt, { snapshot: saved.snapshot });
    for (const [key, ref] of Object.entries(actor.getSnapshot().children)) {
      if (!key.startsWith('pid-')) continue;
      const ctx = (ref as AnyActorRef).getSnapshot().context as { pid: number; containerId: string };
      rt.execs.set(ctx.pid, { name: `${ctx.containerId}.exec-?`, containerId: ctx.containerId, done: deferred<void>() });
    }
    const cgroup = findCgroup(paths, this.cgroupLayout);
    if (cgroup) rt.cgroup = cgroup;
    for (const [cid, cg] of findPodCgroups(paths, this.cgroupLayout)) {
      const cr = containers.get(cid);
      if (cr) cr.cgroup = cg;
      // Made for a container whose add never finished (its supervisor died): nobody else has it (we hold the lock).
      else void removePodCgroup(cg, paths, cid, rt.log);
    }
    // What an earlier supervisor reported only updates the machines. Replayed before
    // init's pidfd is watched and its events are subscribed: either can read exits.log
    // (an exit, init's end) while the channels connect, and must start at the cursor.
    this.exits.readLog(rt, this.exits.loadCursor(rt), true);
    const hostPid = snapshot.context?.initHostPid;
    const alive =
      hostPid !== undefined && snapshot.context?.initStartTime !== undefined && processStartTime(hostPid) === snapshot.context.initStartTime;
    if (alive && hostPid !== undefined) {
      try {
        rt.pidfd = this.native.pidfdOpen(hostPid);
        rt.initAlive = true;
        rt.watchToken = this.watcher.watch(rt.pidfd, () => this.onInitExit(rt));
        if (this.options.attachChannels !== false) await connectChannels(rt, this.requestTimeout, (m) => this.onEvent(rt, m));
      } catch (e) {
        rt.log.warn({ err: e }, 'sandbox init alive but unreachable');
      }
    }
    // Whatever else happened while no supervisor ran is in exits.log.
    this.exits.readLog(rt);
    if (rt.initAlive) this.reconcileReleased(rt, snapshot.context?.initHostPid as number);
    if (this.options.attachChannels !== false) this.startHealth(rt);
    if (!rt.initAlive) {
      rt.initExited.resolve();
      this.exits.reportLost(rt);
      actor.send({ type: 'init.exited' });
    }
    this.persistNow(rt);
  }

  /**
   * A prepared container whose process no longer waits (neither paddock-hold nor
   * init's copy) was released by a supervisor that died before it wrote `running`
   * (decision 0020): it runs, so say so. Still a child of this sandbox's init, and
   * alive: had it died, its exit would be in exits.log, read just before, and the
   * container would be stopped already; so its pid cannot have been reused.
   */
  private reconcileReleased(rt: Runtime, initHostPid: number): void {
    for (const [cid, ref] of Object.entries(rt.actor.getSnapshot().children)) {
      if (cid.startsWith('pid-')) continue;
      const c = (ref as unknown as Actor<typeof containerMachine>).getSnapshot();
      const held = c.context.prepared;
      if (c.value !== 'created' || !held) continue;
      if (processParent(held.hostPid) !== initHostPid || stillHeld(held.hostPid) !== false) continue;
      rt.log.info({ containerId: cid, hostPid: held.hostPid }, 'a prepared container was started before its supervisor died: running');
      (ref as unknown as Actor<typeof containerMachine>).send({ type: 'released' });
    }
  }

  /**
   * A sandbox folder without state.json is a create that never finished (its
   * supervisor died mid-launch): nobody can use it, so once its owner is gone its init
   * is killed and the folder removed.
   */
  private removeHalfCreated(paths: SandboxPaths): void {
    if (!fs.existsSync(paths.dir)) return;
    try {
      acquireLockLocked(paths);
    } catch (e) {
      // Still being created by a live engine (or not ours to judge).
      if ((e as PaddockError).code === 'ELOCKED') return;
    }
    try {
      const [pidText, startText] = fs.readFileSync(paths.pidFile, 'utf8').trim().split(' ');
      const pid = Number(pidText);
      if (pid > 0 && processStartTime(pid) === Number(startText)) {
        const fd = this.native.pidfdOpen(pid);
        try {
          this.native.pidfdSendSignal(fd, 9);
        } finally {
          this.native.closeFd(fd);
        }
      }
    } catch {
      // No pid file: init never started.
    }
    this.log.warn({ sandboxId: paths.sandboxId }, 'removed a sandbox whose create never finished');
    // Found before the folder goes: its cgroup.json says where the cgroup is.
    const cgroup = findCgroup(paths, this.cgroupLayout);
    removeTree(paths.dir);
    // Its cgroup too, once the killed init has left it.
    void cgroup
      ?.remove()
      .catch((err: Error) => this.log.warn({ sandboxId: paths.sandboxId, err: err.message }, 'could not remove the cgroup of a half-created sandbox'));
  }

  // ---------------------------------------------------------------- effects (provided to machines)

  private async launch(sandboxId: string): Promise<LaunchedSandbox> {
    const rt = this.mustRuntime(sandboxId);
    const root = rt.containers.get(sandboxId) as ContainerRuntime;
    const launched = await launchSandbox(rt, {
      native: this.native,
      watcher: this.watcher,
      initPath: this.options.initPath,
      requestTimeoutMs: this.requestTimeout,
      onEvent: (m) => this.onEvent(rt, m),
      onInitExit: () => this.onInitExit(rt),
      rootStdio: rt.rootStdio,
      ...(this.options.initStderr ? { initStderr: this.options.initStderr } : {}),
      cgroups: this.cgroupLayout,
    });
    this.prepareStdio(rt, root.id, root.id, root.stdio);
    return launched;
  }

  private async startProcess(sandboxId: string, containerId: string): Promise<{ pid: number; hostPid: number }> {
    const rt = this.mustRuntime(sandboxId);
    const c = rt.containers.get(containerId);
    if (!c || !c.plan) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
    let reply: MessageOf<'OK'>;
    const prepared = this.containerActor(rt, containerId).getSnapshot().context.prepared;
    if (c.releasedEarly) {
      c.releasedEarly = false;
      if (prepared) return prepared;
    }
    const pre = c.startRequest?.plan === c.plan ? c.startRequest?.bytes : undefined;
    c.startRequest = undefined;
    // Placed when it was prepared; again here (idempotent) for a prepare whose supervisor
    // died before it could place it.
    if (c.cgroup && prepared) placeInPodCgroup(c.cgroup, prepared.hostPid, { sandboxId, containerId });
    if (this.releaseHeld(rt, c, prepared) && prepared) return prepared;
    // Killed while held: no start. Checked before the START, not inferred after it: a
    // dying root takes init with it, and its exit record (reaped after this point) would
    // pass the test below for a process that started and exited at once.
    if (prepared && (c.heldGone || heldProcessDead(prepared.hostPid))) {
      throw new StateError('EINVALID_STATE', `container ${containerId} exited before its start`, { sandboxId, containerId, verb: 'start' });
    }
    const sentAtNs = BigInt(Date.now() - 1) * 1_000_000n;
    try {
      reply = await this.control(rt).request({ type: 'START_CONTAINER', cid: containerId, plan: c.plan }, undefined, pre);
    } catch (e) {
      // A process that exits at once can take init down with it before the start reply
      // leaves (nng does not flush on exit). Its record in exits.log proves it started,
      // unless it is older than this start: a prepared process that died while held
      // (init's realtime clock and ours are the host's).
      const rec = rt.initAlive ? undefined : this.exitRecordOf(rt, containerId);
      if (rec && rec.timeNs >= sentAtNs) return { pid: rec.pid, hostPid: rec.hostPid };
      if (rec) throw new StateError('EINVALID_STATE', `container ${containerId} exited before its start`, { sandboxId, containerId, verb: 'start' }, e);
      throw e;
    }
    rt.log.debug({ containerId, pid: reply.pid, hostPid: reply.hostPid, step: 'start' }, 'container started');
    return { pid: reply.pid as number, hostPid: reply.hostPid as number };
  }

  /**
   * Releases a container held in paddock-hold by writing to its release pipe: the
   * machines move on (and the state is written) while the kernel runs the execve, and
   * awaitStarted collects its outcome (docs/decisions/0020). False when there is no
   * direct release (init's START then releases it); the held fds are closed either way.
   */
  private releaseHeld(rt: Runtime, c: ContainerRuntime, prepared: { pid: number; hostPid: number } | undefined): boolean {
    const held = c.held;
    c.held = undefined;
    const released = held && prepared ? held.go() : 'none';
    if (released === 'gone') c.heldGone = true;
    if (held && prepared && released === 'released') {
      c.startRequest = undefined;
      c.releasing = held;
      rt.log.debug({ containerId: c.id, ...prepared, step: 'start' }, 'container released');
      return true;
    }
    held?.dispose();
    return false;
  }

  /**
   * create/start with a terminal (docs/decisions/0012): init makes the container's
   * process now, up to just before execve, with its pty; the master goes to the
   * caller's console socket and the start that follows lets the process run.
   */
  /**
   * `prepare`: the container's process is made now (mounts, pivot_root, identity,
   * createContainer hooks) and waits just before execve; start only releases it, one
   * round trip (docs/decisions/0017). What runc's create does, and what a warm pool's
   * acquire relies on.
   */
  private async holdContainer(rt: Runtime, containerId: string): Promise<void> {
    const c = rt.containers.get(containerId);
    if (!c?.plan) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${rt.id}`, { sandboxId: rt.id, containerId });
    const reply = await this.control(rt).request({ type: 'START_CONTAINER', cid: containerId, plan: { ...c.plan, hold: true } });
    this.containerActor(rt, containerId).send({ type: 'prepared', pid: reply.pid as number, hostPid: reply.hostPid as number });
    this.placeHeld(rt, c, reply.hostPid as number);
    this.encodeStart(c);
    this.takeRelease(rt, c, reply);
    rt.log.child({ containerId }).debug({ step: 'prepare' }, 'container prepared, held before execve');
  }

  /**
   * The moment a pod container enters its own cgroup (decision 0022): held in
   * paddock-hold, it has run none of its program and forked nothing, so everything it
   * will run is accounted, limited and frozen there.
   */
  private placeHeld(rt: Runtime, c: ContainerRuntime, hostPid: number): void {
    if (c.cgroup) placeInPodCgroup(c.cgroup, hostPid, { sandboxId: rt.id, containerId: c.id });
  }

  /**
   * A container held in paddock-hold can be started by this process directly
   * (docs/decisions/0020); if its fds cannot be had, init's START releases it as before.
   */
  private takeRelease(rt: Runtime, c: ContainerRuntime, reply: MessageOf<'OK'>): void {
    if (reply.heldExec !== 1 || !reply.hostPid) return;
    try {
      c.held = HeldRelease.take(this.native, reply.hostPid);
    } catch (e) {
      rt.log.debug({ containerId: c.id, err: (e as Error).message }, 'no direct release; init will release the container');
    }
  }

  /** The release is known from now on: encode it here, off the start's critical path. */
  private encodeStart(c: ContainerRuntime): void {
    if (c.plan) c.startRequest = { plan: c.plan, bytes: encodeRequest({ type: 'START_CONTAINER', cid: c.id, plan: c.plan }) };
  }

  private async holdWithConsole(rt: Runtime, containerId: string, consoleSocket: string): Promise<void> {
    const c = rt.containers.get(containerId);
    if (!c?.plan) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${rt.id}`, { sandboxId: rt.id, containerId });
    const plan = c.plan;
    const reply = await withConsole(this.native, this.requestTimeout, rt, consoleSocket, (endpoint) =>
      this.control(rt).request({ type: 'START_CONTAINER', cid: containerId, plan: { ...plan, consoleSocket: endpoint, hold: true } }),
    );
    this.containerActor(rt, containerId).send({ type: 'prepared', pid: reply.pid as number, hostPid: reply.hostPid as number });
    this.placeHeld(rt, c, reply.hostPid as number);
    this.encodeStart(c);
    this.takeRelease(rt, c, reply);
    rt.log.child({ containerId }).debug({ step: 'console' }, 'container held with its terminal handed over');
  }

  private exitRecordOf(rt: Runtime, containerId: string): MessageOf<'EV_EXITED'> | undefined {
    this.exits.readLog(rt);
    return rt.containerExits.get(containerId);
  }

  private async teardown(sandboxId: string): Promise<void> {
    const rt = this.mustRuntime(sandboxId);
    // A paused sandbox's processes must be able to die before init can (v1 holds SIGKILL).
    killFrozen(freezerHost(rt));
    // Once init is gone with every process of its pid namespace, the pod containers'
    // cgroups are empty; they go before the sandbox's (a parent they share goes with it).
    await destroySandboxResources(rt, this.native, () => this.exits.readLog(rt), async () => {
      for (const c of rt.containers.values()) if (c.cgroup) await removePodCgroup(c.cgroup, rt.paths, c.id, rt.log);
    });
    if (rt.watchToken !== undefined) this.watcher.unwatch(rt.watchToken);
    rt.watchToken = undefined;
    for (const c of rt.containers.values()) this.closeContainerStdio(c);
    for (const e of rt.execs.values()) if (e.stdinFd !== undefined) closeQuietly(e.stdinFd);
    // state.json first: a supervisor killed while the folder is being removed leaves a
    // folder without it, which the next one removes as half-made (removeHalfCreated),
    // never a sandbox whose exits.cursor is gone but whose exits.log would be reported again.
    removeFile(rt.paths.stateFile);
    removeTree(rt.paths.dir);
  }

  // ---------------------------------------------------------------- facts

  private onEvent(rt: Runtime, m: import('../protocols/messages').Message): void {
    // init appends every exit to exits.log before it publishes it, so the log has it now.
    if (m.type === 'EV_EXITED') this.exits.readLog(rt);
  }

  /** init's pidfd fired: every status is in exits.log by now (init writes before it exits). */
  private onInitExit(rt: Runtime): void {
    rt.initAlive = false;
    rt.watchToken = undefined;
    this.exits.readLog(rt);
    this.detach(rt);
    rt.initExited.resolve();
    this.exits.reportLost(rt);
    if (rt.actor.getSnapshot().status === 'active') rt.actor.send({ type: 'init.exited' });
  }

  // ---------------------------------------------------------------- helpers

  private get requestTimeout(): number {
    return this.options.requestTimeoutMs ?? 5_000;
  }

  private startSandboxActor(rt: Runtime, opts: { input: { sandboxId: string; bundleDir: string } } | { snapshot: unknown }): Actor<typeof sandboxMachine> {
    const actor = createActor(this.machine, {
      ...(opts as object),
      ...(this.options.inspect ? { inspect: this.options.inspect } : {}),
    } as Parameters<typeof createActor<typeof sandboxMachine>>[1]);
    rt.actor = actor;
    let last = '';
    const lastChild = new Map<string, string>();
    actor.subscribe({
      next: (snap) => {
        const value = String(snap.value);
        if (value !== last) {
          last = value;
          rt.log.debug({ state: value }, 'sandbox state');
          this.supervisor.send({ type: 'sandbox.statusChanged', sandboxId: rt.id, status: toStatus(value) });
          this.subject.next({ type: 'state', sandboxId: rt.id, status: value });
        }
        for (const [cid, ref] of Object.entries(snap.children)) {
          // Invoked effect actors (launch, destroy) are children too; only machines we spawned have a status.
          if (snap.context.containers[cid] === undefined && snap.context.processes[cid] === undefined) continue;
          const child = (ref as AnyActorRef | undefined)?.getSnapshot();
          if (!child) continue;
          const v = String(child.value);
          if (lastChild.get(cid) !== v) {
            lastChild.set(cid, v);
            const ctx = child.context as { containerId: string; pid?: number };
            this.subject.next({
              type: 'state',
              sandboxId: rt.id,
              containerId: ctx.containerId,
              ...(cid.startsWith('pid-') && ctx.pid !== undefined ? { pid: ctx.pid } : {}),
              status: v,
            });
          }
        }
        this.persist(rt);
      },
      error: (err) => rt.log.error({ err }, 'sandbox actor failed'),
    });
    actor.start();
    return actor;
  }

  private async awaitStarted(rt: Runtime, containerId: string): Promise<ContainerHandle> {
    const c = this.containerActor(rt, containerId);
    const snap = await waitFor(c, (s) => s.value !== 'starting', { timeout: 60_000 });
    const cr = rt.containers.get(containerId);
    const releasing = cr?.releasing;
    if (cr) cr.releasing = undefined;
    // stopped with an error: the start failed because its held process had died.
    if ((snap.value !== 'running' && snap.value !== 'stopped') || (snap.value === 'stopped' && snap.context.error)) {
      releasing?.dispose();
      throw restoreError(snap.context.error, rt.id, 'ELAUNCH_STEP', containerId);
    }
    this.persistNow(rt);
    // A failed execve after a direct release: the holder exits 127 and its exit record
    // stops the container, as any process that dies at once; the start reports the step.
    if (releasing) await releasing.outcome(rt.id, containerId, this.requestTimeout);
    return {
      sandboxId: rt.id,
      containerId,
      pid: snap.context.pid as number,
      hostPid: snap.context.hostPid as number,
      ...(cr?.streams ? { stdio: cr.streams } : {}),
    };
  }

  /**
   * Resolves stdio for a container or exec'd process: log files (created here so a
   * tail can watch them at once, owned by the sandbox's root), an optional stdin FIFO,
   * and the plan fields paddock-init needs.
   */
  private prepareStdio(rt: Runtime, name: string, containerId: string | undefined, mode: StdioMode) {
    const plan: { stdinPath?: string; stdoutPath?: string; stderrPath?: string; stdioInherit?: number } = {};
    let stdinFd: number | undefined;
    let stdin: StdioHandles['stdin'] | undefined;
    if (mode === 'inherit') plan.stdioInherit = 7;
    if (mode === 'pipe') {
      for (const s of ['stdout', 'stderr'] as const) {
        const file = rt.paths.log(name, s);
        fs.closeSync(fs.openSync(file, 'a', 0o640));
        fs.chownSync(file, rt.owner.uid, rt.owner.gid);
        plan[s === 'stdout' ? 'stdoutPath' : 'stderrPath'] = file;
      }
      const fifo = openStdinFifo(this.native, rt.paths.fifo(name), rt.owner.uid, rt.owner.gid);
      stdinFd = fifo.fd;
      stdin = fifo.stream;
      plan.stdinPath = rt.paths.fifo(name);
    }
    const streams = (done: Promise<unknown>): StdioHandles | undefined =>
      mode === 'pipe'
        ? {
            stdin: stdin ?? closedWritable(),
            stdout: tailFile(rt.paths.log(name, 'stdout'), { follow: true, done }),
            stderr: tailFile(rt.paths.log(name, 'stderr'), { follow: true, done }),
          }
        : undefined;
    if (containerId !== undefined) {
      const c = rt.containers.get(containerId) as ContainerRuntime;
      c.plan = this.containerPlan(c, plan, rt);
      c.stdinFd = stdinFd;
      c.streams = streams(c.done.promise);
    }
    return {
      plan,
      stdinFd,
      streams,
      close: () => {
        if (stdin) stdin.destroy();
      },
    };
  }

  private containerPlan(c: ContainerRuntime, stdio: Parameters<typeof planContainer>[1], rt?: Runtime): ProcessPlan {
    // A pod container's shared namespaces and own cgroups (0024, 0025).
    const plan = podContainerPlan(planContainer(c.bundle, stdio, { containerId: c.id }), c, rt);
    return c.noPivot ? { ...plan, noPivot: true } : plan;
  }

  /** What podNamespaces needs to know of a sandbox: its init and its containers with a process, root first. */
  private podView(rt: Runtime): PodSandboxView {
    const s = this.summary(rt);
    const rootId = rt.actor.getSnapshot().context.rootContainerId;
    const live = s.containers.filter((c) => c.hostPid !== undefined && c.status !== 'stopped' && c.status !== 'failed');
    const ordered = [...live.filter((c) => c.id === rootId), ...live.filter((c) => c.id !== rootId)];
    return { sandboxId: rt.id, initPid: s.pid ?? 0, containers: ordered.map((c) => ({ id: c.id, hostPid: c.hostPid as number })) };
  }

  private closeContainerStdio(c: ContainerRuntime | undefined): void {
    if (!c) return;
    c.streams?.stdin.destroy();
    c.done.resolve();
  }

  private summary(rt: Runtime): SandboxSummary {
    const snap = rt.actor.getSnapshot();
    const containers: ContainerSummary[] = [];
    for (const cid of Object.keys(snap.context.containers)) {
      const ref = snap.children[cid] as AnyActorRef | undefined;
      const cs = ref?.getSnapshot() as { value: string; context: { pid?: number; hostPid?: number; exit?: ExitStatus } } | undefined;
      containers.push({
        id: cid,
        status: toStatus(cs?.value ?? 'stopped'),
        ...(cs?.context.pid !== undefined ? { pid: cs.context.pid } : {}),
        ...(cs?.context.hostPid !== undefined ? { hostPid: cs.context.hostPid } : {}),
        ...(cs?.context.exit ? { exit: cs.context.exit } : {}),
        bundle: snap.context.containers[cid]?.bundleDir ?? '',
      });
    }
    return {
      id: rt.id,
      status: toStatus(String(snap.value)),
      ...(snap.context.initHostPid !== undefined ? { pid: snap.context.initHostPid } : {}),
      bundle: snap.context.bundleDir,
      createdAt: rt.createdAt,
      ...(snap.context.rootContainerId ? { rootContainerId: snap.context.rootContainerId } : {}),
      containers,
      ...(snap.context.exit ? { exit: snap.context.exit } : {}),
    };
  }

  private async catchUpContainer(rt: Runtime, containerId: string): Promise<void> {
    if (!rt.initAlive) return;
    try {
      const r = await this.control(rt).request({ type: 'WAIT', cid: containerId });
      if (r.state === ProcState.EXITED) {
        const pid = (this.containerActor(rt, containerId).getSnapshot().context.pid ?? 0) as number;
        this.exits.deliver(rt, containerId, pid, 'container', toExit(r.exitCode, r.signal));
      }
    } catch {
      // Not started yet, or init is going away: the event channel or pidfd will tell.
    }
  }

  private persist(rt: Runtime): void {
    if (rt.persistQueued) return;
    rt.persistQueued = true;
    // Coalesce the bursts of snapshots one command produces into one write.
    setImmediate(() => {
      rt.persistQueued = false;
      this.persistNow(rt);
    });
  }

  private persistNow(rt: Runtime): void {
    // An observer (see release()) no longer owns the state file.
    if (rt.observer) return;
    const snap = rt.actor?.getSnapshot();
    if (!snap || snap.status !== 'active' || !STABLE.has(String(snap.value))) return;
    if (!fs.existsSync(rt.paths.dir)) return;
    const containers: PersistedSandbox['containers'] = {};
    for (const [cid, c] of rt.containers) containers[cid] = { bundleDir: c.bundle.dir, stdio: c.stdio, ...(c.noPivot ? { noPivot: true } : {}) };
    try {
      saveSandboxLocked(rt.paths, {
        version: STATE_VERSION,
        sandboxId: rt.id,
        savedAt: new Date().toISOString(),
        ownerUid: rt.owner.uid,
        ownerGid: rt.owner.gid,
        containers,
        execCounter: rt.execCounter,
        createdAt: rt.createdAt,
        ...(this.hooks.has(rt.id) ? { hooks: this.hooks.get(rt.id) as OciHooks } : {}),
        ...(rt.health ? { health: rt.health } : {}),
        snapshot: rt.actor.getPersistedSnapshot(),
      }, this.replaceFile);
    } catch (e) {
      rt.log.warn({ err: e, step: 'persist' }, 'could not persist sandbox state');
    }
  }

  private detach(rt: Runtime): void {
    for (const c of rt.containers.values()) {
      c.held?.dispose();
      c.releasing?.dispose();
      c.held = undefined;
      c.releasing = undefined;
    }
    rt.healthActor?.send({ type: 'stop' });
    rt.healthActor?.stop();
    rt.healthActor = undefined;
    rt.eventsSub?.unsubscribe();
    rt.events?.close();
    rt.control?.close();
    rt.events = undefined;
    rt.control = undefined;
    if (rt.watchToken !== undefined) {
      this.watcher.unwatch(rt.watchToken);
      rt.watchToken = undefined;
    }
    if (rt.pidfd !== undefined) {
      try {
        this.native.closeFd(rt.pidfd);
      } catch {
        // already closed
      }
      rt.pidfd = undefined;
    }
  }

  private async forget(rt: Runtime, removeDir: boolean): Promise<void> {
    this.detach(rt);
    if (removeDir) removeTree(rt.paths.dir);
    rt.actor.stop();
    this.runtimes.delete(rt.id);
    this.hooks.delete(rt.id);
    this.supervisor.send({ type: 'sandbox.unregister', sandboxId: rt.id });
  }

  // ---------------------------------------------------------------- hooks (actors/hooks.ts, docs/decisions/0010)

  private hookState(rt: Runtime, status: HookState['status'], pid: number): HookState {
    const annotations = rt.bundle.config?.annotations;
    return { ociVersion: '1.0.2', id: rt.id, status, pid, bundle: rt.bundle.dir, ...(annotations ? { annotations } : {}) };
  }

  /**
   * prestart then createRuntime, once init is ready and before the container starts.
   * A failure fails the create: the sandbox is destroyed (poststop hooks included, as
   * the spec's lifecycle continues at delete) and nothing is left.
   */
  private async runCreateHooks(rt: Runtime, pid: number): Promise<void> {
    const hooks = this.hooks.get(rt.id);
    if (!hooks) return;
    const state = this.hookState(rt, 'creating', pid);
    try {
      await runHooks('prestart', hooks, state, { sandboxId: rt.id });
      await runHooks('createRuntime', hooks, state, { sandboxId: rt.id });
    } catch (e) {
      rt.log.warn({ err: e, step: (e as PaddockError).context?.step }, 'create hook failed; destroying the sandbox');
      await this.destroy(rt.id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed hook'));
      throw e;
    }
  }

  /** poststart: a failure is a warning (logged, and an `error` event); the container keeps running. */
  private async runPoststartHooks(rt: Runtime): Promise<void> {
    const hooks = this.hooks.get(rt.id);
    if (!hooks?.poststart?.length) return;
    const pid = rt.actor.getSnapshot().context.initHostPid ?? 0;
    await runHooksWarn('poststart', hooks, this.hookState(rt, 'running', pid), { sandboxId: rt.id }, (err) => this.hookWarning(rt.id, err));
  }

  /** poststop, after the sandbox is gone: failures are warnings, as for poststart. */
  private async runPoststopHooks(rt: Runtime, hooks: Hooks | undefined): Promise<void> {
    if (!hooks?.poststop?.length) return;
    await runHooksWarn('poststop', hooks, this.hookState(rt, 'stopped', 0), { sandboxId: rt.id }, (err) => this.hookWarning(rt.id, err));
  }

  /** Starts the liveness probe of a sandbox whose init is alive (createSandbox's `health`). */
  private startHealth(rt: Runtime): void {
    if (!rt.health || rt.healthActor || !rt.initAlive) return;
    rt.healthActor = startHealthCheck(
      rt.id,
      rt.health,
      async (timeoutMs) => {
        await this.control(rt).request({ type: 'PING' }, timeoutMs);
      },
      (e) => {
        rt.healthActor = undefined;
        rt.log.warn({ failures: e.failures, reason: e.reason }, 'sandbox stopped answering; killing it');
        if (!this.closed) this.subject.next({ type: 'unhealthy', sandboxId: rt.id, failures: e.failures, reason: e.reason });
        // SIGKILL through the pidfd reaches init even when it is stopped or wedged; its exit
        // then arrives through the watcher like any other.
        if (rt.pidfd !== undefined && rt.initAlive) {
          try {
            this.native.pidfdSendSignal(rt.pidfd, 9);
          } catch (err) {
            rt.log.warn({ err }, 'could not kill the unresponsive sandbox');
          }
        }
      },
      this.options.inspect,
    );
  }

  private hookWarning(sandboxId: string, error: PaddockError): void {
    this.log.warn({ sandboxId, err: error, step: error.context.step }, 'hook failed');
    if (!this.closed) this.subject.next({ type: 'error', sandboxId, error });
  }

  private control(rt: Runtime): ControlClient {
    if (rt.initAlive && !rt.control && this.options.attachChannels === false) {
      throw new ChannelError('ECONTROL', `sandbox ${rt.id} is attached read-only (attachChannels: false): no channel to its paddock-init`, { sandboxId: rt.id });
    }
    if (!rt.initAlive || !rt.control) {
      throw new StateError('ESANDBOX_DEAD', `sandbox ${rt.id} is not running (its paddock-init has exited)`, { sandboxId: rt.id });
    }
    return rt.control;
  }

  private get(sandboxId: string): Runtime {
    this.ensureOpen();
    if (typeof sandboxId !== 'string') throw new PaddockError('EINVALID_ARGUMENT', 'sandbox id must be a string');
    const rt = this.runtimes.get(sandboxId);
    if (!rt || !rt.actor) throw new StateError('ESANDBOX_NOT_FOUND', `no sandbox ${sandboxId}`, { sandboxId });
    return rt;
  }

  private mustRuntime(sandboxId: string): Runtime {
    const rt = this.runtimes.get(sandboxId);
    if (!rt) throw new StateError('ESANDBOX_NOT_FOUND', `no sandbox ${sandboxId}`, { sandboxId });
    return rt;
  }

  private containerActor(rt: Runtime, containerId: string): Actor<typeof containerMachine> {
    const ref = typeof containerId === 'string' ? rt.actor.getSnapshot().children[containerId] : undefined;
    if (!ref || containerId.startsWith('pid-')) {
      throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${rt.id}`, { sandboxId: rt.id, containerId });
    }
    return ref as unknown as Actor<typeof containerMachine>;
  }

  private requireCan(rt: Runtime, event: Parameters<Actor<typeof sandboxMachine>['send']>[0], verb: string): void {
    const snap = rt.actor.getSnapshot();
    if (!snap.can(event)) {
      throw new StateError('EINVALID_STATE', `cannot ${verb} sandbox ${rt.id}: it is ${String(snap.value)}`, {
        sandboxId: rt.id,
        verb,
        state: String(snap.value),
      });
    }
  }

  private checkStdio(mode: unknown): StdioMode {
    if (mode === undefined) return 'pipe';
    if (mode === 'pipe' || mode === 'inherit' || mode === 'ignore') return mode;
    throw new PaddockError('EINVALID_ARGUMENT', `stdio must be 'pipe', 'inherit' or 'ignore', not ${JSON.stringify(mode)}`);
  }

  private ensureOpen(): void {
    if (this.closed) throw new PaddockError('EENGINE_CLOSED', 'the engine is closed');
  }
}

/** Hooks are run for a sandbox's root container only; a second container's are refused, not skipped. */
/**
 * runc's rule: a terminal needs a console socket to send its master to, and a
 * console socket without a terminal is a mistake. The socket must exist already (the
 * caller listens on it), which is checked before anything is created.
 */
function checkConsole(terminal: boolean, consoleSocket: string | undefined, context: { sandboxId: string; containerId?: string }): void {
  if (terminal && consoleSocket === undefined) {
    throw new PaddockError('ECONSOLE', 'process.terminal needs a console socket (--console-socket) to send the terminal to', context);
  }
  if (!terminal && consoleSocket !== undefined) {
    throw new PaddockError('ECONSOLE', 'a console socket needs process.terminal: true', { ...context, path: String(consoleSocket) });
  }
  if (consoleSocket === undefined) return;
  if (typeof consoleSocket !== 'string' || !path.isAbsolute(consoleSocket)) {
    throw new PaddockError('ECONSOLE', `console socket must be an absolute path, got ${JSON.stringify(consoleSocket)}`, context);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(consoleSocket);
  } catch (e) {
    throw new PaddockError('ECONSOLE', `console socket ${consoleSocket} does not exist`, { ...context, path: consoleSocket }, e);
  }
  if (!st.isSocket()) throw new PaddockError('ECONSOLE', `console socket ${consoleSocket} is not a unix socket`, { ...context, path: consoleSocket });
}

function refuseHooks(bundle: Bundle): void {
  for (const [kind, list] of Object.entries(bundle.config.hooks ?? {})) {
    // createContainer/startContainer travel in the container's own plan and run
    // inside it (paddock-init), so every container can have them.
    if (kind === 'createContainer' || kind === 'startContainer') continue;
    if (Array.isArray(list) && list.length > 0) {
      const field = `hooks.${kind}`;
      throw new SpecError('ECONFIG_UNSUPPORTED', `${field}: hooks are run for the root container of a sandbox only`, { field, path: bundle.dir });
    }
  }
}

/** What the freezer needs of a sandbox: its cgroup and its pod containers' own. */
function freezerHost(rt: Runtime): FreezerHost {
  const podCgroups = [...rt.containers.values()].flatMap((c) => (c.cgroup ? [c.cgroup] : []));
  return { id: rt.id, ...(rt.cgroup ? { cgroup: rt.cgroup } : {}), podCgroups };
}

/**
 * kill --all on a container with its own cgroup: every process in it, also those
 * init never saw (forked by the container's own processes). SIGKILL through
 * cgroup.kill where there is one; best effort, as the processes may be exiting.
 */
function signalCgroup(cg: SandboxCgroup, signo: number): void {
  if (signo === 9) {
    try {
      cg.kill();
      return;
    } catch {
      // no cgroup.kill: one by one below
    }
  }
  for (const pid of cg.pids()) {
    try {
      process.kill(pid, signo);
    } catch {
      // gone
    }
  }
}

function reattachedStdio(paths: SandboxPaths, name: string, mode: StdioMode): Parameters<typeof planContainer>[1] {
  if (mode === 'inherit') return { stdioInherit: 7 };
  if (mode === 'ignore') return {};
  return { stdoutPath: paths.log(name, 'stdout'), stderrPath: paths.log(name, 'stderr') };
}

function toStatus(value: string): LifecycleStatus {
  switch (value) {
    case 'creating':
    case 'created':
    case 'running':
    case 'paused':
    case 'stopped':
    case 'failed':
      return value;
    case 'starting':
      return 'created';
    case 'pausing':
      return 'running';
    case 'resuming':
      return 'paused';
    case 'exited':
    case 'destroying':
    case 'destroyed':
      return 'stopped';
    default:
      return 'failed';
  }
}


function restoreError(
  info: { code: string; message: string; step?: string; errno?: number; field?: string; path?: string } | undefined,
  sandboxId: string,
  fallback: 'ELAUNCH_STEP' | 'ECONTROL',
  containerId?: string,
): PaddockError {
  const code = (info?.code ?? fallback) as ConstructorParameters<typeof PaddockError>[0];
  return new PaddockError(code, info?.message ?? 'failed', {
    sandboxId,
    ...(containerId ? { containerId } : {}),
    ...(info?.step ? { step: info.step } : {}),
    ...(info?.errno !== undefined ? { errno: info.errno } : {}),
    ...(info?.field !== undefined ? { field: info.field } : {}),
    ...(info?.path !== undefined ? { path: info.path } : {}),
  });
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

