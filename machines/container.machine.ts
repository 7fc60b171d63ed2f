import { assign, fromPromise, sendParent, setup } from 'xstate';
import type { ExitStatus, FailureInfo } from './types';
import { toFailureInfo } from './types';

/**
 * One container inside a sandbox. It is spawned by its sandbox machine in `created`
 * (the bundle was loaded and planned), starts its root process through the named
 * actor `startContainer`, and learns of that process's exit from the fact
 * `process.exited` that the sandbox forwards. It never does I/O itself.
 */

export interface ContainerInput {
  readonly sandboxId: string;
  readonly containerId: string;
  /** The sandbox's first container: its exit ends the sandbox (as in runsc). */
  readonly root: boolean;
}

export interface ContainerContext extends ContainerInput {
  pid?: number;
  hostPid?: number;
  exit?: ExitStatus;
  error?: FailureInfo;
  /** Commands accepted while running; also makes them real transitions for `snapshot.can()`. */
  signalsSent: number;
  execs: number;
  /**
   * An exit that arrived while the start reply was still on its way (events and
   * replies travel on different sockets, so their order is not guaranteed).
   */
  earlyExit?: { pid: number; exit: ExitStatus };
  /**
   * Set when the process was made at create and waits before its execve (`prepare`, or
   * a terminal's create): it can be signalled, and can die, before start.
   */
  prepared?: StartedProcess;
}

export interface StartedProcess {
  readonly pid: number;
  readonly hostPid: number;
}

export type ContainerEvent =
  | { type: 'start' }
  /** paddock-init made the process and holds it before execve (create/start split). */
  | { type: 'prepared'; pid: number; hostPid: number }
  /** Reattach found the prepared process running its program: it was started while no supervisor recorded it. */
  | { type: 'released' }
  /** CRIU restored this container's process tree into the sandbox (docs/decisions/0040). */
  | { type: 'restored'; pid: number; hostPid: number }
  | { type: 'signal' }
  | { type: 'exec' }
  | { type: 'destroy' }
  /**
   * Sent by the sandbox once its containers' processes are frozen (or thawed), or by
   * the engine once a pod container's own cgroup is (docs/decisions/0022).
   */
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'process.exited'; pid: number; exit: ExitStatus }
  /** The sandbox is gone (init exited or was killed) and this container's exit was never recorded. */
  | { type: 'sandbox.lost' };

/**
 * How a live container ends, running or paused alike: its root process exits, its
 * sandbox is lost (no status can be known), or it is destroyed.
 */
const endsAlive = {
  'process.exited': {
    guard: 'isOwnRootProcess',
    target: 'stopped',
    actions: { type: 'recordExit', params: ({ event }: { event: Extract<ContainerEvent, { type: 'process.exited' }> }) => event.exit },
  },
  'sandbox.lost': {
    target: 'stopped',
    actions: { type: 'recordExit', params: { exitCode: null, signal: null } },
  },
  destroy: 'stopped',
} as const;

