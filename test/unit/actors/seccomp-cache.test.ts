import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as seccomp from '../../../actors/containers/seccomp';
import { compileSeccompKept, keepSeccompIn } from '../../../actors/containers/seccomp-cache';
import { describeIf } from '../../helpers/env';

const describeNative = describeIf(['libseccomp']);

const profile = (errno: number) => ({
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [{ names: ['mknod', 'mknodat'], action: 'SCMP_ACT_ERRNO', errnoRet: errno }],
});

describeNative('compiled seccomp filters kept between processes (actors/containers/seccomp-cache.ts)', () => {
  let dir: string;
  let compile: jest.SpyInstance;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-seccomp-cache-'));
    keepSeccompIn(path.join(dir, 'kept'));
    compile = jest.spyOn(seccomp, 'compileSeccomp');
  });
  afterEach(() => {
    keepSeccompIn(undefined);
    compile.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const entries = () => fs.readdirSync(path.join(dir, 'kept'));
  /** What a later process sees: the same folder, nothing compiled in memory yet. */
  const laterProcess = () => keepSeccompIn(path.join(dir, 'kept'));

  it('within one process, an equal profile in a fresh object (a template sandbox) is not compiled again, with or without a folder', () => {
    keepSeccompIn(undefined);
    const first = compileSeccompKept(profile(1));
    const again = compileSeccompKept(JSON.parse(JSON.stringify(profile(1))) as object);
    expect(compile).toHaveBeenCalledTimes(1);
    expect(again).toBe(first);
    compileSeccompKept(profile(2));
    expect(compile).toHaveBeenCalledTimes(2);
  });

  it('compiles a profile once, then gives back the same program', () => {
    const first = compileSeccompKept(profile(1));
    expect(compile).toHaveBeenCalledTimes(1);
    expect(entries()).toHaveLength(1);
    laterProcess();
    const again = compileSeccompKept(profile(1));
    expect(compile).toHaveBeenCalledTimes(1);
    expect(again.bpf.equals(first.bpf)).toBe(true);
    expect(again).toEqual(first);
    expect(first).toEqual(seccomp.compileSeccomp(profile(1)));
  });

  it('a different profile is another entry and another program', () => {
    const a = compileSeccompKept(profile(1));
    const b = compileSeccompKept(profile(13));
    expect(compile).toHaveBeenCalledTimes(2);
    expect(entries()).toHaveLength(2);
    expect(a.bpf.equals(b.bpf)).toBe(false);
  });

  it('an entry whose key differs (a name clash, another profile) is compiled over, never used', () => {
    compileSeccompKept(profile(1));
    const file = path.join(dir, 'kept', entries()[0] as string);
    const other = JSON.parse(fs.readFileSync(file, 'utf8')) as { key: string };
    fs.writeFileSync(file, JSON.stringify({ ...other, key: other.key.replace('"errnoRet":1', '"errnoRet":2') }));
    laterProcess();
    const got = compileSeccompKept(profile(1));
    expect(compile).toHaveBeenCalledTimes(2);
    expect(got).toEqual(seccomp.compileSeccomp(profile(1)));
  });

  it('a torn or malformed entry costs a compile', () => {
    compileSeccompKept(profile(1));
    const file = path.join(dir, 'kept', entries()[0] as string);
    const whole = fs.readFileSync(file, 'utf8');
    for (const bad of [whole.slice(0, whole.length / 2), '', JSON.stringify({ ...JSON.parse(whole), bpf: 'AAAA' })]) {
      fs.writeFileSync(file, bad);
      laterProcess();
      expect(compileSeccompKept(profile(1))).toEqual(seccomp.compileSeccomp(profile(1)));
    }
    expect(compile).toHaveBeenCalledTimes(1 + 3 + 3);
  });

  it('a profile that does not compile is not kept, and says why each time', () => {
    const bad = { defaultAction: 'SCMP_ACT_NONSENSE' };
    expect(() => compileSeccompKept(bad)).toThrow(/defaultAction/);
    expect(() => compileSeccompKept(bad)).toThrow(/defaultAction/);
    expect(fs.existsSync(path.join(dir, 'kept')) ? entries() : []).toEqual([]);
  });

  it('keeps at most 64 entries, the newest', () => {
    for (let i = 1; i <= 70; i++) compileSeccompKept(profile(i));
    expect(entries()).toHaveLength(64);
    compile.mockClear();
    laterProcess();
    compileSeccompKept(profile(70));
    expect(compile).not.toHaveBeenCalled();
  });

  it('an unwritable place only costs the compile', () => {
    fs.writeFileSync(path.join(dir, 'kept'), 'a file, not a directory');
    expect(compileSeccompKept(profile(1))).toEqual(seccomp.compileSeccomp(profile(1)));
    expect(compileSeccompKept(profile(1))).toEqual(seccomp.compileSeccomp(profile(1)));
    expect(fs.readdirSync(dir)).toEqual(['kept']);
  });

  it('keeps nothing on disk unless told where', () => {
    keepSeccompIn(undefined);
    compileSeccompKept(profile(1));
    keepSeccompIn(undefined); // a later process
    compileSeccompKept(profile(1));
    expect(compile).toHaveBeenCalledTimes(2);
    expect(fs.existsSync(path.join(dir, 'kept'))).toBe(false);
  });
});
