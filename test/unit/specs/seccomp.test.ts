import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compileSeccomp } from '../../../actors/containers/seccomp';
import { defaultSeccompProfile } from '../../../specs/seccomp-default';
import {
  SeccompFilterFlag,
  validateSeccomp,
} from '../../../specs/seccomp';
import { ARG_CMP_SIZE, libseccomp, packArgCmps } from '../../../native/seccomp-ffi';
import { caught } from './helpers';
import { describeIf, testIf } from '../../helpers/env';

const ROOT = path.resolve(__dirname, '../../..');

const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';
const describeNative = describeIf(['libseccomp']);
const itX64 = testIf(['linux-x64']);

/**
 * The child loads the exported bytes itself, exactly as paddock-init will: it copies
 * them into malloc'd memory, builds struct sock_fprog { u16 len; u8 pad[6]; u64 filter }
 * next to them, sets no_new_privs and calls seccomp(SECCOMP_SET_MODE_FILTER, flags |
 * TSYNC, &prog) through syscall(2). TSYNC puts every Node thread under the filter, not
 * only the main one. Then it runs PROBE with `sys(nr, ...args)` (a raw syscall giving
 * { rc, errno }) and prints a JSON line.
 */
const LOADER = `
const ffi = require('ffi-rs');
ffi.open({ library: 'c', path: 'libc.so.6' });
const { I32, I64, BigInt: BI } = ffi.DataType;
const c = (funcName, retType, paramsType, paramsValue, errno) =>
  ffi.load({ library: 'c', funcName, retType, paramsType, paramsValue, errno });
const bpf = Buffer.from(process.env.SECCOMP_BPF, 'base64');
const flags = Number(process.env.SECCOMP_FLAGS);
const mem = c('malloc', BI, [I64], [16 + bpf.length]);
const prog = Buffer.alloc(16);
prog.writeUInt16LE(bpf.length / 8, 0);
prog.writeBigUInt64LE(BigInt(mem) + 16n, 8);
c('memcpy', BI, [BI, ffi.DataType.U8Array, I64], [BigInt(mem), prog, 16]);
c('memcpy', BI, [BI, ffi.DataType.U8Array, I64], [BigInt(mem) + 16n, bpf, bpf.length]);
if (c('prctl', I32, [I32, I64, I64, I64, I64], [38, 1, 0, 0, 0]) !== 0) throw new Error('prctl');
const r = c('syscall', I64, [I64, I64, I64, BI], [317, 1, flags | 1, BigInt(mem)], true);
if (r.value !== 0) { console.log(JSON.stringify({ loadFailed: r.errnoCode })); process.exit(3); }
const sys = (nr, ...a) => {
  while (a.length < 3) a.push(0);
  const x = c('syscall', I64, [I64, I64, I64, I64], [nr, ...a], true);
  return { rc: x.value, errno: x.value < 0 ? x.errnoCode : 0 };
};
const out = {};
PROBE
console.log(JSON.stringify(out));
`;

function runFiltered(bpf: Buffer, flags: number, probe: string): SpawnSyncReturns<string> & { out?: any } {
  const r = spawnSync(process.execPath, ['-e', LOADER.replace('PROBE', probe)], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, SECCOMP_BPF: bpf.toString('base64'), SECCOMP_FLAGS: String(flags) },
    timeout: 10000,
  });
  const last = r.stdout.trim().split('\n').pop();
  let out: any;
  try {
    out = last ? JSON.parse(last) : undefined;
  } catch {
    out = undefined;
  }
  return Object.assign(r, { out });
}

/** Decodes struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k). */
function insns(bpf: Buffer): Array<{ code: number; jt: number; jf: number; k: number }> {
  const list = [];
  for (let o = 0; o < bpf.length; o += 8) {
    list.push({ code: bpf.readUInt16LE(o), jt: bpf.readUInt8(o + 2), jf: bpf.readUInt8(o + 3), k: bpf.readUInt32LE(o + 4) });
  }
  return list;
}

