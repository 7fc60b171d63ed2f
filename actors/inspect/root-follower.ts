import * as fs from 'node:fs';
import type { Logger } from '../../base/logger';
import { SandboxPaths, listSandboxIds } from '../sandbox/state-store';

/** The part of the engine the follower uses. */
export interface FollowedEngine {
  attach(sandboxId: string): Promise<void>;
  release(sandboxId: string): void;
  refresh(sandboxId: string): boolean;
}

export interface RootFollower {
  /** Resolves after the first scan: every sandbox there at start is attached (or left for the next scan). */
  readonly ready: Promise<void>;
  stop(): void;
}

/**
 * What `paddock inspect --root R` shows: the sandboxes that other CLI calls (podman's,
 * containerd's) run from that root. Each one found is attached from its persisted
 * machine snapshot and released at once, so the view holds no lock and never gets in a
 * runtime call's way, while its event channel and pidfd keep the machine live. The
 * root is scanned again every `intervalMs` for sandboxes created since, and for state
 * files another call rewrote (engine.refresh); one whose state is locked by a running
 * call, or half made, is tried at the next scan.
 */
export function followRoot(engine: FollowedEngine, root: string, log: Logger, opts: { intervalMs?: number; skip?: (name: string) => boolean } = {}): RootFollower {
  const intervalMs = opts.intervalMs ?? 500;
  /** Followed sandboxes and the mtime of the state file their machine was last taken from. */
  const followed = new Map<string, number>();
  const mtime = (id: string): number => {
    try {
      return fs.statSync(new SandboxPaths(root, id).stateFile).mtimeMs;
    } catch {
      return 0;
    }
  };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const scan = async (): Promise<void> => {
    const present = new Set(listSandboxIds(root));
    // Deleted by another call: the engine lets go of it (its machine stops, the view drops it).
    for (const id of [...followed.keys()]) {
      if (present.has(id)) continue;
      followed.delete(id);
      try {
        engine.refresh(id);
      } catch (e) {
        log.debug({ sandboxId: id, err: (e as Error).message }, 'inspect: could not let go');
      }
    }
    for (const id of present) {
      if (stopped) return;
      if (opts.skip?.(id)) continue;
      const seen = followed.get(id);
      if (seen !== undefined) {
        // Moved on by another process (a start, a pause): its channels do not say so.
        const now = mtime(id);
        if (now !== seen) {
          followed.set(id, now);
          try {
            engine.refresh(id);
          } catch (e) {
            log.debug({ sandboxId: id, err: (e as Error).message }, 'inspect: could not refresh');
          }
        }
        continue;
      }
      try {
        const at = mtime(id);
        await engine.attach(id);
        engine.release(id);
        followed.set(id, at);
      } catch (e) {
        log.debug({ sandboxId: id, err: (e as Error).message }, 'inspect: not attached yet; next scan tries again');
      }
    }
  };
  const loop = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void scan().finally(loop);
    }, intervalMs);
  };
  const ready = scan().finally(loop);
  return {
    ready,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
