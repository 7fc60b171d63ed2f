/**
 * OOM events (issue 16): an `oom` event on events$ each time the kernel's OOM killer
 * acts in a sandbox's memory cgroup (its limit is that cgroup's, 0009), as runc's
 * `events` reports them.
 *
 * - cgroup v1: an eventfd registered on memory.oom_control through
 *   cgroup.event_control (native/c/lib/sys.c, pd_oom_eventfd), watched on the pidfd
 *   watcher's epoll thread (readable = an OOM, or the cgroup's removal); each wake-up
 *   reads the counter and re-arms.
 * - cgroup v2: memory.events, which the kernel marks modified (inotify) when a counter
 *   changes; fs.watch wakes us.
 *
 * v2 counts `oom_kill` of memory.events: one event per rise, with the new total (other
 * counters changing are no OOM). v1 reports each wake-up of the eventfd while the
 * cgroup exists (as runc does); `oomKills` is then memory.oom_control's oom_kill,
 * or one more than the last event when the killer has not counted it yet.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Fd, NativeFacade } from '../../native/facade';
import type { PidfdWatcher } from '../channels/pidfd-watcher';

export interface OomWatch {
  stop(): void;
}

/** `oom_kill N` of memory.oom_control (v1) or memory.events (v2); undefined when unreadable. */
export function readOomKills(file: string): number | undefined {
  try {
    const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts watching the memory cgroup `memDir` (`v2`: a cgroup2 directory); `onOom`
 * gets each new oom_kill total. Failures to set up are the caller's to log: a sandbox
 * runs without OOM events rather than not at all.
 */
export function watchOom(memDir: string, v2: boolean, deps: { native: NativeFacade; watcher: PidfdWatcher }, onOom: (oomKills: number) => void): OomWatch {
  const file = path.join(memDir, v2 ? 'memory.events' : 'memory.oom_control');
  let last = readOomKills(file) ?? 0;
  let stopped = false;
  // v2: memory.events changes for other counters too (high, max): only a rise of
  // oom_kill is an OOM kill. v1: the eventfd fires when the cgroup hits OOM, *before*
  // the killer picks a victim and counts it, so the wake-up itself is the event (the
  // count read then may still be the old one: at least one more is reported).
  const check = (woken: boolean): boolean => {
    const now = readOomKills(file);
    if (now === undefined) return false; // the cgroup is gone
    if (now > last || woken) {
      last = Math.max(now, last + 1);
      onOom(last);
    }
    return true;
  };
  if (v2) {
    const w = fs.watch(file, { persistent: false }, () => {
      if (!stopped) check(false);
    });
    w.on('error', () => undefined);
    return {
      stop: () => {
        stopped = true;
        w.close();
      },
    };
  }
  const efd: Fd = deps.native.oomEventfd(memDir);
  let token: number | undefined;
  const counter = Buffer.alloc(8);
  const close = () => {
    if (token !== undefined) deps.watcher.unwatch(token);
    token = undefined;
    try {
      fs.closeSync(efd);
    } catch {
      // closed already
    }
  };
  const arm = () => {
    token = deps.watcher.watchReadable(efd, () => {
      token = undefined;
      if (stopped) return;
      try {
        fs.readSync(efd, counter, 0, 8, null); // resets the counter
      } catch {
        // EAGAIN: another wake-up took it
      }
      if (check(true)) arm();
      else close();
    });
  };
  try {
    arm();
  } catch (e) {
    close();
    throw e;
  }
  return {
    stop: () => {
      stopped = true;
      close();
    },
  };
}

/** What startOomEvents needs of the engine's shared state. */
export interface OomHost {
  readonly native: NativeFacade;
  readonly watcher: PidfdWatcher;
  emit(e: { type: 'oom'; sandboxId: string; containerId: string; oomKills: number }): void;
}

/**
 * OOM events of a sandbox whose cgroup has a memory controller; nothing for one
 * without a cgroup. A failure to set up is logged, not thrown: the sandbox runs.
 */
export function startOomEvents(
  host: OomHost,
  rt: { id: string; cgroup?: { layout: { mode: string }; dirOf(h: 'memory' | 'unified'): string | undefined }; oom?: OomWatch; log: { warn(o: object, m: string): void } },
  containerId: string,
): void {
  if (!rt.cgroup || rt.oom) return;
  const v2 = rt.cgroup.layout.mode === 'v2';
  const dir = rt.cgroup.dirOf(v2 ? 'unified' : 'memory');
  if (dir === undefined) return;
  try {
    rt.oom = watchOom(dir, v2, host, (oomKills) => host.emit({ type: 'oom', sandboxId: rt.id, containerId, oomKills }));
  } catch (e) {
    rt.log.warn({ err: e, step: 'oom_events' }, 'no OOM events for this sandbox');
  }
}
