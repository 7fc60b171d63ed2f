import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { deferred } from '../../../base/deferred';
import { checkLogSizeMax, DEFAULT_LOG_SIZE_MAX } from '../../../actors/containers/stdio';
import { tailFile } from '../../../actors/containers/stdio-files';

/** Everything a stream gives until `got` holds `want`, or its end. */
function collect(s: Readable): { text: () => string; until: (want: string) => Promise<void>; ended: Promise<void> } {
  let text = '';
  const waiters: Array<() => void> = [];
  s.on('data', (c: Buffer) => {
    text += c.toString();
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<void>((r) => s.on('end', r));
  return {
    text: () => text,
    ended,
    async until(want) {
      while (!text.includes(want)) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

/** What paddock-init does at the cap (native/c/init/logrelay.c): drop `.1`, rename, begin anew. */
function rotate(file: string, first: string): void {
  fs.rmSync(`${file}.1`, { force: true });
  fs.renameSync(file, `${file}.1`);
  fs.writeFileSync(file, first);
}

describe('tailFile follows a file that paddock-init rotates (decision 0031)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-tail-'));
    file = path.join(dir, 'c.stdout');
    fs.writeFileSync(file, '');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the old file to its end, then the new one from its start', async () => {
    const done = deferred<void>();
    const s = collect(tailFile(file, { follow: true, done: done.promise }));
    fs.appendFileSync(file, 'one\n');
    await s.until('one\n');
    fs.appendFileSync(file, 'two\n'); // lands in the old file just before the rotation
    rotate(file, '[marker]\n');
    fs.appendFileSync(file, 'three\n');
    await s.until('three\n');
    done.resolve();
    await s.ended;
    expect(s.text()).toBe('one\ntwo\n[marker]\nthree\n');
  });

  it('two rotations before it looks: the part in `.1` is read too, nothing twice', async () => {
    const done = deferred<void>();
    const s = collect(tailFile(file, { follow: true, done: done.promise }));
    fs.appendFileSync(file, 'A\n');
    await s.until('A\n');
    rotate(file, 'B\n');
    rotate(file, 'C\n');
    fs.appendFileSync(file, 'D\n');
    await s.until('D\n');
    done.resolve();
    await s.ended;
    expect(s.text()).toBe('A\nB\nC\nD\n');
  });

  it('without follow, reads the current file only', async () => {
    fs.writeFileSync(`${file}.1`, 'old\n');
    fs.writeFileSync(file, 'new\n');
    const s = collect(tailFile(file, { follow: false, done: Promise.resolve() }));
    await s.ended;
    expect(s.text()).toBe('new\n');
  });
});

describe('checkLogSizeMax', () => {
  it('takes the sandbox\'s value, else the engine\'s, else 4 MiB; 0 is no cap', () => {
    expect(checkLogSizeMax(8192, 65536)).toBe(8192);
    expect(checkLogSizeMax(undefined, 65536)).toBe(65536);
    expect(checkLogSizeMax(undefined, undefined)).toBe(DEFAULT_LOG_SIZE_MAX);
    expect(DEFAULT_LOG_SIZE_MAX).toBe(4 * 1024 * 1024);
    expect(checkLogSizeMax(0, 65536)).toBe(0);
  });

  it.each([[-1], [4095], [1.5], ['4M'], [Infinity], [NaN], [null]])('refuses %p with EINVALID_ARGUMENT, as the sandbox\'s or the engine\'s', (bad) => {
    expect(() => checkLogSizeMax(bad, undefined)).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT', message: expect.stringMatching(/^logSizeMax must be/) }));
    expect(() => checkLogSizeMax(undefined, bad)).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT', message: expect.stringMatching(/^EngineOptions\.logSizeMax must be/) }));
  });
});
