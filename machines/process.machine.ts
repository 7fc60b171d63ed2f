import { assign, setup } from 'xstate';
import type { ExitStatus } from './types';

/**
 * A process exec'd into a running container. It exists once paddock-init has
 * started it (exec replied with its pid), so it begins in `running`; the only fact
 * it waits for is its own exit, forwarded by the sandbox from the event channel or
 * from exits.log.
 */

export interface ProcessInput {
  readonly sandboxId: string;
  readonly containerId: string;
  readonly pid: number;
  readonly hostPid: number;
}

export interface ProcessContext extends ProcessInput {
  exit?: ExitStatus;
  /** Signals accepted while running; also makes `signal` a real transition for `snapshot.can()`. */
  signalsSent: number;
}

export type ProcessEvent =
  | { type: 'signal' }
  | { type: 'process.exited'; pid: number; exit: ExitStatus }
  | { type: 'sandbox.lost' };

export const processMachine = setup({
  types: {
    context: {} as ProcessContext,
    input: {} as ProcessInput,
    events: {} as ProcessEvent,
  },
  actions: {
    recordExit: assign((_, exit: ExitStatus) => ({ exit })),
    countSignal: assign(({ context }) => ({ signalsSent: context.signalsSent + 1 })),
  },
  guards: {
    isThisProcess: ({ context, event }) => event.type === 'process.exited' && event.pid === context.pid,
  },
}).createMachine({
  id: 'process',
  context: ({ input }) => ({ ...input, signalsSent: 0 }),
  initial: 'running',
  states: {
    running: {
      tags: ['alive'],
      on: {
        signal: { actions: 'countSignal' },
        'process.exited': {
          guard: 'isThisProcess',
          target: 'exited',
          actions: { type: 'recordExit', params: ({ event }) => event.exit },
        },
        'sandbox.lost': {
          target: 'exited',
          actions: { type: 'recordExit', params: { exitCode: null, signal: null } },
        },
      },
    },
    exited: {
      on: {
        'process.exited': {
          guard: 'isThisProcess',
          actions: { type: 'recordExit', params: ({ event }) => event.exit },
        },
      },
    },
  },
});

export type ProcessMachine = typeof processMachine;
