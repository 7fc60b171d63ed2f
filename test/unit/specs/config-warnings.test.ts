import { configWarnings, logConfigWarnings } from '../../../specs/config-warnings';
import { parseMount, PD_TMPCOPYUP } from '../../../specs/mount-options';
import { findConfigProblems } from '../../../specs/validate';
import { spec } from './helpers';

describe('configWarnings: accepted fields the kernel would not apply', () => {
  it('a stock config has none', () => {
    expect(configWarnings(spec())).toEqual([]);
  });

  it('memory.kernel and kernelTCP are valid, warned about by name, and the rest of memory stays', () => {
    const c = spec((x) => { x.linux.resources = { memory: { limit: 32 << 20, kernel: 8 << 20, kernelTCP: -1 } }; }, false);
    expect(findConfigProblems(c)).toEqual([]);
    expect(configWarnings(c)).toEqual([
      { field: 'linux.resources.memory.kernel', message: expect.stringMatching(/^linux\.resources\.memory\.kernel ignored: /) },
      { field: 'linux.resources.memory.kernelTCP', message: expect.stringMatching(/^linux\.resources\.memory\.kernelTCP ignored: /) },
    ]);
  });

  it('memory.kernel still has to be a number of bytes', () => {
    const c = spec((x) => { x.linux.resources = { memory: { kernel: '8M' } }; }, false);
    expect(findConfigProblems(c)).toEqual([expect.objectContaining({ code: 'ECONFIG_INVALID', field: 'linux.resources.memory.kernel' })]);
  });

  it('data options of a bind mount are dropped with a warning naming the option', () => {
    const c = spec((x) => { x.mounts.push({ destination: '/x', source: '/tmp', options: ['rbind', 'mode=755', 'ro', 'size=1k'] }); });
    const i = c.mounts.length - 1;
    expect(findConfigProblems(c)).toEqual([]);
    expect(configWarnings(c).map((w) => w.field)).toEqual([`mounts[${i}].options[1]`, `mounts[${i}].options[3]`]);
    expect(configWarnings(c)[0]?.message).toMatch(/"mode=755" ignored/);
  });

  it('data options of a non-bind mount are passed on, not warned about', () => {
    const c = spec((x) => { x.mounts.push({ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['mode=755'] }); });
    expect(configWarnings(c)).toEqual([]);
  });

  it('tmpcopyup: a tmpfs gets paddock\'s copy-up bit; anywhere else it is ignored with a warning', () => {
    expect(parseMount('tmpfs', ['nosuid', 'tmpcopyup']).flags & PD_TMPCOPYUP).toBe(PD_TMPCOPYUP);
    expect(parseMount('tmpfs', ['nosuid']).flags & PD_TMPCOPYUP).toBe(0n);
    const c = spec((x) => { x.mounts.push({ destination: '/x', source: '/tmp', options: ['rbind', 'tmpcopyup'] }); });
    expect(findConfigProblems(c)).toEqual([]);
    expect(configWarnings(c)).toEqual([{ field: `mounts[${c.mounts.length - 1}].options[1]`, message: expect.stringMatching(/"tmpcopyup" ignored: applies to a tmpfs mount only/) }]);
  });

  it('no mount namespace: valid, with a warning (the container gets one anyway)', () => {
    const c = spec((x) => { x.linux.namespaces = x.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount'); });
    expect(findConfigProblems(c)).toEqual([]);
    expect(configWarnings(c)).toEqual([{ field: 'linux.namespaces', message: expect.stringMatching(/no mount namespace listed/) }]);
  });

  it('logConfigWarnings logs each at warn with the field and step config', () => {
    const warn = jest.fn();
    logConfigWarnings(spec((x) => { x.linux.resources = { memory: { kernel: 1 << 20 } }; }, false), { warn });
    expect(warn).toHaveBeenCalledWith({ field: 'linux.resources.memory.kernel', step: 'config' }, expect.stringContaining('linux.resources.memory.kernel'));
  });
});
