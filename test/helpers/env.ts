import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';

/** Root of everything integration tests create; the global teardown checks it is empty. */
/**
 * Root of everything one test run creates, unique per run (the global setup names it
 * after the jest process) so concurrent runs on one machine never clean up each other.
 */
export const TEST_ROOT = process.env.PADDOCK_TEST_ROOT ?? path.join(os.tmpdir(), `paddock-test-${process.pid}`);

export function testStateDir(name: string): string {
  fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o711 });
  fs.chmodSync(TEST_ROOT, 0o711);
  return fs.mkdtempSync(path.join(TEST_ROOT, `${name}-`));
}

export function quietLogger() {
  return pino({ level: process.env.PADDOCK_TEST_LOG ?? 'silent' });
}

/** A pino logger at `level` whose records land, parsed, in `lines` (tests of warnings). */
export function capturingLogger(lines: Array<Record<string, unknown>>, level = 'warn') {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return pino({ level }, sink);
}

export type Need = 'root' | 'kvm' | 'cgroup2' | 'cgroups' | 'busybox' | 'podman' | 'containerd';

/** The absolute path of an executable on PATH, or undefined. */
export function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = path.join(dir || '.', bin);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Declares what a test file needs. Locally a missing need skips with a reason; under
 * PADDOCK_CI=1 it fails, so nothing is quietly skipped in CI.
 */
export function missingNeeds(needs: Need[]): string[] {
  const missing: string[] = [];
  for (const n of needs) {
    if (n === 'root' && process.getuid?.() !== 0) missing.push('root');
    if (n === 'kvm' && !fs.existsSync('/dev/kvm')) missing.push('kvm (/dev/kvm)');
    if (n === 'cgroup2' && !fs.existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers'))
      missing.push('cgroup2');
    if (n === 'cgroups' && !hasCgroups()) missing.push('cgroups (a cgroup v1 or v2 hierarchy with memory, cpu and pids)');
    if (n === 'busybox' && !fs.existsSync('/bin/busybox')) missing.push('busybox-static (/bin/busybox)');
    if (n === 'podman' && (!onPath('podman') || !onPath('conmon'))) missing.push('podman (podman, conmon)');
    if (n === 'containerd' && (!onPath('containerd') || !onPath('ctr') || !onPath('containerd-shim-runc-v2'))) {
      missing.push('containerd (containerd, ctr, containerd-shim-runc-v2)');
    }
  }
  return missing;
}

function hasCgroups(): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { detectLayout } = require('../../actors/cgroups') as typeof import('../../actors/cgroups');
  const l = detectLayout();
  if (l.mode === 'v2') return fs.existsSync(`${l.unified}/cgroup.controllers`) && /\bpids\b/.test(fs.readFileSync(`${l.unified}/cgroup.controllers`, 'utf8'));
  return l.mode !== 'none' && l.v1.memory !== undefined && l.v1.pids !== undefined && l.v1.cpu !== undefined;
}

export function describeIf(needs: Need[]): jest.Describe {
  const missing = missingNeeds(needs);
  if (missing.length === 0) return describe;
  if (process.env.PADDOCK_CI === '1') {
    throw new Error(`integration test needs ${missing.join(', ')} and PADDOCK_CI=1 forbids skipping`);
  }
  // eslint-disable-next-line no-console
  console.warn(`skipping: needs ${missing.join(', ')}`);
  return describe.skip;
}

/** Polls `check` until it returns a value other than undefined, or fails after timeoutMs. */
export async function poll<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let wait = 2;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 100);
  }
}

/** Reads a whole stream into a string. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString('utf8');
}
