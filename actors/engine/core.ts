import * as fs from 'node:fs';
import { Subject } from 'rxjs';
import { createActor, type Actor } from 'xstate';
import type { containerMachine } from '../../machines/container.machine';
import type { sandboxMachine } from '../../machines/sandbox.machine';
import { supervisorMachine } from '../../machines/supervisor.machine';
import type { NativeFacade } from '../../native/facade';
import type { OciHooks } from '../../specs/oci';
import type { EngineEvent, EngineOptions } from './api';
import type { CgroupsPathOptions } from '../cgroups/path';
import { detectLayout, type CgroupLayout } from '../cgroups/sandbox-cgroup';
import type { ControlClient } from '../channels/control-client';
import { ChannelError, PaddockError, StateError } from '../../base/errors';
import { ExitReports } from '../sandbox/exit-reports';
import type { Hooks } from '../containers/oci-hooks';
import type { Logger } from '../../base/logger';
import { PidfdWatcher } from '../channels/pidfd-watcher';
import { STATE_VERSION, saveSandboxLocked, type PersistedSandbox } from '../sandbox/state-store';
import { removeTree } from '../../base/remove-tree';
import { DEFAULT_ID_POOL, IdPoolStore } from '../sandbox/id-pool';
import { InspectionHub } from '../inspect/hub';
import type { Runtime } from '../sandbox/runtime';
import { detachNetwork } from '../network';

/** Sandbox states worth persisting; transient ones would replay an in-flight effect on restore. */
const STABLE = new Set(['created', 'running', 'paused', 'stopped', 'failed']);

/**
 * What the engine's modules share: the sandboxes it owns (their runtimes and OCI
 * hooks), the native facade and pidfd watcher (loaded on first use), its options,
 * logger and event stream, the lookups that fail with coded errors, and the writing
 * of each sandbox's state. actors/engine/engine.ts keeps the public API on top of it.
 */
export class EngineCore {
  readonly stateDir: string;
  readonly runtimes = new Map<string, Runtime>();
  /** OCI hooks of each sandbox's root container (persisted in state.json; actors/containers/oci-hooks.ts). */
  readonly hooks = new Map<string, Hooks>();
  readonly supervisor: Actor<typeof supervisorMachine>;
  /** The one inspection observer of every actor of this engine (actors/inspect/hub.ts). */
  readonly inspection: InspectionHub;
  /** The hub's observer, typed as the actor modules take it. */
  readonly inspect: (event: unknown) => void;
  readonly subject = new Subject<EngineEvent>();
  closed = false;
  /** The sandbox machine with this engine's effects provided (actors/sandbox/effects.ts). */
  readonly machine: typeof sandboxMachine;
  /** Exit reports from exits.log, once each (actors/sandbox/exit-reports.ts, decisions 0003/0017). */
  readonly exits: ExitReports;
  /** Host id ranges of `userns: 'auto'` sandboxes (actors/sandbox/id-pool.ts, decision 0028). */
  readonly idPool: IdPoolStore;
  private nativeImpl: NativeFacade | undefined;
  private watcherImpl: PidfdWatcher | undefined;

  constructor(
    readonly options: EngineOptions,
    readonly log: Logger,
    provideMachine: (core: EngineCore) => typeof sandboxMachine,
  ) {
    this.stateDir = options.stateDir;
    this.idPool = new IdPoolStore(options.stateDir, options.idPool ?? DEFAULT_ID_POOL);
    this.exits = new ExitReports({
      emit: (e) => this.subject.next(e),
      persist: (rt) => this.persist(rt),
      replaceFile: this.replaceFile,
      delivery: options.exitReports ?? 'at-most-once',
    });
    this.inspection = new InspectionHub(options.inspect, log);
    this.inspect = this.inspection.observe as (event: unknown) => void;
    this.supervisor = createActor(supervisorMachine, { id: 'supervisor', systemId: 'supervisor', inspect: this.inspection.observe });
    this.supervisor.start();
    this.machine = provideMachine(this);
  }

  /** State writes go through the native exchange: no ext4 flush on each one (decision 0016). */
  readonly replaceFile = (tmp: string, target: string): void => this.native.replaceFile(tmp, target);

  emit(e: EngineEvent): void {
    this.subject.next(e);
  }

  get native(): NativeFacade {
    if (!this.nativeImpl) {
      if (this.options.native) this.nativeImpl = this.options.native;
      else {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { loadNative } = require('../../native/ffi') as { loadNative: () => NativeFacade };
        this.nativeImpl = loadNative();
      }
    }
    return this.nativeImpl;
  }

  get watcher(): PidfdWatcher {
    if (!this.watcherImpl) this.watcherImpl = new PidfdWatcher(this.native);
    return this.watcherImpl;
  }

  /** Closes the watcher if one was ever made (close() must not load the native facade for it). */
  closeWatcher(): void {
    this.watcherImpl?.close();
  }

  get requestTimeout(): number {
    return this.options.requestTimeoutMs ?? 5_000;
  }

