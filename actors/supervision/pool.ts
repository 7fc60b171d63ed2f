import * as path from 'node:path';
import type { Observable, Subscription } from 'rxjs';
import { createActor, fromPromise, type Actor } from 'xstate';
import { isValidId } from '../../machines/ids';
import type { poolMachine, PoolBackoff, PoolMember } from '../../machines/pool.machine';
import type { FailureInfo } from '../../machines/types';
import { checkOptionKeys } from '../../base/options';
import { ACQUIRE_KEYS, POOL_BACKOFF_KEYS, POOL_KEYS } from '../engine/option-keys';
import { loadBundle } from '../../specs/load';
import { buildSpec, type SandboxTemplate } from '../../specs/builder';
import type {
  AcquireOptions,
  ContainerHandle,
  CreateSandboxOptions,
  EngineEvent,
  Pool,
  PoolEvent,
  PoolOptions,
  PoolStats,
  PooledSandbox,
  SandboxHandle,
  SandboxSummary,
} from '../engine/api';
import { ErrorCodes, PaddockError, PoolError, isPaddockError } from '../../base/errors';
import type { Logger } from '../../base/logger';

/**
 * Warm pools (docs/decisions/0016-warm-pools.md): the effects of machines/pool.machine.ts
 * over the engine's own commands. A member is an ordinary sandbox made with
 * createSandbox; acquire() starts it with startRoot and hands it over, so from then on
 * nothing distinguishes it from a sandbox the caller made.
 */

/** What a pool needs of the engine (its public commands, so pools add no engine internals). */
export interface PoolHost {
  createSandbox(id: string, bundle: string | SandboxTemplate, opts?: CreateSandboxOptions): Promise<SandboxHandle>;
  startRoot(sandboxId: string): Promise<ContainerHandle>;
  destroy(sandboxId: string): Promise<void>;
  list(): SandboxSummary[];
  readonly events$: Observable<EngineEvent>;
  publish(event: PoolEvent): void;
  readonly log: Logger;
  readonly inspect?: (event: unknown) => void;
}

export const DEFAULT_BACKOFF: PoolBackoff = { initialMs: 200, maxMs: 30_000, factor: 2 };
const DEFAULT_ACQUIRE_TIMEOUT_MS = 30_000;
const MAX_SIZE = 10_000;
/** Room left in the 64-character id for `-<seq>`. */
const MAX_NAME = 48;

/** The engine's pools by name; a drained pool gives its name back. */
export class PoolRegistry {
  private readonly pools = new Map<string, WarmPool | 'reserved'>();

  constructor(private readonly host: PoolHost) {}

  async create(name: string, opts: PoolOptions): Promise<Pool> {
    const settings = validate(name, opts);
    if (this.pools.has(name)) throw new PoolError('EPOOL_EXISTS', `a pool named ${name} already exists`, { pool: name });
    // Reserved across the bundle check, so two concurrent calls with one name cannot both win.
    this.pools.set(name, 'reserved');
    try {
      // A template is checked whole by validate (buildSpec); a bundle is loaded once here.
      if (typeof opts.bundle === 'string') await loadBundle(opts.bundle);
    } catch (e) {
      this.pools.delete(name);
      throw e;
    }
    const sandboxes = this.host.list();
    const pool = new WarmPool(this.host, name, settings, firstFreeSeq(name, sandboxes), () => this.pools.delete(name), leftovers(name, settings, sandboxes));
    this.pools.set(name, pool);
    pool.start();
    return pool;
  }

  /** Drains every pool (engine.close): idle members have no owner once the engine is gone. */
  async drainAll(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => (p === 'reserved' ? undefined : p.drain())));
  }
}

interface Settings {
  readonly bundle: string | SandboxTemplate;
  readonly size: number;
  readonly maxAgeMs: number | null;
  readonly backoff: PoolBackoff;
  readonly sandbox: CreateSandboxOptions;
}

