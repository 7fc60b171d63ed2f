import * as fs from 'node:fs';
import * as path from 'node:path';
import { createActor, fromPromise, type Actor } from 'xstate';
import type { restartMachine, RelaunchInput, RestartEmitted } from '../../machines/restart.machine';
import { resolveRestartPolicy, type RestartOptions, type RestartPolicy } from '../../machines/restart-policy';
import type { ExitStatus } from '../../machines/types';
import type { CreateSandboxOptions, Engine, EngineEvent, StartContainerOptions } from '../engine/api';
import { PaddockError } from '../../base/errors';
import type { SandboxTemplate } from '../../specs/builder';
import { checkOptionKeys } from '../../base/options';
import { RESTART_BACKOFF_KEYS, RESTART_KEYS } from '../engine/option-keys';
import type { Logger } from '../../base/logger';
import { processStartTime } from '../sandbox/state-store';
import { removeFile } from '../../base/remove-tree';
import { writeFileAtomic } from '../../base/files';

/**
 * Restart policies wired to the engine: one restart machine per supervised child (a
 * sandbox, or a container inside one), fed by the engine's own events, relaunching
 * through the engine's public commands, persisted outside the sandbox folders so a
 * restart (which removes the folder) and a supervisor restart both keep it.
 *
 *   <stateDir>/.supervision/<sandboxId>.json                 a sandbox's restart machine
 *   <stateDir>/.supervision/<sandboxId>+<containerId>.json   a container's ('+' is not an id character)
 *
 * docs/decisions/0015-restart-policies.md has the choices made here.
 */

const FILE_VERSION = 1;
/** Signals through the API that mean "stop it" (docker kill/stop), not "tell it something". */
const STOP_SIGNALS = new Set([2, 9, 15]);

interface ChildSpec {
  readonly sandboxId: string;
  readonly containerId?: string;
  /** A bundle directory, or a sandbox's template (plain JSON: a relaunch builds it again). */
  readonly bundleDir: string | SandboxTemplate;
  /** The options of the first launch, reused verbatim by every relaunch. */
  readonly options: CreateSandboxOptions | StartContainerOptions;
  readonly policy: RestartPolicy;
}

interface PersistedChild extends ChildSpec {
  readonly version: number;
  readonly snapshot: unknown;
}

interface Child {
  readonly key: string;
  readonly spec: ChildSpec;
  actor?: Actor<typeof restartMachine>;
  /** Restored from disk, its actor not started until the engine has reattached every sandbox. */
  saved?: unknown;
}

/** The engine commands a relaunch uses, plus the hooks only the engine can call. */
export type SupervisedEngine = Pick<Engine, 'list' | 'createSandbox' | 'startRoot' | 'destroy' | 'startContainer' | 'destroyContainer' | 'events$'>;

export class Supervision {
  private readonly children = new Map<string, Child>();
  /** Children whose destroy is a relaunch of ours, not the user's. */
  private readonly internal = new Set<string>();
  /** Last status of each root container / container, as the engine reported it (`exit` comes before `state`). */
  private readonly lastExit = new Map<string, ExitStatus>();
  private readonly dir: string;
  private closed = false;
  /** The engine's inspection observer (EngineOptions.inspect): restart machines show in the inspector. */
  inspect: ((event: unknown) => void) | undefined;

  constructor(
    private readonly engine: SupervisedEngine,
    stateDir: string,
    private readonly log: Logger,
    private readonly emit: (e: EngineEvent) => void,
  ) {
    this.dir = path.join(stateDir, '.supervision');
    engine.events$.subscribe({ next: (e) => this.onEngineEvent(e) });
  }

  /** Validates a `restart` option before anything is created; undefined when there is none. */
  validate(restart: unknown): RestartPolicy | undefined {
    if (restart === undefined) return undefined;
    checkOptionKeys(restart, RESTART_KEYS, 'restart');
    if (typeof restart === 'object' && restart !== null) checkOptionKeys((restart as { backoff?: unknown }).backoff, RESTART_BACKOFF_KEYS, 'restart.backoff');
    const r = resolveRestartPolicy(restart);
    if ('issue' in r) throw new PaddockError('EINVALID_ARGUMENT', `${r.issue.field}: ${r.issue.message}`, { field: r.issue.field });
    return r.policy;
  }

