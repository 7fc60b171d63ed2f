import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withTableLock } from '../../../actors/sandbox/table-lock';
import { processStartTime } from '../../../actors/sandbox/state-store';

describe('withTableLock', () => {
  let dir: string;
  let lock: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-table-lock-'));
    lock = path.join(dir, '.t.lock');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('holds the lock while fn runs, names this process in it, and lets go after, also when fn throws', () => {
    const seen = withTableLock(lock, 'the table', 1000, () => fs.readFileSync(lock, 'utf8'));
    expect(seen).toBe(`${process.pid} ${processStartTime(process.pid)}\n`);
    expect(fs.existsSync(lock)).toBe(false);
    expect(() => withTableLock(lock, 'the table', 1000, () => { throw new Error('boom'); })).toThrow('boom');
    expect(fs.existsSync(lock)).toBe(false);
  });

  test('a lock of a live process: ELOCKED naming the table and the holder after the bound', () => {
    fs.writeFileSync(lock, `${process.pid} ${processStartTime(process.pid)}\n`);
    let ran = false;
    expect(() => withTableLock(lock, 'the id pool of /x', 100, () => (ran = true))).toThrow(
      expect.objectContaining({ code: 'ELOCKED', message: `the id pool of /x is locked by process ${process.pid}` }),
    );
    expect(ran).toBe(false);
    expect(fs.existsSync(lock)).toBe(true);
  });

  test('a lock whose process is gone (or another process now has its pid) is taken over', () => {
    fs.writeFileSync(lock, `${process.pid} 1\n`);
    expect(withTableLock(lock, 'the table', 1000, () => 'ran')).toBe('ran');
  });

  test('an empty lock (its maker died between the open and the write) is waited on while fresh, taken over once a second old', () => {
    fs.writeFileSync(lock, '');
    expect(() => withTableLock(lock, 'the table', 50, () => 'ran')).toThrow(expect.objectContaining({ code: 'ELOCKED', message: 'the table is locked by process (being written)' }));
    const old = new Date(Date.now() - 5_000);
    fs.utimesSync(lock, old, old);
    expect(withTableLock(lock, 'the table', 1000, () => 'ran')).toBe('ran');
  });
});
