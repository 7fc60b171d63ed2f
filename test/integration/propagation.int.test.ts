import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll } from '../helpers/env';

/**
 * Mount propagation from config.json, read from inside: a host directory made a shared
 * mount is bind-mounted into the container; the host then mounts a tmpfs below it. With
 * `rslave` the container sees that mount arrive; with `rprivate` it never does.
 */
describeIf(['root', 'busybox'])('mount propagation (conformance)', () => {
  const t = useEngine('prop');
  let src = '';

  beforeEach(() => {
    src = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-prop-'));
    fs.chmodSync(src, 0o755);
    execFileSync('mount', ['--bind', src, src]);
    execFileSync('mount', ['--make-shared', src]);
  });
  afterEach(() => {
    for (const m of [path.join(src, 'sub'), src]) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        // not mounted
      }
    }
    fs.rmSync(src, { recursive: true, force: true });
  });

  // Polls its own mountinfo for up to 3 s: prints whether /tmp/sub ever showed up.
  const watch = [
    'sh',
    '-c',
    'i=0; while [ $i -lt 30 ]; do if grep -q " /tmp/sub " /proc/self/mountinfo; then echo seen; exit 0; fi; sleep 0.1; i=$((i+1)); done; echo unseen',
  ];

  async function run(propagation: string) {
    const sid = t.id();
    const dir = t.bundle({
      args: watch,
      extra: (c) => {
        c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'bind', source: src, options: ['rbind', propagation] }];
      },
    });
    const h = await t.engine.createSandbox(sid, dir);
    await t.engine.startRoot(sid);
    fs.mkdirSync(path.join(src, 'sub'));
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(src, 'sub')]);
    expect(await t.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    return readAll(h.stdio!.stdout);
  }

  test('rslave: a mount made on the host after start reaches the container', async () => {
    expect(await run('rslave')).toBe('seen\n');
  });

  test('rprivate: it does not', async () => {
    expect(await run('rprivate')).toBe('unseen\n');
  });
});
