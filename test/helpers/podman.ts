import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { testStateDir } from './env';
import { cgroupDirs, initSandboxDir, mountsUnder, paddockInitPids, removeCgroupDirs } from './leaks';
import { stopDaemon } from './cli';

export const IMAGE = 'localhost/paddock-busybox';
export const ROOTFS = path.resolve(__dirname, '..', 'fixtures', 'rootfs');

export interface PodmanResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * podman driving paddock as its OCI runtime, with everything private to a temp dir:
 * storage (vfs), runroot, tmpdir, containers.conf, events file and paddock's own state
 * root. The image is the busybox test rootfs imported as a tarball, so no registry is
 * needed. What the configuration holds, and why:
 * - containers.conf `default_ulimits`: podman's defaults raise hard limits, which
 *   needs CAP_SYS_RESOURCE (this host's root lacks it);
 * - cgroupfs manager and a file events backend: no systemd or journald here;
 * - the state root goes in through a wrapper script: conmon's cleanup process (`podman
 *   container cleanup`, which deletes a --rm container) forwards no runtime flags, and
 *   podman does not pass its environment (PADDOCK_ROOT) on to the runtime either.
 */
export class PodmanFixture {
  dir = '';
  /** paddock's --root: short, because podman's ids are 64 characters and a unix socket path (<root>/<id>/control.sock) has at most 107. */
  state = '';
  env: NodeJS.ProcessEnv = {};
  base: string[] = [];
  private cgroupsBefore = new Set<string>();

  constructor(
    private readonly runtimeCli: string,
    private readonly name = 'podman',
    private readonly runtimeEnv: Record<string, string> = {},
  ) {}

  /** Runs podman; its output through files, as conmon daemonises and a pipe could stay open behind it. */
  run(args: readonly string[], opts: { timeoutMs?: number } = {}): PodmanResult {
    const out = path.join(this.dir, 'out');
    const err = path.join(this.dir, 'err');
    const fds = [fs.openSync(out, 'w+'), fs.openSync(err, 'w+')] as const;
    try {
      const r = spawnSync('podman', [...this.base, ...args], { env: this.env, stdio: ['ignore', fds[0], fds[1]], timeout: opts.timeoutMs ?? 60_000 });
      return { code: r.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
    } finally {
      fs.closeSync(fds[0]);
      fs.closeSync(fds[1]);
    }
  }

  setup(): void {
    this.cgroupsBefore = new Set(cgroupDirs(['libpod_parent']));
    this.dir = testStateDir(this.name);
    // paddock-init in a user namespace must traverse every directory above its state.
    fs.chmodSync(this.dir, 0o711);
    this.state = fs.mkdtempSync('/tmp/pdk-');
    fs.chmodSync(this.state, 0o711);
    const conf = ['[containers]', 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]', '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', ''];
    fs.writeFileSync(path.join(this.dir, 'containers.conf'), conf.join('\n'));
    fs.writeFileSync(path.join(this.dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${this.dir}/storage"\nrunroot = "${this.dir}/run"\n`);
    fs.mkdirSync(path.join(this.dir, 'tmp'));
    const runtime = path.join(this.dir, 'paddock-runtime');
    const extra = Object.entries(this.runtimeEnv).map(([k, v]) => `${k}=${v} `).join('');
    fs.writeFileSync(runtime, `#!/bin/sh\n${extra}PADDOCK_ROOT=${this.state} exec ${this.runtimeCli} "$@"\n`, { mode: 0o755 });
    this.env = { ...process.env, CONTAINERS_CONF: path.join(this.dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(this.dir, 'storage.conf') };
    this.base = [
      '--root', path.join(this.dir, 'storage'),
      '--runroot', path.join(this.dir, 'run'),
      '--tmpdir', path.join(this.dir, 'tmp'),
      '--storage-driver', 'vfs',
      '--events-backend', 'file',
      '--cgroup-manager', 'cgroupfs',
      '--runtime', runtime,
    ];
    const tar = spawnSync('tar', ['-C', ROOTFS, '-cf', path.join(this.dir, 'rootfs.tar'), '.'], { timeout: 30_000 });
    if (tar.status !== 0) throw new Error(`tar of the test rootfs failed: ${tar.stderr}`);
    const imp = this.run(['import', path.join(this.dir, 'rootfs.tar'), IMAGE]);
    if (imp.code !== 0) throw new Error(`podman import failed: ${imp.stderr}`);
  }

  /**
   * Removes every container and image, podman's mounts, paddockd, the dirs and podman's
   * cgroups. Returns what could not be removed, and the paddock-init processes of this
   * state root that were still alive after podman's `rm --all` (killed here, so a failed
   * run leaves no process behind).
   */
  teardown(): { mounts: string[]; cgroups: string[]; inits: string[] } {
    if (!this.dir || !this.state) return { mounts: [], cgroups: [], inits: [] };
    this.run(['rm', '--all', '--force', '--time', '0']);
    this.run(['rmi', '--all', '--force']);
    const inits: string[] = [];
    for (const pid of paddockInitPids([this.state])) {
      const dir = initSandboxDir(pid);
      if (!dir?.startsWith(`${this.state}/`)) continue;
      inits.push(`${pid} ${dir}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    // podman's shm tmpfs and anything else it may have left mounted under the dir.
    for (const m of mountsUnder(this.dir).reverse()) spawnSync('umount', ['-l', m], { timeout: 10_000 });
    const mounts = mountsUnder(this.dir);
    stopDaemon(this.state);
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.rmSync(this.state, { recursive: true, force: true });
    // podman's cgroupfs manager leaves libpod_parent/conmon behind once conmon exits.
    const cgroups = removeCgroupDirs(cgroupDirs(['libpod_parent']).filter((d) => !this.cgroupsBefore.has(d)));
    return { mounts, cgroups, inits };
  }
}
