import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Logger } from '../../base/logger';
import { userInspector, type UserInspector } from './inspect-option';

export type InspectionSink = (event: InspectionEvent) => void;

/** XState's ProcessingStatus.Stopped: stopping an actor emits no inspection event, so the registry asks. */
const STOPPED = 2;

/**
 * The engine's one inspection observer, given to every actor it creates (sandbox,
 * container, process, supervisor, restart, pool, health, group). It fans each event
 * out to the caller's inspector and to live views, and keeps the actors that are alive
 * so a viewer that connects later is shown what exists now. With nobody watching it
 * only keeps that registry. A sink that throws is dropped: the engine never fails
 * because of a viewer.
 */
export class InspectionHub {
  private readonly sinks = new Set<InspectionSink>();
  private readonly live = new Map<string, AnyActorRef>();
  private sweepAt = 256;
  private readonly user: UserInspector | undefined;

  constructor(
    option: unknown,
    private readonly log: Logger,
  ) {
    this.user = userInspector(option, log);
    if (this.user) this.sinks.add(this.user.next);
  }

  /** What createActor's `inspect` gets. */
  readonly observe = (event: InspectionEvent): void => {
    if (event.type === '@xstate.actor') {
      this.live.set(event.actorRef.sessionId, event.actorRef as AnyActorRef);
      if (this.live.size >= this.sweepAt) this.sweep();
    } else if (event.type === '@xstate.snapshot' && (event.snapshot as { status?: string }).status !== 'active') {
      this.live.delete(event.actorRef.sessionId);
    }
    if (this.sinks.size === 0) return;
    for (const sink of this.sinks) {
      try {
        sink(event);
      } catch (err) {
        this.sinks.delete(sink);
        this.log.warn({ err }, 'an inspector threw; it gets no more inspection events');
      }
    }
  };

  /** Adds a sink (a live view); the returned function removes it. */
  attach(sink: InspectionSink): () => void {
    this.sinks.add(sink);
    return () => {
      this.sinks.delete(sink);
    };
  }

  /** The actors alive now, parents before their children (as they were created). */
  liveActors(): AnyActorRef[] {
    this.sweep();
    return [...this.live.values()];
  }

  /** Lets go of what the hub made (the `{ url }` socket); called by engine.close(). */
  close(): void {
    this.user?.close();
    this.sinks.clear();
    this.live.clear();
  }

  private sweep(): void {
    for (const [id, ref] of this.live) if (isGone(ref)) this.live.delete(id);
    this.sweepAt = Math.max(256, this.live.size * 2);
  }
}

function isGone(ref: AnyActorRef): boolean {
  if ((ref as unknown as { _processingStatus?: number })._processingStatus === STOPPED) return true;
  const s = ref.getSnapshot() as { status?: string } | undefined;
  return s !== undefined && s.status !== 'active';
}
