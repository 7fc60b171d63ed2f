/**
 * PidfdWatcher over FakeNative: each watcher reads its own exit channel (a real pipe
 * in the fake), so several watchers in one process never see each other's exits.
 */
import * as fs from 'fs';
import { PidfdWatcher } from '../../../actors/channels/pidfd-watcher';
import { WatchedExit } from '../../../native/facade';
import { FakeNative } from '../../../native/fake';

const req = { initPath: '/init', sandboxDir: '/sb', cloneFlags: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

let f: FakeNative;
beforeEach(() => {
  f = new FakeNative();
});
afterEach(() => f.dispose());

test('two watchers on one native each get only their own exits', async () => {
  const w1 = new PidfdWatcher(f);
  const w2 = new PidfdWatcher(f);
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  const got1: WatchedExit[] = [];
  const got2: WatchedExit[] = [];
  const t1 = w1.watch(a.pidfd, (e) => got1.push(e));
  const t2 = w2.watch(b.pidfd, (e) => got2.push(e));
  const t3 = w2.watch(a.pidfd, (e) => got2.push(e));
  expect(new Set([t1, t2, t3]).size).toBe(3);
  const channels = f.calls.filter((c) => c.fn === 'openWatchChannel');
  expect(channels).toHaveLength(2); // one each, opened lazily, once
  expect(f.openChannels()).toHaveLength(2);

  f.exit(a.pid, { exitCode: 3 });
  f.exit(b.pid, { signal: 9 });
  await until(() => got1.length === 1 && got2.length === 2);
  await sleep(20);
  expect(got1).toEqual([{ token: t1, reaped: true, exitCode: 3, signal: 0 }]);
  expect(got2).toEqual([
    { token: t3, reaped: true, exitCode: 3, signal: 0 },
    { token: t2, reaped: true, exitCode: -1, signal: 9 },
  ]);
  w1.close();
  w2.close();
});

test('onExit runs once; unwatch suppresses; unknown tokens are dropped', async () => {
  const w = new PidfdWatcher(f);
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  const got: WatchedExit[] = [];
  const ta = w.watch(a.pidfd, (e) => got.push(e));
  const tb = w.watch(b.pidfd, (e) => got.push(e));
  w.unwatch(tb);
  w.unwatch(tb); // idempotent
  expect(f.watchedTokens()).toEqual([ta]);
  f.exit(b.pid);
  f.exit(a.pid, { exitCode: 5 });
  await until(() => got.length === 1);
  await sleep(20);
  expect(got).toEqual([{ token: ta, reaped: true, exitCode: 5, signal: 0 }]);
  w.close();
});

test('a record already on the pipe for a token unwatched since is dropped', async () => {
  const w = new PidfdWatcher(f);
  const a = f.launchInit(req);
  const b = f.launchInit(req);
  const got: WatchedExit[] = [];
  const ta = w.watch(a.pidfd, (e) => got.push({ ...e, token: -1 }));
  const tb = w.watch(b.pidfd, (e) => got.push(e));
  f.exit(a.pid, { exitCode: 1 }); // the record is written to the channel now...
  w.unwatch(ta); // ...and unwatched before the watcher has read it
  f.exit(b.pid, { exitCode: 2 });
  await until(() => got.length === 1);
  await sleep(20);
  expect(got).toEqual([{ token: tb, reaped: true, exitCode: 2, signal: 0 }]);
  w.close();
});

test('close releases the channel and its watches; no callback afterwards', async () => {
  const w = new PidfdWatcher(f);
  const other = new PidfdWatcher(f);
  const a = f.launchInit(req);
  const got: WatchedExit[] = [];
  const otherGot: WatchedExit[] = [];
  w.watch(a.pidfd, (e) => got.push(e));
  const kept = other.watch(a.pidfd, (e) => otherGot.push(e));
  const [channel] = f.openChannels();
  w.close();
  expect(f.calls.filter((c) => c.fn === 'closeWatchChannel')).toEqual([
    { fn: 'closeWatchChannel', args: [channel] },
  ]);
  expect(f.openChannels()).toHaveLength(1); // only the other watcher's
  expect(f.watchedTokens()).toEqual([kept]);
  w.close(); // idempotent: nothing left to close
  expect(f.calls.filter((c) => c.fn === 'closeWatchChannel')).toHaveLength(1);

  f.exit(a.pid, { exitCode: 1 });
  await until(() => otherGot.length === 1);
  await sleep(20);
  expect(got).toEqual([]);

  // The read end was closed by the watcher's socket.
  await sleep(10);
  expect(() => fs.fstatSync(channel!)).toThrow(/EBADF/);

  // Usable again: a new watch opens a new channel.
  const b = f.launchInit(req);
  const tb = w.watch(b.pidfd, (e) => got.push(e));
  expect(f.openChannels()).toHaveLength(2);
  f.exit(b.pid, { exitCode: 4 });
  await until(() => got.length === 1);
  expect(got).toEqual([{ token: tb, reaped: true, exitCode: 4, signal: 0 }]);
  w.close();
  other.close();
  expect(f.openChannels()).toEqual([]);
});

test('a failed native watch registers nothing', () => {
  const w = new PidfdWatcher(f);
  const a = f.launchInit(req);
  f.failNext('watch', 'epoll_ctl', 12);
  expect(() => w.watch(a.pidfd, () => undefined)).toThrow(/epoll_ctl: ENOMEM/);
  expect(f.watchedTokens()).toEqual([]);
  w.close();
  expect(f.openChannels()).toEqual([]);
});

test('close before any watch touches nothing native', () => {
  const w = new PidfdWatcher(f);
  w.close();
  expect(f.calls).toEqual([]);
});
