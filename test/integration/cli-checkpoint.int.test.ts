import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, runCli } from '../helpers/cli';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { describeIf, poll, testStateDir, TEST_ROOT } from '../helpers/env';

/**
 * `paddock checkpoint` and `paddock restore` with runc's flags (docs/decisions/0040): a
 * detached counter is checkpointed, deleted, restored under its id and counts on from
 * where it was, read through `paddock exec`.
 */
describeIf(['root', 'busybox', 'fixture-rootfs', 'criu'])('paddock checkpoint / restore (CLI)', () => {
  let root: string;
  let bundle: TestBundle;
  let img: string;
  beforeEach(() => {
    root = testStateDir('cli-ckpt');
    img = path.join(TEST_ROOT, `cli-ckpt-img-${process.pid}`);
    bundle = makeBundle({ args: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.05; done'], userns: false });
  });
  afterEach(() => {
    runCli(root, ['delete', '--force', 'c1']);
    bundle.cleanup();
    fs.rmSync(img, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });

  const count = (): number | undefined => {
    const r = runCli(root, ['exec', 'c1', 'cat', '/dev/shm/n']);
    return r.code === 0 ? Number(r.stdout.trim()) : undefined;
  };
  const state = () => (JSON.parse(runCli(root, ['state', 'c1']).stdout) as { status: string; pid: number }) ;

  test('checkpoint, delete, restore -d --pid-file: the counter goes on; unsupported flags fail clearly', async () => {
    // As conmon would, the container's output goes to a file opened for appending (criu
    // then checks only its type at restore, not its size; docs/decisions/0040).
    const out = path.join(root, 'c1.out');
    const fd = fs.openSync(out, 'a');
    try {
      expect(spawnSync(process.execPath, [CLI, '--root', root, 'run', '-d', '--bundle', bundle.dir, 'c1'], { stdio: ['ignore', fd, fd], timeout: 30_000 }).status).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
    await poll(() => ((count() ?? 0) >= 5 ? true : undefined), 10_000, 'the counter to reach 5');

    const pre = runCli(root, ['checkpoint', '--pre-dump', '--image-path', img, 'c1']);
    expect(pre.code).not.toBe(0);
    expect(pre.stderr).toMatch(/dirty-page tracking/);
    const ps = runCli(root, ['checkpoint', '--page-server', '127.0.0.1:1', '--image-path', img, 'c1']);
    expect(ps.code).not.toBe(0);
    expect(ps.stderr).toMatch(/--page-server is not supported/);
    expect(state().status).toBe('running');

    expect(runCli(root, ['checkpoint', '--image-path', img, '--manage-cgroups-mode', 'soft', 'c1'])).toMatchObject({ code: 0, stderr: '' });
    expect(state().status).toBe('stopped');
    expect(fs.existsSync(path.join(img, 'inventory.img'))).toBe(true);
    expect(runCli(root, ['delete', 'c1']).code).toBe(0);

    const pidFile = path.join(root, 'c1.pid');
    const r = runCli(root, ['restore', '-d', '--image-path', img, '--bundle', bundle.dir, '--pid-file', pidFile, 'c1']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const s = state();
    expect(s.status).toBe('running');
    expect(Number(fs.readFileSync(pidFile, 'utf8'))).toBe(s.pid);
    // Counted on from the checkpoint (at least 5), not from 1.
    const n = count();
    expect(n).toBeGreaterThanOrEqual(5);
    await poll(() => ((count() ?? 0) > (n as number) ? true : undefined), 10_000, 'the restored counter to move');
    expect(runCli(root, ['kill', 'c1', 'KILL']).code).toBe(0);
    await poll(() => (state().status === 'stopped' ? true : undefined), 10_000, 'the restored container to stop');
    expect(runCli(root, ['delete', 'c1']).code).toBe(0);
  }, 90_000);
});
