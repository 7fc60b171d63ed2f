import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createEngine, type Engine } from '../../index';
import { defaultSpec } from '../../specs/default-spec';
import type { OciConfig } from '../../specs/oci';
import { fixtureRootfs } from '../helpers/bundle';
import { describeIf, poll, quietLogger, readAll, testStateDir } from '../helpers/env';
import {
  allCapabilities,
  cli,
  describeProbe,
  parseProbeOutput,
  plantHostTargets,
  probeNames,
  PROBE_HOST_BIN,
  rootDisk,
  PROBE_IN_ROOTFS,
  runWithFiles,
  type HostTargets,
  type ProbeLine,
} from '../helpers/escape';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/**
 * paddock's own escape suite (issue 12 item 8, docs/decisions/0032-escape-suite.md). A static probe
 * (test/fixtures/escape/probe.c) runs inside containers made from paddock's defaults
 * (the library's defaultSpec(), its builder with userns 'auto', the CLI's `spec` and
 * `spec --rootless`) and tries every way out it knows; each probe is a test case
 * here that must read BLOCKED. Two sanity cases prove the probe can fail: unconfined
 * (all capabilities, no seccomp, no user namespace) most probes read ESCAPED, and the
 * probes no paddock config can open are run on the host itself, where they escape.
 */

const NAMES = probeNames();
const BLOCKED = (name: string) => new RegExp(`^${name} BLOCKED`);
const ESCAPED = (name: string) => new RegExp(`^${name} ESCAPED`);
/** Each run is bounded: the probe's own alarms stop any probe after 10 s. */
const RUN_MS = 120_000;

interface ProbeRun {
  readonly results: Map<string, ProbeLine>;
  readonly stdout: string;
  readonly stderr: string;
}

function finished(stdout: string, stderr: string, what: string): ProbeRun {
  // A run that died early still reports what it printed; missing probes then fail by name.
  if (!/^DONE$/m.test(stdout)) process.stderr.write(`escape probe (${what}) did not finish:\n${stdout}\n${stderr}\n`);
  return { results: parseProbeOutput(stdout), stdout, stderr };
}

/** What runs while the container does (the exec window's execs); it sees the output so far. */
type During = (engine: Engine, id: string, stdoutSoFar: () => string) => Promise<void>;

/** Creates, starts and waits for one sandbox in a fresh engine; everything goes, also on failure. */
async function inEngine(
  name: string,
  create: (engine: Engine, id: string) => Promise<{ stdio?: { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream } }>,
  during?: During,
): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  const stateDir = testStateDir(name);
  const engine = await createEngine({ stateDir, logger: quietLogger() });
  const id = name;
  try {
    const h = await create(engine, id);
    let out = '';
    h.stdio!.stdout.on('data', (d: Buffer | string) => (out += d.toString()));
    const stdoutDone = new Promise<void>((resolve) => h.stdio!.stdout.once('end', () => resolve()));
    const stderr = readAll(h.stdio!.stderr);
    await engine.startRoot(id);
    await during?.(engine, id, () => out);
    const status = await engine.wait(id, id, { timeoutMs: RUN_MS });
    await stdoutDone;
    return { stdout: out, stderr: await stderr, exitCode: status.exitCode };
  } finally {
    for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
    await engine.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** The probe's `watch` mode scans for this long; the test execs during the first part of it. */
const WATCH_MS = 4000;
const EXEC_FOR_MS = 2000;

/** Execs /bin/true into the container, one after another, while the probe watches. */
const execWhileWatching: During = async (engine, id, stdoutSoFar) => {
  await poll(() => (/^READY$/m.test(stdoutSoFar()) ? true : undefined), 20_000, 'the probe to start watching');
  const until = Date.now() + EXEC_FOR_MS;
  while (Date.now() < until) {
    const p = await engine.execute(id, id, { args: ['/bin/true'] });
    await engine.waitPid(id, p.pid, { timeoutMs: 10_000 });
  }
};

/** `INFO exec_window saw N new process(es), K before their execve` -> K. */
function caughtBeforeExecve(stdout: string): number {
  return Number(/^INFO exec_window saw \d+ new process\(es\), (\d+) before/m.exec(stdout)?.[1] ?? 0);
}

/** Runs a config.json (its root.path absolute) through the library. */
async function runConfigInLibrary(name: string, config: OciConfig, during?: During): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  const bundle = testStateDir(`${name}-bundle`);
  try {
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config, null, 2));
    return await inEngine(name, (engine, id) => engine.createSandbox(id, bundle), during);
  } finally {
    fs.rmSync(bundle, { recursive: true, force: true });
  }
}

