import { checkOptionKeys, knownKeys } from '../../base/options';
import { Subject } from 'rxjs';
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import type { groupMachine, ChildRef } from '../../machines/group.machine';
import { isValidId } from '../../machines/ids';
import { resolveRestartPolicy } from '../../machines/restart-policy';
import type { ExitStatus } from '../../machines/types';
import { PaddockError } from '../../base/errors';
import type { Engine, LeafSpec, SupervisorEvent, SupervisorHandle, SupervisorSpec, SupervisorStatus } from '../engine/api';

/**
 * OTP supervisor trees as plain config: each group is a group machine, each leaf a
 * sandbox started and stopped through a {@link LeafDriver} (the engine, or a fake in
 * unit tests). A nested group is one child of its parent: started when the parent
 * starts it, and reported to the parent as failed when it escalates.
 */

/** What a tree needs from the engine. `onExit` is called for a leaf's sandbox that stopped. */
export interface LeafDriver {
  start(leaf: LeafSpec): Promise<void>;
  stop(leafId: string): Promise<void>;
  onExit(listener: (leafId: string, exit: ExitStatus) => void): () => void;
  /** An XState inspection observer, so the group machines show in the inspector. */
  readonly inspect?: (event: unknown) => void;
}

const isGroup = (c: LeafSpec | SupervisorSpec): c is SupervisorSpec => 'children' in c;

const GROUP_KEYS = knownKeys<SupervisorSpec>()({ name: 1, strategy: 1, maxRestarts: 1, periodMs: 1, children: 1 });
const LEAF_KEYS = knownKeys<LeafSpec>()({ id: 1, bundle: 1, restart: 1 });

/** Checks a whole tree before anything starts; errors name the path of the bad field. */
export function validateTree(spec: unknown, at = 'supervisor', ids = new Set<string>()): SupervisorSpec {
  const bad = (field: string, message: string): never => {
    throw new PaddockError('EINVALID_ARGUMENT', `${field}: ${message}`, { field });
  };
  if (!spec || typeof spec !== 'object') bad(at, 'must be an object');
  checkOptionKeys(spec, GROUP_KEYS, at);
  const s = spec as Record<string, unknown>;
  if (typeof s.name !== 'string' || s.name.length === 0) bad(`${at}.name`, 'must be a non-empty string');
  if (!['one_for_one', 'one_for_all', 'rest_for_one'].includes(s.strategy as string)) {
    bad(`${at}.strategy`, `must be 'one_for_one', 'one_for_all' or 'rest_for_one', not ${JSON.stringify(s.strategy)}`);
  }
  const r = resolveRestartPolicy({ maxRestarts: s.maxRestarts ?? 1, periodMs: s.periodMs ?? 5000 }, at);
  if ('issue' in r) bad(r.issue.field, r.issue.message);
  if (!Array.isArray(s.children) || s.children.length === 0) bad(`${at}.children`, 'must be a non-empty array');
  const names = new Set<string>();
  (s.children as unknown[]).forEach((c, i) => {
    const f = `${at}.children[${i}]`;
    if (!c || typeof c !== 'object') bad(f, 'must be an object');
    if ('children' in (c as object)) {
      const g = validateTree(c, f, ids);
      if (names.has(g.name)) bad(`${f}.name`, `duplicate child ${g.name}`);
      names.add(g.name);
      return;
    }
    checkOptionKeys(c, LEAF_KEYS, f);
    const l = c as Record<string, unknown>;
    if (l.restart !== undefined) checkOptionKeys(l.restart, ['policy'], `${f}.restart`);
    if (!isValidId(l.id)) bad(`${f}.id`, 'must be a valid sandbox id');
    if (ids.has(l.id as string)) bad(`${f}.id`, `sandbox ${String(l.id)} appears twice in the tree`);
    ids.add(l.id as string);
    names.add(l.id as string);
    if (typeof l.bundle !== 'string' || l.bundle.length === 0) bad(`${f}.bundle`, 'must be a bundle directory');
    const pr = resolveRestartPolicy(l.restart, `${f}.restart`);
    if ('issue' in pr) bad(pr.issue.field, pr.issue.message);
  });
  return spec as SupervisorSpec;
}

/** One group of the tree: its machine, the leaves it started and its nested groups. */
class GroupNode implements SupervisorHandle {
  readonly name: string;
  private readonly subject = new Subject<SupervisorEvent>();
  readonly events$ = this.subject.asObservable();
  private actor: Actor<typeof groupMachine> | undefined;
  private readonly subgroups = new Map<string, GroupNode>();
  /** Generation of each running leaf instance, so an exit is reported against the instance that ended. */
  private readonly running = new Map<string, number>();
  private detach: (() => void) | undefined;

  constructor(
    private readonly spec: SupervisorSpec,
    private readonly driver: LeafDriver,
    /** Parent's report of this group's escalation, with the generation it was started as. */
    private readonly onEscalated?: () => void,
  ) {
    this.name = spec.name;
  }

