import { assign, enqueueActions, fromPromise, setup, stopChild } from 'xstate';
import { containerMachine } from './container.machine';
import { processActorId } from './ids';
import { processMachine } from './process.machine';
import type { StartedProcess } from './container.machine';
import type { CheckpointRequest, ExitStatus, FailureInfo } from './types';
import { toFailureInfo } from './types';

/**
 * One sandbox: the paddock-init process and everything inside it. It launches init
 * through the named actor `launchSandbox`, spawns a `container` child per container
 * and a `process` child per exec'd process, forwards exit facts to them, and ends
 * through `destroySandbox`. It is a root actor of its own (one persisted file and one
 * lock per sandbox); the supervisor machine keeps the registry of sandboxes.
 */

export interface SandboxInput {
  readonly sandboxId: string;
  readonly bundleDir: string;
}

export interface ContainerEntry {
  readonly root: boolean;
  readonly bundleDir: string;
}

export interface ProcessEntry {
  readonly containerId: string;
}

export interface SandboxContext extends SandboxInput {
  initPid?: number;
  /** Host pid of paddock-init, kept so a restarted supervisor can pidfd_open it. */
  initHostPid?: number;
  /** Start time of init (clock ticks since boot) to detect pid reuse on reattach. */
  initStartTime?: number;
  rootContainerId?: string;
  containers: Record<string, ContainerEntry>;
  processes: Record<string, ProcessEntry>;
  /**
   * Exits of exec'd processes that arrived before their `process.add` (the exec reply
   * and the exit event travel on different sockets); applied when the process is added.
   */
  pendingExits: Record<string, ExitStatus>;
  /** The checkpoint being taken (state `checkpointing` only). */
  checkpoint?: CheckpointRequest;
  /** The checkpoint a `restoring` sandbox is made from (its image directory). */
  restoreFrom?: string;
  /** paddock-init exited while a checkpoint ran (the dump killed the root container). */
  initGone?: boolean;
  /** Status of the root container, which is the sandbox's own exit status. */
  exit?: ExitStatus;
  error?: FailureInfo;
}

export interface LaunchedSandbox {
  readonly initPid: number;
  readonly initHostPid: number;
  readonly initStartTime: number;
}

export type SandboxEvent =
  | { type: 'start' }
  | { type: 'destroy' }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'checkpoint'; request: CheckpointRequest }
  /** Instead of `start`: the root container's process tree comes from a checkpoint. */
  | { type: 'restore'; imagePath: string }
  | { type: 'container.add'; containerId: string; bundleDir: string }
  | { type: 'container.start'; containerId: string }
  | { type: 'container.remove'; containerId: string }
  | { type: 'process.add'; containerId: string; pid: number; hostPid: number }
  | { type: 'process.exited'; containerId: string; pid: number; kind: 'container' | 'exec'; exit: ExitStatus }
  | { type: 'init.exited' }
  | { type: 'container.started'; containerId: string }
  | { type: 'container.startFailed'; containerId: string }
  | { type: 'container.stopped'; containerId: string; exit?: ExitStatus };

