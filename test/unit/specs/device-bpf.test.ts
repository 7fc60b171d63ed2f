import { deviceProgram, deviceProgramInsns } from '../../../specs/device-bpf';
import { DeviceRuleError, reduceDeviceRules } from '../../../specs/device-rules';
import { deviceEnforcement } from '../../../actors/cgroups/devices';
import type { CgroupLayout } from '../../../actors/cgroups/sandbox-cgroup';
import { seededRandom } from '../../helpers/prng';

/**
 * The device program against two references written here from the rule semantics,
 * not from the generator: the kernel's v1 devices cgroup (default plus exceptions,
 * with its exact-key removal) and "the last matching rule wins" per access bit.
 */

interface Rule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}
interface Req {
  type: 'b' | 'c';
  major: number;
  minor: number;
  /** letters of r, w, m */
  access: string;
}

// ------------------------------------------------------------ a tiny BPF interpreter

/** Runs a CGROUP_DEVICE program (only the opcodes a device program needs) on one request. */
function runProgram(prog: Buffer, req: Req): number {
  const ctx = Buffer.alloc(12);
  const acc = (req.access.includes('m') ? 1 : 0) | (req.access.includes('r') ? 2 : 0) | (req.access.includes('w') ? 4 : 0);
  ctx.writeUInt32LE(((acc << 16) | (req.type === 'b' ? 1 : 2)) >>> 0, 0);
  ctx.writeUInt32LE(req.major >>> 0, 4);
  ctx.writeUInt32LE(req.minor >>> 0, 8);
  const r: bigint[] = new Array(11).fill(0n);
  const ctxPtr = 0x1000n;
  r[1] = ctxPtr;
  const u32 = (v: bigint) => v & 0xffffffffn;
  let pc = 0;
  for (let steps = 0; steps < 100_000; steps++) {
    if (pc < 0 || pc * 8 >= prog.length) throw new Error(`pc ${pc} out of the program`);
    const o = pc * 8;
    const code = prog.readUInt8(o);
    const dst = prog.readUInt8(o + 1) & 0xf;
    const src = prog.readUInt8(o + 1) >> 4;
    const off = prog.readInt16LE(o + 2);
    const imm = prog.readInt32LE(o + 4);
    const immU32 = BigInt(imm >>> 0);
    pc++;
    switch (code) {
      case 0x61: {
        // ldxw dst, [src + off]: only the context may be read, 4-aligned, in bounds.
        const at = Number((r[src] as bigint) - ctxPtr) + off;
        if (r[src] !== ctxPtr || at < 0 || at > 8 || at % 4 !== 0) throw new Error(`bad load at ${at}`);
        r[dst] = BigInt(ctx.readUInt32LE(at));
        break;
      }
      case 0x54:
        r[dst] = u32(r[dst] as bigint) & immU32;
        break;
      case 0x74:
        r[dst] = u32(r[dst] as bigint) >> BigInt(imm & 31);
        break;
      case 0xb4:
        r[dst] = immU32;
        break;
      case 0xbc:
        r[dst] = u32(r[src] as bigint);
        break;
      case 0x56:
        if (u32(r[dst] as bigint) !== immU32) pc += off;
        break;
      case 0x16:
        if (u32(r[dst] as bigint) === immU32) pc += off;
        break;
      case 0x95:
        return Number(r[0]);
      default:
        throw new Error(`unexpected opcode 0x${code.toString(16)} at ${pc - 1}`);
    }
  }
  throw new Error('the program does not end');
}

// ------------------------------------------------------------ references

const bits = (s: string) => new Set(s.split(''));
const numMatch = (rule: number, dev: number) => rule === -1 || rule === dev;

