import type { ActorRefLike, InspectionEvent, Observer } from 'xstate';
import type { InspectUrl } from '../engine/api';
import { PaddockError } from '../../base/errors';
import type { Logger } from '../../base/logger';
import { checkOptionKeys } from '../../base/options';
import { INSPECT_URL_KEYS } from '../engine/option-keys';
import { sanitize, viewOfSnapshot } from './sanitize';
import { StatelyWire } from './stately-wire';
import { BoundedWebSocketAdapter } from './ws-adapter';

/** The caller's inspector as one function, and how to let go of what paddock made for it. */
export interface UserInspector {
  readonly next: (event: InspectionEvent) => void;
  /** Stops what paddock made itself (the `{ url }` socket); a caller's own inspector is the caller's. */
  readonly close: () => void;
}

/** Refuses a bad `inspect` option (EINVALID_ARGUMENT naming what is wrong) before createEngine makes anything. */
export function checkInspectOption(option: unknown): void {
  if (option === undefined || typeof option === 'function') return;
  if (option === null || typeof option !== 'object') throw badOption(option);
  if ('url' in option) {
    checkOptionKeys(option, INSPECT_URL_KEYS, 'createEngine options.inspect');
    inspectUrl(option as InspectUrl);
    return;
  }
  if ('inspect' in option) {
    const inner = (option as { inspect: unknown }).inspect;
    if (typeof inner !== 'function' && typeof (inner as { next?: unknown } | null)?.next !== 'function') throw badOption(option);
    return;
  }
  if (typeof (option as { next?: unknown }).next !== 'function') throw badOption(option);
}

/** Makes the sink of a checked option. */
export function userInspector(option: unknown, log: Logger): UserInspector | undefined {
  checkInspectOption(option);
  if (option === undefined) return undefined;
  const none = () => undefined;
  if (typeof option === 'function') return { next: guardSanitized(option as (e: InspectionEvent) => void), close: none };
  if ('url' in (option as object)) return urlInspector(inspectUrl(option as InspectUrl), log);
  const target = 'inspect' in (option as object) ? (option as { inspect: unknown }).inspect : option;
  if (typeof target === 'function') return { next: guardSanitized(target as (e: InspectionEvent) => void), close: none };
  const obs = target as Observer<InspectionEvent>;
  return { next: guardSanitized((e) => obs.next?.(e)), close: none };
}

function badOption(option: unknown): PaddockError {
  const what = option === null ? 'null' : Array.isArray(option) ? 'an array' : typeof option;
  return new PaddockError(
    'EINVALID_ARGUMENT',
    `inspect must be a function, an observer, an inspector from @statelyai/inspect or { url: 'ws://…' }, not ${what === 'object' ? 'an object without next, inspect or url' : what}`,
    { field: 'inspect' },
  );
}

function inspectUrl(option: InspectUrl): string {
  const url = option.url;
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')) {
    throw new PaddockError('EINVALID_ARGUMENT', `inspect.url must be a ws:// or wss:// address, not ${JSON.stringify(url)}`, { field: 'inspect.url' });
  }
  return parsed.toString();
}

function urlInspector(url: string, log: Logger): UserInspector {
  const adapter = new BoundedWebSocketAdapter(url, log);
  const wire = new StatelyWire((messages) => adapter.sendAll(messages));
  adapter.start();
  return { next: wire.next, close: () => adapter.stop() };
}

/**
 * Hands `next` the event with what a viewer may see: snapshots and events sanitised
 * (no env values, no fds), and an actor's own getSnapshot() answering the same. The
 * machines hold none of those today; this keeps a later field from leaking.
 */
function guardSanitized(next: (e: InspectionEvent) => void): (e: InspectionEvent) => void {
  return (e) => next(sanitizedEvent(e));
}

export function sanitizedEvent(e: InspectionEvent): InspectionEvent {
  switch (e.type) {
    case '@xstate.snapshot':
      return { ...e, actorRef: viewRef(e.actorRef), snapshot: viewOfSnapshot(e.snapshot) as never, event: sanitize(e.event) as never };
    case '@xstate.event':
      return { ...e, actorRef: viewRef(e.actorRef), event: sanitize(e.event) as never };
    case '@xstate.actor':
      return { ...e, actorRef: viewRef(e.actorRef) };
    case '@xstate.action':
      return { ...e, actorRef: viewRef(e.actorRef), action: { type: e.action.type, params: sanitize(e.action.params) } };
    default:
      return { ...e, actorRef: viewRef(e.actorRef), event: sanitize((e as { event?: unknown }).event) as never } as InspectionEvent;
  }
}

const views = new WeakMap<ActorRefLike, ActorRefLike>();

/** The actor as an inspector sees it: the same actor, whose getSnapshot() is sanitised. */
function viewRef(ref: ActorRefLike): ActorRefLike {
  let v = views.get(ref);
  if (!v) {
    v = new Proxy(ref, {
      get(target, key) {
        if (key === 'getSnapshot') return () => viewOfSnapshot(target.getSnapshot());
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    views.set(ref, v);
  }
  return v;
}