  async start(): Promise<void> {
    const byId = new Map(this.spec.children.map((c) => [isGroup(c) ? c.name : c.id, c]));
    const startOne = async (ref: ChildRef) => {
      const c = byId.get(ref.id) as LeafSpec | SupervisorSpec;
      if (isGroup(c)) {
        const sub = new GroupNode(c, this.driver, () => this.childExited(ref.id, ref.generation, { exitCode: null, signal: null }));
        sub.events$.subscribe((e) => this.subject.next(e));
        this.subgroups.set(ref.id, sub);
        await sub.start();
      } else {
        await this.driver.start(c);
        this.running.set(ref.id, ref.generation);
      }
    };
    const stopOne = async (ref: ChildRef) => {
      const sub = this.subgroups.get(ref.id);
      if (sub) {
        this.subgroups.delete(ref.id);
        await sub.stop();
      } else {
        this.running.delete(ref.id);
        await this.driver.stop(ref.id);
      }
    };
    const machine = groupMachineDef().provide({
      actors: {
        startChildren: fromPromise(async ({ input }) => {
          for (const r of input.start) await startOne(r);
        }),
        restartChildren: fromPromise(async ({ input }) => {
          for (const r of input.stop) await stopOne(r);
          for (const r of input.start) await startOne(r);
        }),
        stopChildren: fromPromise(async ({ input }) => {
          for (const r of input.stop) await stopOne(r);
        }),
      },
    });
    this.detach = this.driver.onExit((leafId, exit) => {
      const gen = this.running.get(leafId);
      if (gen === undefined) return;
      this.running.delete(leafId);
      this.childExited(leafId, gen, exit);
    });
    const actor = createActor(machine, {
      input: {
        name: this.spec.name,
        strategy: this.spec.strategy,
        maxRestarts: this.spec.maxRestarts ?? 1,
        periodMs: this.spec.periodMs ?? 5000,
        children: this.spec.children.map((c) => (isGroup(c) ? { id: c.name, policy: 'always' as const } : { id: c.id, policy: c.restart?.policy ?? 'always' })),
      },
      id: `group:${this.spec.name}`,
      ...(this.driver.inspect ? { inspect: this.driver.inspect as never } : {}),
    });
    this.actor = actor;
    for (const t of ['group.restarting', 'group.escalated', 'group.stopped'] as const) actor.on(t, (e) => this.subject.next(e));
    actor.subscribe({
      complete: () => {
        this.detach?.();
        if (actor.getSnapshot().value === 'escalated') this.onEscalated?.();
      },
    });
    actor.start();
    const snap = await waitFor(actor, (s) => s.value !== 'starting', { timeout: Infinity });
    if (snap.value === 'escalated' || snap.value === 'escalating') {
      const done = await waitFor(actor, (s) => s.status === 'done', { timeout: Infinity });
      throw new PaddockError('EINVALID_STATE', done.context.reason ?? `group ${this.name} could not start`);
    }
  }

  private childExited(childId: string, generation: number, exit: ExitStatus): void {
    this.actor?.send({ type: 'child.exited', childId, generation, exit, at: Date.now() });
  }

  async stop(): Promise<void> {
    const actor = this.actor;
    if (!actor || actor.getSnapshot().status !== 'active') return;
    actor.send({ type: 'stop' });
    await waitFor(actor, (s) => s.status === 'done', { timeout: Infinity });
  }

  status(): SupervisorStatus {
    const snap = this.actor?.getSnapshot();
    return {
      name: this.name,
      state: snap ? String(snap.value) : 'stopped',
      ...(snap?.context.reason ? { reason: snap.context.reason } : {}),
      children: this.spec.children.map((c) => {
        if (isGroup(c)) return this.subgroups.get(c.name)?.status() ?? { name: c.name, state: 'stopped', children: [] };
        return { id: c.id, generation: snap?.context.generations[c.id] ?? 0 };
      }),
    };
  }
}

export function createSupervisorTree(spec: unknown, driver: LeafDriver): SupervisorHandle {
  return new GroupNode(validateTree(spec), driver);
}

/**
 * Leaves on a real engine: a leaf start replaces whatever instance is left under its id
 * (a crashed sandbox stays `stopped` until destroyed), a stop destroys it, and an exit is
 * the sandbox reaching `stopped` with its root container's status.
 */
export function engineLeafDriver(engine: Pick<Engine, 'list' | 'createSandbox' | 'startRoot' | 'destroy' | 'events$'>): LeafDriver {
  const exists = (id: string) => engine.list().some((s) => s.id === id);
  return {
    async start(leaf) {
      if (exists(leaf.id)) await engine.destroy(leaf.id);
      await engine.createSandbox(leaf.id, leaf.bundle, { stdio: 'ignore' });
      await engine.startRoot(leaf.id);
    },
    async stop(id) {
      if (exists(id)) await engine.destroy(id);
    },
    onExit(listener) {
      const last = new Map<string, ExitStatus>();
      const sub = engine.events$.subscribe((e) => {
        if (e.type === 'exit' && e.kind === 'container' && e.containerId === e.sandboxId) last.set(e.sandboxId, e.exit);
        if (e.type === 'state' && e.containerId === undefined && e.status === 'stopped') {
          const exit = last.get(e.sandboxId) ?? { exitCode: null, signal: null };
          last.delete(e.sandboxId);
          listener(e.sandboxId, exit);
        }
      });
      return () => sub.unsubscribe();
    },
  };
}

/** Built at its first use: a call that makes no supervision tree never builds it (docs/decisions/0007). */
function groupMachineDef(): typeof groupMachine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../machines/group.machine') as typeof import('../../machines/group.machine')).groupMachine;
}
