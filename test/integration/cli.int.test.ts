import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { cliCommand, runCli, sandboxEntries } from '../helpers/cli';
import { describeIf, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';


/**
 * The OCI CLI, as podman and containerd call it: every call is a fresh process that
 * restores the container's machine from --root, acts, persists and exits.
 */
describeIf(['root', 'busybox'])('paddock CLI', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  // Output goes through files, not pipes: a detached sandbox inherits the caller's
  // stdio (as with runc), so a pipe would only see EOF when the container exits.
  const cli = (...args: string[]) => runCli(root, args);
  const bundle = (args: string[]) => {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  };

  // A CLI's paddock-init outlives the call that created it; we reap it as conmon would.
  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli');
  });
  afterEach(() => {
    for (const id of sandboxEntries(root)) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('create → created with the pid → start → running → kill → stopped → delete → gone', () => {
    const pidFile = path.join(root, '..', `pid-${path.basename(root)}`);
    const c = cli('create', '--bundle', bundle(['sleep', '60']), '--pid-file', pidFile, 'c1');
    expect(c).toMatchObject({ code: 0, stderr: '' });
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    fs.rmSync(pidFile);
    expect(paddockInitPids()).toContain(pid);
    let st = JSON.parse(cli('state', 'c1').stdout);
    expect(st).toMatchObject({ ociVersion: '1.0.2', id: 'c1', status: 'created', pid });
    expect(st.bundle).toBe(bundles[0]!.dir);

    expect(cli('start', 'c1').code).toBe(0);
    expect(JSON.parse(cli('state', 'c1').stdout)).toMatchObject({ status: 'running', pid });
    const ps = JSON.parse(cli('ps', '--format', 'json', 'c1').stdout) as number[];
    expect(ps.length).toBeGreaterThanOrEqual(1);

    expect(cli('kill', 'c1', 'KILL').code).toBe(0);
    // The kill is asynchronous, as with runc: poll the state.
    const deadline = Date.now() + 10_000;
    do st = JSON.parse(cli('state', 'c1').stdout);
    while (st.status !== 'stopped' && Date.now() < deadline);
    expect(st).toMatchObject({ status: 'stopped', pid: 0 });

    expect(cli('delete', 'c1').code).toBe(0);
    const gone = cli('state', 'c1');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^paddock: .*c1.*\n$/);
    expect(fs.existsSync(path.join(root, 'c1'))).toBe(false);
  });

  test('start sends the START encoded at create: config.json is not read again (as runc), and without it the container is planned again', () => {
    // A seccomp profile, so a plan made again would have to compile it.
    const withSeccomp = (extra?: (c: Record<string, unknown>) => void) => {
      const b = makeBundle({
        args: ['sleep', '60'],
        extra: (c) => {
          (c.linux as Record<string, unknown>).seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mknod'], action: 'SCMP_ACT_ERRNO' }] };
          extra?.(c as unknown as Record<string, unknown>);
        },
      });
      bundles.push(b);
      return b.dir;
    };
    const seccompMode = (id: string) => {
      const [hostPid] = JSON.parse(cli('ps', '--format', 'json', id).stdout) as number[];
      return /Seccomp:\s+(\d)/.exec(fs.readFileSync(`/proc/${hostPid}/status`, 'utf8'))?.[1];
    };

    const kept = withSeccomp();
    expect(cli('create', '--bundle', kept, 'k1').code).toBe(0);
    expect(fs.existsSync(path.join(root, 'k1', 'k1.start'))).toBe(true);
    // A config that could not be planned now: start must not need it.
    fs.writeFileSync(path.join(kept, 'config.json'), '{"ociVersion": "1.0.2", "linux": {"seccomp": {"defaultAction": "SCMP_ACT_NONSENSE"}}}');
    expect(cli('start', 'k1')).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(cli('state', 'k1').stdout)).toMatchObject({ status: 'running' });
    expect(seccompMode('k1')).toBe('2');

    // The kept START gone (a create by an older paddock): the container is planned again from its bundle.
    const replanned = withSeccomp();
    expect(cli('create', '--bundle', replanned, 'k2').code).toBe(0);
    fs.rmSync(path.join(root, 'k2', 'k2.start'));
    expect(cli('start', 'k2')).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(cli('state', 'k2').stdout)).toMatchObject({ status: 'running' });
    expect(seccompMode('k2')).toBe('2');

    for (const id of ['k1', 'k2']) expect(cli('delete', '--force', id).code).toBe(0);
    expect(sandboxEntries(root)).toEqual([]);
  });

  test('kill of a created container (its process waits before execve, as with runc) stops it; delete cleans up', () => {
    expect(cli('create', '--bundle', bundle(['sleep', '60']), 'ck').code).toBe(0);
    expect(JSON.parse(cli('state', 'ck').stdout)).toMatchObject({ status: 'created' });
    // KILL: the held process is PID 1 of its PID namespace, which ignores signals it has no handler for.
    expect(cli('kill', 'ck', 'KILL').code).toBe(0);
    const deadline = Date.now() + 10_000;
    let st;
    do st = JSON.parse(cli('state', 'ck').stdout);
    while (st.status !== 'stopped' && Date.now() < deadline);
    expect(st).toMatchObject({ status: 'stopped' });
    // It never ran: start is refused, delete works.
    expect(cli('start', 'ck').code).not.toBe(0);
    expect(cli('delete', 'ck').code).toBe(0);
    expect(fs.existsSync(path.join(root, 'ck'))).toBe(false);
  });

  test('VERB --help prints the verb\'s usage and exits 0, as runc (podman asks `checkpoint --help` before it checkpoints); an unknown flag is still an error', () => {
    for (const verb of ['checkpoint', 'restore', 'exec', 'state']) {
      const h = cli(verb, '--help');
      expect(h).toMatchObject({ code: 0, stderr: '' });
      expect(h.stdout).toMatch(new RegExp(`^usage: paddock \\[global options\\] ${verb} `));
    }
    expect(cli('checkpoint', '--help').stdout).toContain('--image-path value');
    // After the command of an exec, -h is the process's: `ls -h` is not a request for help.
    expect(cli('exec', 'nope', 'ls', '-h')).toMatchObject({ code: 1, stderr: expect.stringMatching(/does not exist/) });
    expect(cli('state', '--hlep')).toMatchObject({ code: 1, stderr: expect.stringMatching(/flag provided but not defined: --hlep/) });
  });

  test('run exits with the container status; list shows containers', () => {
    expect(cli('run', '--bundle', bundle(['true']), 'r0').code).toBe(0);
    expect(cli('run', '--bundle', bundle(['sh', '-c', 'exit 3']), 'r3').code).toBe(3);
    const out = cli('run', '--bundle', bundle(['sh', '-c', 'echo out-line; echo err-line >&2']), 'rio');
    expect(out).toMatchObject({ code: 0, stdout: 'out-line\n', stderr: 'err-line\n' });
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '30']), 'rd').code).toBe(0);
    const list = JSON.parse(cli('list', '--format', 'json').stdout) as Array<{ id: string; status: string }>;
    expect(list.map((s) => [s.id, s.status])).toEqual([['rd', 'running']]);
    expect(cli('list').stdout).toMatch(/^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER\nrd\s+\d+\s+running/);
  });

  test('exec runs in the container and exits with its status', () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '30']), 'e1').code).toBe(0);
    const r = cli('exec', 'e1', 'sh', '-c', 'echo pid=$$; exit 4');
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^pid=\d+\n$/);
  });

  test('a waiting exec does not hold up kill on the same container', async () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '60']), 'e2').code).toBe(0);
    const io = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-exec-'));
    const out = fs.openSync(path.join(io, 'out'), 'w');
    const ec = cliCommand(['--root', root, 'exec', 'e2', 'sleep', '50']);
    const waiter = spawn(ec.file, ec.args, { stdio: ['ignore', out, out], env: ec.env });
    try {
      // The exec'd process is up once ps lists two processes.
      const deadline = Date.now() + 10_000;
      while ((JSON.parse(cli('ps', '--format', 'json', 'e2').stdout || '[]') as number[]).length < 2) {
        if (Date.now() > deadline) throw new Error('exec did not start');
      }
      // Succeeds although `exec` still waits (its process sleeps longer than the CLI's
      // lock wait): the exec caller released the sandbox.
      expect(cli('kill', 'e2', 'KILL').code).toBe(0);
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => resolve(-1), 15_000);
        waiter.once('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      // The exec'd process died with its container's pid namespace: SIGKILL.
      expect(code).toBe(137);
    } finally {
      waiter.kill('SIGKILL');
      fs.closeSync(out);
      fs.rmSync(io, { recursive: true, force: true });
    }
  });

  test('spec, features and --version need no sandbox', () => {
    const dir = fs.mkdtempSync(path.join(root, 'spec-'));
    expect(cli('spec', '--bundle', dir).code).toBe(0);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(spec).toMatchObject({ ociVersion: expect.any(String), process: { args: ['sh'] }, root: { path: 'rootfs' } });
    const again = cli('spec', '--bundle', dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('config.json exists');
    fs.rmSync(dir, { recursive: true });
    const features = JSON.parse(cli('features').stdout);
    expect(features).toMatchObject({ ociVersionMin: '1.0.0', ociVersionMax: '1.1.0', linux: { namespaces: expect.arrayContaining(['pid', 'user']) } });
    // Every hook kind paddock runs, and mount options by their OCI names.
    expect([...features.hooks].sort()).toEqual(['createContainer', 'createRuntime', 'poststart', 'poststop', 'prestart', 'startContainer']);
    expect(features.mountOptions).toEqual(expect.arrayContaining(['ro', 'nosuid', 'rbind', 'rslave']));
    expect(features.mountOptions).not.toContain('rdonly');
    expect(cli('--version').stdout).toMatch(/^paddock version \d+\.\d+\.\d+\nspec: 1\.0\.2\n$/);
  });

  test('--log names each accepted-but-ignored field (memory.kernel, a bind mount data option) as a warning', () => {
    const b = makeBundle({
      args: ['true'],
      userns: false,
      extra: (c) => {
        c.linux!.resources = { memory: { limit: 64 << 20, kernel: 8 << 20 } };
        c.mounts!.push({ destination: '/mnt', type: 'bind', source: '/tmp', options: ['rbind', 'mode=755'] });
      },
    });
    bundles.push(b);
    const log = path.join(root, '..', `log-${path.basename(root)}`);
    try {
      expect(cli('--log', log, '--log-format', 'json', 'create', '--bundle', b.dir, 'w1')).toMatchObject({ code: 0, stderr: '' });
      const warned = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.step === 'config');
      const i = JSON.parse(fs.readFileSync(path.join(b.dir, 'config.json'), 'utf8')).mounts.length - 1;
      expect(warned.map((l) => [l.level, l.field])).toEqual([[40, `mounts[${i}].options[1]`], [40, 'linux.resources.memory.kernel']]);
      expect(cli('delete', '--force', 'w1').code).toBe(0);
    } finally {
      fs.rmSync(log, { force: true });
    }
  });

  test('bad input: one line on stderr, exit 1, nothing changed', () => {
    const oneLine = (r: { code: number | null; stderr: string }) => {
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stderr).toMatch(/^paddock: /);
    };
    oneLine(cli('frobnicate'));
    oneLine(cli('state', '--bogus', 'x'));
    oneLine(cli('create', '--bundle', '/nonexistent', 'x'));
    const bad = fs.mkdtempSync(path.join(root, 'bad-'));
    fs.writeFileSync(path.join(bad, 'config.json'), '{ not json');
    oneLine(cli('create', '--bundle', bad, 'x'));
    fs.rmSync(bad, { recursive: true });
    oneLine(cli('state', 'nope'));
    oneLine(cli('kill', 'nope', 'KILL'));
    expect(sandboxEntries(root)).toEqual([]);

    expect(cli('run', '-d', '--bundle', bundle(['sleep', '30']), 'busy').code).toBe(0);
    oneLine(cli('start', 'busy'));
    oneLine(cli('delete', 'busy'));
    oneLine(cli('kill', 'busy', 'SIGNOPE'));
    oneLine(cli('resume', 'busy'));
    expect(JSON.parse(cli('state', 'busy').stdout).status).toBe('running');
    expect(cli('delete', '--force', 'busy').code).toBe(0);
    expect(sandboxEntries(root)).toEqual([]);
  });
});
