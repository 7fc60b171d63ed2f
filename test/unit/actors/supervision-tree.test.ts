import { createSupervisorTree, validateTree, type LeafDriver } from '../../../actors/supervision/tree';
import type { LeafSpec, SupervisorEvent } from '../../../actors/engine/api';
import { isPaddockError } from '../../../base/errors';
import type { ExitStatus } from '../../../machines/types';

/** Leaves as records: what was started and stopped, in order; the test makes them exit. */
function fakeDriver() {
  const log: string[] = [];
  const listeners = new Set<(id: string, exit: ExitStatus) => void>();
  const driver: LeafDriver = {
    start: async (leaf: LeafSpec) => {
      log.push(`start ${leaf.id}`);
    },
    stop: async (id: string) => {
      log.push(`stop ${id}`);
    },
    onExit: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  const crash = (id: string) => {
    for (const l of [...listeners]) l(id, { exitCode: 1, signal: null });
  };
  return { driver, log, crash };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

const tree = {
  name: 'top',
  strategy: 'one_for_one' as const,
  maxRestarts: 5,
  periodMs: 60_000,
  children: [
    { id: 'db', bundle: '/b/db' },
    { name: 'workers', strategy: 'one_for_all' as const, maxRestarts: 1, periodMs: 60_000, children: [{ id: 'w1', bundle: '/b/w' }, { id: 'w2', bundle: '/b/w' }] },
    { id: 'web', bundle: '/b/web' },
  ],
};

describe('supervisor trees', () => {
  test('start in order (depth first), stop in reverse', async () => {
    const f = fakeDriver();
    const h = createSupervisorTree(tree, f.driver);
    await h.start();
    expect(f.log).toEqual(['start db', 'start w1', 'start w2', 'start web']);
    f.log.length = 0;
    await h.stop();
    expect(f.log).toEqual(['stop web', 'stop w2', 'stop w1', 'stop db']);
    expect(h.status().state).toBe('stopped');
  });

  test('a subgroup restarts within its intensity, then escalates; the parent restarts it as one child', async () => {
    const f = fakeDriver();
    const h = createSupervisorTree(tree, f.driver);
    const events: SupervisorEvent[] = [];
    h.events$.subscribe((e) => events.push(e));
    await h.start();
    f.log.length = 0;
    f.crash('w2');
    await settle();
    // one_for_all inside workers: w1 stopped, both started again.
    expect(f.log).toEqual(['stop w1', 'start w1', 'start w2']);
    f.log.length = 0;
    f.crash('w1');
    await settle();
    // A second restart within 60 s exceeds workers' maxRestarts 1: it stops its children and
    // escalates; top (one_for_one) restarts the whole subgroup, leaving db and web alone.
    expect(f.log).toEqual(['stop w2', 'start w1', 'start w2']);
    expect(events.map((e) => e.type)).toEqual(['group.restarting', 'group.escalated', 'group.restarting']);
    expect(events[1]).toMatchObject({ group: 'workers', reason: expect.stringMatching(/more than 1 restarts/) });
    expect(events[2]).toMatchObject({ group: 'top', childId: 'workers', children: ['workers'] });
    expect(h.status().state).toBe('running');
    await h.stop();
  });

  test('the top group escalating ends the tree', async () => {
    const f = fakeDriver();
    const h = createSupervisorTree({ name: 't', strategy: 'rest_for_one', maxRestarts: 0, children: [{ id: 'a', bundle: '/a' }, { id: 'b', bundle: '/b' }] }, f.driver);
    await h.start();
    f.log.length = 0;
    f.crash('a');
    await settle();
    expect(f.log).toEqual(['stop b']);
    expect(h.status()).toMatchObject({ state: 'escalated', reason: expect.stringMatching(/child a failed/) });
  });

  test.each([
    [{ name: 't', strategy: 'one_for_some', children: [{ id: 'a', bundle: '/a' }] }, 'supervisor.strategy'],
    [{ name: 't', strategy: 'one_for_one', children: [] }, 'supervisor.children'],
    [{ name: 't', strategy: 'one_for_one', maxRestarts: -1, children: [{ id: 'a', bundle: '/a' }] }, 'supervisor.maxRestarts'],
    [{ name: 't', strategy: 'one_for_one', children: [{ id: '../x', bundle: '/a' }] }, 'supervisor.children[0].id'],
    [{ name: 't', strategy: 'one_for_one', children: [{ id: 'a', bundle: '/a', restart: { policy: 'sometimes' } }] }, 'supervisor.children[0].restart.policy'],
    [{ name: 't', strategy: 'one_for_one', children: [{ id: 'a', bundle: '/a' }, { name: 'g', strategy: 'one_for_one', children: [{ id: 'a', bundle: '/a' }] }] }, 'supervisor.children[1].children[0].id'],
  ])('bad tree %j: EINVALID_ARGUMENT at %s', (spec, field) => {
    let err: unknown;
    try {
      validateTree(spec);
    } catch (e) {
      err = e;
    }
    expect(isPaddockError(err, 'EINVALID_ARGUMENT')).toBe(true);
    expect((err as { context: { field: string } }).context.field).toBe(field);
  });
});