/** `paddock spec [--rootless]`, its args replaced by the probe's, then `paddock run`; deleted after. */
async function runThroughCli(name: string, specFlags: string[], args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const root = testStateDir(`${name}-root`);
  const bundle = testStateDir(`${name}-bundle`);
  try {
    const spec = await cli(root, ['spec', '--bundle', bundle, ...specFlags]);
    if (spec.code !== 0) throw new Error(`paddock spec ${specFlags.join(' ')} failed: ${spec.stderr}`);
    // Only the args change: everything else is what `paddock spec` wrote.
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as OciConfig;
    config.process!.args = args;
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config, null, '\t'));
    fs.symlinkSync(fixtureRootfs(), path.join(bundle, 'rootfs'));
    const run = await cli(root, ['run', '--bundle', bundle, name], RUN_MS);
    return { stdout: run.stdout, stderr: run.stderr, code: run.code };
  } finally {
    await cli(root, ['delete', '--force', name], 30_000).catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(bundle, { recursive: true, force: true });
    reapZombies();
  }
}

/** The builder's API (branch userns): `createSandbox(id, { rootfs, args, env, limits }, { userns: 'auto' })`. */
type BuilderCreate = (
  id: string,
  template: { rootfs: string; args: string[]; env?: string[] },
  opts: { userns: 'auto' },
) => Promise<{ stdio?: { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream } }>;

/** Whether this process, the host's root, can open the root filesystem's disk for reading. */
function hostCanOpenRootDisk(): boolean {
  const disk = rootDisk();
  if (disk === undefined) return false;
  try {
    const name = path.basename(fs.readlinkSync(`/sys/dev/block/${disk.majmin}`));
    fs.closeSync(fs.openSync(`/dev/${name}`, 'r'));
    return true;
  } catch {
    return false;
  }
}

function capFields(out: string): Record<string, string | undefined> {
  const f: Record<string, string | undefined> = {};
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) f[k] = new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(out)?.[1];
  return f;
}
const NO_CAPS = { CapInh: '0000000000000000', CapPrm: '0000000000000000', CapEff: '0000000000000000', CapBnd: '0000000000000000', CapAmb: '0000000000000000' };
const CAPS_REPORT = ['sh', '-c', 'grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb):" /proc/self/status'];

