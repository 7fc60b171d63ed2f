/**
 * The escape suite's host side: the targets a probe inside a container must not reach
 * (a canary file with a random token, a loopback listener, an abstract socket, this
 * process as a host pid, the host's root disk), and the ways to run the probe
 * (test/fixtures/escape/probe.c, installed as /bin/escape-probe in the test rootfs).
 */

import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI } from './cli';
import { testStateDir } from './env';

/** The probe as built on the host (make-rootfs.sh builds it and copies it into the rootfs). */
export const PROBE_HOST_BIN = path.resolve(__dirname, '..', 'fixtures', 'escape', 'build', 'escape-probe');
/** Where containers find it. */
export const PROBE_IN_ROOTFS = '/bin/escape-probe';

export type Verdict = 'BLOCKED' | 'ESCAPED' | 'ERROR';
export interface ProbeLine {
  readonly verdict: Verdict;
  readonly detail: string;
}

/** Every probe's name, in the probe's own order (so the suite names each one). */
export function probeNames(): string[] {
  const r = spawnSync(PROBE_HOST_BIN, ['list'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${PROBE_HOST_BIN} list failed (${r.status}): run bash test/fixtures/make-rootfs.sh`);
  return r.stdout.split('\n').filter(Boolean);
}

/** `PROBE <name> <verdict> <detail>` lines by name; a run that did not finish keeps what it printed. */
export function parseProbeOutput(stdout: string): Map<string, ProbeLine> {
  const out = new Map<string, ProbeLine>();
  for (const line of stdout.split('\n')) {
    const m = /^PROBE (\S+) (BLOCKED|ESCAPED|ERROR) ?(.*)$/.exec(line);
    if (m) out.set(m[1]!, { verdict: m[2] as Verdict, detail: m[3]! });
  }
  return out;
}

/** `name VERDICT detail`, or a line that says the probe never reported: what assertions compare. */
export function describeProbe(results: Map<string, ProbeLine> | undefined, name: string): string {
  const r = results?.get(name);
  return r === undefined ? `${name} NO-REPORT (the probe did not run or did not finish)` : `${name} ${r.verdict} ${r.detail}`;
}

/** Field 22 of /proc/<pid>/stat: with the pid, it names one process for good. */
export function startTime(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** major:minor and fs type of the filesystem holding `/`, when it is a block device. */
export function rootDisk(): { majmin: string; fstype: string } | undefined {
  const dev = fs.statSync('/').dev;
  // glibc's encoding of dev_t.
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff);
  if (major === 0) return undefined; // overlay, tmpfs: no disk to name
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (f[4] === '/' && f[2] === `${major}:${minor}` && sep > 0) return { majmin: `${major}:${minor}`, fstype: f[sep + 1]! };
  }
  return undefined;
}

export interface HostTargets {
  /** The random token in the canary, the loopback and the abstract socket's greeting. */
  readonly token: string;
  readonly canary: string;
  /** NAME=value inputs for the probe (passed as arguments: every path takes args). */
  readonly inputs: string[];
  /** How many connections the listeners accepted (a probe that got through). */
  readonly accepted: () => number;
  /** Removes the canary and closes the listeners; safe to call twice. */
  cleanup(): Promise<void>;
}

/**
 * Plants the targets. The canary sits outside every rootfs, on the same filesystem
 * as the rootfs (so a file handle or a mount of the disk could reach it), readable by
 * anyone: only isolation stands between it and the probe.
 */
export async function plantHostTargets(): Promise<HostTargets> {
  const token = crypto.randomBytes(16).toString('hex');
  const dir = testStateDir('escape-canary');
  fs.chmodSync(dir, 0o755);
  const canary = path.join(dir, 'canary');
  fs.writeFileSync(canary, `canary-${token}`, { mode: 0o644 });
  const handle = spawnSync(PROBE_HOST_BIN, ['handle', dir], { encoding: 'utf8' });
  if (handle.status !== 0) throw new Error(`escape-probe handle ${dir}: ${handle.stderr}`);

  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const greet = (s: net.Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.end(`loopback-${token}`);
  };
  const tcp = net.createServer(greet);
  const abstract = net.createServer(greet);
  const abstractName = `paddock-escape-${token}`;
  await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve, reject) => abstract.once('error', reject).listen(`\0${abstractName}`, resolve));
  const port = (tcp.address() as net.AddressInfo).port;

  const inputs = [
    `PROBE_HOST_PID=${process.pid}`,
    `PROBE_HOST_START=${startTime(process.pid)}`,
    `PROBE_CANARY=${canary}`,
    `PROBE_CANARY_HANDLE=${handle.stdout.trim()}`,
    `PROBE_PORT=${port}`,
    `PROBE_ABSTRACT=${abstractName}`,
  ];
  const disk = rootDisk();
  // The disk probe reads the canary at its absolute path inside the mounted disk.
  if (disk !== undefined && fs.statSync(dir).dev === fs.statSync('/').dev) {
    inputs.push(`PROBE_DISK=${disk.majmin}`, `PROBE_DISK_FSTYPE=${disk.fstype}`);
  }
  let done = false;
  return {
    token,
    canary,
    inputs,
    accepted: () => accepted,
    async cleanup() {
      if (done) return;
      done = true;
      for (const s of sockets) s.destroy();
      await Promise.all([tcp, abstract].map((srv) => new Promise<void>((r) => srv.close(() => r()))));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command with stdio in files (a sandbox inherits the caller's stdio, as with
 * runc, so a pipe would wait for the container) and a bound on its time.
 */
export async function runWithFiles(cmd: string, args: readonly string[], timeoutMs: number, extraFds: number[] = []): Promise<RunResult> {
  const io = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-escape-io-'));
  const out = fs.openSync(path.join(io, 'out'), 'w+');
  const err = fs.openSync(path.join(io, 'err'), 'w+');
  try {
    // cwd /: the chroot probe climbs from its cwd, which must lie outside every scratch
    // folder; from a checkout under /tmp the host sanity run read ENOENT instead.
    const child = spawn(cmd, args, { cwd: '/', stdio: ['ignore', out, err, ...extraFds] });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (c, sig) => {
        clearTimeout(timer);
        resolve(sig === null ? c : null);
      });
    });
    return { code, stdout: fs.readFileSync(path.join(io, 'out'), 'utf8'), stderr: fs.readFileSync(path.join(io, 'err'), 'utf8') };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
    fs.rmSync(io, { recursive: true, force: true });
  }
}

/** One CLI call with --root, as runCli, but asynchronous and with a longer bound (the probe takes a while). */
export function cli(root: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  return runWithFiles(process.execPath, [CLI, '--root', root, ...args], timeoutMs);
}

/**
 * Every capability this process may hand on (its bounding set; the machine's
 * supervisor may lack some, CAP_SYS_RESOURCE here), by name: the unconfined spec.
 */
export function allCapabilities(): string[] {
  const names = [
    'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
    'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
    'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
    'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
    'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
    'CHECKPOINT_RESTORE',
  ];
  const bnd = BigInt(`0x${/^CapBnd:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`);
  return names.filter((_, bit) => (bnd >> BigInt(bit)) & 1n).map((n) => `CAP_${n}`);
}