  /**
   * A child was created with a restart policy. A relaunch re-creates its child through
   * the same public commands; the machine already exists then and is kept.
   */
  register(sandboxId: string, containerId: string | undefined, bundleDir: string | SandboxTemplate, options: CreateSandboxOptions | StartContainerOptions, policy: RestartPolicy | undefined): void {
    if (!policy || this.closed) return;
    const key = keyOf(sandboxId, containerId);
    if (this.children.has(key)) return;
    const spec: ChildSpec = { sandboxId, ...(containerId !== undefined ? { containerId } : {}), bundleDir, options, policy };
    const child: Child = { key, spec };
    this.children.set(key, child);
    this.startActor(child, undefined);
  }

  /** A container added and started in one call failed to start: it is not kept, nor supervised. */
  drop(sandboxId: string, containerId: string): void {
    const c = this.children.get(keyOf(sandboxId, containerId));
    if (c) this.end(c);
  }

  /**
   * The user destroys a sandbox or container through the API: no restart may follow.
   * A sandbox takes its containers' supervision with it (they do not outlive it).
   */
  userStop(sandboxId: string, containerId?: string): void {
    if (containerId === undefined) {
      for (const c of [...this.children.values()]) {
        if (c.spec.sandboxId === sandboxId && c.spec.containerId !== undefined) this.stopChild(c);
      }
    }
    const key = keyOf(sandboxId, containerId);
    if (this.internal.has(key)) return;
    const c = this.children.get(key);
    if (c) this.stopChild(c);
  }

  /** A signal through the API: the ones that mean "stop" end supervision (docker's kill/stop do too). */
  userSignal(sandboxId: string, containerId: string, signo: number, opts: { pid?: number }): void {
    if (opts.pid !== undefined || !STOP_SIGNALS.has(signo)) return;
    this.userStop(sandboxId, containerId === sandboxId ? undefined : containerId);
  }