function validate(name: string, opts: PoolOptions): Settings {
  if (!isValidId(name) || name.length > MAX_NAME) {
    throw new PaddockError('EINVALID_ID', `invalid pool name ${JSON.stringify(name)}: member ids are <name>-<n>, so at most ${MAX_NAME} id characters`, {
      pool: String(name),
    });
  }
  const bad = (field: string, why: string): never => {
    throw new PaddockError('EINVALID_ARGUMENT', `pool ${name}: ${field} ${why}`, { pool: name, field });
  };
  if (!opts || typeof opts !== 'object') bad('options', 'must be an object');
  checkOptionKeys(opts, POOL_KEYS, `pool ${name} options`);
  checkOptionKeys(opts.backoff, POOL_BACKOFF_KEYS, `pool ${name} options.backoff`);
  if (typeof opts.bundle === 'object' && opts.bundle !== null) buildSpec(opts.bundle);
  else if (typeof opts.bundle !== 'string' || opts.bundle === '') bad('bundle', 'must be a bundle directory or a sandbox template');
  if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > MAX_SIZE) bad('size', `must be an integer from 1 to ${MAX_SIZE}, not ${String(opts.size)}`);
  let maxAgeMs: number | null = null;
  if (opts.maxAgeMs !== undefined) {
    // 0 would recycle every member the moment it is made: a pool that only churns.
    if (typeof opts.maxAgeMs !== 'number' || !(opts.maxAgeMs > 0)) bad('maxAgeMs', `must be a positive number of ms, not ${String(opts.maxAgeMs)}`);
    maxAgeMs = opts.maxAgeMs === Infinity ? null : opts.maxAgeMs;
  }
  // Checked here, or every launch of the pool would fail on it.
  if (opts.stdio !== undefined && !['pipe', 'inherit', 'ignore'].includes(opts.stdio)) bad('stdio', `must be 'pipe', 'inherit' or 'ignore'`);
  const b = opts.backoff ?? {};
  const backoff: PoolBackoff = {
    initialMs: b.initialMs ?? DEFAULT_BACKOFF.initialMs,
    maxMs: b.maxMs ?? Math.max(DEFAULT_BACKOFF.maxMs, b.initialMs ?? 0),
    factor: b.factor ?? DEFAULT_BACKOFF.factor,
  };
  // A zero backoff is the spinning this exists to prevent.
  if (!Number.isFinite(backoff.initialMs) || backoff.initialMs < 1) bad('backoff.initialMs', 'must be at least 1 ms');
  if (!Number.isFinite(backoff.maxMs) || backoff.maxMs < backoff.initialMs) bad('backoff.maxMs', 'must be at least backoff.initialMs');
  if (!Number.isFinite(backoff.factor) || backoff.factor < 1) bad('backoff.factor', 'must be at least 1');
  const sandbox: CreateSandboxOptions = {
    // Members are built up to the container's execve, so acquire() is one release.
    prepare: true,
    ...(opts.stdio !== undefined ? { stdio: opts.stdio } : {}),
    ...(opts.noPivot !== undefined ? { noPivot: opts.noPivot } : {}),
    ...(opts.userns !== undefined ? { userns: opts.userns } : {}),
    ...(opts.idmapRootfs !== undefined ? { idmapRootfs: opts.idmapRootfs } : {}),
  };
  return { bundle: opts.bundle, size: opts.size, maxAgeMs, backoff, sandbox };
}

/**
 * Idle members a previous supervisor of this state dir made and never handed out
 * (it died, or detached without draining): created sandboxes named `<name>-<n>` from
 * the same bundle. The pool takes them before it launches new ones, so a supervisor
 * crash does not strand warm sandboxes (docs/decisions/0016).
 */
function leftovers(name: string, settings: Settings, sandboxes: SandboxSummary[]): string[] {
  // A template's members each have a bundle of their own (in their folder): not told apart from others, so not taken.
  if (typeof settings.bundle !== 'string') return [];
  const bundle = path.resolve(settings.bundle);
  return sandboxes
    .filter((s) => s.id.startsWith(`${name}-`) && /^\d+$/.test(s.id.slice(name.length + 1)))
    .filter((s) => s.status === 'created' && s.pid !== undefined && path.resolve(s.bundle) === bundle)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
    .map((s) => s.id);
}

/** Member ids continue after any `<name>-<n>` still in the engine (acquired members, reattached leftovers). */
function firstFreeSeq(name: string, sandboxes: SandboxSummary[]): number {
  let max = 0;
  for (const s of sandboxes) {
    if (!s.id.startsWith(`${name}-`)) continue;
    const tail = s.id.slice(name.length + 1);
    if (/^\d+$/.test(tail)) max = Math.max(max, Number(tail));
  }
  return max + 1;
}

