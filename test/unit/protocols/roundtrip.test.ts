/** encode/decode round trips and encoder-side validation. */
import { decode, splitMessages } from '../../../protocols/decode';
import { encode } from '../../../protocols/encode';
import { ProtocolError } from '../../../protocols/errors';
import { Message, MsgType, Tag } from '../../../protocols/messages';
import { GOOD, field, message } from '../../../protocols/vectors/cases';

const plan = { args: ['/bin/sh'], env: ['A=1'], uid: 0, gid: 0 };

const SAMPLES: Message[] = [
  { type: 'PING' },
  { type: 'START_CONTAINER', cid: 'a', plan: { ...plan, rootfs: '/r', rootfsPropagation: 0n } },
  { type: 'START_CONTAINER', cid: 'b', plan: { ...plan, rootfs: '/r', nsFlags: 0x20000, pidNsOf: 'a' } },
  { type: 'EXEC', cid: 'a', plan: { ...plan, env: [], umask: 0, terminal: true } },
  { type: 'START_CONTAINER', cid: 'c', plan: { ...plan, rootfs: '/r', nsFlags: 0x20000, cgroupProcs: ['/a/cgroup.procs', '/b/cgroup.procs'], cgroupNsOf: 'a' } },
  { type: 'EXEC', cid: 'c', plan: { ...plan, cgroupProcs: ['/a/cgroup.procs'] } },
  { type: 'PROCESSES' },
  { type: 'PROCESSES', cid: '' },
  { type: 'SIGNAL', cid: 'a', signo: 64, pid: -5, all: false },
  { type: 'WAIT', cid: 'a' },
  { type: 'WAIT_PID', cid: 'a', pid: 2147483647 },
  { type: 'STACKS' },
  { type: 'DESTROY_CONTAINER', cid: 'x'.repeat(4096) },
  { type: 'PROBE_EVENTS' },
  { type: 'ADOPT', cid: 'restored', pid: 93 },
  { type: 'SANDBOX_PLAN', sandboxId: 's', loUp: false },
  { type: 'EV_STARTED', cid: 'a', pid: 1, hostPid: 2, kind: 2 },
  { type: 'EV_EXITED', cid: 'a', pid: 1, hostPid: 2, kind: 1, exitCode: 255, signal: 0, timeNs: 2n ** 64n - 1n },
  { type: 'EV_PROBE' },
  { type: 'OK', text: 'é'.repeat(300000) },
  { type: 'OK', state: 1 },
  { type: 'ERROR', code: 4, errno: -2147483648, step: '', msg: '🐎' },
];

describe('round trip', () => {
  it.each(SAMPLES.map((m) => [m.type, m] as const))('%s', (_t, msg) => {
    const bin = encode(msg);
    expect(decode(bin)).toEqual(msg);
    expect(encode(decode(bin)).equals(bin)).toBe(true);
  });

  it('accepts fields in any order and re-encodes canonically', () => {
    const shuffled = message(MsgType.WAIT_PID, field(Tag.PID, Buffer.from([42, 0, 0, 0])), field(Tag.CID, 'web-1'));
    const msg = decode(shuffled);
    expect(msg).toEqual(GOOD['wait-pid']);
    expect(encode(msg).equals(shuffled)).toBe(false);
  });

  it('accepts Uint8Array views at an offset', () => {
    const bin = encode({ type: 'WAIT', cid: 'c' });
    const big = new Uint8Array(bin.length + 7);
    big.set(bin, 7);
    expect(decode(big.subarray(7))).toEqual({ type: 'WAIT', cid: 'c' });
  });

  it('fills plan defaults for absent uid/gid/mount flags', () => {
    const body = field(Tag.PLAN, Buffer.concat([
      field(Tag.ARG, 'x'),
      field(Tag.MOUNT, Buffer.concat([field(Tag.MOUNT_DEST, '/d'), field(Tag.MOUNT_TYPE, 'tmpfs')])),
    ]));
    const msg = decode(message(MsgType.EXEC, field(Tag.CID, 'c'), body));
    expect(msg).toEqual({
      type: 'EXEC', cid: 'c',
      plan: { args: ['x'], env: [], uid: 0, gid: 0, mounts: [{ destination: '/d', type: 'tmpfs', flags: 0n }] },
    });
  });
});

describe('encoder refuses what the decoders would reject', () => {
  const bad: [string, Message][] = [
    ['nul', { type: 'WAIT', cid: 'a\0b' }],
    ['long string', { type: 'WAIT', cid: 'x'.repeat(4097) }],
    ['lone surrogate', { type: 'WAIT', cid: '\ud800' }],
    ['no args', { type: 'EXEC', cid: 'a', plan: { ...plan, args: [] } }],
    ['too many args', { type: 'EXEC', cid: 'a', plan: { ...plan, args: Array(1025).fill('a') } }],
    ['u32 negative', { type: 'ERROR', code: -1 }],
    ['i32 overflow', { type: 'WAIT_PID', cid: 'a', pid: 2 ** 31 }],
    ['not integer', { type: 'WAIT_PID', cid: 'a', pid: 1.5 }],
    ['u64 negative', { type: 'EV_EXITED', cid: 'a', pid: 1, hostPid: 1, kind: 1, exitCode: 0, signal: 0, timeNs: -1n }],
    ['body too long', { type: 'OK', text: 'x'.repeat(1 << 20), msg: undefined } as Message],
    ['unknown type', { type: 'NOPE' } as unknown as Message],
  ];
  it.each(bad)('%s', (_n, msg) => {
    expect(() => encode(msg)).toThrow(ProtocolError);
  });
});

describe('splitMessages', () => {
  const a = encode(GOOD['ev-exited'] as Message);
  const b = encode(GOOD['ev-started'] as Message);

  it('splits back-to-back messages', () => {
    const { messages, rest } = splitMessages(Buffer.concat([a, b, a]));
    expect(messages).toEqual([GOOD['ev-exited'], GOOD['ev-started'], GOOD['ev-exited']]);
    expect(rest.length).toBe(0);
  });

  it('gives the offset just past each record, to resume a read there', () => {
    const { ends } = splitMessages(Buffer.concat([a, b, b.subarray(0, 5)]));
    expect(ends).toEqual([a.length, a.length + b.length]);
  });

  it('returns a truncated tail as rest', () => {
    for (const cut of [1, 11, 12, 13, b.length - 1]) {
      const { messages, rest } = splitMessages(Buffer.concat([a, b.subarray(0, cut)]));
      expect(messages).toHaveLength(1);
      expect(rest.equals(b.subarray(0, cut))).toBe(true);
    }
  });

  it('throws on a corrupt record', () => {
    const c = Buffer.from(b);
    c[0] = 0;
    expect(() => splitMessages(Buffer.concat([a, c]))).toThrow(ProtocolError);
  });

  it('handles an empty log', () => {
    expect(splitMessages(Buffer.alloc(0))).toEqual({ messages: [], rest: Buffer.alloc(0), ends: [] });
  });
});