const BPF_RET = 0x06;
const BPF_JMP = 0x05;
const SYS = { mkdir: 83, getpriority: 140, umask: 95, unshare: 272, mount: 165, bpf: 321, kexec_load: 246, clone3: 435, getppid: 110, personality: 135 };
const EPERM = 1;
const EACCES = 13;
const ENOSYS = 38;

describe('validateSeccomp', () => {
  const base = (extra: Record<string, unknown> = {}) => ({ defaultAction: 'SCMP_ACT_ALLOW', ...extra });

  it('accepts a full object and normalises it', () => {
    const v = validateSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86'],
      flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC'],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 5, value: 1, op: 'SCMP_CMP_EQ' }] }],
      somethingNew: true,
    });
    expect(v.flags).toBe(SeccompFilterFlag.LOG | SeccompFilterFlag.SPEC_ALLOW | SeccompFilterFlag.TSYNC);
    expect(v.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    expect(v.syscalls[0]!.args[0]).toEqual({ index: 5, value: 1n, valueTwo: 0n, op: 'SCMP_CMP_EQ' });
  });

  const cases: Array<[string, unknown, string, string, string?]> = [
    ['not an object', [], 'linux.seccomp', 'linux.seccomp: must be an object, got an array'],
    ['no defaultAction', {}, 'linux.seccomp.defaultAction', 'linux.seccomp.defaultAction: is required'],
    ['unknown default action', base({ defaultAction: 'SCMP_ACT_NOPE' }), 'linux.seccomp.defaultAction', 'linux.seccomp.defaultAction: unknown action SCMP_ACT_NOPE'],
    ['notify default', base({ defaultAction: 'SCMP_ACT_NOTIFY' }), 'linux.seccomp.defaultAction', 'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY needs a seccomp agent, which paddock does not have', 'ECONFIG_UNSUPPORTED'],
    ['errnoRet on allow', base({ defaultErrnoRet: 1 }), 'linux.seccomp.defaultErrnoRet', 'linux.seccomp.defaultErrnoRet: only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW'],
    ['errno out of range', base({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 4096 }), 'linux.seccomp.defaultErrnoRet', 'linux.seccomp.defaultErrnoRet: must be an integer in 0..4095, got 4096'],
    ['arch not array', base({ architectures: 'x86' }), 'linux.seccomp.architectures', 'linux.seccomp.architectures: must be an array, got "x86"'],
    ['unknown arch', base({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] }), 'linux.seccomp.architectures[1]', 'linux.seccomp.architectures[1]: unknown architecture SCMP_ARCH_Z80'],
    ['unknown flag', base({ flags: ['SECCOMP_FILTER_FLAG_FAST'] }), 'linux.seccomp.flags[0]', 'linux.seccomp.flags[0]: unknown flag SECCOMP_FILTER_FLAG_FAST'],
    ['listener flag', base({ flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }), 'linux.seccomp.flags[0]', 'linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_NEW_LISTENER is not supported', 'ECONFIG_UNSUPPORTED'],
    ['listenerPath', base({ listenerPath: '/run/agent.sock' }), 'linux.seccomp.listenerPath', 'linux.seccomp.listenerPath: seccomp agents are not supported', 'ECONFIG_UNSUPPORTED'],
    ['syscalls not array', base({ syscalls: {} }), 'linux.seccomp.syscalls', 'linux.seccomp.syscalls: must be an array, got an object'],
    ['names missing', base({ syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names', 'linux.seccomp.syscalls[0].names: must be an array, got undefined'],
    ['names empty', base({ syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names', 'linux.seccomp.syscalls[0].names: must not be empty'],
    ['bad name', base({ syscalls: [{ names: ['read', 'Bad Name'], action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names[1]', 'linux.seccomp.syscalls[0].names[1]: must be a syscall name ([a-z0-9_]+), got "Bad Name"'],
    ['unknown action', base({ syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: ['a'], action: 'SCMP_ACT_FOO' }] }), 'linux.seccomp.syscalls[3].action', 'linux.seccomp.syscalls[3].action: unknown action SCMP_ACT_FOO'],
    ['notify rule', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }), 'linux.seccomp.syscalls[0].action', 'linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs a seccomp agent, which paddock does not have', 'ECONFIG_UNSUPPORTED'],
    ['errnoRet type', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: '1' }] }), 'linux.seccomp.syscalls[0].errnoRet', 'linux.seccomp.syscalls[0].errnoRet: must be an integer in 0..4095, got "1"'],
    ['index range', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] }), 'linux.seccomp.syscalls[0].args[0].index', 'linux.seccomp.syscalls[0].args[0].index: must be an integer in 0..5, got 6'],
    ['value missing', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_EQ' }] }] }), 'linux.seccomp.syscalls[0].args[0].value', 'linux.seccomp.syscalls[0].args[0].value: is required'],
    ['value negative', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] }), 'linux.seccomp.syscalls[0].args[0].value', 'linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer, got -1'],
    ['value imprecise', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] }] }), 'linux.seccomp.syscalls[0].args[0].value', `linux.seccomp.syscalls[0].args[0].value: ${2 ** 60} is above 2^53 and cannot be represented exactly`],
    ['valueTwo bigint range', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0, valueTwo: 1n << 64n, op: 'SCMP_CMP_EQ' }] }] }), 'linux.seccomp.syscalls[0].args[0].valueTwo', 'linux.seccomp.syscalls[0].args[0].valueTwo: must be in 0..2^64-1, got 18446744073709551616n'],
    ['unknown op', base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0, op: 'SCMP_CMP_LIKE' }] }] }), 'linux.seccomp.syscalls[0].args[0].op', 'linux.seccomp.syscalls[0].args[0].op: unknown operator SCMP_CMP_LIKE'],
  ];
  it.each(cases)('rejects %s', (_name, input, field, message, code = 'ECONFIG_INVALID') => {
    const e = caught(() => validateSeccomp(input));
    expect(e).toMatchObject({ code, message, context: { field } });
    expect(e.message).not.toMatch(/\.$/);
  });

  it('names paths under a custom prefix', () => {
    expect(caught(() => validateSeccomp({ defaultAction: 1 }, 'seccomp')).message).toBe(
      'seccomp.defaultAction: must be a string, got 1',
    );
  });

  it('accepts the default profile', () => {
    expect(() => validateSeccomp(defaultSeccompProfile())).not.toThrow();
  });
});

