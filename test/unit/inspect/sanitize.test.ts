import { createActor } from 'xstate';
import { sanitize, viewOfSnapshot } from '../../../actors/inspect/sanitize';
import { supervisorMachine } from '../../../machines/supervisor.machine';

describe('what an inspector may see', () => {
  test('env values, fds and tokens never leave; actors are named, errors reduced, cycles and depth cut', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const actor = createActor(supervisorMachine, { id: 'sup' });
    const err = Object.assign(new Error('boom'), { code: 'ETIMEOUT', secretStack: 'x' });
    const deep = { l1: { l2: { l3: { l4: { l5: { l6: { l7: { l8: { l9: 1 } } } } } } } } };
    const out = sanitize({
      env: ['API_KEY=hunter2'],
      process: { args: ['sh'], env: ['X=1'], fd: 7 },
      pidfd: 12,
      fds: [3, 4],
      token: 'abc',
      ref: actor,
      err,
      cyclic,
      deep,
      when: new Date(0),
      big: 10n,
      nan: NaN,
      fn: function named() {},
      buf: new Uint8Array(3),
    }) as Record<string, unknown>;
    const text = JSON.stringify(out);
    expect(text).not.toMatch(/hunter2|X=1|"fd"|pidfd|"fds"|"token"/);
    expect(out.process).toEqual({ args: ['sh'] });
    expect(out.ref).toBe('[actor sup]');
    expect(out.err).toEqual({ name: 'Error', message: 'boom', code: 'ETIMEOUT' });
    expect(out.cyclic).toEqual({ a: 1, self: '[cycle]' });
    expect(text).toContain('[…]');
    expect(out.when).toBe('1970-01-01T00:00:00.000Z');
    expect(out.big).toBe('10');
    expect(out.nan).toBe('NaN');
    expect(out.fn).toBe('[function named]');
    expect(out.buf).toBe('[Uint8Array]');
  });

  test('a snapshot view keeps status, value and context, without children or history', () => {
    const a = createActor(supervisorMachine).start();
    const v = viewOfSnapshot(a.getSnapshot());
    expect(Object.keys(v).sort()).toEqual(['context', 'status', 'value']);
    expect(v).toEqual({ status: 'active', value: 'supervising', context: { sandboxes: {} } });
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
    a.stop();
  });
});
