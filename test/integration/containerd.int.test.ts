import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, poll, testStateDir } from '../helpers/env';
import { mountsUnder, paddockInitPids } from '../helpers/leaks';
import { writeOciArchive } from '../helpers/oci-image';
import { CLI as NODE_CLI, CLI_MODE, CLIENT, sandboxEntries, stopDaemon } from '../helpers/cli';

// The CLI of this run's mode (test/helpers/cli.ts): the in-process Node CLI, or the
// native client with its paddockd (PADDOCK_TEST_CLI=daemon, decision 0044).
const CLI = CLI_MODE === 'daemon' ? CLIENT : NODE_CLI;
const ROOTFS = path.resolve(__dirname, '..', 'fixtures', 'rootfs');

/**
 * containerd's runc shim (containerd-shim-runc-v2) driving paddock: a private
 * containerd (config, root, state and sockets under a temp dir, CRI disabled), and
 * `ctr run --runc-binary dist/cli/paddock.js --runc-root DIR --config SPEC`.
 *
 * Two ways in: an image imported with `ctr images import` and run with containerd's own
 * default spec (no user namespace: its device rules go to the devices cgroup), and a
 * user-namespaced spec file (`ctr run --uidmap` would add one but then passes task
 * options that replace the runtime options, so the shim runs plain runc, ctr 1.6).
 */
describeIf(['root', 'busybox', 'containerd'])('containerd with paddock as its runc', () => {
  let dir: string;
  let sock: string;
  let containerd: ChildProcess | undefined;
  let hadRunContainerd: boolean;

  const ctr = (args: string[]) => {
    const out = path.join(dir, 'out');
    const err = path.join(dir, 'err');
    const fds = [fs.openSync(out, 'w+'), fs.openSync(err, 'w+')] as const;
    try {
      const r = spawnSync('ctr', ['--address', sock, '--namespace', 'paddock-test', ...args], { stdio: ['ignore', fds[0], fds[1]], timeout: 60_000 });
      return { code: r.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
    } finally {
      fs.closeSync(fds[0]);
      fs.closeSync(fds[1]);
    }
  };
  /** A user-namespaced spec over the busybox rootfs, as `paddock spec` writes it. */
  const spec = (name: string, args: string[], terminal = false) => {
    const d = fs.mkdtempSync(path.join(dir, 'spec-'));
    expect(spawnSync(process.execPath, [NODE_CLI, 'spec', '--bundle', d], { timeout: 30_000 }).status).toBe(0);
    const cfg = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    fs.rmSync(d, { recursive: true });
    cfg.process.args = args;
    cfg.process.terminal = terminal; // --config replaces ctr's own spec, -t included
    cfg.root = { path: ROOTFS, readonly: true };
    cfg.linux.namespaces.push({ type: 'user' });
    cfg.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    cfg.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const f = path.join(dir, `${name}.json`);
    fs.writeFileSync(f, JSON.stringify(cfg));
    return f;
  };
  /** ctr on a terminal of its own (`script` gives it a fresh pty), bounded by timeoutMs. */
  const ctrOnTerminal = (args: string[], timeoutMs = 60_000) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      const cmd = ['ctr', '--address', sock, '--namespace', 'paddock-test', ...args].map(quote).join(' ');
      const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  const run = (id: string, args: string[]) =>
    ctr(['run', '--rm', '--runc-binary', CLI, '--runc-root', path.join(dir, 'runc'), '--config', spec(id, args), id]);

  beforeAll(async () => {
    hadRunContainerd = fs.existsSync('/run/containerd');
    dir = testStateDir('ctrd');
    fs.chmodSync(dir, 0o711);
    sock = path.join(dir, 'c.sock');
    fs.writeFileSync(
      path.join(dir, 'config.toml'),
      [
        'version = 2',
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[ttrpc]',
        `  address = "${sock}.ttrpc"`,
        '',
      ].join('\n'),
    );
    const log = fs.openSync(path.join(dir, 'containerd.log'), 'w');
    containerd = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    await poll(() => (ctr(['version']).code === 0 ? true : undefined), 15_000, 'containerd to answer');
  });

  afterAll(async () => {
    if (containerd && containerd.exitCode === null) {
      const exited = new Promise((r) => containerd!.once('exit', r));
      containerd.kill('SIGTERM');
      const t = setTimeout(() => containerd!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (!dir) return;
    // Shims of this containerd (there should be none after `run --rm`).
    const shims = spawnSync('pgrep', ['-f', `containerd-shim-runc-v2 .*-address ${sock}`], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    for (const pid of shims.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    expect(shims).toBe('');
    for (const m of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', m], { timeout: 10_000 });
    expect(mountsUnder(dir)).toEqual([]);
    stopDaemon(path.join(dir, 'runc', 'paddock-test'));
    fs.rmSync(dir, { recursive: true, force: true });
    // The shim's socket dir is containerd's fixed /run/containerd/s; remove what we made.
    if (!hadRunContainerd) {
      for (const d of ['/run/containerd/s', '/run/containerd']) {
        try {
          fs.rmdirSync(d);
        } catch {
          // not empty or not there
        }
      }
    }
  });

  test('run --rm: true exits 0; sh -c "exit 3" exits 3 with its output', () => {
    const before = paddockInitPids();
    expect(run('c0', ['true'])).toMatchObject({ code: 0, stderr: '' });
    expect(run('c3', ['sh', '-c', 'echo out-line; exit 3'])).toMatchObject({ code: 3, stdout: 'out-line\n' });
    expect(ctr(['containers', 'list', '--quiet']).stdout).toBe('');
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
    expect(sandboxEntries(path.join(dir, 'runc', 'paddock-test'))).toEqual([]);
  });

  test('run -t: the container gets a terminal of its own (the shim\'s console socket); its status is ctr\'s', async () => {
    const before = paddockInitPids();
    const r = await ctrOnTerminal(['run', '--rm', '-t', '--runc-binary', CLI, '--runc-root', path.join(dir, 'runc'), '--config', spec('t1', ['sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 5'], true), 't1']);
    expect(r.output).toMatch(/\/dev\/pts\/\d+\r*\n/);
    expect(r.output).toContain('both-ttys');
    expect(r.code).toBe(5);
    expect(ctr(['containers', 'list', '--quiet']).stdout).toBe('');
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
  });

  test('an imported image with containerd\'s default spec: run --rm IMAGE id true exits 0, sh -c "exit 3" exits 3', () => {
    const image = 'docker.io/library/paddock-busybox:test';
    const archive = writeOciArchive(ROOTFS, image, dir);
    expect(ctr(['images', 'import', archive])).toMatchObject({ code: 0 });
    const before = paddockInitPids();
    const runImage = (id: string, args: string[]) =>
      ctr(['run', '--rm', '--runc-binary', CLI, '--runc-root', path.join(dir, 'runc'), image, id, ...args]);
    expect(runImage('i0', ['true'])).toMatchObject({ code: 0, stderr: '' });
    expect(runImage('i3', ['sh', '-c', 'echo image-out; exit 3'])).toMatchObject({ code: 3, stdout: 'image-out\n' });
    expect(ctr(['containers', 'list', '--quiet']).stdout).toBe('');
    expect(paddockInitPids().filter((p) => !before.includes(p))).toEqual([]);
    expect(ctr(['images', 'rm', image])).toMatchObject({ code: 0 });
  });
});
