import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { OciConfig } from '../../specs/oci';

const SOURCE = path.resolve(__dirname, '..', 'fixtures', 'syscall-probe.c');

/**
 * Builds test/fixtures/syscall-probe.c with gcc -static (once per source version) into
 * a world-readable folder, so a user-namespaced container's root can run it, and
 * returns the binary's path. Throws when gcc fails: the tests need it.
 */
export function buildSyscallProbe(): string {
  return buildStaticFixture(SOURCE);
}

/** The same for any one-file C program of test/fixtures (`kvm-guest.c`...). */
export function buildStaticFixture(source: string): string {
  const name = path.basename(source, '.c');
  // By content, not mtime: every fresh clone has new mtimes, and each run left one more
  // binary behind. One build per fixture is kept; an older one of the same name goes.
  const stamp = createHash('sha256').update(fs.readFileSync(source)).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'paddock-syscall-probe');
  const bin = path.join(dir, `${name}-${stamp}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  for (const old of fs.readdirSync(dir).filter((f) => f.startsWith(`${name}-`) && !f.includes('.'))) fs.rmSync(path.join(dir, old), { force: true });
  const tmp = `${bin}.${process.pid}`;
  const r = spawnSync('gcc', ['-static', '-O2', '-o', tmp, source], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc -static ${name}.c failed: ${r.error?.message ?? r.stderr}`);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, bin);
  return bin;
}

/** Bind-mounts the probe read-only at /probe in the container. */
export function withProbe(probe: string): (c: OciConfig) => void {
  return (c) => {
    (c.mounts ??= []).push({ destination: '/probe', type: 'bind', source: probe, options: ['bind', 'ro'] });
  };
}

/** `name ok` / `name errno=N` lines → name → 0 (ok) or N. */
export function probeResults(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const r = /^(\S+) (?:ok|errno=(\d+))$/.exec(line);
    if (r) m.set(r[1] as string, r[2] === undefined ? 0 : Number(r[2]));
  }
  return m;
}