/** The kernel's v1 devices cgroup, written out as security/device_cgroup.c behaves. */
function v1Reference(rules: Rule[], req: Req): boolean {
  let defaultAllow = true;
  let ex: Array<{ type: string; major: number; minor: number; access: Set<string> }> = [];
  for (const rule of rules) {
    const type = rule.type ?? 'a';
    const major = rule.major ?? -1;
    const minor = rule.minor ?? -1;
    const access = bits(rule.access ?? 'rwm');
    if (type === 'a') {
      defaultAllow = rule.allow;
      ex = [];
      continue;
    }
    const same = ex.find((e) => e.type === type && e.major === major && e.minor === minor);
    if (rule.allow !== defaultAllow) {
      if (same) for (const a of access) same.access.add(a);
      else ex.push({ type, major, minor, access });
    } else if (same) {
      for (const a of access) same.access.delete(a);
      if (same.access.size === 0) ex = ex.filter((e) => e !== same);
    }
  }
  const covers = (e: (typeof ex)[number]) => e.type === req.type && numMatch(e.major, req.major) && numMatch(e.minor, req.minor);
  const want = [...req.access];
  if (defaultAllow) return !ex.some((e) => covers(e) && want.some((a) => e.access.has(a)));
  return ex.some((e) => covers(e) && want.every((a) => e.access.has(a)));
}

/** Per access bit, the last rule matching the device and holding that bit decides. */
function lastMatchReference(rules: Rule[], req: Req): boolean {
  const defaultAllow = true; // a fresh cgroup allows everything
  return [...req.access].every((a) => {
    let verdict = defaultAllow;
    for (const rule of rules) {
      const type = rule.type ?? 'a';
      if (type !== 'a' && type !== req.type) continue;
      if (!numMatch(rule.major ?? -1, req.major) || !numMatch(rule.minor ?? -1, req.minor)) continue;
      if (!bits(rule.access ?? 'rwm').has(a)) continue;
      verdict = rule.allow;
    }
    return verdict;
  });
}

// ------------------------------------------------------------ random rule lists

const ACCESSES = ['r', 'w', 'm', 'rw', 'rm', 'wm', 'rwm'];
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

function randomRules(rnd: () => number): Rule[] {
  const n = 1 + Math.floor(rnd() * 7);
  const out: Rule[] = [];
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.12) {
      out.push({ allow: rnd() < 0.5, access: 'rwm' });
      continue;
    }
    out.push({
      allow: rnd() < 0.5,
      type: pick(rnd, ['b', 'c', 'c']),
      major: pick(rnd, [-1, 1, 1, 5]),
      minor: pick(rnd, [-1, 3, 3, 4]),
      access: pick(rnd, ACCESSES),
    });
  }
  // Lists usually start with deny-all, as containerd's and runc's do.
  if (rnd() < 0.6) out.unshift({ allow: false, access: 'rwm' });
  return out;
}

const REQUESTS: Req[] = [];
for (const type of ['b', 'c'] as const)
  for (const major of [1, 5, 7, 4095])
    for (const minor of [3, 4, 9, 1048575])
      // Real requests: mknod (m), or an open (r, w, or both).
      for (const access of ['m', 'r', 'w', 'rw']) REQUESTS.push({ type, major, minor, access });