describeIf(['root', 'busybox'])('escape suite: nothing made from paddock\'s defaults reaches the host', () => {
  let host: HostTargets;
  // A CLI's paddock-init is reaped by its caller's subreaper, as under conmon.
  useSubreaper();
  beforeAll(async () => {
    host = await plantHostTargets();
  });
  afterAll(async () => {
    await host?.cleanup();
  });
  const probeArgs = () => [PROBE_IN_ROOTFS, ...host.inputs];

  describe('library: defaultSpec()', () => {
    let run: ProbeRun | undefined;
    beforeAll(async () => {
      const config = defaultSpec({ rootfs: fixtureRootfs(), args: probeArgs() });
      const r = await runConfigInLibrary('escape-lib', config);
      run = finished(r.stdout, r.stderr, 'library defaultSpec');
    }, RUN_MS + 30_000);
    test.each(NAMES)('%s', (name) => expect(describeProbe(run?.results, name)).toMatch(BLOCKED(name)));
  });

  describe("library: the builder, createSandbox(id, { rootfs, args }, { userns: 'auto' })", () => {
    let run: ProbeRun | undefined;
    beforeAll(async () => {
      const r = await inEngine('escape-builder', (engine, id) =>
        (engine.createSandbox as unknown as BuilderCreate).call(engine, id, { rootfs: fixtureRootfs(), args: probeArgs() }, { userns: 'auto' }),
      );
      run = finished(r.stdout, r.stderr, 'library builder');
    }, RUN_MS + 30_000);
    test.each(NAMES)('%s', (name) => expect(describeProbe(run?.results, name)).toMatch(BLOCKED(name)));
  });

  describe('CLI: paddock spec + paddock run', () => {
    let run: ProbeRun | undefined;
    beforeAll(async () => {
      const r = await runThroughCli('escape-cli', [], probeArgs());
      run = finished(r.stdout, r.stderr, 'CLI spec');
    }, RUN_MS + 60_000);
    test.each(NAMES)('%s', (name) => expect(describeProbe(run?.results, name)).toMatch(BLOCKED(name)));
  });

  describe('CLI: paddock spec --rootless + paddock run', () => {
    let run: ProbeRun | undefined;
    beforeAll(async () => {
      const r = await runThroughCli('escape-rootless', ['--rootless'], probeArgs());
      run = finished(r.stdout, r.stderr, 'CLI spec --rootless');
    }, RUN_MS + 60_000);
    test.each(NAMES)('%s', (name) => expect(describeProbe(run?.results, name)).toMatch(BLOCKED(name)));
  });

  /**
   * CVE-2019-5736's window: an exec'd process is a clone of paddock-init inside the
   * container's pid namespace until its execve. The probe watches /proc while the
   * test execs into the container and tries each process it catches in that window.
   * (The CLI's exec takes the same path through paddock-init.)
   */
  describe.each([
    ['library: defaultSpec()', 'escape-win-lib', false],
    ["library: the builder (userns 'auto')", 'escape-win-builder', true],
  ])('the exec window, %s', (_label, name, builder) => {
    let run: ProbeRun | undefined;
    beforeAll(async () => {
      const args = [PROBE_IN_ROOTFS, 'watch', String(WATCH_MS)];
      const r = builder
        ? await inEngine(
            name,
            (engine, id) => (engine.createSandbox as unknown as BuilderCreate).call(engine, id, { rootfs: fixtureRootfs(), args }, { userns: 'auto' }),
            execWhileWatching,
          )
        : await runConfigInLibrary(name, defaultSpec({ rootfs: fixtureRootfs(), args }), execWhileWatching);
      run = finished(r.stdout, r.stderr, `exec window ${name}`);
    }, RUN_MS + 30_000);
    test('the probe caught execs before their execve (the window is real)', () => {
      expect(caughtBeforeExecve(run?.stdout ?? '')).toBeGreaterThan(0);
    });
    test.each(['exec_window_mem', 'exec_window_exe'])('%s', (probe) => expect(describeProbe(run?.results, probe)).toMatch(BLOCKED(probe)));
  });

  describe('the config runc runs with no capabilities (no process.capabilities) has none inside', () => {
    const zeroCapConfig = (rootfs: string) => {
      const c = defaultSpec({ rootfs, args: CAPS_REPORT });
      delete c.process!.capabilities;
      return c;
    };
    test('through the library', async () => {
      const r = await runConfigInLibrary('escape-nocaps', zeroCapConfig(fixtureRootfs()));
      expect(r.exitCode).toBe(0);
      expect(capFields(r.stdout)).toEqual(NO_CAPS);
    });
    test('through the CLI', async () => {
      const root = testStateDir('escape-nocaps-root');
      const bundle = testStateDir('escape-nocaps-bundle');
      try {
        fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(zeroCapConfig('rootfs')));
        fs.symlinkSync(fixtureRootfs(), path.join(bundle, 'rootfs'));
        const r = await cli(root, ['run', '--bundle', bundle, 'escape-nocaps']);
        expect(r.code).toBe(0);
        expect(capFields(r.stdout)).toEqual(NO_CAPS);
      } finally {
        await cli(root, ['delete', '--force', 'escape-nocaps'], 30_000).catch(() => undefined);
        fs.rmSync(root, { recursive: true, force: true });
        fs.rmSync(bundle, { recursive: true, force: true });
        reapZombies();
      }
    });
  });

  const proven = new Set<string>(['tiocsti']);
  /** Probes that cannot escape on this machine even for the host's root, by a check the test makes itself. */
  const unreachableHere = new Set<string>();
  const unconfinedResults: { run?: ProbeRun } = {};

  describe('sanity, unconfined: the probe can fail inside a paddock container', () => {
    /**
     * Unconfined: every capability the supervisor has, no seccomp, no user
     * namespace, no masked paths, every device allowed, the host's network; `/` is still the rootfs, and
     * the container still gets a pid namespace of its own (paddock always makes one).
     */
    const UNCONFINED_ESCAPES = [
      'open_by_handle_canary',
      'open_by_handle_fsroot',
      'mount_host_disk',
      'host_loopback_tcp',
      'host_abstract_unix',
      'clock_settime',
      'settimeofday',
      'adjtimex',
      'add_key',
      'keyctl_join',
      'mount_tmpfs',
      'mount_bind',
      'remount_proc_sys_rw',
      'remount_sys_rw',
      'mount_proc_new',
      'fsopen_tmpfs',
      'open_tree_clone',
      'mount_setattr_rw',
      'proc_sys_remount_write',
      'mknod_block',
      'mknod_char_mem',
      'af_packet',
      'sock_raw',
      'unshare_userns_mount',
      'clone_newuser',
      'cgroup_release_agent',
      'cgroup_procs_root',
      'bpf',
      'perf_event_open',
      'userfaultfd',
      'reboot',
      'swapon',
      'io_uring',
      'syslog_read',
      'acct',
    ];
    let unconfined: ProbeRun | undefined;
    for (const n of UNCONFINED_ESCAPES) proven.add(n);
    const unconfinedConfig = (args: string[]): OciConfig => {
      const config = defaultSpec({ rootfs: fixtureRootfs(), args });
      const all = allCapabilities();
      config.process!.capabilities = { bounding: all, effective: all, permitted: all, inheritable: all, ambient: all };
      config.process!.noNewPrivileges = false;
      const linux = config.linux!;
      delete linux.seccomp;
      delete linux.uidMappings;
      delete linux.gidMappings;
      linux.namespaces = (linux.namespaces ?? []).filter((n) => n.type === 'mount' || n.type === 'ipc' || n.type === 'uts');
      // Read-only paths stay, so the remount probes have something to undo.
      linux.maskedPaths = [];
      // Every device allowed: the device cgroup is not what this case measures.
      linux.resources = { devices: [{ allow: true, access: 'rwm' }] };
      return config;
    };
    beforeAll(async () => {
      const r = await runConfigInLibrary('escape-unconfined', unconfinedConfig(probeArgs()));
      unconfined = finished(r.stdout, r.stderr, 'unconfined');
      unconfinedResults.run = unconfined;
    }, RUN_MS + 30_000);
    test.each(UNCONFINED_ESCAPES)('unconfined: %s escapes', (name) => {
      expect(describeProbe(unconfined?.results, name)).toMatch(ESCAPED(name));
    });
    test('unconfined: exec_window_mem escapes (an exec caught before its execve)', async () => {
      const config = unconfinedConfig([PROBE_IN_ROOTFS, 'watch', String(WATCH_MS)]);
      const r = await runConfigInLibrary('escape-win-unconfined', config, execWhileWatching);
      expect(caughtBeforeExecve(r.stdout)).toBeGreaterThan(0);
      expect(describeProbe(parseProbeOutput(r.stdout), 'exec_window_mem')).toMatch(ESCAPED('exec_window_mem'));
    }, RUN_MS + 30_000);
    test('unconfined: what it read is the real thing (the canary and the loopback token)', () => {
      expect(describeProbe(unconfined?.results, 'open_by_handle_canary')).toContain(`canary-${host.token}`);
      expect(describeProbe(unconfined?.results, 'host_loopback_tcp')).toContain(`loopback-${host.token}`);
      expect(host.accepted()).toBeGreaterThanOrEqual(2);
    });
  });

  describe('sanity, on the host: the probes no paddock config can open do escape', () => {
    /**
     * What no paddock config opens (a container always has its own pid namespace,
     * pivots into its rootfs and inherits no fd beyond 0-2; the host's files are
     * read-only in the default mounts; the device cgroup refuses the disk), proven on
     * the host itself. The ptrace and exe probes look only at a victim the test
     * starts (a copy of sleep), dev_nodes only at a folder holding one node the test
     * made, the disk probe reads 2 KiB of the host's root disk.
     */
    const HOST_ESCAPES = [
      'host_pid_visible',
      'host_pid_signal',
      'kill_all',
      'proc_root_canary',
      'canary_direct',
      'canary_dotdot',
      'chroot_escape',
      'setns_host_mnt',
      'ptrace_init',
      'proc_init_exe',
      'dev_nodes',
      'inherited_fds',
      // The host's own files, written with the value they hold.
      'proc_sys_core_pattern',
      'proc_sys_vm',
      'sysfs_write',
    ];
    // Reading the host's disk escapes only where the host's root may open it (not on
    // a VM whose disk is fenced off below the guest's root).
    const diskOpens = hostCanOpenRootDisk();
    if (diskOpens) HOST_ESCAPES.push('open_host_disk');
    else unreachableHere.add('open_host_disk');
    for (const n of HOST_ESCAPES) proven.add(n);
    let onHost: ProbeRun | undefined;
    let tiocsti: ProbeRun | undefined;
    beforeAll(async () => {
      const dir = testStateDir('escape-host');
      let victim: ChildProcess | undefined;
      const extra = fs.openSync(path.join(dir, 'inherited'), 'w');
      try {
        fs.mkdirSync(path.join(dir, 'scratch'));
        fs.mkdirSync(path.join(dir, 'dev'));
        // /dev/kmsg's numbers (1:11): reading it is harmless.
        const mk = spawnSync('mknod', [path.join(dir, 'dev', 'kmsg'), 'c', '1', '11']);
        if (mk.status !== 0) throw new Error(`mknod: ${mk.stderr}`);
        fs.copyFileSync('/bin/sleep', path.join(dir, 'victim'));
        fs.chmodSync(path.join(dir, 'victim'), 0o755);
        victim = spawn(path.join(dir, 'victim'), ['120'], { stdio: 'ignore' });
        await new Promise<void>((resolve, reject) => victim!.once('spawn', resolve).once('error', reject));
        const inputs = [
          ...host.inputs,
          `PROBE_SCRATCH=${path.join(dir, 'scratch')}`,
          `PROBE_TARGET_PID=${victim.pid}`,
          `PROBE_DEV_DIRS=${path.join(dir, 'dev')}`,
        ];
        // fd 3 is the inherited file.
        const r = await runWithFiles(PROBE_HOST_BIN, [...inputs, ...HOST_ESCAPES], RUN_MS, [extra]);
        onHost = finished(r.stdout, r.stderr, 'host');
        // script(1) gives the probe a terminal of its own to push a byte into.
        const t = await runWithFiles('script', ['-qec', `${PROBE_HOST_BIN} tiocsti`, '/dev/null'], RUN_MS);
        // The pushed NUL is echoed back (as ^@) by the terminal.
        tiocsti = finished(t.stdout.replace(/\r|\^@|\0/g, ''), t.stderr, 'host tiocsti');
      } finally {
        // Waited for here, so node reaps it (not the subreaper's waitpid(-1) later).
        if (victim !== undefined && victim.exitCode === null && victim.signalCode === null) {
          const gone = new Promise((r) => victim!.once('exit', r));
          victim.kill('SIGKILL');
          await gone;
        }
        fs.closeSync(extra);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 2 * RUN_MS);
    test.each(HOST_ESCAPES)('on the host: %s escapes', (name) => {
      expect(describeProbe(onHost?.results, name)).toMatch(ESCAPED(name));
    });
    test('on the host: tiocsti escapes through an inherited terminal', () => {
      expect(describeProbe(tiocsti?.results, 'tiocsti')).toMatch(ESCAPED('tiocsti'));
    });
  });

  test('every probe is proven able to fail, except those this kernel cannot reach at all', () => {
    // A kernel without CONFIG_MODULES, KEXEC, MAGIC_SYSRQ, PROC_KCORE or
    // X86_IOPL_IOPERM answers ENOSYS/ENOENT even unconfined (docs/decisions/0032-escape-suite.md);
    // proc_attr_write needs an LSM that confines the container.
    expect(unconfinedResults.run).toBeDefined();
    const unprovable = NAMES.filter(
      (n) => !proven.has(n) && !unreachableHere.has(n) && !/ENOSYS|ENOENT|no LSM/.test(describeProbe(unconfinedResults.run?.results, n)),
    );
    expect(unprovable).toEqual([]);
  });
});
