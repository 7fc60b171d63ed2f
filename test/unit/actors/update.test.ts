import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxCgroup, type CgroupLayout } from '../../../actors/cgroups/sandbox-cgroup';
import { updateWrites } from '../../../actors/cgroups/update';
import { parseBytes, resourcesFromArgs } from '../../../bin/commands/update';

describe('updateWrites', () => {
  let tmp = '';
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-upd-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const cgroup = (layout: CgroupLayout, files: Record<string, string>) => {
    const cg = new SandboxCgroup(layout, 'paddock/sb');
    for (const [f, v] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
      fs.writeFileSync(path.join(tmp, f), v);
    }
    return cg;
  };

  it('v2: pids.max counts init tasks, -1 is max; memory and cpu as at create', () => {
    const cg = cgroup({ mode: 'v2', unified: tmp, v1: {} }, {});
    expect(updateWrites(cg, { memory: { limit: 1 << 20 }, pids: { limit: 5 }, cpu: { quota: 1000, period: 50000 } }, 3)).toEqual([
      { hierarchy: 'unified', file: 'memory.max', value: String(1 << 20) },
      { hierarchy: 'unified', file: 'cpu.max', value: '1000 50000' },
      { hierarchy: 'unified', file: 'pids.max', value: '8' },
    ]);
    expect(updateWrites(cg, { pids: { limit: -1 } }, 3)).toEqual([{ hierarchy: 'unified', file: 'pids.max', value: 'max' }]);
  });

  it('v1: memsw goes first when the new limit is above the current memsw', () => {
    const layout: CgroupLayout = { mode: 'v1', v1: { memory: path.join(tmp, 'memory'), pids: path.join(tmp, 'pids'), cpu: path.join(tmp, 'cpu') } };
    const cg = cgroup(layout, { 'memory/paddock/sb/memory.memsw.limit_in_bytes': `${64 << 20}\n` });
    const files = (limit: number) => updateWrites(cg, { memory: { limit, swap: limit * 2 } }, 0).map((w) => w.file);
    expect(files(128 << 20)).toEqual(['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']);
    expect(files(16 << 20)).toEqual(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
  });
});

describe('paddock update: arguments', () => {
  it('sizes take runc units', () => {
    expect(parseBytes('memory', '512m')).toBe(512 << 20);
    expect(parseBytes('memory', '1G')).toBe(1 << 30);
    expect(parseBytes('memory', '64KiB')).toBe(64 << 10);
    expect(parseBytes('memory', '4096')).toBe(4096);
    expect(parseBytes('memory', '-1')).toBe(-1);
    expect(() => parseBytes('memory', 'lots')).toThrow(/^--memory: "lots" is not a size/);
  });

  it('flags become linux.resources keys (and remember their flag); flags win over -r', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-upd-'));
    try {
      const file = path.join(dir, 'r.json');
      fs.writeFileSync(file, JSON.stringify({ memory: { limit: 1, reservation: 2 }, cpu: { shares: 3 } }));
      const r = resourcesFromArgs(['-r', file, '--memory', '1m', '--cpu-quota', '-1', '--cpuset-cpus', '0-1', '--pids-limit', '4', 'c1']);
      expect(r.id).toBe('c1');
      expect(r.resources).toEqual({ memory: { limit: 1 << 20, reservation: 2 }, cpu: { shares: 3, quota: -1, cpus: '0-1' }, pids: { limit: 4 } });
      expect(r.flagOf.get('memory.limit')).toBe('memory');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nothing to update, a non-integer, an unknown flag: errors naming the flag', () => {
    expect(() => resourcesFromArgs(['c1'])).toThrow(/^--resources: nothing to update/);
    expect(() => resourcesFromArgs(['--cpu-period', '1.5', 'c1'])).toThrow(/^--cpu-period: /);
    expect(() => resourcesFromArgs(['--blkio-weight', '10', 'c1'])).toThrow(/flag provided but not defined: --blkio-weight/);
  });
});
