import { findConfigProblems, validateConfig } from '../../../specs/validate';
import { caught, spec } from './helpers';

type Edit = (c: any) => unknown;

function problem(edit: Edit) {
  const e = caught(() => validateConfig(spec(edit)));
  return { code: e.code, field: e.context.field, message: e.message };
}

describe('validateConfig: hooks', () => {
  it('accepts the hooks paddock runs on the host', () => {
    const c = spec((x) => {
      x.hooks = {
        prestart: [{ path: '/usr/bin/netns-setup', args: ['netns-setup', '--up'], env: ['A=1'], timeout: 5 }],
        createRuntime: [{ path: '/bin/true' }, { path: '/bin/echo', args: [] }],
        poststart: [{ path: '/bin/true', timeout: 1 }],
        poststop: [{ path: '/bin/true', env: [] }],
        createContainer: [],
        startContainer: [],
      };
    });
    expect(findConfigProblems(c)).toEqual([]);
  });

  const invalid: Array<[string, Edit, string, RegExp?]> = [
    ['hook not an object', (c) => { c.hooks = { prestart: ['/bin/true'] }; }, 'hooks.prestart[0]'],
    ['path missing', (c) => { c.hooks = { poststop: [{}] }; }, 'hooks.poststop[0].path', /required/],
    ['path relative', (c) => { c.hooks = { prestart: [{ path: 'bin/true' }] }; }, 'hooks.prestart[0].path', /^hooks\.prestart\[0\]\.path: must be an absolute path$/],
    ['path not a string', (c) => { c.hooks = { createRuntime: [{ path: '/bin/true' }, { path: 3 }] }; }, 'hooks.createRuntime[1].path'],
    ['args not an array', (c) => { c.hooks = { poststart: [{ path: '/bin/true', args: 'x' }] }; }, 'hooks.poststart[0].args'],
    ['args entry not a string', (c) => { c.hooks = { poststart: [{ path: '/bin/true', args: ['true', 1] }] }; }, 'hooks.poststart[0].args[1]'],
    ['env entry without =', (c) => { c.hooks = { prestart: [{ path: '/bin/true', env: ['A'] }] }; }, 'hooks.prestart[0].env[0]', /KEY=value/],
    ['timeout zero', (c) => { c.hooks = { prestart: [{ path: '/bin/true', timeout: 0 }] }; }, 'hooks.prestart[0].timeout', /positive integer/],
    ['timeout negative', (c) => { c.hooks = { prestart: [{ path: '/bin/true', timeout: -1 }] }; }, 'hooks.prestart[0].timeout'],
    ['timeout fractional', (c) => { c.hooks = { prestart: [{ path: '/bin/true', timeout: 1.5 }] }; }, 'hooks.prestart[0].timeout'],
    ['timeout a string', (c) => { c.hooks = { prestart: [{ path: '/bin/true', timeout: '5' }] }; }, 'hooks.prestart[0].timeout'],
  ];
  it.each(invalid.map(([n, e, f, m]) => [n, e, f, m ?? /./] as const))('%s → ECONFIG_INVALID at the field', (_n, edit, field, msg) => {
    const p = problem(edit);
    expect(p).toMatchObject({ code: 'ECONFIG_INVALID', field });
    if (msg) expect(p.message).toMatch(msg);
  });

  it('an invalid hook is reported before an unsupported one', () => {
    const p = problem((c) => { c.hooks = { startContainer: [{ path: '/bin/true' }], prestart: [{ path: 'x' }] }; });
    expect(p).toMatchObject({ code: 'ECONFIG_INVALID', field: 'hooks.prestart[0].path' });
  });

  it.each(['createContainer', 'startContainer'])('%s (run inside the container by paddock-init) is checked like any hook', (kind) => {
    const p = problem((c) => { c.hooks = { [kind]: [{ path: '/bin/true', timeout: 0 }] }; });
    expect(p).toMatchObject({ code: 'ECONFIG_INVALID', field: `hooks.${kind}[0].timeout` });
  });
});
