import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxPaths, STATE_VERSION, acquireLockLocked, listSandboxIds, loadSandbox, processStartTime, releaseLock, saveSandboxLocked } from '../../../actors/sandbox/state-store';
import { writeFileAtomic } from '../../../base/files';

describe('state store', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-store-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const state = (id: string) => ({
    version: STATE_VERSION,
    sandboxId: id,
    savedAt: new Date(0).toISOString(),
    ownerUid: 100000,
    ownerGid: 100000,
    containers: { [id]: { bundleDir: '/b', stdio: 'pipe' as const } },
    execCounter: 2,
    snapshot: { value: 'running', context: { sandboxId: id } },
  });

  test('save then load round-trips through an atomic write; no temp file is left', () => {
    const p = new SandboxPaths(root, 'sb1');
    fs.mkdirSync(p.dir);
    saveSandboxLocked(p, state('sb1'));
    expect(loadSandbox(p)).toEqual(state('sb1'));
    expect(fs.readdirSync(p.dir)).toEqual(['state.json']);
    expect(listSandboxIds(root)).toEqual(['sb1']);
  });

  test('a replace function puts the temp file in place; if it fails, the plain rename still does', () => {
    const p = new SandboxPaths(root, 'sb4');
    fs.mkdirSync(p.dir);
    const seen: string[] = [];
    saveSandboxLocked(p, state('sb4'), (tmp, target) => {
      seen.push(path.basename(target));
      fs.renameSync(tmp, target);
    });
    expect(seen).toEqual(['state.json']);
    expect(loadSandbox(p)).toEqual(state('sb4'));
    saveSandboxLocked(p, { ...state('sb4'), execCounter: 3 }, () => {
      throw new Error('no exchange here');
    });
    expect(loadSandbox(p)?.execCounter).toBe(3);
    expect(fs.readdirSync(p.dir)).toEqual(['state.json']);
  });

  test('with an exchanging replace, <file>.next keeps the previous state and is overwritten in place next time', () => {
    const p = new SandboxPaths(root, 'sb5');
    fs.mkdirSync(p.dir);
    const exchange = (tmp: string, target: string) => {
      if (!fs.existsSync(target)) return fs.renameSync(tmp, target);
      fs.renameSync(target, `${target}.swap`);
      fs.renameSync(tmp, target);
      fs.renameSync(`${target}.swap`, tmp);
    };
    saveSandboxLocked(p, { ...state('sb5'), execCounter: 1 }, exchange);
    saveSandboxLocked(p, { ...state('sb5'), execCounter: 22 }, exchange);
    const nextIno = fs.statSync(`${p.stateFile}.next`).ino;
    expect(JSON.parse(fs.readFileSync(`${p.stateFile}.next`, 'utf8')).execCounter).toBe(1);
    // Shorter than what .next held: truncated to the new length, no stale tail.
    saveSandboxLocked(p, { ...state('sb5'), execCounter: 3 }, exchange);
    expect(loadSandbox(p)?.execCounter).toBe(3);
    expect(fs.statSync(p.stateFile).ino).toBe(nextIno);
    expect(fs.readdirSync(p.dir).sort()).toEqual(['state.json', 'state.json.next']);
  });

  test('a missing state file loads as undefined; a corrupt or foreign one is ESTATE_CORRUPT', () => {
    const p = new SandboxPaths(root, 'sb2');
    fs.mkdirSync(p.dir);
    expect(loadSandbox(p)).toBeUndefined();
    fs.writeFileSync(p.stateFile, '{"version":1,');
    expect(() => loadSandbox(p)).toThrow(expect.objectContaining({ code: 'ESTATE_CORRUPT' }));
    writeFileAtomic(p.stateFile, JSON.stringify(state('other')));
    expect(() => loadSandbox(p)).toThrow(expect.objectContaining({ code: 'ESTATE_CORRUPT' }));
  });

  test('the lock is exclusive to a live owner and taken over from a dead one', () => {
    const p = new SandboxPaths(root, 'sb3');
    fs.mkdirSync(p.dir);
    // A live foreign owner: this test's parent process.
    fs.writeFileSync(p.lockFile, `${process.ppid} ${processStartTime(process.ppid)}\n`);
    expect(() => acquireLockLocked(p)).toThrow(expect.objectContaining({ code: 'ELOCKED' }));
    // A dead owner: a process that has exited.
    const dead = spawnSync('true').pid as number;
    fs.writeFileSync(p.lockFile, `${dead} 1\n`);
    acquireLockLocked(p);
    expect(fs.readFileSync(p.lockFile, 'utf8').split(' ')[0]).toBe(String(process.pid));
    acquireLockLocked(p); // re-entrant for the owner
    releaseLock(p);
    expect(fs.existsSync(p.lockFile)).toBe(false);
  });

  test('processStartTime is stable for a live process and undefined for a dead one', () => {
    expect(processStartTime(process.pid)).toBe(processStartTime(process.pid));
    expect(processStartTime(process.pid)).toBeGreaterThan(0);
    expect(processStartTime(2 ** 22 + 7)).toBeUndefined();
  });
});