interface Waiter {
  resolve(handout: { handle: SandboxHandle; started: () => void }): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

class WarmPool implements Pool {
  private readonly actor: Actor<typeof poolMachine>;
  private readonly log: Logger;
  /** Handles (with stdio streams) of members created and not yet handed out. */
  private readonly handles = new Map<string, SandboxHandle>();
  private readonly waiters = new Map<string, Waiter>();
  private requestSeq = 0;
  /** Starts of handed-out members not finished yet; refills wait for them (see createMember). */
  private readonly starting = new Set<Promise<void>>();
  private eventsSub: Subscription | undefined;
  private readonly drained: Promise<void>;
  private markDrained!: () => void;

  constructor(
    private readonly host: PoolHost,
    readonly name: string,
    private readonly settings: Settings,
    firstSeq: number,
    onDrained: () => void,
    /** Created members found in the state dir (see leftovers()), taken before new launches. */
    private readonly adoptable: string[] = [],
  ) {
    this.log = host.log.child({ pool: name });
    this.drained = new Promise<void>((r) => (this.markDrained = r));
    const machine = poolMachineDef().provide({
      actors: {
        createMember: fromPromise<PoolMember, { pool: string; memberId: string }>(({ input }) => this.createMember(input.memberId)),
        destroyMember: fromPromise<void, { pool: string; memberId: string }>(({ input }) => this.destroyMember(input.memberId)),
      },
    });
    this.actor = createActor(machine, {
      input: { name, size: settings.size, maxAgeMs: settings.maxAgeMs, backoff: settings.backoff, firstSeq },
      id: `pool:${name}`,
      ...(host.inspect ? { inspect: host.inspect } : {}),
    });
    this.actor.on('member.handedOut', (e) => this.handOut(e.requestId, e.member.id));
    this.actor.on('acquire.rejected', (e) => this.rejectWaiter(e.requestId, this.drainedError()));
    this.actor.on('refill.failed', (e) => {
      const error = toPaddockError(e.error, e.memberId, name);
      this.log.warn({ sandboxId: e.memberId, attempt: e.attempt, retryInMs: e.retryInMs, err: error }, 'pool launch failed; backing off');
      host.publish({ type: 'pool', pool: name, event: 'refillFailed', sandboxId: e.memberId, attempt: e.attempt, retryInMs: e.retryInMs, error });
    });
    this.actor.on('drained', () => {
      this.eventsSub?.unsubscribe();
      onDrained();
      this.log.debug('pool drained');
      host.publish({ type: 'pool', pool: name, event: 'drained' });
      this.markDrained();
    });
  }

  start(): void {
    // An idle member whose sandbox stops under the pool (its init killed, a destroy by id)
    // must never be handed out; the machine replaces it.
    this.eventsSub = this.host.events$.subscribe((e) => {
      if (e.type === 'state' && e.containerId === undefined && this.handles.has(e.sandboxId) && LOST.has(e.status)) {
        this.actor.send({ type: 'member.lost', memberId: e.sandboxId });
      }
    });
    this.actor.start();
  }

