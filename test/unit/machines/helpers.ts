import { createActor, fromPromise, waitFor } from 'xstate';
import type { AnyActorRef, Snapshot } from 'xstate';
import { containerMachine } from '../../../machines/container.machine';
import type { StartedProcess } from '../../../machines/container.machine';
import { sandboxMachine } from '../../../machines/sandbox.machine';
import type { LaunchedSandbox } from '../../../machines/sandbox.machine';
import type { CheckpointRequest } from '../../../machines/types';

/** A promise whose settlement the test controls. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const LAUNCHED: LaunchedSandbox = { initPid: 1, initHostPid: 4242, initStartTime: 987654 };

/** A promise that never settles: the machine's own timeout has to end the wait. */
export const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export interface Effects {
  launch?: (input: { sandboxId: string }) => Promise<LaunchedSandbox>;
  start?: (input: { sandboxId: string; containerId: string }) => Promise<StartedProcess>;
  destroy?: (input: { sandboxId: string }) => Promise<void>;
  freeze?: (input: { sandboxId: string; initHostPid?: number }) => Promise<void>;
  thaw?: (input: { sandboxId: string }) => Promise<void>;
  checkpoint?: (input: { sandboxId: string; request: CheckpointRequest }) => Promise<void>;
  restore?: (input: { sandboxId: string; containerId: string; imagePath: string }) => Promise<StartedProcess>;
}

/** The sandbox machine with its effects replaced; defaults succeed. */
export function provideSandbox(effects: Effects = {}) {
  let nextPid = 100;
  const start = effects.start ?? (async () => ({ pid: nextPid, hostPid: 50000 + nextPid++ }));
  return sandboxMachine.provide({
    actors: {
      launchSandbox: fromPromise<LaunchedSandbox, { sandboxId: string }>(({ input }) =>
        (effects.launch ?? (async () => LAUNCHED))(input),
      ),
      destroySandbox: fromPromise<void, { sandboxId: string }>(({ input }) =>
        (effects.destroy ?? (async () => undefined))(input),
      ),
      freezeSandbox: fromPromise<void, { sandboxId: string; initHostPid?: number }>(({ input }) =>
        (effects.freeze ?? (async () => undefined))(input),
      ),
      thawSandbox: fromPromise<void, { sandboxId: string }>(({ input }) => (effects.thaw ?? (async () => undefined))(input)),
      checkpointSandbox: fromPromise<void, { sandboxId: string; request: CheckpointRequest }>(({ input }) =>
        (effects.checkpoint ?? (async () => undefined))(input),
      ),
      restoreSandbox: fromPromise<StartedProcess, { sandboxId: string; containerId: string; imagePath: string }>(({ input }) =>
        (effects.restore ?? (async () => ({ pid: 7, hostPid: 50007 })))(input),
      ),
      container: containerMachine.provide({
        actors: {
          startContainer: fromPromise<StartedProcess, { sandboxId: string; containerId: string }>(({ input }) =>
            start(input),
          ),
        },
      }),
    },
  });
}

export const INPUT = { sandboxId: 'sb1', bundleDir: '/bundles/sb1' };

export type SandboxActor = ReturnType<typeof startSandbox>;

export function startSandbox(effects: Effects = {}) {
  return createActor(provideSandbox(effects), { input: INPUT }).start();
}

export async function waitState<A extends AnyActorRef>(actor: A, value: string) {
  return waitFor(actor, (s: Snapshot<unknown> & { value?: unknown }) => s.value === value, { timeout: 1000 });
}

/** A child's snapshot (value + context) by id, or undefined. */
export function child(actor: AnyActorRef, id: string): { value: unknown; context: any; status: string } | undefined {
  const ref = (actor.getSnapshot() as { children: Record<string, AnyActorRef | undefined> }).children[id];
  return ref?.getSnapshot();
}

/** Lets promise callbacks and deferred sends run. */
export const flush = () => new Promise<void>((r) => setImmediate(r));

/**
 * A running sandbox: root container `c1` started with pid 100 / hostPid 50100.
 */
export async function runningSandbox(effects: Effects = {}) {
  const actor = startSandbox(effects);
  await waitState(actor, 'created');
  actor.send({ type: 'container.add', containerId: 'c1', bundleDir: '/bundles/c1' });
  actor.send({ type: 'start' });
  await waitState(actor, 'running');
  return actor;
}

/**
 * Actor options that restore a persisted snapshot. XState's typings demand `input`
 * for machines that declare one even when a snapshot is given; it is ignored then.
 */
export function fromSnapshot(snapshot: unknown) {
  return { snapshot: snapshot as any, input: undefined as never };
}
