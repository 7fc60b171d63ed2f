/**
 * The pool of host id ranges (actors/sandbox/id-pool.ts): settings checked with one line each,
 * next-fit allocation recorded in the state dir, EUSERNS_EXHAUSTED, release, the
 * collection of ranges nobody holds, and many processes allocating at once from one
 * state dir never getting the same range.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkIdPool, checkPoolAgainstHost, DEFAULT_ID_POOL, IdPoolStore, RANGE_SIZE, withIdRange, type HostIdFiles } from '../../../actors/sandbox/id-pool';

const R = RANGE_SIZE;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-idpool-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('checkIdPool', () => {
  test('the default pool is valid, below 2^31 and clear of the first 65536 host ids', () => {
    expect(checkIdPool(DEFAULT_ID_POOL)).toEqual(DEFAULT_ID_POOL);
    expect(DEFAULT_ID_POOL.start).toBeGreaterThanOrEqual(R);
    expect(DEFAULT_ID_POOL.start + DEFAULT_ID_POOL.size).toBeLessThanOrEqual(2 ** 31);
  });
  test.each([
    [{ start: 0, size: R }, "idPool: start 0 overlaps host ids 0..65535 (the host's own users); start at 65536 or above"],
    [{ start: 100000, size: 100 }, 'idPool: size 100 is not a multiple of 65536 (one range per sandbox)'],
    [{ start: 100000, size: 0 }, 'idPool: size must be a positive integer, not 0'],
    [{ start: -5, size: R }, 'idPool: start must be a non-negative integer, not -5'],
    [{ start: 1.5, size: R }, 'idPool: start must be a non-negative integer, not 1.5'],
    [{ start: 0xffff0000, size: R }, 'idPool: start + size ends at 4294967295, past the largest host id 4294967294'],
    [{ start: 100000, size: R, strart: 1 }, 'idPool: unknown option "strart" (known: start, size)'],
    ['big', 'idPool: must be an object { start, size }'],
  ])('%j', (pool, message) => {
    expect(() => checkIdPool(pool)).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT', message, context: { field: 'idPool' } }));
  });
});

describe('checkPoolAgainstHost', () => {
  const files = (content: Partial<Record<keyof HostIdFiles, string>>): HostIdFiles => {
    const out = {} as Record<keyof HostIdFiles, string>;
    for (const k of ['passwd', 'group', 'subuid', 'subgid'] as const) {
      out[k] = path.join(dir, k);
      if (content[k] !== undefined) fs.writeFileSync(out[k], content[k] as string);
    }
    return out;
  };
  const pool = { start: 0x1000_0000, size: 2 * R };
  test('a pool clear of every host id passes (missing files are skipped)', () => {
    expect(() => checkPoolAgainstHost(pool, files({ passwd: 'root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/x\n', subuid: 'alice:100000:65536\n' }))).not.toThrow();
    expect(() => checkPoolAgainstHost(pool, files({}))).not.toThrow();
  });
  test.each([
    ['passwd', `svc:x:${0x1000_0000 + 5}:1::/:/x\n`, `user svc (${0x1000_0000 + 5})`],
    ['group', `grp:x:${0x1000_0000 + 2 * R - 1}:\n`, `group grp (${0x1000_0000 + 2 * R - 1})`],
    ['subuid', `bob:${0x1000_0000 - 10}:20\n`, `the ids ${0x1000_0000 - 10}..${0x1000_0000 + 9}`],
    ['subgid', `bob:${0x1000_0000 + R}:65536\n`, `the ids ${0x1000_0000 + R}..${0x1000_0000 + 2 * R - 1}`],
  ] as const)('overlapping %s is refused with one line naming the entry', (file, content, what) => {
    expect(() => checkPoolAgainstHost(pool, files({ [file]: content }))).toThrow(expect.objectContaining({
      code: 'EINVALID_ARGUMENT',
      message: expect.stringMatching(new RegExp(`^idPool: ${pool.start}\\.\\.${pool.start + pool.size - 1} overlaps ${what.replace(/[().]/g, '\\$&')}.*; choose another idPool$`)),
    }));
  });
  test('the store checks at its first allocation (the default pool is not checked by createEngine)', () => {
    const state = path.join(dir, 'state');
    fs.mkdirSync(state);
    const s = new IdPoolStore(state, pool, files({ passwd: `svc:x:${pool.start}:1::/:/x\n` }));
    expect(() => s.allocate('a')).toThrow(/overlaps user svc/);
    expect(fs.existsSync(path.join(state, '.userns.json'))).toBe(false);
  });
  test('this host and the default pool do not overlap', () => {
    expect(() => checkPoolAgainstHost(DEFAULT_ID_POOL)).not.toThrow();
  });
});

describe('IdPoolStore', () => {
  const pool = { start: 0x1000_0000, size: 3 * R };
  const table = () => JSON.parse(fs.readFileSync(path.join(dir, '.userns.json'), 'utf8'));

  test('hands out ranges in turn, records them, refuses when all are held, frees on release', () => {
    const s = new IdPoolStore(dir, pool);
    expect(s.allocate('a')).toEqual({ hostId: pool.start, size: R });
    expect(s.allocate('b')).toEqual({ hostId: pool.start + R, size: R });
    expect(s.allocate('c')).toEqual({ hostId: pool.start + 2 * R, size: R });
    expect(Object.values(table().ranges).map((e) => (e as { sandboxId: string }).sandboxId)).toEqual(['a', 'b', 'c']);
    expect(() => s.allocate('d')).toThrow(expect.objectContaining({
      code: 'EUSERNS_EXHAUSTED',
      message: `no free host id range for sandbox d: all 3 ranges of the pool ${pool.start}..${pool.start + 3 * R - 1} are in use`,
    }));
    expect(s.rangeOf('b')).toEqual({ hostId: pool.start + R, size: R });
    s.release('b');
    expect(s.rangeOf('b')).toBeUndefined();
    // The freed range is the only one, so it is the next.
    expect(s.allocate('d')).toEqual({ hostId: pool.start + R, size: R });
    // No lock is left behind.
    expect(fs.existsSync(path.join(dir, '.userns.lock'))).toBe(false);
  });

  test('next-fit: a freed range is handed out again as late as possible', () => {
    const s = new IdPoolStore(dir, pool);
    s.allocate('a');
    s.release('a');
    expect(s.allocate('b').hostId).toBe(pool.start + R);
    expect(s.allocate('c').hostId).toBe(pool.start + 2 * R);
    expect(s.allocate('d').hostId).toBe(pool.start);
  });

  test('a restarted store (another engine, the CLI) sees the same ranges held', () => {
    new IdPoolStore(dir, pool).allocate('a');
    const again = new IdPoolStore(dir, pool);
    expect(again.rangeOf('a')).toEqual({ hostId: pool.start, size: R });
    expect(again.allocate('b').hostId).toBe(pool.start + R);
  });

  test('held while the sandbox folder exists, even after its allocating process died; collected once neither holds it', () => {
    const s = new IdPoolStore(dir, pool);
    s.allocate('alive'); // this process: held
    fs.mkdirSync(path.join(dir, 'withdir'));
    const t = table();
    // Two entries of a dead process: one whose sandbox folder exists (a sandbox its
    // supervisor left running), one whose create died before making the folder.
    t.ranges[String(pool.start + R)] = { sandboxId: 'withdir', pid: 2 ** 22 + 7, start: 1, at: '' };
    t.ranges[String(pool.start + 2 * R)] = { sandboxId: 'gone', pid: 2 ** 22 + 7, start: 1, at: '' };
    fs.writeFileSync(path.join(dir, '.userns.json'), JSON.stringify(t));
    expect(s.allocate('next')).toEqual({ hostId: pool.start + 2 * R, size: R });
    expect(s.held().map((h) => h.sandboxId)).toEqual(['alive', 'withdir', 'next']);
  });

  test('engines given different pools on one state dir never hand out overlapping ranges', () => {
    const a = new IdPoolStore(dir, { start: 0x1000_0000, size: 4 * R });
    // Misaligned by half a range: each of its ranges meets two of a's.
    const b = new IdPoolStore(dir, { start: 0x1000_0000 + R / 2, size: 4 * R });
    const S = 0x1000_0000;
    const got = [a.allocate('a1'), b.allocate('b1'), a.allocate('a2')].map((r) => r.hostId);
    // a2 skips S+2R, which would meet b1's S+1.5R..S+2.5R.
    expect(got).toEqual([S, S + R + R / 2, S + 3 * R]);
    // Every range of b's pool now meets one held: refused, not overlapped.
    expect(() => b.allocate('b2')).toThrow(expect.objectContaining({ code: 'EUSERNS_EXHAUSTED' }));
    const sorted = [...got].sort((x, y) => x - y);
    for (let i = 1; i < sorted.length; i++) expect((sorted[i] as number) - (sorted[i - 1] as number)).toBeGreaterThanOrEqual(R);
  });

  test('a stale lock (its process gone) is taken over; a corrupt table is ESTATE_CORRUPT', () => {
    fs.writeFileSync(path.join(dir, '.userns.lock'), `${2 ** 22 + 7} 1\n`);
    const s = new IdPoolStore(dir, pool);
    expect(s.allocate('a').hostId).toBe(pool.start);
    fs.writeFileSync(path.join(dir, '.userns.json'), '{nope');
    expect(() => s.allocate('b')).toThrow(expect.objectContaining({ code: 'ESTATE_CORRUPT' }));
  });

  test('release of a sandbox that holds nothing writes nothing', () => {
    const s = new IdPoolStore(dir, pool);
    s.release('none');
    expect(fs.existsSync(path.join(dir, '.userns.json'))).toBe(false);
  });

  test('8 processes allocating at once from one state dir never get the same range', async () => {
    // The store bundled to plain JS, so child processes can load it without ts-jest.
    const js = path.join(dir, 'id-pool.js');
    // Without this, esbuild's sync API keeps a worker thread whose service child outlives
    // the file (and, killed, stays a zombie nobody reaps): in the one jest process of
    // `npm test`, native.int.test.ts's "no child left behind" check found it. With it,
    // buildSync runs esbuild as a plain child that is waited for.
    process.env.ESBUILD_WORKER_THREADS = '0';
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { buildSync } = require('esbuild') as typeof import('esbuild');
    buildSync({ entryPoints: [path.join(__dirname, '..', '..', '..', 'actors', 'sandbox', 'id-pool.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: js, logLevel: 'silent' });
    const state = path.join(dir, 'state');
    fs.mkdirSync(state);
    const big = { start: 0x1000_0000, size: 64 * R };
    const script = `
      const { IdPoolStore } = require(${JSON.stringify(js)});
      const s = new IdPoolStore(${JSON.stringify(state)}, ${JSON.stringify(big)});
      const got = [];
      for (let i = 0; i < 6; i++) {
        const id = process.argv[1] + '-' + i;
        require('fs').mkdirSync(${JSON.stringify(state)} + '/' + id);
        got.push(s.allocate(id).hostId);
      }
      process.stdout.write(JSON.stringify(got));
    `;
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        new Promise<number[]>((resolve, reject) => {
          const p = spawn(process.execPath, ['-e', script, `w${n}`], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`worker ${n} exited ${code}`))));
        }),
      ),
    );
    const all = runs.flat();
    expect(all).toHaveLength(48);
    expect(new Set(all).size).toBe(48);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(state, '.userns.json'), 'utf8')).ranges)).toHaveLength(48);
  }, 30_000);
});

describe('withIdRange', () => {
  test('replaces the mappings, or adds a user namespace', () => {
    const r = { hostId: 0x1000_0000, size: R };
    const m = [{ containerID: 0, hostID: r.hostId, size: R }];
    expect(withIdRange({ linux: { namespaces: [{ type: 'pid' }] } }, r).linux).toEqual({ namespaces: [{ type: 'pid' }, { type: 'user' }], uidMappings: m, gidMappings: m });
    const had = { linux: { namespaces: [{ type: 'user' }], uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] } };
    expect(withIdRange(had, r).linux).toEqual({ namespaces: [{ type: 'user' }], uidMappings: m, gidMappings: m });
    expect(had.linux.uidMappings[0]?.hostID).toBe(1000);
  });
  test('a user namespace joined by path cannot take a range', () => {
    expect(() => withIdRange({ linux: { namespaces: [{ type: 'user', path: '/proc/1/ns/user' }] } }, { hostId: 1 << 20, size: R })).toThrow(
      expect.objectContaining({ code: 'ECONFIG_UNSUPPORTED', context: { field: 'linux.namespaces[0].path' } }),
    );
  });
});