describe('device rules → BPF_PROG_TYPE_CGROUP_DEVICE program', () => {
  it('agrees with the v1 devices cgroup and with "last matching rule wins" over thousands of random rule lists', () => {
    let accepted = 0;
    let refused = 0;
    for (let seed = 1; seed <= 4000; seed++) {
      const rules = randomRules(seededRandom(seed));
      let prog: Buffer;
      try {
        prog = deviceProgram(reduceDeviceRules(rules));
      } catch (e) {
        expect(e).toBeInstanceOf(DeviceRuleError);
        expect((e as DeviceRuleError).code).toBe('ECONFIG_UNSUPPORTED');
        refused++;
        continue;
      }
      accepted++;
      for (const req of REQUESTS) {
        const got = runProgram(prog, req) === 1;
        const v1 = v1Reference(rules, req);
        if (got !== v1) throw new Error(`seed ${seed}: ${JSON.stringify(rules)} on ${JSON.stringify(req)}: program ${got}, v1 ${v1}`);
        // One kind of access at a time, an accepted list reads as "the last match wins".
        if (req.access.length === 1) {
          const lmw = lastMatchReference(rules, req);
          if (got !== lmw) throw new Error(`seed ${seed}: ${JSON.stringify(rules)} on ${JSON.stringify(req)}: program ${got}, last match ${lmw}`);
        }
      }
    }
    // Both outcomes are exercised in earnest.
    expect(accepted).toBeGreaterThan(2000);
    expect(refused).toBeGreaterThan(100);
  });

  it("containerd's default rules: the standard devices only; deny-all alone denies everything", () => {
    const rules: Rule[] = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
      { allow: true, type: 'c', major: 136, access: 'rwm' },
    ];
    const prog = deviceProgram(reduceDeviceRules(rules));
    const run = (type: 'b' | 'c', major: number, minor: number, access: string) => runProgram(prog, { type, major, minor, access });
    expect(run('c', 1, 3, 'rw')).toBe(1);
    expect(run('c', 1, 5, 'r')).toBe(1);
    expect(run('c', 136, 7, 'rw')).toBe(1);
    expect(run('c', 1, 7, 'r')).toBe(0);
    expect(run('b', 1, 3, 'r')).toBe(0);
    expect(run('b', 7, 0, 'm')).toBe(0);
    const none = deviceProgram(reduceDeviceRules([{ allow: false, access: 'rwm' }]));
    expect(runProgram(none, { type: 'c', major: 1, minor: 3, access: 'r' })).toBe(0);
    // No rule but allows: everything allowed, as a fresh cgroup.
    const all = deviceProgram(reduceDeviceRules([{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }]));
    expect(runProgram(all, { type: 'b', major: 8, minor: 0, access: 'rw' })).toBe(1);
  });

  it('an allow of r and an allow of w for overlapping devices do not make an O_RDWR open pass (v1: one rule must hold both)', () => {
    const rules: Rule[] = [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, access: 'r' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'w' },
    ];
    const prog = deviceProgram(reduceDeviceRules(rules));
    expect(runProgram(prog, { type: 'c', major: 1, minor: 3, access: 'r' })).toBe(1);
    expect(runProgram(prog, { type: 'c', major: 1, minor: 3, access: 'w' })).toBe(1);
    expect(runProgram(prog, { type: 'c', major: 1, minor: 3, access: 'rw' })).toBe(0);
  });

  it('major and minor compare as unsigned 32-bit numbers', () => {
    const prog = deviceProgram(reduceDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 0xfffffffe, minor: 0x80000000, access: 'r' }]));
    expect(runProgram(prog, { type: 'c', major: 0xfffffffe, minor: 0x80000000, access: 'r' })).toBe(1);
    expect(runProgram(prog, { type: 'c', major: 0xfffffffe, minor: 0, access: 'r' })).toBe(0);
  });

  it('the program: context loads, one block per exception, the default last', () => {
    const insns = deviceProgramInsns(reduceDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }]));
    expect(insns.map((i) => i.code)).toEqual([0x61, 0x54, 0x61, 0x74, 0x61, 0x61, 0x56, 0x56, 0x56, 0xb4, 0x95, 0xb4, 0x95]);
    // Each test skips to the next block (the default here).
    expect(insns.slice(6, 9).map((i) => i.off)).toEqual([4, 3, 2]);
    expect(insns[9]?.imm).toBe(1);
    expect(insns[11]?.imm).toBe(0);
  });
});

