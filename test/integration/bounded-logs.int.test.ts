import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createEngine } from '../../index';
import { useEngine, useSuccessiveEngines } from '../helpers/engine-fixture';
import { describeIf, readAll } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';

/**
 * Decision 0031: container output files are capped by paddock-init (rotation to
 * `<file>.1` with a marker line), also while no supervisor runs, and init holds none of
 * the supervisor's stdio.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const MARKER = /^\[paddock: log reached log-size-max \((\d+) bytes\); the part before this line is in (\S+)\.1\]$/m;
/** The marker line's own bytes on top of the cap. */
const SLACK = 200;
/** ~100-byte numbered lines, `n` of them, then END. */
const LINES = (n: number) => `i=0; while [ $i -lt ${n} ]; do echo "line $i ................................................................................"; i=$((i+1)); done; echo END`;

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeIf(['root', 'busybox'])('bounded container logs (decision 0031)', () => {
  const fx = useEngine('boundlog');

  test('output past the cap: both files stay bounded, the new one starts with the marker, and the stream goes on to the end', async () => {
    const sid = fx.id();
    const cap = 64 * 1024;
    const h = await fx.engine.createSandbox(sid, fx.bundle({ args: ['sh', '-c', LINES(6000)] }), { logSizeMax: cap });
    const out = readAll(h.stdio!.stdout);
    await fx.engine.startRoot(sid);
    expect(await fx.engine.wait(sid, sid, { timeoutMs: 30_000 })).toMatchObject({ exitCode: 0 });
    const text = await out;
    const logs = path.join(fx.stateDir, sid, 'logs');
    const cur = fs.readFileSync(path.join(logs, `${sid}.stdout`), 'utf8');
    const old = fs.statSync(path.join(logs, `${sid}.stdout.1`));
    // ~600 kB written; at most a cap (plus the marker) in each of the two files.
    expect(cur.length).toBeLessThanOrEqual(cap + SLACK);
    expect(old.size).toBeLessThanOrEqual(cap + SLACK);
    expect(old.size).toBeGreaterThan(cap / 2);
    const m = MARKER.exec(cur.split('\n')[0] as string);
    expect(m?.[1]).toBe(String(cap));
    expect(m?.[2]).toBe(`${sid}.stdout`);
    expect(cur.endsWith('line 5999 ................................................................................\nEND\n')).toBe(true);
    // The stream saw the rotations and what came after the last one.
    expect(text.endsWith('END\n')).toBe(true);
    expect(text.split('\n').filter((l) => MARKER.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(text).toContain(cur.slice(0, 4096));
  });

  test('the default cap (4 MiB) on a 20 MB burst: files bounded, the last line arrives', async () => {
    const n = 2_600_000;
    const { sid, stdout, status } = await fx.run(['seq', '1', String(n)]);
    expect(status.exitCode).toBe(0);
    expect(stdout.endsWith(`\n${n}\n`)).toBe(true);
    const logs = path.join(fx.stateDir, sid, 'logs');
    for (const f of [`${sid}.stdout`, `${sid}.stdout.1`]) expect(fs.statSync(path.join(logs, f)).size).toBeLessThanOrEqual((4 << 20) + SLACK);
  });

  test('logSizeMax 0: no cap, the process writes its file itself; with a cap it writes to init\'s pipe', async () => {
    const fd1 = async (logSizeMax: number) => {
      const sid = fx.id();
      const h = await fx.engine.createSandbox(sid, fx.bundle({ args: ['readlink', '/proc/self/fd/1'] }), { logSizeMax });
      await fx.engine.startRoot(sid);
      await fx.engine.wait(sid, sid, { timeoutMs: 20_000 });
      return (await readAll(h.stdio!.stdout)).trim();
    };
    expect(await fd1(0)).toMatch(/\.stdout$/);
    expect(await fd1(4096)).toMatch(/^pipe:\[\d+\]$/);
  });

  test.each([[-1], [100], [1.5], ['4M'], [Number.MAX_VALUE]])('logSizeMax %p is refused and nothing is made', async (bad) => {
    const sid = fx.id();
    await expect(fx.engine.createSandbox(sid, fx.bundle({ args: ['true'] }), { logSizeMax: bad as number })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT' });
    expect(fs.existsSync(path.join(fx.stateDir, sid))).toBe(false);
  });

  test.each([[{ logSizeMax: 5 }], [{ logSizeMax: '4M' }], [{ initStderr: 'stderr' }]])('createEngine(%p) is refused before it makes anything', async (bad) => {
    const stateDir = path.join(fx.stateDir, 'never');
    await expect(createEngine({ stateDir, ...(bad as object) })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT' });
    expect(fs.existsSync(stateDir)).toBe(false);
  });

  test('an exec\'d process\'s output is capped too', async () => {
    const sid = fx.id();
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'] }), { logSizeMax: 8192 });
    await fx.engine.startRoot(sid);
    const ex = await fx.engine.execute(sid, sid, { args: ['sh', '-c', `{ ${LINES(500)}; } >&2`] });
    const err = readAll(ex.stderr!);
    expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect((await err).endsWith('END\n')).toBe(true);
    const logs = path.join(fx.stateDir, sid, 'logs');
    const files = fs.readdirSync(logs).filter((f) => f.includes('exec') && f.includes('stderr'));
    expect(files.sort()).toHaveLength(2);
    for (const f of files) expect(fs.statSync(path.join(logs, f)).size).toBeLessThanOrEqual(8192 + SLACK);
  });
});

describeIf(['root', 'busybox'])('bounded logs and a detached init, without a supervisor (decision 0031)', () => {
  const t = useSuccessiveEngines('boundlog-nosup');
  useSubreaper();

  test('a container printing forever stays within the cap while no supervisor runs', async () => {
    const cap = 16 * 1024;
    const e1 = await t.open({ logSizeMax: cap });
    await e1.createSandbox('forever', t.bundle(['sh', '-c', 'while :; do echo "and on ................................................................"; done']));
    await e1.startRoot('forever');
    const writer = e1.list().find((x) => x.id === 'forever')?.containers[0]?.hostPid as number;
    const written = () => Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${writer}/io`, 'utf8'))?.[1]);
    await e1.shutdown({ mode: 'detach' });
    const start = written();

    const file = path.join(t.stateDir, 'forever', 'logs', 'forever.stdout');
    // With no supervisor (this process closed its engine), the container writes on:
    // 40 caps' worth, and every sample of both files stays within the cap.
    await until('40 caps of output', () => {
      for (const f of [file, `${file}.1`]) {
        try {
          expect(fs.statSync(f).size).toBeLessThanOrEqual(cap + SLACK);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      return written() - start > 40 * cap;
    });
    expect(fs.statSync(`${file}.1`).size).toBeGreaterThan(cap / 2);
    // A later supervisor follows the file as it keeps rotating.
    const e2 = await t.open();
    const follow = e2.logs('forever', 'forever', { follow: true });
    let got = '';
    follow.on('data', (c: Buffer) => (got += c.toString()));
    await until('a rotation seen through engine.logs', () => (got.match(new RegExp(MARKER.source, 'gm'))?.length ?? 0) >= 2);
    follow.destroy();
  });

  test('a supervisor that leaves its sandbox running exits, and its stdout and stderr reach EOF while the sandbox lives', async () => {
    const run = (id: string, initStderr?: string) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'test', 'helpers', 'leave-sandbox.js'), path.join(ROOT, 'dist'), t.stateDir, t.bundle(['sleep', '600']), id, ...(initStderr ? [initStderr] : [])], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      // 'close': the process exited and both pipes reached EOF.
      const closed = new Promise<void>((r) => child.on('close', () => r()));
      return { exited, closed, out: () => out, err: () => err };
    };

    const c = run('left');
    expect(await c.exited).toBe(0);
    await c.closed;
    const initPid = Number(c.out().trim());
    expect(c.err()).toBe('leaving it running\n');
    // EOF came while the sandbox still runs, and init holds nothing of ours.
    expect(() => process.kill(initPid, 0)).not.toThrow();
    for (const fd of [0, 1, 2]) expect(fs.readlinkSync(`/proc/${initPid}/fd/${fd}`)).toBe('/dev/null');
    expect(fs.existsSync(path.join(t.stateDir, 'left', 'init.log'))).toBe(true);

    // The deprecated initStderr 'inherit' still hands over the caller's stderr (so its
    // pipe would stay open): the check above can fail.
    const d = run('inherited', 'inherit');
    expect(await d.exited).toBe(0);
    const pid = Number(d.out().trim());
    expect(fs.readlinkSync(`/proc/${pid}/fd/2`)).toMatch(/^(pipe|socket):\[\d+\]$/);
    // Ends it, so its pipe closes (afterEach stops 'left').
    const e = await t.open();
    await e.destroy('inherited');
    await d.closed;
  });
});
