import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, TEST_USERNS, type TestBundle } from '../helpers/bundle';
import { runCli, sandboxEntries } from '../helpers/cli';
import { describeIf, testStateDir } from '../helpers/env';
import { paddockInitPids } from '../helpers/leaks';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

const TYPE = 'io.kubernetes.cri.container-type';
const SANDBOX = 'io.kubernetes.cri.sandbox-id';

/**
 * `paddock pause` / `paddock resume` as runc's: every call a fresh process, so the
 * paused state must come back from --root; runc's words for wrong states and ids.
 */
describeIf(['root', 'busybox', 'cgroups'])('paddock CLI: pause / resume', () => {
  let root: string;
  let out: string;
  const bundles: TestBundle[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const state = (id: string) => JSON.parse(cli('state', id).stdout) as { status: string; pid: number };
  const counter = () => {
    try {
      return Number(fs.readFileSync(path.join(out, 'n'), 'utf8'));
    } catch {
      return 0;
    }
  };
  /** Polls with a bound (the CLI is synchronous, so this is a plain loop). */
  const until = (what: string, check: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  };
  const gap = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  const fails = (r: { code: number | null; stderr: string }, message: RegExp) => {
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-pause');
    out = fs.mkdtempSync(path.join(path.dirname(root), 'cli-pause-out-'));
    fs.chownSync(out, TEST_USERNS.hostId, TEST_USERNS.hostId);
  });
  afterEach(() => {
    for (const id of sandboxEntries(root)) if (!id.startsWith('.')) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
    reapZombies();
  });

  const countingBundle = (annotations?: Record<string, string>) => {
    const b = makeBundle({
      args: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.tmp; mv /tmp/n.tmp /tmp/n; sleep 0.05; done'],
      extra: (c) => {
        c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'bind', source: out, options: ['rbind', 'rw'] }];
        if (annotations) c.annotations = annotations;
      },
    });
    bundles.push(b);
    return b.dir;
  };

  test('pause → state/list say paused and the counter stops → resume → running and it moves on → delete --force while paused leaves nothing', () => {
    expect(cli('run', '-d', '--bundle', countingBundle(), 'p1')).toMatchObject({ code: 0 });
    until('the counter to move', () => counter() > 1);

    expect(cli('pause', 'p1')).toMatchObject({ code: 0, stderr: '' });
    expect(state('p1').status).toBe('paused');
    const list = JSON.parse(cli('list', '--format', 'json').stdout) as Array<{ id: string; status: string }>;
    expect(list.map((s) => [s.id, s.status])).toEqual([['p1', 'paused']]);
    const a = counter();
    gap();
    expect(counter()).toBe(a);

    // runc's words for the wrong state; nothing changes.
    fails(cli('pause', 'p1'), /^paddock: container not running/);
    fails(cli('delete', 'p1'), /^paddock: cannot delete container p1 that is not stopped: paused/);
    fails(cli('exec', 'p1', 'true'), /^paddock: .*paused/);
    expect(state('p1').status).toBe('paused');

    expect(cli('resume', 'p1')).toMatchObject({ code: 0, stderr: '' });
    expect(state('p1').status).toBe('running');
    until('the counter to move after resume', () => counter() > a);
    fails(cli('resume', 'p1'), /^paddock: container not paused/);

    expect(cli('pause', 'p1').code).toBe(0);
    const pid = state('p1').pid;
    expect(cli('delete', '--force', 'p1')).toMatchObject({ code: 0, stderr: '' });
    fails(cli('state', 'p1'), /does not exist/);
    expect(fs.existsSync(path.join(root, 'p1'))).toBe(false);
    until('paddock-init to go', () => !fs.existsSync(`/proc/${pid}/stat`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')));
    reapZombies();
    // Only this sandbox's init is checked: other runs on this machine start their own.
    expect(paddockInitPids()).not.toContain(pid);
  });

  test('bad input: unknown id, a created container, a stopped one; a container of a pod is paused alone, in its own cgroup', () => {
    fails(cli('pause', 'nope'), /^paddock: .*does not exist/);
    fails(cli('resume', 'nope'), /^paddock: .*does not exist/);
    fails(cli('pause'), /^paddock: /);

    expect(cli('create', '--bundle', countingBundle(), 'c1').code).toBe(0);
    fails(cli('pause', 'c1'), /^paddock: container not running/);
    fails(cli('resume', 'c1'), /^paddock: container not paused/);
    expect(state('c1').status).toBe('created');

    const t = makeBundle({ args: ['true'] });
    bundles.push(t);
    expect(cli('run', '-d', '--bundle', t.dir, 's1').code).toBe(0);
    until('s1 to stop', () => state('s1').status === 'stopped');
    fails(cli('pause', 's1'), /^paddock: container not running/);

    expect(cli('run', '-d', '--bundle', countingBundle({ [TYPE]: 'sandbox' }), 'pod').code).toBe(0);
    const app = makeBundle({ args: ['sleep', '60'], extra: (c) => (c.annotations = { [TYPE]: 'container', [SANDBOX]: 'pod' }) });
    bundles.push(app);
    expect(cli('create', '--bundle', app.dir, 'app').code).toBe(0);
    expect(cli('start', 'app').code).toBe(0);
    // A pod container is paused alone (its own cgroup, decision 0022); the pod runs on.
    expect(cli('pause', 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(state('app').status).toBe('paused');
    expect(state('pod').status).toBe('running');
    fails(cli('pause', 'app'), /^paddock: container not running/);
    expect(cli('resume', 'app')).toMatchObject({ code: 0, stderr: '' });
    expect(state('app').status).toBe('running');
    fails(cli('resume', 'app'), /^paddock: container not paused/);
    // Pausing the pod pauses its containers; deleting one of them alone waits for a resume.
    expect(cli('pause', 'pod').code).toBe(0);
    expect(state('app').status).toBe('paused');
    fails(cli('resume', 'app'), /^paddock: cannot resume container app alone: its sandbox pod is paused/);
    fails(cli('delete', '--force', 'app'), /^paddock: cannot destroy container app: sandbox pod is paused/);
    expect(cli('resume', 'pod').code).toBe(0);
    expect(state('app').status).toBe('running');
    expect(cli('delete', '--force', 'app').code).toBe(0);
  });
});