describe('reduceDeviceRules: what cannot be said is refused, naming the rule', () => {
  const reason = (rules: unknown): [string, string] | undefined => {
    try {
      reduceDeviceRules(rules);
      return undefined;
    } catch (e) {
      return [(e as DeviceRuleError).code, (e as DeviceRuleError).field];
    }
  };

  it('malformed fields are ECONFIG_INVALID with the field', () => {
    expect(reason([{ allow: false, access: 'rwm' }, { allow: true, type: 'x', access: 'r' }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[1].type']);
    expect(reason([{ allow: true, type: 'c', access: 'rx' }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0].access']);
    expect(reason([{ allow: true, type: 'c', access: 'rr' }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0].access']);
    expect(reason([{ allow: true, type: 'c', access: '' }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0].access']);
    expect(reason([{ allow: true, type: 'c', major: -2 }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0].major']);
    expect(reason([{ allow: true, type: 'c', minor: 2 ** 32 }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0].minor']);
    expect(reason([{ type: 'c' }])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0].allow']);
    expect(reason(['c 1:3 rwm'])).toEqual(['ECONFIG_INVALID', 'linux.resources.devices[0]']);
  });

  it('a narrowed "a" rule and removals the device cgroup would ignore are ECONFIG_UNSUPPORTED', () => {
    expect(reason([{ allow: false, type: 'a', access: 'r' }])).toEqual(['ECONFIG_UNSUPPORTED', 'linux.resources.devices[0]']);
    expect(reason([{ allow: false, type: 'a', major: 1, access: 'rwm' }])).toEqual(['ECONFIG_UNSUPPORTED', 'linux.resources.devices[0]']);
    // A hole in a wildcard allow (runc refuses it too).
    expect(reason([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, access: 'rw' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'r' }])).toEqual([
      'ECONFIG_UNSUPPORTED',
      'linux.resources.devices[2]',
    ]);
    // A wildcard deny after a narrower allow: v1 would keep 1:3 allowed.
    expect(reason([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: false, type: 'c', major: 1, access: 'rwm' }])).toEqual([
      'ECONFIG_UNSUPPORTED',
      'linux.resources.devices[2]',
    ]);
    // The same key, or no shared access, is fine.
    expect(reason([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'w' }])).toBeUndefined();
    expect(reason([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, access: 'r' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'w' }])).toBeUndefined();
  });
});

describe('deviceEnforcement', () => {
  const v2: CgroupLayout = { mode: 'v2', unified: '/sys/fs/cgroup', v1: {} };
  const hybrid: CgroupLayout = { mode: 'hybrid', unified: '/sys/fs/cgroup/unified', v1: { memory: '/m', devices: '/d' } };
  const rules = [{ allow: false, access: 'rwm' }];
  it('v2: the program; hybrid: the v1 controller unless PADDOCK_DEVICE_CGROUP=bpf (with or without a user namespace, decision 0034); no rules: nothing', () => {
    expect(deviceEnforcement(v2, rules, {})).toBe('bpf');
    expect(deviceEnforcement(hybrid, rules, {})).toBe('v1');
    expect(deviceEnforcement(hybrid, rules, { PADDOCK_DEVICE_CGROUP: 'bpf' })).toBe('bpf');
    expect(deviceEnforcement({ ...hybrid, mode: 'v1' }, rules, { PADDOCK_DEVICE_CGROUP: 'bpf' })).toBe('v1');
    expect(deviceEnforcement(v2, [], {})).toBe('none');
  });
});

describe('runtime default device rules (as runc appends them)', () => {
  const { effectiveDeviceRules, RUNTIME_DEFAULT_DEVICE_RULES, reduceDeviceRules: reduce } = jest.requireActual('../../../specs/device-rules') as typeof import('../../../specs/device-rules');
  test('appended after the spec\'s rules, and only when the spec has rules', () => {
    expect(effectiveDeviceRules(undefined)).toEqual([]);
    expect(effectiveDeviceRules([])).toEqual([]);
    const spec = [{ allow: false, access: 'rwm' }];
    expect(effectiveDeviceRules(spec)).toEqual([...spec, ...RUNTIME_DEFAULT_DEVICE_RULES]);
  });
  test('under an allowing default only the defaults that undo a deny of exactly their device are added', () => {
    const spec = [{ allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 1, access: 'rwm' }];
    expect(effectiveDeviceRules(spec)).toEqual([...spec, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }]);
    const set = reduce(effectiveDeviceRules(spec));
    expect(set).toEqual({ defaultAllow: true, exceptions: [{ type: 'c', major: 1, minor: 1, access: 7 }] });
  });
  test('deny-all plus the defaults: the standard devices open, mknod of anything, nothing else', () => {
    const set = reduce(effectiveDeviceRules([{ allow: false, access: 'rwm' }]));
    expect(set.defaultAllow).toBe(false);
    const has = (type: string, major: number, minor: number, access: number) =>
      set.exceptions.some((e) => e.type === type && (e.major === -1 || e.major === major) && (e.minor === -1 || e.minor === minor) && (e.access & access) === access);
    for (const [maj, min] of [[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 2], [136, 4], [10, 200]] as const) expect(has('c', maj, min, 7)).toBe(true);
    expect(has('c', 1, 1, 2)).toBe(false); // /dev/mem: no read
    expect(has('b', 8, 0, 1)).toBe(true); // mknod of a disk
    expect(has('b', 8, 0, 2)).toBe(false); // but no read
  });
});
