import type { AnyActorRef } from 'xstate';
import type { Runtime } from '../sandbox/runtime';

/** What stopping one sandbox needs from the engine. */
export interface StopOps {
  /** A signal to every process of one container, through paddock-init (`kill --all`). */
  signal(containerId: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  resume(): Promise<void>;
  /** SIGKILL to paddock-init itself, through its pidfd. */
  killInit(): void;
}

/**
 * SIGTERM to every process of every running container, then SIGKILL to init once
 * `graceMs` has passed; both waits are on init's pidfd. True when it had to be killed.
 */
/** True when init's pidfd reports its exit within `ms` (a bounded wait, no polling). */
export async function initExitsWithin(rt: Runtime, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([
    rt.initExited.promise.then(() => true),
    new Promise<false>((r) => {
      timer = setTimeout(() => r(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return gone;
}

export async function stopSandbox(rt: Runtime, graceMs: number, ops: StopOps): Promise<boolean> {
  const snap = rt.actor.getSnapshot();
  // Created but never started: no user process ran, destroy alone ends it.
  if (String(snap.value) === 'created') return false;
  // A frozen process cannot act on SIGTERM (nor, under the v1 freezer, die of SIGKILL).
  if (String(snap.value) === 'paused') await ops.resume().catch((e) => rt.log.warn({ err: e }, 'shutdown: resume before stop'));
  if (snap.hasTag('alive')) {
    for (const [cid, c] of rt.containers) {
      const ref = snap.children[cid] as AnyActorRef | undefined;
      if (!c || !ref || ref.getSnapshot().value !== 'running') continue;
      await ops.signal(cid, 'SIGTERM').catch((e) => rt.log.debug({ err: e, containerId: cid }, 'shutdown: SIGTERM'));
    }
    if (await initExitsWithin(rt, graceMs)) return false;
  }
  if (!rt.initAlive) return false;
  // SIGKILL through init first, so it reaps and records each status; init itself only
  // if that does not end the sandbox (init wedged or gone deaf).
  for (const cid of rt.containers.keys()) {
    if (!rt.initAlive) break;
    await ops.signal(cid, 'SIGKILL').catch(() => undefined);
  }
  if (await initExitsWithin(rt, 2_000)) return true;
  try {
    ops.killInit();
  } catch {
    // exited meanwhile
  }
  if (!(await initExitsWithin(rt, 10_000))) rt.log.warn('shutdown: init did not exit after SIGKILL within 10 s');
  return true;
}