describe('packArgCmps', () => {
  it('lays out struct scmp_arg_cmp as 24 little-endian bytes', () => {
    const b = packArgCmps([
      { arg: 2, op: 7, datumA: 0xffff_ffff_ffff_ffffn, datumB: 0x1234n },
      { arg: 5, op: 1, datumA: 0n, datumB: 0n },
    ]);
    expect(ARG_CMP_SIZE).toBe(24);
    expect(b.length).toBe(48);
    expect(b.subarray(0, 24).toString('hex')).toBe('02000000' + '07000000' + 'ffffffffffffffff' + '3412000000000000');
    expect(b.readUInt32LE(24)).toBe(5);
  });
});

describeNative('compileSeccomp (libseccomp)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-seccomp-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('exports a well-formed program: arch check first, RET last, jumps in range', () => {
    const { bpf, flags, skipped } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [{ names: ['mkdir', 'mkdirat', 'no_such_syscall'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    });
    expect(flags).toBe(SeccompFilterFlag.LOG);
    expect(skipped).toEqual(['no_such_syscall']);
    expect(bpf.length % 8).toBe(0);
    const prog = insns(bpf);
    // ld [4] (seccomp_data.arch), then compare against the native AUDIT_ARCH.
    expect(prog[0]).toMatchObject({ code: 0x20, k: 4 });
    if (onLinuxX64) expect(prog[1]).toMatchObject({ code: 0x15, k: 0xc000003e });
    expect(prog[prog.length - 1]!.code & 0x07).toBe(BPF_RET);
    prog.forEach((ins, i) => {
      if ((ins.code & 0x07) === BPF_JMP && ins.code !== 0x05) {
        expect(i + 1 + Math.max(ins.jt, ins.jf)).toBeLessThan(prog.length);
      }
    });
    // the errno action (SECCOMP_RET_ERRNO | 1) is in the program
    expect(prog.some((x) => (x.code & 0x07) === BPF_RET && x.k === 0x00050001)).toBe(true);
  });

  itX64('adds architectures, skips names unknown to every arch of the filter', () => {
    const one = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['socketcall', 'mkdir'], action: 'SCMP_ACT_ERRNO' }],
    });
    expect(one.skipped).toEqual(['socketcall']);
    const multi = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64'],
      syscalls: [{ names: ['socketcall', 'mkdir'], action: 'SCMP_ACT_ERRNO' }],
    });
    expect(multi.skipped).toEqual([]);
    const ks = insns(multi.bpf).map((x) => x.k);
    expect(ks).toEqual(expect.arrayContaining([0xc000003e, 0x40000003, 0xc00000b7]));
    expect(multi.bpf.length).toBeGreaterThan(one.bpf.length);
  });

  it('drops rules equal to the default action and leaves the filter trivial', () => {
    const { bpf, skipped } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO' }],
    });
    expect(skipped).toEqual([]);
    expect(insns(bpf).some((x) => x.k === 0x00050001)).toBe(true);
  });

  it('reports libseccomp rejections with the rule path', () => {
    const e = caught(() =>
      compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
          { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 2, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
        ],
      }),
    );
    expect(e.code).toBe('ECONFIG_INVALID');
    expect(e.context.field).toBe('linux.seccomp.syscalls[1].names[0]');
    expect(e.message).toMatch(/^linux\.seccomp\.syscalls\[1\]\.names\[0\]: libseccomp rejected the rule for read \(E[A-Z]+\)$/);
  });

  itX64('a loaded deny rule fails mkdir with EPERM; everything else still works', () => {
    const { bpf, flags } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }],
    });
    const dir = path.join(tmp, 'denied');
    const file = path.join(tmp, 'allowed.txt');
    const r = runFiltered(bpf, flags, `
      try { require('fs').mkdirSync(${JSON.stringify(dir)}); out.mkdir = 'ok'; } catch (e) { out.mkdir = e.code; }
      require('fs').writeFileSync(${JSON.stringify(file)}, 'x'); out.write = 'ok';
    `);
    expect(r.stderr).toBe('');
    expect(r.out).toEqual({ mkdir: 'EPERM', write: 'ok' });
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });

  itX64('an allow-everything filter changes nothing', () => {
    const { bpf, flags } = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' });
    const dir = path.join(tmp, 'made');
    const r = runFiltered(bpf, flags, `require('fs').mkdirSync(${JSON.stringify(dir)}); out.ok = true;`);
    expect(r.out).toEqual({ ok: true });
    expect(fs.existsSync(dir)).toBe(true);
  });

  itX64('argument conditions: AND across indexes, OR when an index repeats, MASKED_EQ', () => {
    const { bpf, flags } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        // getpriority(which, who): denied only for which == PRIO_PGRP (1) AND who == 0
        {
          names: ['getpriority'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: EACCES,
          args: [
            { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 0, op: 'SCMP_CMP_EQ' },
          ],
        },
        // personality(p): denied for p == 0x8 OR p == 0x20000 (repeated index)
        {
          names: ['personality'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: EPERM,
          args: [
            { index: 0, value: 0x8, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 0x20000, op: 'SCMP_CMP_EQ' },
          ],
        },
        // umask(mask): denied when (mask & 0o007) == 0o007
        { names: ['umask'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, args: [{ index: 0, value: 0o007, valueTwo: 0o007, op: 'SCMP_CMP_MASKED_EQ' }] },
      ],
    });
    const r = runFiltered(bpf, flags, `
      out.prioPgrpSelf = sys(${SYS.getpriority}, 1, 0).errno;
      out.prioPgrpOwn = sys(${SYS.getpriority}, 1, sys(121, 0).rc).errno; // getpgid(0)
      out.prioProcess = sys(${SYS.getpriority}, 0, 0).errno;
      out.pers8 = sys(${SYS.personality}, 0x8).errno;
      out.pers20000 = sys(${SYS.personality}, 0x20000).errno;
      out.persQuery = sys(${SYS.personality}, 0xffffffff).errno;
      out.umask077 = sys(${SYS.umask}, 0o077).errno;
      out.umask022 = sys(${SYS.umask}, 0o022).errno;
    `);
    expect(r.stderr).toBe('');
    expect(r.out).toEqual({
      prioPgrpSelf: EACCES,
      prioPgrpOwn: 0,
      prioProcess: 0,
      pers8: EPERM,
      pers20000: EPERM,
      persQuery: 0,
      umask077: ENOSYS,
      umask022: 0,
    });
  });

  itX64('SCMP_ACT_KILL_PROCESS kills the child with SIGSYS', () => {
    const { bpf, flags } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_KILL_PROCESS' }],
    });
    const r = runFiltered(bpf, flags, `out.before = true; process.stdout.write('alive\\n'); sys(${SYS.getppid});`);
    expect(r.stdout).toBe('alive\n');
    expect(r.signal).toBe('SIGSYS');
  });

  describe('the default profile', () => {
    it('compiles, skipping only names foreign to this host', () => {
      const c = compileSeccomp(defaultSeccompProfile());
      expect(c.bpf.length % 8).toBe(0);
      expect(c.bpf.length / 8).toBeLessThan(4096); // BPF_MAXINSNS
      expect(c.flags).toBe(0);
      // arm-only calls and very new calls are allowed to be unknown; x86 basics are not
      expect(c.skipped).not.toEqual(expect.arrayContaining(['read']));
      if (onLinuxX64) expect(c.skipped).not.toEqual(expect.arrayContaining(['openat', 'socketcall', 'clone3']));
    });

    itX64('runs busybox applets and node, and denies the dangerous calls', () => {
      const { bpf, flags } = compileSeccomp(defaultSeccompProfile());
      const work = path.join(tmp, 'default');
      const script = [
        `busybox mkdir -p ${work}/d`,
        `echo hello > ${work}/d/f`,
        `busybox cat ${work}/d/f | busybox wc -c`,
        `busybox ls ${work}/d`,
        `busybox cp ${work}/d/f ${work}/d/g && busybox mv ${work}/d/g ${work}/d/h`,
        `busybox chmod 600 ${work}/d/h && busybox stat -c %a ${work}/d/h`,
        `busybox ln -s f ${work}/d/l && busybox readlink ${work}/d/l`,
        `busybox find ${work} -type f | busybox sort | busybox wc -l`,
        `busybox id -u; busybox uname -s; busybox date +%Y >/dev/null; busybox sleep 0`,
        `busybox rm -r ${work}/d && echo removed`,
      ].join('\n');
      const r = runFiltered(bpf, flags, `
        const cp = require('child_process');
        const res = cp.spawnSync('/usr/bin/busybox', ['sh', '-ec', ${JSON.stringify(script)}], { encoding: 'utf8' });
        out.sh = { status: res.status, signal: res.signal, stdout: res.stdout, stderr: res.stderr };
        out.unshare = sys(${SYS.unshare}, 0x10000000).errno;
        out.mount = sys(${SYS.mount}, 0, 0, 0).errno;
        out.bpf = sys(${SYS.bpf}, 0, 0, 0).errno;
        out.kexec = sys(${SYS.kexec_load}, 0, 0, 0).errno;
        out.clone3 = sys(${SYS.clone3}, 0, 0).errno;
        out.persQuery = sys(${SYS.personality}, 0xffffffff).errno;
        out.persBad = sys(${SYS.personality}, 0x0400000).errno;
        out.threads = require('os').availableParallelism() > 0;
      `);
      expect(r.stderr).toBe('');
      expect(r.out.sh).toEqual({
        status: 0,
        signal: null,
        stdout: '6\nf\n600\nf\n2\n0\nLinux\nremoved\n',
        stderr: '',
      });
      expect(r.out).toMatchObject({
        unshare: EPERM,
        mount: EPERM,
        bpf: EPERM,
        kexec: EPERM,
        clone3: ENOSYS,
        persQuery: 0,
        persBad: EPERM,
      });
    });
  });
});
