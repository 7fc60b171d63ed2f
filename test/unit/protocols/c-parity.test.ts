/**
 * The C and TypeScript sides must agree: enum values in paddock_proto.h, the kind
 * table in schema.c and the tag table in docs/protocol.md against messages.ts and
 * schema.ts; and the C decoder must pass its own vector/mutation run.
 */
import { spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';

import {
  Kind, MAX_STR, MAX_TEXT, MsgType, ProcState, Tag, WireCode,
} from '../../../protocols/messages';
import { TAG_KIND } from '../../../protocols/schema';
import { testIf } from '../../helpers/env';

const ROOT = join(__dirname, '../../..');
const header = readFileSync(join(ROOT, 'protocols/c/paddock_proto.h'), 'utf8');

function cEnum(name: string, prefix: string): Record<string, number> {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(header)?.[1];
  if (body === undefined) throw new Error(`enum ${name} not found`);
  const out: Record<string, number> = {};
  for (const [, k, v] of body.matchAll(/\b([A-Z0-9_]+)\s*=\s*(0x[0-9a-fA-F]+|\d+)/g)) {
    if (k === undefined || v === undefined || !k.startsWith(prefix)) throw new Error(`bad entry ${k}`);
    out[k.slice(prefix.length)] = Number(v);
  }
  return out;
}

describe('paddock_proto.h agrees with messages.ts', () => {
  it('message types', () => expect(cEnum('pd_type', 'PD_')).toEqual({ ...MsgType }));
  it('tags', () => expect(cEnum('pd_tag', 'PD_T_')).toEqual({ ...Tag }));
  it('error codes', () => expect(cEnum('pd_code', 'PD_E_')).toEqual({ ...WireCode }));
  it('kinds', () => expect(cEnum('pd_kind', 'PD_KIND_')).toEqual({ ...Kind }));
  it('states', () => expect(cEnum('pd_state', 'PD_STATE_')).toEqual({ ...ProcState }));
  it('limits', () => {
    expect(header).toContain(`#define PD_MAX_STR ${MAX_STR}u`);
    expect(MAX_TEXT).toBe(1 << 20);
    expect(header).toContain('#define PD_MAX_TEXT (1u << 20)');
  });
});

describe('tag kinds agree across schema.ts, schema.c and docs/protocol.md', () => {
  const tagByNum = new Map<number, string>(Object.entries(Tag).map(([k, v]) => [v, k]));

  it('schema.c', () => {
    const src = readFileSync(join(ROOT, 'protocols/c/schema.c'), 'utf8');
    const c = new Map<number, string>();
    for (const [, t, k, n] of src.matchAll(/T\(PD_T_(\w+), PD_K_(\w+), "(\w+)"\)/g)) {
      const num = Tag[t as keyof typeof Tag];
      expect(n).toBe(t?.toLowerCase());
      c.set(num, (k ?? '').toLowerCase());
    }
    expect(c).toEqual(new Map([...TAG_KIND].map(([t, k]) => [t, k])));
  });

  it('docs/protocol.md', () => {
    const doc = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
    const rows = [...doc.matchAll(/^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|\s*(u32|i32|u64|str|nest|bytes)\s*\|/gm)];
    expect(rows.length).toBe(TAG_KIND.size);
    for (const [, num, name, kind] of rows) {
      expect(tagByNum.get(Number(num))).toBe(name);
      expect(TAG_KIND.get(Number(num))).toBe(kind);
    }
  });
});

const protoTest = join(ROOT, 'native/build/proto-test');
testIf(['proto-test'])('C decoder passes vectors, truncations and mutations (native/build/proto-test)', () => {
  const r = spawnSync(protoTest, [join(ROOT, 'protocols/vectors')], { encoding: 'utf8', timeout: 120000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  expect(last).toMatch(/^\d+ passed, 0 failed$/);
  expect(r.status).toBe(0);
  // UBSan reports and carries on; any report is a failure.
  expect(r.stderr).not.toMatch(/runtime error|AddressSanitizer/);
}, 120000);
