/**
 * A BPF_PROG_TYPE_CGROUP_DEVICE program from reduced device rules (specs/device-rules.ts):
 * what cgroup v2 has instead of the v1 `devices` controller (docs/decisions/0019).
 * Hand-assembled `struct bpf_insn`s (8 bytes each, little-endian), loaded and
 * attached by the native layer (native/c/lib/devbpf.c) without libbpf.
 *
 * The kernel runs the program on every device open and mknod in the cgroup with a
 * `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, where
 * access_type is the device type (BPF_DEVCG_DEV_BLOCK 1, _CHAR 2) in the low 16 bits
 * and the access (BPF_DEVCG_ACC_MKNOD 1, _READ 2, _WRITE 4) in the high 16 bits;
 * returning 1 allows, 0 denies (EPERM).
 *
 * Shape: load the four fields into r2..r5, then one block per exception (all of one
 * verdict, the opposite of the default, so their order does not matter), each
 * jumping to the next block on the first mismatch, and finally the default:
 *
 *     r2 = type; r3 = access; r4 = major; r5 = minor
 *     block:  if w2 != TYPE goto next
 *             if w4 != MAJOR goto next          (left out for a wildcard)
 *             if w5 != MINOR goto next          (left out for a wildcard)
 *             w1 = w3; w1 &= MASK; if w1 ? 0 goto next   (left out for rwm)
 *             r0 = VERDICT; exit
 *     r0 = DEFAULT; exit
 *
 * The access test differs by default, as in the v1 controller: an allow exception
 * must hold all the access asked for (MASK = ~access, jump when non-zero); a deny
 * exception matches any of it (MASK = access, jump when zero). Comparisons are 32-bit
 * (BPF_JMP32, Linux 5.1) so every u32 major/minor compares as it is.
 */
import { ACCESS, ALL_ACCESS, type DeviceRuleSet } from './device-rules';

// Opcode parts from linux/bpf.h and linux/bpf_common.h.
export const BPF = {
  LDX_MEM_W: 0x61, // BPF_LDX | BPF_MEM | BPF_W
  ALU32_AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K
  ALU32_RSH_K: 0x74, // BPF_ALU | BPF_RSH | BPF_K
  ALU32_MOV_K: 0xb4, // BPF_ALU | BPF_MOV | BPF_K
  ALU32_MOV_X: 0xbc, // BPF_ALU | BPF_MOV | BPF_X
  JMP32_JNE_K: 0x56, // BPF_JMP32 | BPF_JNE | BPF_K
  JMP32_JEQ_K: 0x16, // BPF_JMP32 | BPF_JEQ | BPF_K
  EXIT: 0x95, // BPF_JMP | BPF_EXIT
} as const;

export const DEVCG_DEV = { b: 1, c: 2 } as const;
/** The kernel's access bits happen to be ACCESS's (m 1, r 2, w 4); checked here once. */
const DEVCG_ACC = { m: 1, r: 2, w: 4 } as const;
if (DEVCG_ACC.m !== ACCESS.m || DEVCG_ACC.r !== ACCESS.r || DEVCG_ACC.w !== ACCESS.w) throw new Error('device access bits out of step');

export interface Insn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });

/** The program's instructions for a rule set. */
export function deviceProgramInsns(set: DeviceRuleSet): Insn[] {
  const out: Insn[] = [
    insn(BPF.LDX_MEM_W, 2, 1, 0, 0),
    insn(BPF.ALU32_AND_K, 2, 0, 0, 0xffff),
    insn(BPF.LDX_MEM_W, 3, 1, 0, 0),
    insn(BPF.ALU32_RSH_K, 3, 0, 0, 16),
    insn(BPF.LDX_MEM_W, 4, 1, 4, 0),
    insn(BPF.LDX_MEM_W, 5, 1, 8, 0),
  ];
  const verdict = set.defaultAllow ? 0 : 1;
  for (const ex of set.exceptions) {
    // Each test is `if (...) goto next`, `next` being the first instruction after this
    // block; the offsets are filled in once the block's length is known.
    const block: Array<Insn | { test: number; dst: number; imm: number }> = [];
    block.push({ test: BPF.JMP32_JNE_K, dst: 2, imm: DEVCG_DEV[ex.type] });
    if (ex.major !== -1) block.push({ test: BPF.JMP32_JNE_K, dst: 4, imm: ex.major | 0 });
    if (ex.minor !== -1) block.push({ test: BPF.JMP32_JNE_K, dst: 5, imm: ex.minor | 0 });
    if (ex.access !== ALL_ACCESS) {
      block.push(insn(BPF.ALU32_MOV_X, 1, 3, 0, 0));
      if (set.defaultAllow) {
        block.push(insn(BPF.ALU32_AND_K, 1, 0, 0, ex.access));
        block.push({ test: BPF.JMP32_JEQ_K, dst: 1, imm: 0 });
      } else {
        block.push(insn(BPF.ALU32_AND_K, 1, 0, 0, ~ex.access & 0xffff));
        block.push({ test: BPF.JMP32_JNE_K, dst: 1, imm: 0 });
      }
    }
    block.push(insn(BPF.ALU32_MOV_K, 0, 0, 0, verdict), insn(BPF.EXIT, 0, 0, 0, 0));
    block.forEach((b, i) => {
      out.push('test' in b ? insn(b.test, b.dst, 0, block.length - i - 1, b.imm) : b);
    });
  }
  out.push(insn(BPF.ALU32_MOV_K, 0, 0, 0, set.defaultAllow ? 1 : 0), insn(BPF.EXIT, 0, 0, 0, 0));
  return out;
}

/** `struct bpf_insn`s as the kernel takes them: {u8 code; u8 dst:4, src:4; s16 off; s32 imm}. */
export function encodeInsns(insns: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    const o = i * 8;
    buf.writeUInt8(x.code, o);
    buf.writeUInt8((x.dst & 0xf) | ((x.src & 0xf) << 4), o + 1);
    buf.writeInt16LE(x.off, o + 2);
    buf.writeInt32LE(x.imm | 0, o + 4);
  });
  return buf;
}

/** The encoded program for a rule set. */
export function deviceProgram(set: DeviceRuleSet): Buffer {
  return encodeInsns(deviceProgramInsns(set));
}