  /** Reads the persisted machines; their actors start in {@link resume}, once every sandbox is reattached. */
  load(): void {
    let all: string[];
    try {
      all = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    this.removeDeadTemps(all);
    const names = all.filter((n) => n.endsWith('.json'));
    for (const n of names) {
      const file = path.join(this.dir, n);
      try {
        const p = JSON.parse(fs.readFileSync(file, 'utf8')) as PersistedChild;
        if (p.version !== FILE_VERSION) throw new Error(`version ${p.version}`);
        const key = keyOf(p.sandboxId, p.containerId);
        if (`${key}.json` !== n) throw new Error('file name and content disagree');
        const spec: ChildSpec = { sandboxId: p.sandboxId, ...(p.containerId !== undefined ? { containerId: p.containerId } : {}), bundleDir: p.bundleDir, options: p.options, policy: p.policy };
        this.children.set(key, { key, spec, saved: p.snapshot });
      } catch (e) {
        const err = new PaddockError('ESTATE_CORRUPT', `supervision state ${n} cannot be read: ${(e as Error).message}`, { path: file });
        this.log.warn({ err }, 'skipping unreadable supervision state');
        this.emit({ type: 'error', error: err });
      }
    }
  }

  /**
   * Starts the restored machines and reconciles them with what the engine found: a
   * backoff waits out what is left of it, a relaunch that was under way is finished
   * (idempotently, see relaunch), and a child that ended while no supervisor ran is
   * handled by its policy once — its machine is still `running` only if its exit was
   * never answered.
   */
  resume(): void {
    const now = Date.now();
    const sandboxes = new Map(this.engine.list().map((s) => [s.id, s]));
    for (const c of [...this.children.values()]) {
      if (c.saved === undefined) continue;
      const saved = c.saved;
      c.saved = undefined;
      this.startActor(c, saved);
      const actor = c.actor;
      if (!actor || actor.getSnapshot().status !== 'active') continue;
      const value = String(actor.getSnapshot().value);
      actor.send({ type: 'supervisor.resumed', now });
      if (value !== 'running') continue;
      const sb = sandboxes.get(c.spec.sandboxId);
      const ct = c.spec.containerId === undefined ? undefined : sb?.containers.find((k) => k.id === c.spec.containerId);
      const status = c.spec.containerId === undefined ? sb?.status : ct?.status;
      if (status === undefined || status === 'stopped' || status === 'failed') {
        const exit = (c.spec.containerId === undefined ? sb?.exit : ct?.exit) ?? this.lastExit.get(c.key) ?? { exitCode: null, signal: null };
        this.childExited(c, exit);
      }
    }
  }

  /** engine.shutdown({ mode: 'stop' }): every child is stopped as the user would, so nothing restarts and no state is kept. */
  stopAll(): void {
    for (const c of [...this.children.values()]) this.stopChild(c);
  }

  close(): void {
    this.closed = true;
    for (const c of this.children.values()) {
      if (c.actor) {
        this.persist(c);
        c.actor.stop();
      }
    }
    this.children.clear();
  }

  // ------------------------------------------------------------------ internals

  private startActor(child: Child, snapshot: unknown): void {
    const machine = restartMachineDef().provide({
      actors: {
        relaunch: fromPromise<void, RelaunchInput>(({ input }) => this.relaunch(child, input.since)),
      },
    });
    const inspect = { id: `restart:${child.key}`, ...(this.inspect ? { inspect: this.inspect as never } : {}) };
    const actor = snapshot
      ? createActor(machine, { snapshot: snapshot as never, input: undefined as never, ...inspect })
      : createActor(machine, { input: { childId: child.key, policy: child.spec.policy }, ...inspect });
    child.actor = actor;
    const ids = { sandboxId: child.spec.sandboxId, ...(child.spec.containerId !== undefined ? { containerId: child.spec.containerId } : {}) };
    const forward = (e: RestartEmitted) => {
      if (this.closed) return;
      const { childId: _childId, ...rest } = e;
      this.emit({ ...rest, ...ids } as EngineEvent);
    };
    for (const t of ['restart.scheduled', 'restart.launched', 'restart.gaveUp', 'restart.stopped'] as const) actor.on(t, forward);
    actor.subscribe({
      next: (snap) => {
        if (this.closed) return;
        if (snap.status === 'done') this.end(child);
        else if (snap.status === 'active') this.persist(child);
      },
      error: (err) => this.log.error({ err, childId: child.key }, 'restart machine failed'),
    });
    actor.start();
  }

  private onEngineEvent(e: EngineEvent): void {
    if (e.type === 'exit' && e.kind === 'container') {
      const key = keyOf(e.sandboxId, e.containerId === e.sandboxId ? undefined : e.containerId);
      if (this.children.has(key)) this.lastExit.set(key, e.exit);
      return;
    }
    if (e.type !== 'state' || e.status !== 'stopped' || e.pid !== undefined) return;
    // The root container's stop is the sandbox's own (reported without containerId).
    if (e.containerId !== undefined && e.containerId === e.sandboxId) return;
    const c = this.children.get(keyOf(e.sandboxId, e.containerId));
    if (!c?.actor) return;
    if (c.spec.containerId !== undefined) {
      // A container cannot be restarted in a sandbox that has ended: its supervision ends with it.
      const sb = this.engine.list().find((s) => s.id === c.spec.sandboxId);
      if (!sb || (sb.status !== 'running' && sb.status !== 'created')) {
        this.stopChild(c);
        return;
      }
    }
    this.childExited(c, this.lastExit.get(c.key) ?? { exitCode: null, signal: null });
  }

  private childExited(c: Child, exit: ExitStatus): void {
    c.actor?.send({ type: 'child.exited', exit, at: Date.now(), random: Math.random() });
  }

  private stopChild(c: Child): void {
    if (c.actor && c.actor.getSnapshot().status === 'active') c.actor.send({ type: 'stop' });
    else this.end(c);
  }

  /**
   * Replaces the exited instance. Idempotent against a supervisor that died half-way:
   * an instance created after `since` (the exit being answered) is this restart's own,
   * so it is only started if that had not happened yet, never created twice.
   */
  private async relaunch(c: Child, since: number): Promise<void> {
    const { sandboxId, containerId, bundleDir, options } = c.spec;
    this.lastExit.delete(c.key);
    const sb = this.engine.list().find((s) => s.id === sandboxId);
    if (containerId === undefined) {
      if (sb && Date.parse(sb.createdAt) >= since) {
        if (sb.status === 'created') await this.engine.startRoot(sandboxId);
        return;
      }
      if (sb) await this.internally(c.key, () => this.engine.destroy(sandboxId));
      this.throwIfEnded(c);
      await this.engine.createSandbox(sandboxId, bundleDir, options as CreateSandboxOptions);
      this.throwIfEnded(c, sandboxId);
      await this.engine.startRoot(sandboxId);
      return;
    }
    if (!sb || (sb.status !== 'running' && sb.status !== 'created')) {
      throw new PaddockError('ESANDBOX_DEAD', `sandbox ${sandboxId} of container ${containerId} has ended`, { sandboxId, containerId });
    }
    const ct = sb.containers.find((k) => k.id === containerId);
    if (ct && ct.status !== 'stopped') {
      // Added again by a relaunch that was cut short: start it if that had not happened.
      if (ct.status === 'created') await this.engine.startContainer(sandboxId, containerId);
      return;
    }
    if (ct) await this.internally(c.key, () => this.engine.destroyContainer(sandboxId, containerId));
    this.throwIfEnded(c);
    // Containers added to a sandbox come from bundles only.
    await this.engine.startContainer(sandboxId, containerId, bundleDir as string, options as StartContainerOptions);
  }

  /** The user stopped the child while its relaunch ran: do not bring it back (destroying what was just made). */
  private throwIfEnded(c: Child, created?: string): void {
    if (this.children.get(c.key) === c && !this.closed) return;
    if (created !== undefined) void this.engine.destroy(created).catch(() => undefined);
    throw new PaddockError('EINVALID_STATE', `${c.key} was stopped during its restart`);
  }

  private async internally(key: string, fn: () => Promise<void>): Promise<void> {
    this.internal.add(key);
    try {
      await fn();
    } finally {
      this.internal.delete(key);
    }
  }

  private persist(c: Child): void {
    if (!c.actor) return;
    const data: PersistedChild = { version: FILE_VERSION, ...c.spec, snapshot: c.actor.getPersistedSnapshot() };
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(path.join(this.dir, `${c.key}.json`), JSON.stringify(data));
    } catch (e) {
      this.log.warn({ err: e, childId: c.key, step: 'persist' }, 'could not persist restart state');
    }
  }

