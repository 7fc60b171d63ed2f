import { assign, setup } from 'xstate';
import type { LifecycleStatus } from './types';

/**
 * The engine's registry of sandboxes: which ids exist and the last status each
 * reported. Sandboxes are root actors of their own (each with its own persisted file
 * and lock); the supervisor holds the bookkeeping that cuts across them — duplicate
 * ids, listing, and refusing new work once the engine closes. Restart strategies
 * (one_for_one, ...) will hang off this machine.
 */

export interface SupervisorContext {
  sandboxes: Record<string, { status: LifecycleStatus }>;
}

export type SupervisorEvent =
  | { type: 'sandbox.register'; sandboxId: string }
  | { type: 'sandbox.statusChanged'; sandboxId: string; status: LifecycleStatus }
  | { type: 'sandbox.unregister'; sandboxId: string }
  | { type: 'close' };

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
  },
  actions: {
    register: assign(({ context, event }) =>
      event.type === 'sandbox.register'
        ? { sandboxes: { ...context.sandboxes, [event.sandboxId]: { status: 'creating' as const } } }
        : {},
    ),
    updateStatus: assign(({ context, event }) =>
      event.type === 'sandbox.statusChanged'
        ? { sandboxes: { ...context.sandboxes, [event.sandboxId]: { status: event.status } } }
        : {},
    ),
    unregister: assign(({ context, event }) => {
      if (event.type !== 'sandbox.unregister') return {};
      const sandboxes = { ...context.sandboxes };
      delete sandboxes[event.sandboxId];
      return { sandboxes };
    }),
  },
  guards: {
    isNewSandbox: ({ context, event }) =>
      event.type === 'sandbox.register' && context.sandboxes[event.sandboxId] === undefined,
    isKnownSandbox: ({ context, event }) =>
      (event.type === 'sandbox.statusChanged' || event.type === 'sandbox.unregister') &&
      context.sandboxes[event.sandboxId] !== undefined,
  },
}).createMachine({
  id: 'supervisor',
  context: { sandboxes: {} },
  initial: 'supervising',
  states: {
    supervising: {
      on: {
        'sandbox.register': { guard: 'isNewSandbox', actions: 'register' },
        'sandbox.statusChanged': { guard: 'isKnownSandbox', actions: 'updateStatus' },
        'sandbox.unregister': { guard: 'isKnownSandbox', actions: 'unregister' },
        close: 'closed',
      },
    },
    closed: {
      description: 'engine.close() was called: no new sandboxes; existing ones are left running.',
      type: 'final',
    },
  },
});

export type SupervisorMachine = typeof supervisorMachine;
