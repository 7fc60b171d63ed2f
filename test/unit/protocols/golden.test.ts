/** Golden vectors: committed bytes and dumps must equal what the encoder produces today. */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';

import { decode } from '../../../protocols/decode';
import { dump } from '../../../protocols/dump';
import { encode } from '../../../protocols/encode';
import { ProtocolError } from '../../../protocols/errors';
import { MsgType } from '../../../protocols/messages';
import { BAD, GOOD } from '../../../protocols/vectors/cases';

const DIR = join(__dirname, '../../../protocols/vectors');
const read = (f: string): Buffer => readFileSync(join(DIR, f));

describe('good vectors', () => {
  it.each(Object.entries(GOOD))('%s', (name, msg) => {
    const bin = read(`${name}.bin`);
    expect(encode(msg).equals(bin)).toBe(true);
    expect(decode(bin)).toEqual(msg);
    expect(dump(decode(bin))).toBe(read(`${name}.txt`).toString('utf8'));
  });

  it('covers every message type', () => {
    const types = new Set(Object.values(GOOD).map((m) => m.type));
    expect(types.size).toBe(Object.keys(MsgType).length);
  });
});

describe('bad vectors', () => {
  it.each(Object.entries(BAD))('%s is rejected', (name, bytes) => {
    const bin = read(`${name}.bin`);
    expect(bin.equals(bytes)).toBe(true);
    let err: unknown;
    try {
      decode(bin);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('EPROTOCOL');
    expect((err as ProtocolError).message).toBe((err as ProtocolError).message.toLowerCase());
  });

  it.each([
    ['bad-duplicate-cid', 'duplicate tag cid'],
    ['bad-unknown-tag', 'unknown tag 99'],
    ['bad-nul-in-string', 'tag cid contains nul'],
    ['bad-oversized-string', 'tag cid too long'],
    ['bad-missing-cid', 'missing tag cid'],
    ['bad-rootfs-in-exec', 'tag rootfs not allowed in plan'],
    ['bad-hook-in-exec', 'tag hook not allowed in plan'],
    ['bad-hook-state-in-exec', 'tag hook_state not allowed in plan'],
    ['bad-hook-without-path', 'missing tag hook_path in hook'],
    ['bad-too-many-add-gids', 'too many add_gid'],
    ['bad-magic', 'bad magic'],
    ['bad-trailing-bytes', 'trailing bytes'],
    ['bad-seccomp-not-multiple-of-8', 'tag seccomp_bpf must be a non-zero multiple of 8 bytes'],
    ['bad-seccomp-empty', 'tag seccomp_bpf must be a non-zero multiple of 8 bytes'],
    ['bad-seccomp-too-long', 'tag seccomp_bpf too long'],
    ['bad-seccomp-flags-size', 'tag seccomp_flags must be 4 bytes'],
  ])('%s names the problem (%s)', (name, text) => {
    expect(() => decode(read(`${name}.bin`))).toThrow(text);
  });

  it('no stray vector files', () => {
    for (const name of Object.keys(GOOD)) expect(existsSync(join(DIR, `${name}.txt`))).toBe(true);
  });
});