  /** Where cgroups are mounted (EngineOptions.cgroups, else the host's, detected once). */
  get cgroupLayout(): CgroupLayout | false {
    return this.options.cgroups ?? detectLayout();
  }

  cgroupsPathOptions(sandboxId: string, bundleDir: string): CgroupsPathOptions {
    return {
      systemd: this.options.systemdCgroup === true,
      systemdRunning: this.options.systemdRunning ?? fs.existsSync('/run/systemd/system'),
      sandboxId,
      bundleDir,
    };
  }

  /** Frees the sandbox's host id range, if it holds one; a failure only leaves it for the pool's next collection. */
  releaseIds(sandboxId: string): void {
    try {
      this.idPool.release(sandboxId);
    } catch (e) {
      this.log.warn({ sandboxId, err: (e as Error).message }, 'could not free the id range of the sandbox now (its next allocation collects it)');
    }
  }

  // ---------------------------------------------------------------- lookups

  get(sandboxId: string): Runtime {
    this.ensureOpen();
    if (typeof sandboxId !== 'string') throw new PaddockError('EINVALID_ARGUMENT', 'sandbox id must be a string');
    const rt = this.runtimes.get(sandboxId);
    if (!rt || !rt.actor) throw new StateError('ESANDBOX_NOT_FOUND', `no sandbox ${sandboxId}`, { sandboxId });
    return rt;
  }

  mustRuntime(sandboxId: string): Runtime {
    const rt = this.runtimes.get(sandboxId);
    if (!rt) throw new StateError('ESANDBOX_NOT_FOUND', `no sandbox ${sandboxId}`, { sandboxId });
    return rt;
  }

  containerActor(rt: Runtime, containerId: string): Actor<typeof containerMachine> {
    const ref = typeof containerId === 'string' ? rt.actor.getSnapshot().children[containerId] : undefined;
    if (!ref || containerId.startsWith('pid-')) {
      throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${rt.id}`, { sandboxId: rt.id, containerId });
    }
    return ref as unknown as Actor<typeof containerMachine>;
  }

  requireCan(rt: Runtime, event: Parameters<Actor<typeof sandboxMachine>['send']>[0], verb: string): void {
    const snap = rt.actor.getSnapshot();
    if (!snap.can(event)) {
      throw new StateError('EINVALID_STATE', `cannot ${verb} sandbox ${rt.id}: it is ${String(snap.value)}`, {
        sandboxId: rt.id,
        verb,
        state: String(snap.value),
      });
    }
  }

  ensureOpen(): void {
    if (this.closed) throw new PaddockError('EENGINE_CLOSED', 'the engine is closed');
  }

  control(rt: Runtime): ControlClient {
    if (rt.initAlive && !rt.control && this.options.attachChannels === false) {
      throw new ChannelError('ECONTROL', `sandbox ${rt.id} is attached read-only (attachChannels: false): no channel to its paddock-init`, { sandboxId: rt.id });
    }
    if (!rt.initAlive || !rt.control) {
      throw new StateError('ESANDBOX_DEAD', `sandbox ${rt.id} is not running (its paddock-init has exited)`, { sandboxId: rt.id });
    }
    return rt.control;
  }

  // ---------------------------------------------------------------- persistence and letting go

  persist(rt: Runtime): void {
    if (rt.persistQueued) return;
    rt.persistQueued = true;
    // Coalesce the bursts of snapshots one command produces into one write.
    setImmediate(() => {
      rt.persistQueued = false;
      this.persistNow(rt);
    });
  }

  persistNow(rt: Runtime): void {
    // An observer (see the engine's release()) no longer owns the state file.
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
        ...(rt.logSizeMax !== undefined ? { logSizeMax: rt.logSizeMax } : {}),
        snapshot: rt.actor.getPersistedSnapshot(),
      }, this.replaceFile);
    } catch (e) {
      rt.log.warn({ err: e, step: 'persist' }, 'could not persist sandbox state');
    }
  }

  detach(rt: Runtime): void {
    // This engine stops following the sandbox: the output streams it handed out end
    // (their log tails hold fs.watch handles, which would keep the caller's process
    // alive after engine.close() for as long as the container runs).
    for (const x of rt.execs.values()) x.done.resolve();
    for (const c of rt.containers.values()) {
      c.done.resolve();
      c.held?.dispose();
      c.releasing?.dispose();
      c.held = undefined;
      c.releasing = undefined;
    }
    rt.healthActor?.send({ type: 'stop' });
    rt.healthActor?.stop();
    rt.healthActor = undefined;
    detachNetwork(rt);
    rt.oom?.stop();
    rt.oom = undefined;
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

  async forget(rt: Runtime, removeDir: boolean): Promise<void> {
    this.detach(rt);
    if (removeDir) removeTree(rt.paths.dir);
    if (removeDir) this.releaseIds(rt.id);
    rt.actor.stop();
    this.runtimes.delete(rt.id);
    this.hooks.delete(rt.id);
    this.supervisor.send({ type: 'sandbox.unregister', sandboxId: rt.id });
  }
}
