/** Truncations and seeded random mutations: decode returns or throws ProtocolError, nothing else. */
import { decode } from '../../../protocols/decode';
import { encode } from '../../../protocols/encode';
import { ProtocolError } from '../../../protocols/errors';
import { GOOD } from '../../../protocols/vectors/cases';

const VECTORS = Object.values(GOOD).map((m) => encode(m));

function decodesOrProtocolError(buf: Buffer): boolean {
  try {
    decode(buf);
    return true;
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return false;
  }
}

it('rejects every truncation of every vector', () => {
  for (const v of VECTORS) {
    for (let k = 0; k < v.length; k++) {
      expect(() => decode(v.subarray(0, k))).toThrow(ProtocolError);
    }
  }
});

it('survives 30k seeded mutations', () => {
  let s = 0x2545f491;
  const rnd = (n: number): number => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s % n;
  };
  let accepted = 0;
  for (let i = 0; i < 30000; i++) {
    const src = VECTORS[rnd(VECTORS.length)] as Buffer;
    let b = Buffer.from(src);
    switch (rnd(4)) {
      case 0:
        for (let k = 1 + rnd(4); k > 0; k--) {
          const at = rnd(b.length);
          b[at] = (b[at] ?? 0) ^ (1 << rnd(8));
        }
        break;
      case 1: {
        const at = rnd(Math.max(1, b.length - 3));
        if (b.length >= 4) b.writeUInt32LE(rnd(3) ? (b.readUInt32LE(at) + rnd(17) - 8) >>> 0 : rnd(2 ** 32), at);
        break;
      }
      case 2:
        b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + rnd(32) }, () => rnd(256)))]);
        if (rnd(2)) b.writeUInt32LE(b.length - 12, 8);
        break;
      default:
        for (let k = 12; k < b.length; k++) b[k] = rnd(256);
    }
    if (decodesOrProtocolError(b)) accepted++;
  }
  // Some mutations are benign (e.g. a changed string byte); most must be rejected.
  expect(accepted).toBeGreaterThan(0);
  expect(accepted).toBeLessThan(30000);
});
