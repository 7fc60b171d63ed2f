import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';

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

/**
 * What a test can need from the host. The cgroup layout needs are "layout" needs: a CI
 * with a second stage on another layout (the cgroup v2 guest, decision 0033) may run
 * them there instead (see `PADDOCK_CI_ELSEWHERE`).
 */
export type Need =
  | 'root'
  | 'kvm'
  | 'cgroup2'
  | 'cgroups'
  | 'busybox'
  | 'podman'
  | 'containerd'
  /** libseccomp loadable through ffi-rs (specs/seccomp). */
  | 'libseccomp'
  /** Linux on x86-64: syscall numbers and BPF programs checked byte for byte. */
  | 'linux-x64'
  /** native/build/proto-test, the C decoder's test driver (make -C native build/proto-test). */
  | 'proto-test'
  /** test/fixtures/rootfs, the busybox rootfs scripts/setup.sh builds. */
  | 'fixture-rootfs'
  /** A v1 freezer hierarchy (v1 or hybrid layout). */
  | 'cgroup-v1-freezer'
  /** A v1 devices hierarchy (v1 or hybrid layout). */
  | 'cgroup-v1-devices'
  /** v1 hierarchies beside a cgroup2 mount. */
  | 'cgroup-hybrid'
  /** cgroup2 alone at /sys/fs/cgroup, with memory, cpu and pids enabled in it. */
  | 'cgroup-v2-only'
  /** pasta (Debian's passt), the helper of `network: { mode: 'user' }`. */
  | 'passt'
  /** nft (Debian's nftables), the rules of `network: { mode: 'bridge' }`. */
  | 'nftables'
  /** Debian's chromium, which puppeteer-core drives for the live view's browser test. */
  | 'chromium'
  /** A criu that passes `criu check` (scripts/setup-criu.sh; .ci/run runs it). */
  | 'criu';

/** Needs that depend only on the host's cgroup layout; another CI stage may cover them. */
export const LAYOUT_NEEDS: readonly Need[] = ['cgroup2', 'cgroup-v1-freezer', 'cgroup-v1-devices', 'cgroup-hybrid', 'cgroup-v2-only'];

const REPO = path.resolve(__dirname, '../..');

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

function layout(): import('../../actors/cgroups/sandbox-cgroup').CgroupLayout {
  // Required lazily: unit tests that only need 'linux-x64' must not read mountinfo.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { detectLayout } = require('../../actors/cgroups/sandbox-cgroup') as typeof import('../../actors/cgroups/sandbox-cgroup');
  return detectLayout();
}

