import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Engine } from '../../index';
import { isPaddockError, type PaddockError } from '../../base/errors';
import type { OciConfig } from '../../specs/oci';
import { poll } from './env';

/**
 * Namespaces for linux.namespaces[].path tests: held by `unshare` processes the test
 * starts (iproute2's `ip netns` is not on every host), optionally pinned by a bind
 * mount as `ip netns add` does. Holders, mounts and dirs are undone after each test,
 * also when it failed.
 */
export function useNamespaceHolders() {
  const children: ChildProcess[] = [];
  const mounts: string[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    const problems: unknown[] = [];
    for (const m of mounts.splice(0)) {
      try {
        execFileSync('umount', ['-l', m]);
      } catch (e) {
        problems.push(e); // still kill the holders and remove the dirs below
      }
    }
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }
    }
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    if (problems.length > 0) throw problems[0];
  });

  /** `unshare <flags> sleep 600`, once its `type` namespace differs from ours; its pid. */
  async function unshared(flags: string[], type: string): Promise<number> {
    const c = spawn('unshare', [...flags, 'sleep', '600'], { stdio: 'ignore' });
    children.push(c);
    const pid = c.pid as number;
    const own = fs.readlinkSync(`/proc/self/ns/${type}`);
    await poll(
      () => {
        try {
          return fs.readlinkSync(`/proc/${pid}/ns/${type}`) !== own && fs.readlinkSync(`/proc/${pid}/exe`).endsWith('sleep') ? true : undefined;
        } catch {
          return undefined;
        }
      },
      5_000,
      'the holder to unshare',
    );
    return pid;
  }

  /** A bind mount of a namespace file that outlives its holder. */
  function pinned(nsFile: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ns-'));
    dirs.push(dir);
    const file = path.join(dir, path.basename(nsFile));
    fs.writeFileSync(file, '');
    execFileSync('mount', ['--bind', nsFile, file]);
    mounts.push(file);
    return file;
  }

  return { unshared, pinned };
}

/** A config edit that gives the spec's `type` namespace a path. */
export const setNamespacePath = (type: string, p: string) => (c: OciConfig) => {
  const ns = c.linux?.namespaces?.find((n) => n.type === type);
  if (!ns) throw new Error(`no ${type} namespace in the test spec`);
  ns.path = p;
};

/** A create that must fail with ELAUNCH_STEP and leave nothing: no sandbox, no state dir. */
export async function createFailsLeavingNothing(
  t: { engine: Engine; stateDir: string; id(): string; bundle(o: { args: string[]; extra: (c: OciConfig) => void }): string },
  extra: (c: OciConfig) => void,
): Promise<PaddockError> {
  const sid = t.id();
  let err: unknown;
  try {
    await t.engine.createSandbox(sid, t.bundle({ args: ['true'], extra }));
  } catch (e) {
    err = e;
  }
  expect(isPaddockError(err, 'ELAUNCH_STEP')).toBe(true);
  expect(t.engine.list()).toEqual([]);
  expect(fs.existsSync(path.join(t.stateDir, sid))).toBe(false);
  return err as PaddockError;
}