  async acquire(opts: AcquireOptions = {}): Promise<PooledSandbox> {
    checkOptionKeys(opts, ACQUIRE_KEYS, 'acquire options');
    const timeoutMs = opts.timeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new PaddockError('EINVALID_ARGUMENT', `pool ${this.name}: timeoutMs must be a non-negative number`, { pool: this.name, field: 'timeoutMs' });
    }
    if (this.isDraining()) throw this.drainedError();
    const requestId = String(++this.requestSeq);
    const { handle, started } = await new Promise<{ handle: SandboxHandle; started: () => void }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        this.actor.send({ type: 'acquire.cancel', requestId });
        const last = this.actor.getSnapshot().context.lastError;
        reject(
          new PaddockError('ETIMEOUT', `pool ${this.name}: no member within ${timeoutMs} ms${last ? ` (last launch: ${last.message})` : ''}`, {
            pool: this.name,
          }, last),
        );
      }, timeoutMs);
      this.waiters.set(requestId, { resolve, reject, timer });
      // Handed out synchronously when a member is idle, else queued in the machine.
      this.actor.send({ type: 'acquire', requestId });
    });
    let container: ContainerHandle;
    try {
      container = await this.host.startRoot(handle.id);
    } catch (e) {
      // Never started, never the caller's: nothing of it is left behind.
      await this.host.destroy(handle.id).catch(() => undefined);
      throw e;
    } finally {
      started();
    }
    return { ...handle, container };
  }

  async drain(): Promise<void> {
    const snap = this.actor.getSnapshot();
    if (snap.status === 'active' && snap.can({ type: 'drain' })) this.actor.send({ type: 'drain' });
    await this.drained;
  }

  stats(): PoolStats {
    const snap = this.actor.getSnapshot();
    const c = snap.context;
    return {
      name: this.name,
      status: statusOf(snap.value),
      size: c.size,
      idle: c.idle.length,
      waiting: c.waiters.length,
      launches: c.launches,
      failures: c.failures,
      handedOut: c.handedOut,
      recycled: c.recycled,
    };
  }

  // ------------------------------------------------------------ effects of the machine

  private async createMember(memberId: string): Promise<PoolMember> {
    // The refill a hand-out triggers would otherwise run its synchronous launch work
    // (bundle load, cgroup, clone) on the event loop that is waiting for the start's
    // reply: the acquire pays for the refill. One tick lets the hand-out register its
    // start (the machine spawns this launch in the same transition).
    await Promise.resolve();
    if (this.starting.size > 0) await Promise.allSettled([...this.starting]);
    while (this.adoptable.length > 0) {
      const id = this.adoptable.shift() as string;
      const s = this.host.list().find((x) => x.id === id);
      if (!s || s.status !== 'created' || s.pid === undefined) continue;
      // Its streams went with the supervisor that made it: logs() still reads its output.
      this.handles.set(id, { id, pid: s.pid, rootContainerId: s.rootContainerId ?? id });
      this.log.debug({ sandboxId: id }, 'pool adopted a member left by an earlier supervisor');
      return { id, pid: s.pid };
    }
    const h = await this.host.createSandbox(memberId, this.settings.bundle, this.settings.sandbox);
    this.handles.set(memberId, h);
    return { id: memberId, pid: h.pid };
  }

  private async destroyMember(memberId: string): Promise<void> {
    const h = this.handles.get(memberId);
    this.handles.delete(memberId);
    h?.stdio?.stdin.destroy();
    try {
      await this.host.destroy(memberId);
    } catch (e) {
      if (isPaddockError(e, 'ESANDBOX_NOT_FOUND') || isPaddockError(e, 'EENGINE_CLOSED')) return;
      this.log.warn({ sandboxId: memberId, err: e }, 'could not destroy a pool member');
      throw e;
    }
  }

  private handOut(requestId: string, memberId: string): void {
    const handle = this.handles.get(memberId);
    this.handles.delete(memberId);
    const w = this.waiters.get(requestId);
    if (!w || !handle) {
      // Nobody to give it to (cannot happen while cancel and hand-out share one thread).
      void this.host.destroy(memberId).catch(() => undefined);
      return;
    }
    this.waiters.delete(requestId);
    clearTimeout(w.timer);
    let started!: () => void;
    const gate = new Promise<void>((r) => (started = r));
    this.starting.add(gate);
    void gate.then(() => this.starting.delete(gate));
    w.resolve({ handle, started });
  }

  private rejectWaiter(requestId: string, error: PaddockError): void {
    const w = this.waiters.get(requestId);
    if (!w) return;
    this.waiters.delete(requestId);
    clearTimeout(w.timer);
    w.reject(error);
  }

  private isDraining(): boolean {
    const snap = this.actor.getSnapshot();
    return snap.status !== 'active' || snap.value === 'draining';
  }

  private drainedError(): PoolError {
    return new PoolError('EPOOL_DRAINED', `pool ${this.name} is drained`, { pool: this.name, verb: 'acquire' });
  }
}

/** Sandbox states in which an idle member is no longer usable. */
const LOST = new Set(['stopped', 'failed', 'destroying', 'destroyed']);

function statusOf(value: unknown): PoolStats['status'] {
  if (value === 'draining' || value === 'drained') return value;
  const sub = (value as { active?: string }).active;
  if (sub === 'launching') return 'filling';
  if (sub === 'backingOff') return 'backingOff';
  return 'full';
}

function toPaddockError(info: FailureInfo, sandboxId: string, pool: string): PaddockError {
  const code = (info.code in ErrorCodes ? info.code : 'ELAUNCH_STEP') as ConstructorParameters<typeof PaddockError>[0];
  return new PaddockError(code, info.message, {
    sandboxId,
    pool,
    ...(info.step !== undefined ? { step: info.step } : {}),
    ...(info.errno !== undefined ? { errno: info.errno } : {}),
  });
}

/** Built at its first use: a call that makes no warm pool never builds it (docs/decisions/0007). */
function poolMachineDef(): typeof poolMachine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../machines/pool.machine') as typeof import('../../machines/pool.machine')).poolMachine;
}