export const sandboxMachine = setup({
  types: {
    context: {} as SandboxContext,
    input: {} as SandboxInput,
    events: {} as SandboxEvent,
  },
  actors: {
    container: containerMachine,
    process: processMachine,
    launchSandbox: fromPromise<LaunchedSandbox, { sandboxId: string }>(async () => {
      throw new Error('launchSandbox not provided');
    }),
    destroySandbox: fromPromise<void, { sandboxId: string }>(async () => {
      throw new Error('destroySandbox not provided');
    }),
    /** Freezes the containers' processes (not paddock-init); thaws back itself if it fails. */
    freezeSandbox: fromPromise<void, { sandboxId: string; initHostPid?: number }>(async () => {
      throw new Error('freezeSandbox not provided');
    }),
    thawSandbox: fromPromise<void, { sandboxId: string }>(async () => {
      throw new Error('thawSandbox not provided');
    }),
    /** Dumps the root container's process tree with CRIU; it resumes the tree itself when the dump fails. */
    checkpointSandbox: fromPromise<void, { sandboxId: string; request: CheckpointRequest }>(async () => {
      throw new Error('checkpointSandbox not provided');
    }),
    /** Restores a checkpoint as the root container's process tree, in this sandbox's namespaces. */
    restoreSandbox: fromPromise<StartedProcess, { sandboxId: string; containerId: string; imagePath: string }>(async () => {
      throw new Error('restoreSandbox not provided');
    }),
  },
  actions: {
    recordLaunch: assign((_, launched: LaunchedSandbox) => ({ ...launched })),
    clearFailure: assign({ error: undefined }),
    addContainer: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'container.add') return;
      const root = context.rootContainerId === undefined;
      enqueue.spawnChild('container', {
        id: event.containerId,
        // Read in inspectors as `sandbox/container`; unique in the sandbox's own actor system.
        systemId: `${context.sandboxId}/${event.containerId}`,
        input: { sandboxId: context.sandboxId, containerId: event.containerId, root },
      });
      enqueue.assign({
        containers: { ...context.containers, [event.containerId]: { root, bundleDir: event.bundleDir } },
        ...(root ? { rootContainerId: event.containerId } : {}),
      });
    }),
    startRootContainer: enqueueActions(({ enqueue, context }) => {
      if (context.rootContainerId !== undefined) enqueue.sendTo(context.rootContainerId, { type: 'start' });
    }),
    startContainer: enqueueActions(({ enqueue, event }) => {
      if (event.type === 'container.start') enqueue.sendTo(event.containerId, { type: 'start' });
    }),
    removeContainer: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'container.remove') return;
      const containers = { ...context.containers };
      delete containers[event.containerId];
      const processes: Record<string, ProcessEntry> = {};
      for (const [id, entry] of Object.entries(context.processes)) {
        if (entry.containerId === event.containerId) enqueue(stopChild(id));
        else processes[id] = entry;
      }
      enqueue(stopChild(event.containerId));
      enqueue.assign({ containers, processes });
    }),
    addProcess: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'process.add') return;
      const id = processActorId(event.pid);
      enqueue.spawnChild('process', {
        // No systemId: a pid init reuses replaces its exited child in the same transition,
        // before the old one is unregistered.
        id,
        input: { sandboxId: context.sandboxId, containerId: event.containerId, pid: event.pid, hostPid: event.hostPid },
      });
      const early = context.pendingExits[id];
      if (early) {
        enqueue.sendTo(id, { type: 'process.exited', pid: event.pid, exit: early });
        const pendingExits = { ...context.pendingExits };
        delete pendingExits[id];
        enqueue.assign({ pendingExits });
      }
      enqueue.assign({ processes: { ...context.processes, [id]: { containerId: event.containerId } } });
    }),
    forwardExit: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'process.exited') return;
      const target = event.kind === 'container' ? event.containerId : processActorId(event.pid);
      const known = event.kind === 'container' ? context.containers[target] : context.processes[target];
      if (known === undefined) {
        // An exec'd process may exit before it is registered: keep its status for process.add.
        // Exits of containers never registered (or already removed) have no listener.
        if (event.kind === 'exec') enqueue.assign({ pendingExits: { ...context.pendingExits, [target]: event.exit } });
        return;
      }
      enqueue.sendTo(target, { type: 'process.exited', pid: event.pid, exit: event.exit });
    }),
    recordRootExit: assign(({ context, event }) =>
      event.type === 'container.stopped' && event.containerId === context.rootContainerId && event.exit
        ? { exit: event.exit }
        : {},
    ),
    pauseContainers: enqueueActions(({ enqueue, context }) => {
      for (const id of Object.keys(context.containers)) enqueue.sendTo(id, { type: 'pause' });
    }),
    resumeContainers: enqueueActions(({ enqueue, context }) => {
      for (const id of Object.keys(context.containers)) enqueue.sendTo(id, { type: 'resume' });
    }),
    recordCheckpoint: assign((_, request: CheckpointRequest) => ({ checkpoint: request, initGone: undefined, error: undefined })),
    clearCheckpoint: assign({ checkpoint: undefined, initGone: undefined }),
    markInitGone: assign({ initGone: true }),
    adoptRestoredRoot: enqueueActions(({ enqueue, context }, started: StartedProcess) => {
      if (context.rootContainerId !== undefined) enqueue.sendTo(context.rootContainerId, { type: 'restored', pid: started.pid, hostPid: started.hostPid });
    }),
    loseChildren: enqueueActions(({ enqueue, context }) => {
      for (const id of Object.keys(context.containers)) enqueue.sendTo(id, { type: 'sandbox.lost' });
      for (const id of Object.keys(context.processes)) enqueue.sendTo(id, { type: 'sandbox.lost' });
    }),
  },
  delays: {
    /** A launch that neither succeeds nor fails in time is a failure, never a hang. */
    launchTimeout: 10_000,
    destroyTimeout: 10_000,
    /** The CRIU run is bounded by its actor too; this is the machine's own bound. */
    checkpointTimeout: 120_000,
    restoreTimeout: 120_000,
  },
  guards: {
    hasNoRoot: ({ context }) => context.rootContainerId === undefined,
    hasRoot: ({ context }) => context.rootContainerId !== undefined,
    isNewContainer: ({ context, event }) =>
      event.type === 'container.add' && context.containers[event.containerId] === undefined,
    isKnownContainer: ({ context, event }) =>
      (event.type === 'container.start' || event.type === 'container.remove' || event.type === 'process.add') &&
      context.containers[event.containerId] !== undefined,
    isRemovableContainer: ({ context, event }) =>
      event.type === 'container.remove' &&
      context.containers[event.containerId] !== undefined &&
      event.containerId !== context.rootContainerId,
    isRootEvent: ({ context, event }) =>
      'containerId' in event && event.containerId === context.rootContainerId,
    /** The root's exit, or init's, arrived while the dump ran: the sandbox has ended. */
    endedDuringCheckpoint: ({ context }) => context.exit !== undefined || context.initGone === true,
    leavesRunning: ({ context }) => context.checkpoint?.leaveRunning === true,
  },
}).createMachine({
  id: 'sandbox',
  context: ({ input }) => ({ ...input, containers: {}, processes: {}, pendingExits: {} }),
  initial: 'creating',
  on: {
    // Exit facts can arrive in any state (late, from exits.log); children decide what they mean.
    'process.exited': { actions: 'forwardExit' },
  },
  states: {
    creating: {
      description: 'Launching paddock-init into fresh namespaces and connecting its channels.',
      invoke: {
        id: 'launchSandbox',
        src: 'launchSandbox',
        input: ({ context }) => ({ sandboxId: context.sandboxId }),
        onDone: { target: 'created', actions: { type: 'recordLaunch', params: ({ event }) => event.output } },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => toFailureInfo(event.error) }) },
      },
      after: {
        launchTimeout: {
          target: 'failed',
          actions: assign({ error: { code: 'ETIMEOUT', message: 'sandbox launch timed out', step: 'launch' } }),
        },
      },
    },
    created: {
      tags: ['alive'],
      description: 'paddock-init is up and answering; the root container is planned but not started.',
      on: {
        'container.add': { guard: 'hasNoRoot', actions: 'addContainer' },
        start: { guard: 'hasRoot', target: 'starting' },
        restore: { guard: 'hasRoot', target: 'restoring', actions: assign({ restoreFrom: ({ event }) => event.imagePath }) },
        destroy: 'destroying',
        // A prepared root process killed before start: the sandbox ends with it.
        'container.stopped': { guard: 'isRootEvent', target: 'stopped', actions: 'recordRootExit' },
        // ... or started while no supervisor could record it (found so on reattach).
        'container.started': { guard: 'isRootEvent', target: 'running' },
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
      },
    },
    starting: {
      tags: ['alive'],
      entry: ['clearFailure', 'startRootContainer'],
      on: {
        'container.started': { guard: 'isRootEvent', target: 'running' },
        'container.startFailed': { guard: 'isRootEvent', target: 'created' },
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
        destroy: 'destroying',
      },
    },
    running: {
      tags: ['alive'],
      description: 'The root container runs; more containers and exec are allowed.',
      on: {
        'container.add': { guard: 'isNewContainer', actions: 'addContainer' },
        'container.start': { guard: 'isKnownContainer', actions: 'startContainer' },
        'container.remove': { guard: 'isRemovableContainer', actions: 'removeContainer' },
        'process.add': { guard: 'isKnownContainer', actions: 'addProcess' },
        'container.stopped': { guard: 'isRootEvent', target: 'stopped', actions: 'recordRootExit' },
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
        destroy: 'destroying',
        pause: 'pausing',
        checkpoint: { target: 'checkpointing', actions: { type: 'recordCheckpoint', params: ({ event }) => event.request } },
      },
    },
    checkpointing: {
      tags: ['alive'],
      description:
        'CRIU dumps the root container\'s process tree. Then the sandbox runs on (leaveRunning) or has stopped: the dump kills the tree, and init exits with it.',
      invoke: {
        id: 'checkpointSandbox',
        src: 'checkpointSandbox',
        input: ({ context }) => ({ sandboxId: context.sandboxId, request: context.checkpoint as CheckpointRequest }),
        onDone: [
          { guard: 'endedDuringCheckpoint', target: 'stopped', actions: 'clearCheckpoint' },
          { guard: 'leavesRunning', target: 'running', actions: 'clearCheckpoint' },
          { target: 'stopped', actions: 'clearCheckpoint' },
        ],
        // CRIU resumes the tree when a dump fails: it runs on, unless it ended meanwhile.
        onError: [
          { guard: 'endedDuringCheckpoint', target: 'stopped', actions: ['clearCheckpoint', assign({ error: ({ event }) => toFailureInfo(event.error) })] },
          { target: 'running', actions: ['clearCheckpoint', assign({ error: ({ event }) => toFailureInfo(event.error) })] },
        ],
      },
      after: {
        checkpointTimeout: {
          target: 'running',
          actions: ['clearCheckpoint', assign({ error: { code: 'ETIMEOUT', message: 'checkpoint timed out', step: 'checkpoint' } })],
        },
      },
      on: {
        // The dump's own kill: recorded, and the sandbox stops once the dump is done.
        'container.stopped': { guard: 'isRootEvent', actions: 'recordRootExit' },
        'init.exited': { actions: ['markInitGone', 'loseChildren'] },
        'process.add': { guard: 'isKnownContainer', actions: 'addProcess' },
        destroy: 'destroying',
      },
    },
    restoring: {
      tags: ['alive'],
      description: 'paddock-init is up; CRIU restores the root container\'s process tree from a checkpoint into this sandbox.',
      entry: 'clearFailure',
      invoke: {
        id: 'restoreSandbox',
        src: 'restoreSandbox',
        input: ({ context }) => ({
          sandboxId: context.sandboxId,
          containerId: context.rootContainerId as string,
          imagePath: context.restoreFrom as string,
        }),
        onDone: { target: 'running', actions: { type: 'adoptRestoredRoot', params: ({ event }) => event.output } },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => toFailureInfo(event.error) }) },
      },
      after: {
        restoreTimeout: {
          target: 'failed',
          actions: assign({ error: { code: 'ETIMEOUT', message: 'restore timed out', step: 'restore' } }),
        },
      },
      on: {
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
        destroy: 'destroying',
      },
    },
    pausing: {
      tags: ['alive'],
      description: 'Freezing the containers\' processes; paddock-init stays thawed and keeps answering.',
      entry: 'clearFailure',
      invoke: {
        id: 'freezeSandbox',
        src: 'freezeSandbox',
        input: ({ context }) => ({ sandboxId: context.sandboxId, ...(context.initHostPid !== undefined ? { initHostPid: context.initHostPid } : {}) }),
        onDone: { target: 'paused', actions: 'pauseContainers' },
        // The freezer thawed back: nothing changed.
        onError: { target: 'running', actions: assign({ error: ({ event }) => toFailureInfo(event.error) }) },
      },
      on: {
        // The exit status and the sandbox's end win over the pause.
        'process.add': { guard: 'isKnownContainer', actions: 'addProcess' },
        'container.stopped': { guard: 'isRootEvent', target: 'stopped', actions: 'recordRootExit' },
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
        destroy: 'destroying',
      },
    },
    paused: {
      tags: ['alive'],
      description:
        'The containers\' processes are frozen. Signals still reach them (SIGKILL at once on cgroup v2, on thaw on v1); destroy works.',
      on: {
        resume: 'resuming',
        // An exec whose reply raced the pause is still recorded.
        'process.add': { guard: 'isKnownContainer', actions: 'addProcess' },
        'container.stopped': { guard: 'isRootEvent', target: 'stopped', actions: 'recordRootExit' },
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
        destroy: 'destroying',
      },
    },
    resuming: {
      tags: ['alive'],
      entry: 'clearFailure',
      invoke: {
        id: 'thawSandbox',
        src: 'thawSandbox',
        input: ({ context }) => ({ sandboxId: context.sandboxId }),
        onDone: { target: 'running', actions: 'resumeContainers' },
        onError: { target: 'paused', actions: assign({ error: ({ event }) => toFailureInfo(event.error) }) },
      },
      on: {
        'process.add': { guard: 'isKnownContainer', actions: 'addProcess' },
        'container.stopped': { guard: 'isRootEvent', target: 'stopped', actions: 'recordRootExit' },
        'init.exited': { target: 'stopped', actions: 'loseChildren' },
        destroy: 'destroying',
      },
    },
    stopped: {
      description: 'The root container has exited; paddock-init has exited or is exiting.',
      on: {
        'container.stopped': { guard: 'isRootEvent', actions: 'recordRootExit' },
        'init.exited': { actions: 'loseChildren' },
        destroy: 'destroying',
      },
    },
    failed: {
      description: 'The launch failed; context.error says which step.',
      on: { destroy: 'destroying' },
    },
    destroying: {
      description: 'Killing paddock-init (and so every process of the sandbox) and removing its state.',
      invoke: {
        id: 'destroySandbox',
        src: 'destroySandbox',
        input: ({ context }) => ({ sandboxId: context.sandboxId }),
        onDone: { target: 'destroyed', actions: 'loseChildren' },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => toFailureInfo(event.error) }) },
      },
      after: {
        destroyTimeout: {
          target: 'failed',
          actions: assign({ error: { code: 'ETIMEOUT', message: 'sandbox destroy timed out', step: 'destroy' } }),
        },
      },
    },
    destroyed: {
      type: 'final',
    },
  },
});

export type SandboxMachine = typeof sandboxMachine;