export const containerMachine = setup({
  types: {
    context: {} as ContainerContext,
    input: {} as ContainerInput,
    events: {} as ContainerEvent,
  },
  actors: {
    startContainer: fromPromise<StartedProcess, { sandboxId: string; containerId: string }>(async () => {
      throw new Error('startContainer not provided');
    }),
  },
  actions: {
    recordStart: assign((_, started: StartedProcess) => ({ pid: started.pid, hostPid: started.hostPid, error: undefined })),
    recordExit: assign((_, exit: ExitStatus) => ({ exit })),
    keepEarlyExit: assign((_, early: { pid: number; exit: ExitStatus }) => ({ earlyExit: early })),
    applyEarlyExit: assign(({ context }) => (context.earlyExit ? { exit: context.earlyExit.exit, earlyExit: undefined } : {})),
    countSignal: assign(({ context }) => ({ signalsSent: context.signalsSent + 1 })),
    recordPrepared: assign((_, held: StartedProcess) => ({ prepared: held, pid: held.pid, hostPid: held.hostPid })),
    countExec: assign(({ context }) => ({ execs: context.execs + 1 })),
    notifyStarted: sendParent(({ context }) => ({ type: 'container.started', containerId: context.containerId })),
    notifyStartFailed: sendParent(({ context }) => ({
      type: 'container.startFailed',
      containerId: context.containerId,
    })),
    notifyStopped: sendParent(({ context }) => ({
      type: 'container.stopped',
      containerId: context.containerId,
      exit: context.exit,
    })),
  },
  delays: {
    /** paddock-init answers a start within milliseconds; this bounds a wedged one. */
    startTimeout: 10_000,
  },
  guards: {
    isOwnRootProcess: ({ context, event }) => event.type === 'process.exited' && event.pid === context.pid,
    isPrepared: ({ context }) => context.prepared !== undefined,
    /**
     * An exit while created: the held process's (prepared), or, with nothing held, a
     * start a supervisor made and died before it could record (exits.log has the proof).
     */
    isExitWhileCreated: ({ context, event }) =>
      event.type === 'process.exited' && (context.prepared === undefined || event.pid === context.prepared.pid),
    /** The same exit often arrives twice (event channel and exits.log); only a new status counts. */
    isNewStatusOfRootProcess: ({ context, event }) =>
      event.type === 'process.exited' &&
      event.pid === context.pid &&
      (context.exit === undefined || context.exit.exitCode !== event.exit.exitCode || context.exit.signal !== event.exit.signal),
    exitedBeforeStartReply: ({ context }, started: StartedProcess) => context.earlyExit?.pid === started.pid,
    heldProcessExited: ({ context }) => context.prepared !== undefined && context.earlyExit?.pid === context.prepared.pid,
  },
}).createMachine({
  id: 'container',
  context: ({ input }) => ({ ...input, signalsSent: 0, execs: 0 }),
  initial: 'created',
  states: {
    created: {
      description: 'Bundle loaded and planned; no process yet, or one held before its execve (prepared).',
      on: {
        start: 'starting',
        prepared: { actions: { type: 'recordPrepared', params: ({ event }) => ({ pid: event.pid, hostPid: event.hostPid }) } },
        signal: { guard: 'isPrepared', actions: 'countSignal' },
        released: {
          guard: 'isPrepared',
          target: 'running',
          actions: [{ type: 'recordStart', params: ({ context }) => context.prepared as StartedProcess }, 'notifyStarted'],
        },
        // A prepared process killed before start (runc allows kill on a created container),
        // or a start that happened while no supervisor could record it.
        restored: {
          target: 'running',
          actions: [{ type: 'recordStart', params: ({ event }) => ({ pid: event.pid, hostPid: event.hostPid }) }, 'notifyStarted'],
        },
        'process.exited': {
          guard: 'isExitWhileCreated',
          target: 'stopped',
          actions: [assign({ pid: ({ event }) => event.pid }), { type: 'recordExit', params: ({ event }) => event.exit }],
        },
        destroy: 'stopped',
        'sandbox.lost': {
          target: 'stopped',
          actions: { type: 'recordExit', params: { exitCode: null, signal: null } },
        },
      },
    },
    starting: {
      description: 'paddock-init is launching the root process (mounts, pivot_root, execve).',
      invoke: {
        id: 'startContainer',
        src: 'startContainer',
        input: ({ context }) => ({ sandboxId: context.sandboxId, containerId: context.containerId }),
        onDone: [
          {
            guard: { type: 'exitedBeforeStartReply', params: ({ event }) => event.output },
            target: 'stopped',
            actions: [{ type: 'recordStart', params: ({ event }) => event.output }, 'applyEarlyExit', 'notifyStarted'],
          },
          {
            target: 'running',
            actions: [{ type: 'recordStart', params: ({ event }) => event.output }, 'notifyStarted'],
          },
        ],
        onError: [
          {
            // The held process died before its release: nothing is left to start.
            guard: 'heldProcessExited',
            target: 'stopped',
            actions: [
              assign({ error: ({ event }) => toFailureInfo(event.error), pid: ({ context }) => context.earlyExit?.pid }),
              'applyEarlyExit',
              'notifyStartFailed',
            ],
          },
          {
            // A failed start changes nothing: the container stays created and can be retried or destroyed.
            target: 'created',
            actions: [assign({ error: ({ event }) => toFailureInfo(event.error) }), 'notifyStartFailed'],
          },
        ],
      },
      on: {
        'process.exited': {
          actions: { type: 'keepEarlyExit', params: ({ event }) => ({ pid: event.pid, exit: event.exit }) },
        },
      },
      after: {
        startTimeout: {
          target: 'created',
          actions: [
            assign({ error: { code: 'ETIMEOUT', message: 'container start timed out', step: 'start' } }),
            'notifyStartFailed',
          ],
        },
      },
    },
    running: {
      tags: ['alive'],
      description: 'The root process runs; exec and signal are allowed.',
      on: {
        signal: { actions: 'countSignal' },
        exec: { actions: 'countExec' },
        ...endsAlive,
        pause: 'paused',
      },
    },
    paused: {
      tags: ['alive'],
      description: 'Frozen, with its sandbox or alone in its own cgroup: signals are accepted (delivered as the freezer allows), exec is not.',
      on: {
        resume: 'running',
        signal: { actions: 'countSignal' },
        ...endsAlive,
      },
    },
    stopped: {
      description: 'The root process has exited (or never ran); its status is in context.exit.',
      entry: 'notifyStopped',
      on: {
        // A status that arrives after destroy/lost (read later from exits.log) still counts.
        'process.exited': {
          guard: 'isNewStatusOfRootProcess',
          actions: [{ type: 'recordExit', params: ({ event }) => event.exit }, 'notifyStopped'],
        },
      },
    },
  },
});

export type ContainerMachine = typeof containerMachine;
