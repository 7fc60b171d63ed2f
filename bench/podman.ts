/**
 * `podman run --rm IMAGE true` with paddock as podman's runtime, side by side with the
 * same command on crun and runc (issue 3's second figure). Every contender gets the
 * same private podman set-up (vfs storage, runroot, containers.conf) and the same run
 * flags, and the rounds interleave, so the ratio compares runtimes, not podman states.
 *
 * One `podman run --rm` makes several runtime calls (create, start, state, delete and
 * podman's cleanup process), so this figure is what a CLI call's fixed cost adds up to
 * in the place users meet it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const IMAGE = 'localhost/paddock-bench-busybox';
/** As test/integration/podman.int.test.ts: podman's deny-all device rule needs a user namespace with paddock. */
const RUN = ['--uidmap', '0:100000:65536', '--gidmap', '0:100000:65536', '--network', 'none'];

export interface PodmanFigures {
  runs: number;
  medianMs: Record<string, number>;
  minMs: Record<string, number>;
  ratioToCrun: Record<string, number>;
}

/** Every directory below libpod_parent in each cgroup hierarchy (podman's cgroupfs manager). */
function podmanCgroups(): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      out.push(path.join(d, e.name));
      walk(path.join(d, e.name));
    }
  };
  for (const h of fs.existsSync('/sys/fs/cgroup') ? fs.readdirSync('/sys/fs/cgroup') : []) {
    const top = path.join('/sys/fs/cgroup', h, 'libpod_parent');
    if (fs.existsSync(top)) walk(top);
  }
  return out;
}

/** Whether a command is on PATH (the peers and podman are optional here). */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Mount points under dir (podman's shm tmpfs, overlay leftovers), deepest first. */
function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** SIGTERM to the paddockd of `root` (its lock names it), and a bounded wait for it to go. */
function stopResident(root: string): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(root, 'paddockd.lock'), 'utf8').split(' ')[0]);
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && fs.existsSync(path.join(root, 'paddockd.lock'))) spawnSync('sleep', ['0.02']);
}

export function podmanSection(
  work: string,
  rootfs: string,
  cli: string,
  runs: number,
  median: (xs: number[]) => number,
  log: (s: string) => void,
  /** The native client (decision 0044): also measured, as `paddock (client)`, through its paddockd. */
  client?: string,
): PodmanFigures | undefined {
  if (!have('podman')) {
    log('\n1c. podman: not installed, skipped');
    return undefined;
  }
  const cgroupsBefore = new Set(podmanCgroups());
  const dir = path.join(work, 'podman');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o711 });
  fs.chmodSync(dir, 0o711);
  // Short: podman's ids are 64 characters and <root>/<id>/control.sock must fit in 107.
  const state = fs.mkdtempSync('/tmp/pdkb-');
  fs.chmodSync(state, 0o711);
  fs.writeFileSync(
    path.join(dir, 'containers.conf'),
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\npids_limit = 0\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  fs.writeFileSync(path.join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n`);
  // podman's cleanup process forwards no runtime flags and no environment: the state root goes in through a wrapper.
  const paddock = path.join(dir, 'paddock-runtime');
  fs.writeFileSync(paddock, `#!/bin/sh\nPADDOCK_ROOT=${state} exec ${process.execPath} ${cli} "$@"\n`, { mode: 0o755 });
  // The same through the native client and a paddockd of its own root (kept warm between runs).
  const clientState = fs.mkdtempSync('/tmp/pdkc-');
  fs.chmodSync(clientState, 0o711);
  const viaClient = path.join(dir, 'paddock-client-runtime');
  if (client) fs.writeFileSync(viaClient, `#!/bin/sh\nPADDOCK_ROOT=${clientState} PADDOCK_DAEMON_IDLE_MS=600000 exec ${client} "$@"\n`, { mode: 0o755 });
  const env = { ...process.env, CONTAINERS_CONF: path.join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(dir, 'storage.conf') };
  const base = ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs'];
  const podman = (args: string[]) => spawnSync('podman', [...base, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  const runtimes: Array<[string, string]> = [['paddock', paddock], ...(client ? [['paddock (client)', viaClient] as [string, string]] : []), ...['crun', 'runc'].filter(have).map((r): [string, string] => [r, r])];
  const times: Record<string, number[]> = Object.fromEntries(runtimes.map(([n]) => [n, []]));
  try {
    const tar = spawnSync('tar', ['-C', rootfs, '-cf', path.join(dir, 'rootfs.tar'), '.'], { timeout: 30_000 });
    if (tar.status !== 0) throw new Error(`tar of the rootfs failed: ${tar.stderr}`);
    const imp = podman(['import', path.join(dir, 'rootfs.tar'), IMAGE]);
    if (imp.status !== 0) throw new Error(`podman import failed: ${imp.stderr}`);
    for (let i = 0; i < 2 + runs; i++) {
      for (let k = 0; k < runtimes.length; k++) {
        const [name, runtime] = runtimes[(i + k) % runtimes.length] as [string, string];
        const t0 = process.hrtime.bigint();
        const r = podman(['--runtime', runtime, 'run', '--rm', ...RUN, IMAGE, 'true']);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.status !== 0) throw new Error(`podman run with ${name} exited ${r.status}: ${r.stderr.toString().trim()}`);
        if (i >= 2) times[name]?.push(ms);
      }
    }
  } finally {
    podman(['rm', '--all', '--force', '--time', '0']);
    podman(['rmi', '--all', '--force']);
    for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { timeout: 10_000 });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(state, { recursive: true, force: true });
    stopResident(clientState);
    fs.rmSync(clientState, { recursive: true, force: true });
    // podman's cgroupfs manager leaves conmon's cgroup (libpod_parent/conmon) once conmon
    // exits. The conmon of the call that started paddockd stays until paddockd has gone:
    // a subreaper, it adopted paddockd (decision 0044, "Limits").
    const deadline = Date.now() + 5000;
    for (const d of podmanCgroups().filter((c) => !cgroupsBefore.has(c)).sort((a, b) => b.length - a.length)) {
      for (;;) {
        try {
          fs.rmdirSync(d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() > deadline) break;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
      }
    }
  }
  const crun = times.crun ? median(times.crun) : NaN;
  const out: PodmanFigures = { runs, medianMs: {}, minMs: {}, ratioToCrun: {} };
  log(`\n1c. podman run --rm IMAGE true, by runtime (medians of ${runs}, interleaved)`);
  for (const [name, xs] of Object.entries(times)) {
    out.medianMs[name] = median(xs);
    out.minMs[name] = Math.min(...xs);
    out.ratioToCrun[name] = median(xs) / crun;
    log(`${`podman + ${name}`.padEnd(24)} ${median(xs).toFixed(1).padStart(10)} ${Math.min(...xs).toFixed(1).padStart(8)} ${(median(xs) / crun).toFixed(2).padStart(8)}`);
  }
  return out;
}