function unifiedControllers(l: import('../../actors/cgroups/sandbox-cgroup').CgroupLayout): string[] {
  try {
    return fs.readFileSync(`${l.unified}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

function criuMissing(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('../../actors/checkpoint/criu') as typeof import('../../actors/checkpoint/criu')).findCriu();
    return undefined;
  } catch (e) {
    return `criu (${(e as Error).message})`;
  }
}

function libseccompLoads(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('../../native/seccomp-ffi') as typeof import('../../native/seccomp-ffi')).libseccomp();
    return true;
  } catch {
    return false;
  }
}

/**
 * Why `n` is not met on this host, or undefined when it is. PADDOCK_NEEDS_UNMET (a
 * comma-separated list) treats needs as missing, to try the CI behaviour by hand and in
 * the helper's own tests; it can only take tests away, never make one run.
 */
function whyMissing(n: Need, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if ((env.PADDOCK_NEEDS_UNMET ?? '').split(',').includes(n)) return `${n} (PADDOCK_NEEDS_UNMET)`;
  switch (n) {
    case 'root':
      return process.getuid?.() !== 0 ? 'root' : undefined;
    case 'kvm':
      return fs.existsSync('/dev/kvm') ? undefined : 'kvm (/dev/kvm)';
    case 'cgroup2':
      return layout().unified !== undefined ? undefined : `cgroup2 (a cgroup2 mount; this host is ${layout().mode})`;
    case 'cgroups':
      return hasCgroups() ? undefined : 'cgroups (a cgroup v1 or v2 hierarchy with memory, cpu and pids)';
    case 'busybox':
      return fs.existsSync('/bin/busybox') ? undefined : 'busybox-static (/bin/busybox)';
    case 'podman':
      return onPath('podman') && onPath('conmon') ? undefined : 'podman (podman, conmon)';
    case 'containerd':
      return onPath('containerd') && onPath('ctr') && onPath('containerd-shim-runc-v2') ? undefined : 'containerd (containerd, ctr, containerd-shim-runc-v2)';
    case 'libseccomp':
      return libseccompLoads() ? undefined : 'libseccomp (libseccomp.so.2 loadable through ffi-rs)';
    case 'linux-x64':
      return process.platform === 'linux' && process.arch === 'x64' ? undefined : `linux-x64 (this is ${process.platform}-${process.arch})`;
    case 'proto-test':
      return fs.existsSync(path.join(REPO, 'native/build/proto-test')) ? undefined : 'proto-test (native/build/proto-test: make -C native build/proto-test)';
    case 'fixture-rootfs':
      return fs.existsSync(path.join(REPO, 'test/fixtures/rootfs/bin/busybox')) ? undefined : 'fixture-rootfs (test/fixtures/rootfs: bash scripts/setup.sh)';
    case 'cgroup-v1-freezer':
      return layout().mode !== 'v2' && layout().v1.freezer !== undefined ? undefined : 'cgroup-v1-freezer (a v1 freezer hierarchy)';
    case 'cgroup-v1-devices':
      return layout().mode !== 'v2' && layout().v1.devices !== undefined ? undefined : 'cgroup-v1-devices (a v1 devices hierarchy)';
    case 'cgroup-hybrid':
      return layout().mode === 'hybrid' ? undefined : `cgroup-hybrid (v1 hierarchies beside cgroup2; this host is ${layout().mode})`;
    case 'chromium':
      return onPath('chromium') ? undefined : 'chromium (the system browser: apt-get install --no-install-recommends chromium)';
    case 'criu':
      return criuMissing();
    case 'nftables':
      return onPath('nft') ? undefined : 'nftables (nft on PATH: apt-get install nftables)';
    case 'passt':
      return onPath('pasta') ? undefined : 'passt (pasta on PATH: apt-get install passt)';
    case 'cgroup-v2-only': {
      const l = layout();
      const c = unifiedControllers(l);
      return l.mode === 'v2' && ['memory', 'cpu', 'pids'].every((x) => c.includes(x))
        ? undefined
        : `cgroup-v2-only (cgroup2 alone with memory, cpu and pids; this host is ${l.mode}${l.mode === 'v2' ? ` with ${c.join(' ') || 'no controllers'}` : ''})`;
    }
  }
}

/** The needs this host does not meet, each named with what is missing. */
export function missingNeeds(needs: readonly Need[]): string[] {
  return needs.map((n) => whyMissing(n)).filter((m): m is string => m !== undefined);
}

/** The layout needs this host meets (what a CI stage here covers for another stage). */
export function metLayoutNeeds(): Need[] {
  return LAYOUT_NEEDS.filter((n) => whyMissing(n) === undefined);
}

function hasCgroups(): boolean {
  const l = layout();
  if (l.mode === 'v2') return /\bpids\b/.test(unifiedControllers(l).join(' '));
  return l.mode !== 'none' && l.v1.memory !== undefined && l.v1.pids !== undefined && l.v1.cpu !== undefined;
}

/**
 * What to do with a test whose needs are not all met:
 * - 'run': all met;
 * - 'skip': by hand (no PADDOCK_CI=1): a skip whose name says what is missing;
 * - 'defer': PADDOCK_CI=1, every missing need is a layout need that
 *   PADDOCK_CI_ELSEWHERE names (another CI stage has it, and runs this file there: the
 *   test is recorded in PADDOCK_CI_DEFERRED_LOG, which that stage reads, and not
 *   registered here, so jest's counts stay free of skips);
 * - 'fail': PADDOCK_CI=1 otherwise: a failing test that names what is missing.
 */
export function verdict(needs: readonly Need[], env: NodeJS.ProcessEnv = process.env): { action: 'run' | 'skip' | 'defer' | 'fail'; missing: string[] } {
  const missingKeys = needs.filter((n) => whyMissing(n, env) !== undefined);
  const missing = missingKeys.map((n) => whyMissing(n, env) as string);
  if (missing.length === 0) return { action: 'run', missing };
  if (env.PADDOCK_CI !== '1') return { action: 'skip', missing };
  const elsewhere = new Set((env.PADDOCK_CI_ELSEWHERE ?? '').split(',').filter(Boolean));
  const deferrable = env.PADDOCK_CI_DEFERRED_LOG && missingKeys.every((n) => LAYOUT_NEEDS.includes(n) && elsewhere.has(n));
  return { action: deferrable ? 'defer' : 'fail', missing };
}

function currentTestFile(): string {
  return (expect.getState().testPath as string | undefined) ?? 'unknown test file';
}

function defer(kind: string, name: string, missing: string[]): void {
  const file = path.relative(REPO, currentTestFile());
  fs.appendFileSync(process.env.PADDOCK_CI_DEFERRED_LOG as string, `${file}\t${kind}\t${name}\t${missing.join('; ')}\n`);
}

function ciFailure(what: string, missing: string[]): Error {
  return new Error(`${what} needs ${missing.join(', ')}, and PADDOCK_CI=1 forbids skipping it`);
}

type SuiteFn = (name: string, fn: () => void) => void;
type CaseFn = (name: string, fn: jest.ProvidesCallback, timeout?: number) => void;

/**
 * A describe block that runs only when the host has every need. By hand a missing need
 * skips it, with the reason in its name and on stderr; under PADDOCK_CI=1 it fails (or
 * is deferred to the CI stage that has the layout, see `verdict`).
 */
export function describeIf(needs: Need[]): SuiteFn {
  const { action, missing } = verdict(needs);
  if (action === 'run') return describe;
  if (action === 'skip') {
    return (name, fn) => {
      // eslint-disable-next-line no-console
      console.warn(`skipping "${name}": needs ${missing.join(', ')}`);
      describe.skip(`${name} [skipped: needs ${missing.join(', ')}]`, fn);
    };
  }
  if (action === 'defer') return (name) => defer('describe', name, missing);
  return (name) =>
    describe(name, () => {
      test(`needs ${missing.join(', ')}`, () => {
        throw ciFailure(`"${name}"`, missing);
      });
    });
}

/** One test that runs only when the host has every need; otherwise as `describeIf`. */
export function testIf(needs: Need[]): CaseFn {
  const { action, missing } = verdict(needs);
  if (action === 'run') return test;
  if (action === 'skip') {
    return (name, fn, timeout) => {
      // eslint-disable-next-line no-console
      console.warn(`skipping "${name}": needs ${missing.join(', ')}`);
      test.skip(`${name} [skipped: needs ${missing.join(', ')}]`, fn, timeout);
    };
  }
  if (action === 'defer') return (name) => defer('test', name, missing);
  return (name) =>
    test(name, () => {
      throw ciFailure(`"${name}"`, missing);
    });
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
