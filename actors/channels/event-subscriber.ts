import type * as nano from 'nanomsg';
import { Observable, Subject } from 'rxjs';
import { decode } from '../../protocols/decode';
import type { Message } from '../../protocols/messages';
import { nanomsg } from './control-client';
import type { Logger } from '../../base/logger';

/**
 * The supervisor's SUB end of a sandbox's event channel. PUB/SUB is lossy by nature
 * (a subscriber that is not yet connected misses messages), so the engine proves the
 * subscription live with PROBE_EVENTS before it relies on it, and always queries
 * state after (re)connecting: list, then watch.
 */
export class EventSubscriber {
  private readonly sock: nano.NanoSocket;
  private readonly subject = new Subject<Message>();
  readonly events$: Observable<Message> = this.subject.asObservable();
  private closed = false;

  constructor(socketPath: string, private readonly log: Logger) {
    this.sock = nanomsg().socket('sub', { reconn: 1, maxreconn: 10 });
    this.sock.on('data', (buf: Buffer) => {
      try {
        this.subject.next(decode(buf));
      } catch (e) {
        this.log.warn({ err: e }, 'dropped an undecodable event');
      }
    });
    this.sock.on('error', (e: Error) => this.log.warn({ err: e }, 'event channel error'));
    this.sock.connect(`ipc://${socketPath}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
    this.subject.complete();
  }
}
