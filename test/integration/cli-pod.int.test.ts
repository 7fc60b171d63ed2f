import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { runCli, sandboxEntries } from '../helpers/cli';
import { describeIf, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

const TYPE = 'io.kubernetes.cri.container-type';
const SANDBOX = 'io.kubernetes.cri.sandbox-id';

/**
 * Pods through the OCI CLI, as containerd's CRI (runsc convention) drives them: the
 * annotations container-type=container + sandbox-id put a container into an existing
 * sandbox instead of launching a new one.
 */
describeIf(['root', 'busybox'])('paddock CLI: containers in an existing sandbox (CRI annotations)', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const bundle = (args: string[], annotations?: Record<string, string>) => {
    const b = makeBundle({
      args,
      ...(annotations
        ? {
            extra: (c) => {
              c.annotations = annotations;
            },
          }
        : {}),
    });
    bundles.push(b);
    return b.dir;
  };
  const state = (id: string) => JSON.parse(cli('state', id).stdout) as { id: string; status: string; pid: number; bundle: string };
  const oneLine = (r: { code: number | null; stderr: string }) => {
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/^paddock: /);
  };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-pod');
  });
  afterEach(() => {
    for (const id of sandboxEntries(root)) if (!id.startsWith('.')) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('create/start/state/exec/ps/kill/delete of a container added to a running sandbox', () => {
    const initsBefore = paddockInitPids().length;
    expect(cli('create', '--bundle', bundle(['sleep', '60'], { [TYPE]: 'sandbox' }), 'pod')).toMatchObject({ code: 0, stderr: '' });
    expect(cli('start', 'pod').code).toBe(0);
    const pod = state('pod');
    expect(pod).toMatchObject({ id: 'pod', status: 'running' });
    expect(paddockInitPids()).toHaveLength(initsBefore + 1);

    const appBundle = bundle(['sh', '-c', 'hostname; sleep 60'], { [TYPE]: 'container', [SANDBOX]: 'pod' });
    const pidFile = path.join(root, '..', `pid-${path.basename(root)}`);
    expect(cli('create', '--bundle', appBundle, '--pid-file', pidFile, 'app')).toMatchObject({ code: 0, stderr: '' });
    // No new sandbox: the pid (file and state) is the pod's paddock-init, as runsc reports for a subcontainer.
    expect(Number(fs.readFileSync(pidFile, 'utf8'))).toBe(pod.pid);
    fs.rmSync(pidFile);
    expect(paddockInitPids()).toHaveLength(initsBefore + 1);
    expect(fs.existsSync(path.join(root, 'app'))).toBe(false);
    expect(state('app')).toMatchObject({ id: 'app', status: 'created', pid: pod.pid, bundle: appBundle });
    // A second create of the same id is refused.
    oneLine(cli('create', '--bundle', appBundle, 'app'));

    expect(cli('start', 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(state('app')).toMatchObject({ status: 'running', pid: pod.pid });
    expect(state('pod').status).toBe('running');
    oneLine(cli('start', 'app'));

    // exec targets each container: same net and uts (one sandbox), different mounts.
    const ns = (id: string) => {
      const r = cli('exec', id, 'sh', '-c', 'for n in net uts mnt; do echo $n=$(readlink /proc/self/ns/$n); done');
      expect(r).toMatchObject({ code: 0, stderr: '' });
      return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=')));
    };
    const nsPod = ns('pod');
    const nsApp = ns('app');
    expect(nsApp.net).toBe(nsPod.net);
    expect(nsApp.uts).toBe(nsPod.uts);
    expect(nsApp.mnt).not.toBe(nsPod.mnt);

    const psApp = JSON.parse(cli('ps', '--format', 'json', 'app').stdout) as number[];
    const psPod = JSON.parse(cli('ps', '--format', 'json', 'pod').stdout) as number[];
    expect(psApp.length).toBeGreaterThanOrEqual(1);
    expect(psApp.filter((p) => psPod.includes(p))).toEqual([]);

    const list = JSON.parse(cli('list', '--format', 'json').stdout) as Array<{ id: string; status: string }>;
    expect(list.map((s) => [s.id, s.status])).toEqual([
      ['pod', 'running'],
      ['app', 'running'],
    ]);

    oneLine(cli('delete', 'app'));
    expect(cli('kill', 'app', 'KILL').code).toBe(0);
    const deadline = Date.now() + 10_000;
    let st = state('app');
    while (st.status !== 'stopped' && Date.now() < deadline) st = state('app');
    expect(st).toMatchObject({ status: 'stopped', pid: 0 });
    expect(state('pod').status).toBe('running');

    expect(cli('delete', 'app')).toMatchObject({ code: 0, stderr: '' });
    oneLine(cli('state', 'app'));
    expect(cli('state', 'app').stderr).toContain('app');
    expect(state('pod').status).toBe('running');
    expect(sandboxEntries(root).sort()).toEqual(['pod']);
    // As runc: delete --force of a container that is gone succeeds.
    expect(cli('delete', '--force', 'app').code).toBe(0);

    // The id is free again.
    expect(cli('create', '--bundle', appBundle, 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(state('app').status).toBe('created');
  });

  test('unknown sandbox id: one line, exit 1, nothing created', () => {
    oneLine(cli('create', '--bundle', bundle(['true'], { [TYPE]: 'container', [SANDBOX]: 'nope' }), 'lost'));
    const r = cli('create', '--bundle', bundle(['true'], { [TYPE]: 'container', [SANDBOX]: 'nope' }), 'lost');
    expect(r.stderr).toMatch(/nope/);
    oneLine(cli('create', '--bundle', bundle(['true'], { [TYPE]: 'container' }), 'lost'));
    oneLine(cli('create', '--bundle', bundle(['true'], { [TYPE]: 'pod' }), 'lost'));
    expect(sandboxEntries(root)).toEqual([]);
    oneLine(cli('state', 'lost'));
  });

  test('delete --force of the sandbox takes its containers (and their index entries) with it', () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '60']), 'pod2').code).toBe(0);
    const add = (id: string) => cli('create', '--bundle', bundle(['sleep', '60'], { [TYPE]: 'container', [SANDBOX]: 'pod2' }), id);
    expect(add('a1').code).toBe(0);
    expect(add('a2').code).toBe(0);
    expect(cli('start', 'a1').code).toBe(0);
    expect(state('a1').status).toBe('running');
    expect(state('a2').status).toBe('created');
    // A container id cannot become a sandbox id.
    oneLine(cli('create', '--bundle', bundle(['true']), 'a1'));

    const initPid = state('pod2').pid;
    expect(cli('delete', '--force', 'pod2')).toMatchObject({ code: 0, stderr: '' });
    expect(sandboxEntries(root)).toEqual([]);
    reapZombies();
    expect(paddockInitPids()).not.toContain(initPid);
    oneLine(cli('state', 'a1'));
    oneLine(cli('state', 'a2'));
    expect(cli('delete', '--force', 'a1').code).toBe(0);
  });

  test('run of a container in an existing sandbox waits for it and deletes it alone', () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '60']), 'pod3').code).toBe(0);
    const r = cli('run', '--bundle', bundle(['sh', '-c', 'exit 7'], { [TYPE]: 'container', [SANDBOX]: 'pod3' }), 'once');
    expect(r.code).toBe(7);
    oneLine(cli('state', 'once'));
    expect(state('pod3').status).toBe('running');
    expect(sandboxEntries(root)).toEqual(['pod3']);
  });

  test("shareProcessNamespace: CRI's pid path (/proc/<sandbox pid>/ns/pid) puts the container in the pod's first container's pid namespace", () => {
    expect(cli('run', '-d', '--bundle', bundle(['sleep', '60']), 'pod4').code).toBe(0);
    const podPid = state('pod4').pid;
    const app = makeBundle({
      // Exit 0 only if pid 1 here is the pod's `sleep 60`.
      args: ['sh', '-c', 'c=$(tr "\\0" " " < /proc/1/cmdline); [ "$c" = "sleep 60 " ] || exit 3'],
      extra: (c) => {
        c.annotations = { [TYPE]: 'container', [SANDBOX]: 'pod4' };
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${podPid}/ns/pid` } : n));
      },
    });
    bundles.push(app);
    const r = cli('run', '--bundle', app.dir, 'sharer');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    // Without the path: a pid namespace of its own, where pid 1 is the shell.
    const alone = makeBundle({
      args: ['sh', '-c', 'c=$(tr "\\0" " " < /proc/1/cmdline); [ "$c" = "sleep 60 " ] || exit 3'],
      extra: (c) => {
        c.annotations = { [TYPE]: 'container', [SANDBOX]: 'pod4' };
      },
    });
    bundles.push(alone);
    expect(cli('run', '--bundle', alone.dir, 'loner').code).toBe(3);
  });
});
