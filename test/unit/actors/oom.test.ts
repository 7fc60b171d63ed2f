import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { watchOom } from '../../../actors/observe/oom';
import { PidfdWatcher } from '../../../actors/channels/pidfd-watcher';
import { FakeNative } from '../../../native/fake';

/**
 * The v2 path of OOM events (not this host's): memory.events in a temp folder, changed
 * as the kernel changes it. fs.watch (inotify) wakes the watch; only a rise of oom_kill
 * is an event. (The v1 eventfd path runs for real in test/integration/oom.int.test.ts.)
 */
describe('watchOom on cgroup v2', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-oom-'));
    fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const until = async (pred: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  test('an oom_kill rise is one event with the new total; other counters changing are none', async () => {
    const native = new FakeNative();
    const seen: number[] = [];
    const w = watchOom(dir, true, { native, watcher: new PidfdWatcher(native) }, (n) => seen.push(n));
    try {
      fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 3\nmax 2\noom 0\noom_kill 0\n');
      fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 3\nmax 5\noom 1\noom_kill 1\n');
      await until(() => seen.length >= 1);
      fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 3\nmax 9\noom 3\noom_kill 3\n');
      await until(() => seen.length >= 2);
      expect(seen).toEqual([1, 3]);
      // No eventfd on v2.
      expect(native.calls.filter((c) => c.fn === 'oomEventfd')).toEqual([]);
    } finally {
      w.stop();
    }
  });
});
