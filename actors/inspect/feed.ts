import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { EngineEvent } from '../engine/api';
import { chartOf, type ChartDefinition } from './chart';
import { sanitize } from './sanitize';

/*
 * What the live view's page is sent: one JSON array of these per WebSocket frame.
 * Actor messages carry the actor's state as it is when the frame is made (a burst of
 * transitions in one tick shows as its outcome); the timeline comes from the engine's
 * own events, which lose nothing.
 */
export type PageMessage =
  | { t: 'hello'; actions: boolean; version: 1; now: number }
  | { t: 'reset' }
  | { t: 'def'; def: ChartDefinition }
  | { t: 'actor'; id: string; parent: string | null; name: string; machine: string; value: unknown; status: string; ctx: unknown }
  | { t: 'state'; id: string; value: unknown; status: string; ctx: unknown }
  | { t: 'event'; at: number; e: unknown }
  | { t: 'stats'; at: number; sandboxId: string; mem: number | null; cpu: number | null }
  | { t: 'result'; ref: string; ok: boolean; code?: string; message?: string }
  | { t: 'error'; message: string };

/** Timeline entries and stats samples a viewer that connects later still gets. */
const EVENT_HISTORY = 500;
const STATS_HISTORY = 60;
/** A context bigger than this (a sandbox with many exec'd processes) is cut to its plain fields. */
const MAX_CTX_CHARS = 2_000;

interface Tracked {
  ref: AnyActorRef;
  machine: string;
  announced: boolean;
  status: string;
}

/**
 * Turns inspection and engine events into page messages, batched per tick, and keeps
 * what a newly connected viewer needs to see the present: the live machine actors,
 * their charts, the recent timeline and stats.
 */
export class LiveFeed {
  private readonly actors = new Map<string, Tracked>();
  private readonly defs = new Map<string, ChartDefinition>();
  private readonly dirty = new Set<string>();
  private readonly out: PageMessage[] = [];
  private readonly history: PageMessage[] = [];
  private readonly stats = new Map<string, PageMessage[]>();
  private scheduled = false;

  constructor(private readonly deliver: (batch: PageMessage[]) => void) {}

  /** The hub's sink: machine actors only (promise actors are effects, shown by their machine's state). */
  readonly inspect = (e: InspectionEvent): void => {
    if (e.type === '@xstate.actor') {
      const ref = e.actorRef as AnyActorRef;
      const logic = (ref as unknown as { logic?: { id?: string } }).logic;
      const def = this.defs.get(logic?.id ?? '') ?? chartOf(logic);
      if (!def) return;
      if (!this.defs.has(def.machine)) {
        this.defs.set(def.machine, def);
        this.push({ t: 'def', def });
      }
      this.actors.set(ref.sessionId, { ref, machine: def.machine, announced: false, status: 'active' });
      this.touch(ref.sessionId);
    } else if (e.type === '@xstate.snapshot') {
      if (this.actors.has(e.actorRef.sessionId)) this.touch(e.actorRef.sessionId);
    }
  };

  /** Adds an actor that existed before this feed (the hub's registry), as if it had just been created. */
  adopt(ref: AnyActorRef): void {
    if (this.actors.has(ref.sessionId)) return;
    this.inspect({ type: '@xstate.actor', actorRef: ref, rootId: ref.sessionId } as InspectionEvent);
  }

  event(e: EngineEvent): void {
    const msg: PageMessage = { t: 'event', at: Date.now(), e: sanitize(e) };
    this.history.push(msg);
    if (this.history.length > EVENT_HISTORY) this.history.shift();
    this.push(msg);
  }

  sample(sandboxId: string, mem: number | null, cpu: number | null): void {
    const msg: PageMessage = { t: 'stats', at: Date.now(), sandboxId, mem, cpu };
    let h = this.stats.get(sandboxId);
    if (!h) this.stats.set(sandboxId, (h = []));
    h.push(msg);
    if (h.length > STATS_HISTORY) h.shift();
    this.push(msg);
  }

  /** The root sandbox actors in a state whose usage is worth sampling. */
  sampledSandboxes(): string[] {
    const ids: string[] = [];
    for (const a of this.actors.values()) {
      if (a.machine !== 'sandbox' || a.status !== 'active') continue;
      const v = a.ref.getSnapshot()?.value as unknown;
      if (v === 'running' || v === 'paused') ids.push(a.ref.id);
    }
    return ids;
  }

  /** Everything a viewer needs to show the present, as one batch. */
  present(): PageMessage[] {
    const batch: PageMessage[] = [{ t: 'reset' }];
    for (const def of this.defs.values()) batch.push({ t: 'def', def });
    for (const a of this.actors.values()) {
      const m = this.actorMessage(a, true);
      if (m) batch.push(m);
    }
    batch.push(...this.history);
    for (const h of this.stats.values()) batch.push(...h);
    return batch;
  }

  /** Actors stopped without a last snapshot (stopChild, actor.stop()): shown as stopped, then let go. */
  sweep(): void {
    for (const [id, a] of this.actors) if ((a.ref as unknown as { _processingStatus?: number })._processingStatus === 2) this.touch(id);
  }

  /** Stats of a sandbox that is gone are dropped with it. */
  forgetStats(sandboxId: string): void {
    this.stats.delete(sandboxId);
  }

  private touch(sessionId: string): void {
    this.dirty.add(sessionId);
    this.schedule();
  }

  private push(m: PageMessage): void {
    this.out.push(m);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // One frame per tick: a command's burst of transitions goes out together, at once.
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    for (const id of this.dirty) {
      const a = this.actors.get(id);
      if (!a) continue;
      const m = this.actorMessage(a);
      if (m) this.out.push(m);
    }
    this.dirty.clear();
    if (this.out.length === 0) return;
    const batch = this.out.splice(0);
    this.deliver(batch);
  }

  /** `full`: the whole actor (a viewer that knows nothing yet), else what changed since it was announced. */
  private actorMessage(a: Tracked, full = false): PageMessage | undefined {
    const snap = a.ref.getSnapshot() as { status?: string; value?: unknown; context?: unknown } | undefined;
    if (!snap) return undefined;
    const stopped = (a.ref as unknown as { _processingStatus?: number })._processingStatus === 2;
    const status = stopped && snap.status === 'active' ? 'stopped' : (snap.status ?? 'active');
    a.status = status;
    const value = sanitize(snap.value);
    const ctx = contextView(snap.context);
    if (status !== 'active') this.actors.delete(a.ref.sessionId);
    if (!a.announced || full) {
      a.announced = true;
      const parent = (a.ref as unknown as { _parent?: { sessionId: string } })._parent?.sessionId ?? null;
      return { t: 'actor', id: a.ref.sessionId, parent, name: a.ref.id, machine: a.machine, value, status, ctx };
    }
    return { t: 'state', id: a.ref.sessionId, value, status, ctx };
  }
}

function contextView(context: unknown): unknown {
  const full = sanitize(context);
  const text = JSON.stringify(full) ?? '';
  if (text.length <= MAX_CTX_CHARS || full === null || typeof full !== 'object') return full;
  const cut: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(full as Record<string, unknown>)) {
    if (v === null || typeof v !== 'object' || k === 'exit' || k === 'error') cut[k] = v;
  }
  return cut;
}