  /**
   * `<key>.json.tmp-<pid>`: writeFileAtomic's temp file, left behind when its writer was
   * killed between the write and the rename. The file it was to replace is intact (the
   * rename never happened), so the temp file is garbage once its writer is gone — or is
   * this process, whose writes are synchronous and so never under way here.
   */
  private removeDeadTemps(names: readonly string[]): void {
    for (const n of names) {
      const m = /\.json\.tmp-(\d+)$/.exec(n);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid !== process.pid && processStartTime(pid) !== undefined) continue;
      removeFile(path.join(this.dir, n));
      this.log.debug({ file: n, step: 'load' }, 'removed the temp file of a dead writer');
    }
  }

  /** Supervision of a child is over (final state, dropped, or destroyed): forget it and its file. */
  private end(c: Child): void {
    if (this.children.get(c.key) === c) this.children.delete(c.key);
    this.lastExit.delete(c.key);
    if (c.actor?.getSnapshot().status === 'active') c.actor.stop();
    removeFile(path.join(this.dir, `${c.key}.json`));
  }
}

function keyOf(sandboxId: string, containerId?: string): string {
  return containerId === undefined ? sandboxId : `${sandboxId}+${containerId}`;
}

export type { RestartOptions };

/** Built at its first use: a call whose sandboxes have no restart policy never builds it (docs/decisions/0007). */
function restartMachineDef(): typeof restartMachine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../machines/restart.machine') as typeof import('../../machines/restart.machine')).restartMachine;
}
