import type { InspectionEvent } from 'xstate';
import { sanitize, viewOfSnapshot } from './sanitize';

/**
 * The version of @statelyai/inspect whose wire format this writes (package.json pins
 * it; a unit test compares the two, and the messages with the library's own).
 */
export const STATELY_INSPECT_VERSION = '0.7.2';

/** Depth to which a definition is written, as the library's default (serializationDepthLimit). */
const DEFINITION_DEPTH = 10;

/**
 * `inspect: { url }`'s messages: XState's inspection events in the Stately inspector's
 * WebSocket format (the one @statelyai/inspect's createWebSocketInspector sends), made
 * once per tick instead of once per event on a timer each, with each machine's
 * definition written once and kept, an actor's context-only snapshots within a tick
 * folded into its next one, and snapshots and events sanitised. Only actor, event and snapshot events
 * travel (the inspector ignores the others).
 */
export class StatelyWire {
  private queue: InspectionEvent[] = [];
  private scheduled = false;
  private readonly definitions = new WeakMap<object, string>();

  constructor(private readonly send: (messages: object[]) => void) {}

  readonly next = (e: InspectionEvent): void => {
    if (e.type !== '@xstate.actor' && e.type !== '@xstate.event' && e.type !== '@xstate.snapshot') return;
    this.queue.push(e);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  };

  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    // Within one tick, a snapshot followed by another of the same actor in the same state
    // (only its context moved on) is left out: every state an actor passes through is
    // sent, but a burst (a thousand sandboxes registering with the supervisor) does not
    // send the supervisor's whole registry once per sandbox.
    const skip = new Set<number>();
    const later = new Map<string, string>();
    for (let i = batch.length - 1; i >= 0; i--) {
      const e = batch[i] as InspectionEvent;
      if (e.type !== '@xstate.snapshot') continue;
      const value = JSON.stringify((e.snapshot as { value?: unknown }).value ?? null);
      if (later.get(e.actorRef.sessionId) === value) skip.add(i);
      later.set(e.actorRef.sessionId, value);
    }
    const out: object[] = [];
    batch.forEach((e, i) => {
      if (skip.has(i)) return;
      const m = this.convert(e);
      if (m) out.push(m);
    });
    if (out.length > 0) this.send(out);
  }

  private convert(e: InspectionEvent): object | undefined {
    const base = { createdAt: String(Date.now()), id: null, rootId: e.rootId, _version: STATELY_INSPECT_VERSION };
    const ref = e.actorRef as unknown as { sessionId: string; id?: string; logic?: { config?: unknown }; _parent?: { sessionId: string }; getSnapshot(): unknown };
    switch (e.type) {
      case '@xstate.actor': {
        const config = ref.logic?.config as { id?: string } | undefined;
        const name = ref.id === ref.sessionId && config ? config.id : ref.id;
        return {
          ...base,
          type: '@xstate.actor',
          name,
          sessionId: ref.sessionId,
          parentId: ref._parent?.sessionId,
          definition: this.definitionOf(ref.logic, name),
          snapshot: viewOfSnapshot(ref.getSnapshot()),
        };
      }
      case '@xstate.event':
        return { ...base, type: '@xstate.event', event: sanitize(e.event), sourceId: e.sourceRef?.sessionId, sessionId: ref.sessionId };
      case '@xstate.snapshot':
        return { ...base, type: '@xstate.snapshot', event: sanitize(e.event), snapshot: viewOfSnapshot(e.snapshot), sessionId: ref.sessionId };
      default:
        return undefined;
    }
  }

  /** A machine's config as JSON (functions by name), written once per logic: it is the same for every actor of it. */
  private definitionOf(logic: { config?: unknown } | undefined, name: unknown): string {
    if (!logic || typeof logic.config !== 'object' || logic.config === null) return JSON.stringify({ id: name });
    let d = this.definitions.get(logic);
    if (d === undefined) {
      d = JSON.stringify(definitionCopy(logic.config, 0)) ?? '{}';
      this.definitions.set(logic, d);
    }
    return d;
  }
}

/** The definition as the Stately inspector reads it: plain data, functions as `{ type: name }`, depth cut. */
function definitionCopy(v: unknown, depth: number): unknown {
  if (typeof v === 'function') return { type: v.name };
  if (v === null || typeof v !== 'object') return v;
  if (depth >= DEFINITION_DEPTH) return '[...]';
  if (Array.isArray(v)) return v.map((x) => definitionCopy(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const c = definitionCopy(x, depth + 1);
    if (c !== undefined) out[k] = c;
  }
  return out;
}
