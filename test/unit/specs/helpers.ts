import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isPaddockError } from '../../../base/errors';
import { defaultSpec } from '../../../specs/default-spec';

/** A valid config with a user namespace, edited by `edit` (which may return a replacement). */
export function spec(edit?: (c: any) => unknown, userns = true): any {
  const c = defaultSpec({ userns: userns ? { hostId: 100000, size: 65536 } : false }) as any;
  const r = edit?.(c);
  return r === undefined ? c : r;
}

/** Runs `fn` and returns the PaddockError it throws (failing if it does not). */
export function caught(fn: () => unknown): { code: string; message: string; context: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    if (!isPaddockError(e)) throw e;
    return e as any;
  }
  throw new Error('expected a PaddockError');
}

export async function caughtAsync(p: Promise<unknown>): Promise<{ code: string; message: string; context: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    if (!isPaddockError(e)) throw e;
    return e as any;
  }
  throw new Error('expected a PaddockError');
}

/** Temp dirs removed after each test file. */
export function tempDirs(): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make() {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-specs-'));
      made.push(d);
      return d;
    },
    cleanup() {
      for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}

/** A bundle dir with config.json written from `config` and an empty rootfs dir. */
export function writeBundle(dir: string, config: unknown, rootfs = true): string {
  if (rootfs) fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return dir;
}
