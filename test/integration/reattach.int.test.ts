import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useSuccessiveEngines } from '../helpers/engine-fixture';
import { describeIf, poll, readAll } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';
import { initSandboxDir, paddockInitPids } from '../helpers/leaks';
import { buildStaticFixture } from '../helpers/syscall-probe';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Exit statuses are never lost: the supervisor goes away (closes, or is SIGKILLed in
 * a child process) while containers run; they exit meanwhile; a new engine on the
 * same state dir reads every status and the output written in between.
 */
describeIf(['root', 'busybox'])('reattach after the supervisor goes away', () => {
  const t = useSuccessiveEngines('reattach');
  useSubreaper();

  test('engine closed (detached) while containers run; a new engine reads every status and log', async () => {
    const a = await t.open();
    await a.createSandbox('r1', t.bundle(['sleep', '60']));
    await a.startRoot('r1');
    const b = await a.startContainer('r1', 'b', t.bundle(['sh', '-c', 'sleep 0.3; echo b-out; exit 3']));
    const ex = await a.execute('r1', 'r1', { args: ['sh', '-c', 'sleep 0.3; echo ex-out; exit 4'] });
    await a.close();
    // Both exit while no supervisor listens.
    await poll(() => (!fs.existsSync(`/proc/${b.hostPid}`) && !fs.existsSync(`/proc/${ex.hostPid}`) ? true : undefined), 10_000, 'exits');

    const n = await t.open();
    expect(n.isRunning('r1')).toBe(true);
    expect(await n.wait('r1', 'b', { timeoutMs: 5_000 })).toMatchObject({ exitCode: 3, signal: null });
    expect(await n.waitPid('r1', ex.pid, { timeoutMs: 5_000 })).toMatchObject({ exitCode: 4, signal: null });
    expect(await readAll(n.logs('r1', 'b'))).toBe('b-out\n');
    // The reattached sandbox is fully usable.
    await n.signal('r1', 'r1', 'SIGKILL');
    expect(await n.wait('r1', 'r1', { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });

  test('attachChannels false: a reader sees statuses and exits without connecting to init, and cannot command it', async () => {
    const a = await t.open();
    await a.createSandbox('ro', t.bundle(['sleep', '60']));
    await a.startRoot('ro');
    const b = await a.startContainer('ro', 'b', t.bundle(['sh', '-c', 'exit 6']));
    await a.wait('ro', b.containerId, { timeoutMs: 10_000 });
    await a.close();

    const r = await t.open({ attachChannels: false, reattach: false });
    await r.attach('ro');
    const s = r.list().find((x) => x.id === 'ro');
    expect(s?.status).toBe('running');
    expect(s?.containers.find((c) => c.id === 'b')).toMatchObject({ status: 'stopped', exit: { exitCode: 6 } });
    // No channel: a command for init is refused, and nothing was connected to it.
    await expect(r.processes('ro', 'ro')).rejects.toMatchObject({ code: 'ECONTROL', message: expect.stringContaining('read-only') });
    await r.close();

    // A full engine afterwards finds the sandbox as it was, and can command it.
    const n = await t.open();
    expect((await n.processes('ro', 'ro')).map((p) => p.kind)).toEqual(['container']);
    await n.signal('ro', 'ro', 'SIGKILL');
    expect(await n.wait('ro', 'ro', { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
  });

  test('each exit is reported once across supervisors: what the first reported is not repeated, what happened between is', async () => {
    const a = await t.open();
    await a.createSandbox('once', t.bundle(['sleep', '60']));
    await a.startRoot('once');
    const seenA: string[] = [];
    a.events$.subscribe((e) => {
      if (e.type === 'exit') seenA.push(`${e.containerId}:${e.kind}:${e.exit.exitCode}`);
    });
    const early = await a.execute('once', 'once', { args: ['sh', '-c', 'exit 5'] });
    expect(await a.waitPid('once', early.pid, { timeoutMs: 5_000 })).toMatchObject({ exitCode: 5 });
    const late = await a.execute('once', 'once', { args: ['sh', '-c', 'sleep 0.3; exit 6'] });
    await a.close();
    await poll(() => (!fs.existsSync(`/proc/${late.hostPid}`) ? true : undefined), 10_000, 'late exit');

    // The second supervisor subscribes before it reattaches, through a fresh engine's events$.
    const seenB: string[] = [];
    const n = await t.open({ reattach: false });
    n.events$.subscribe((e) => {
      if (e.type === 'exit') seenB.push(`${e.containerId}:${e.kind}:${e.exit.exitCode}`);
    });
    await n.attach('once');
    expect(seenA).toEqual(['once:exec:5']);
    expect(seenB).toEqual(['once:exec:6']);
    // The exec reported by the first supervisor is still known (waitPid answers from the machine).
    expect(await n.waitPid('once', early.pid, { timeoutMs: 5_000 })).toMatchObject({ exitCode: 5 });
    await n.signal('once', 'once', 'SIGKILL');
    expect(await n.wait('once', 'once', { timeoutMs: 10_000 })).toMatchObject({ signal: 9 });
    expect(seenB).toEqual(['once:exec:6', 'once:container:null']);
  });

  test('init dying while a new supervisor connects to it does not make that supervisor report the earlier exits again', async () => {
    const a = await t.open();
    await a.createSandbox('conn', t.bundle(['sleep', '60']));
    await a.startRoot('conn');
    const initPid = a.list().find((s) => s.id === 'conn')?.pid as number;
    const early = await a.execute('conn', 'conn', { args: ['sh', '-c', 'exit 5'] });
    expect(await a.waitPid('conn', early.pid, { timeoutMs: 5_000 })).toMatchObject({ exitCode: 5 });
    await a.close();
    // A stopped init looks alive but never answers, so the next supervisor's connect
    // waits; init's end (its pidfd) arrives during that wait.
    process.kill(initPid, 'SIGSTOP');
    const seenB: string[] = [];
    // The request timeout only bounds the wait on the stopped init (the kill ends it); it
    // is wide so a loaded machine still kills init inside that wait.
    const n = await t.open({ reattach: false, requestTimeoutMs: 5_000 });
    n.events$.subscribe((e) => {
      if (e.type === 'exit') seenB.push(`${e.containerId}:${e.kind}:${e.exit.exitCode}${e.lost ? ':lost' : ''}`);
    });
    const lock = path.join(t.stateDir, 'conn', 'lock');
    expect(fs.existsSync(lock)).toBe(false);
    const attached = n.attach('conn');
    // The attach has begun (reattach takes the sandbox's lock first, then watches init
    // and connects): kill init now, not after a guessed delay.
    await poll(() => (fs.existsSync(lock) ? true : undefined), 10_000, 'attach to take the lock');
    process.kill(initPid, 'SIGKILL');
    await attached;
    await poll(() => (n.list().find((s) => s.id === 'conn')?.status === 'stopped' ? true : undefined), 10_000, 'sandbox stopped');
    // The exec's exit went out from the first supervisor; only the root, lost with init, is new.
    expect(seenB).toEqual(['conn:container:null:lost']);
  });

  test('output keeps flowing into the log while no supervisor runs, and a new engine replays all of it', async () => {
    const a = await t.open();
    const h = await a.createSandbox('stream', t.bundle(['sh', '-c', 'seq 1 100000; echo half >&2; sleep 0.5; seq 100001 200000']));
    await a.startRoot('stream');
    // Read the first half through the live stream, then drop the supervisor mid-run.
    const firstHalf = await poll(() => {
      const text = fs.readFileSync(path.join(t.stateDir, 'stream', 'logs', 'stream.stderr'), 'utf8');
      return text.includes('half') ? true : undefined;
    }, 10_000, 'first half');
    expect(firstHalf).toBe(true);
    h.stdio!.stdout.destroy();
    await a.close();

    const n = await t.open();
    expect(await n.wait('stream', 'stream', { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const all = await readAll(n.logs('stream', 'stream', { follow: true }));
    const lines = all.trimEnd().split('\n');
    expect(lines).toHaveLength(200_000);
    expect(lines[0]).toBe('1');
    expect(lines[99_999]).toBe('100000');
    expect(lines[199_999]).toBe('200000');
  });

  test('supervisor process SIGKILLed mid-run; the sandbox finishes alone; a new engine gets the status', async () => {
    const dir = t.bundle(['sh', '-c', 'echo before; sleep 1; echo after; exit 9']);
    const script = `
      const { createEngine } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      const pino = require('pino');
      (async () => {
        const e = await createEngine({ stateDir: ${JSON.stringify(t.stateDir)}, logger: pino({ level: 'silent' }) });
        await e.createSandbox('victim', ${JSON.stringify(dir)});
        const c = await e.startRoot('victim');
        process.stdout.write('started ' + c.hostPid + '\\n');
        setInterval(() => {}, 1000);
      })().catch((err) => { process.stdout.write('error ' + err.message + '\\n'); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error(`supervisor child did not start: ${buf}`)), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) {
          clearTimeout(t);
          resolve(buf.trim());
        }
      });
    });
    expect(line).toMatch(/^started \d+$/);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const containerHostPid = Number(line.split(' ')[1]);
    await poll(() => (!fs.existsSync(`/proc/${containerHostPid}/cmdline`) || fs.readFileSync(`/proc/${containerHostPid}/cmdline`).length === 0 ? true : undefined), 10_000, 'container exit');

    const n = await t.open();
    expect(await n.wait('victim', 'victim', { timeoutMs: 10_000 })).toMatchObject({ exitCode: 9, signal: null });
    expect(await readAll(n.logs('victim', 'victim'))).toBe('before\nafter\n');
    expect(n.list().find((s) => s.id === 'victim')?.status).toBe('stopped');
  }, 60_000);
  test('a supervisor killed between the launch and recording the init pid takes that init with it; nothing runs twice', async () => {
    const dir = t.bundle(['sleep', '60']);
    // The supervisor dies just before it writes init.pid (the launch has returned).
    const script = `
      const fs = require('node:fs');
      const write = fs.writeFileSync;
      fs.writeFileSync = function (p, ...rest) {
        if (String(p).endsWith('/init.pid')) process.kill(process.pid, 'SIGKILL');
        return write.call(this, p, ...rest);
      };
      const { createEngine } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      const pino = require('pino');
      createEngine({ stateDir: ${JSON.stringify(t.stateDir)}, logger: pino({ level: 'silent' }) })
        .then((e) => e.createSandbox('orphan', ${JSON.stringify(dir)}));
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    const signal = await new Promise((r) => child.once('exit', (_code, sig) => r(sig)));
    expect(signal).toBe('SIGKILL');
    const sandboxDir = path.join(t.stateDir, 'orphan');
    // Its init (PR_SET_PDEATHSIG until adopted) died with it.
    await poll(() => (paddockInitPids().some((p) => initSandboxDir(p) === sandboxDir) ? undefined : true), 5_000, 'the orphan init to die');
    // The next supervisor removes the half-made sandbox and can create the id again.
    const n = await t.open();
    expect(n.list()).toEqual([]);
    expect(fs.existsSync(sandboxDir)).toBe(false);
    await n.createSandbox('orphan', dir);
    await n.destroy('orphan');
  });

  test('a create cut short after another process launched init and before the pid file: the next engine kills the init that serves the folder', async () => {
    // paddockd's client launches init and outlives paddockd: init, past its 500 ms of
    // PR_SET_PDEATHSIG, stays, named only by its command line (paddock-init FOLDER).
    const bin = buildStaticFixture(path.join(__dirname, '..', 'fixtures', 'named-init.c'));
    const dir = path.join(t.stateDir, 'cut');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The lock of a supervisor that is gone (pid 999999 with another start time).
    fs.writeFileSync(path.join(dir, 'lock'), '999999 1\n');
    const init = spawn(bin, [dir], { stdio: 'ignore' });
    const exited = new Promise((r) => init.once('exit', (_code, sig) => r(sig)));
    try {
      await poll(() => (paddockInitPids().includes(init.pid ?? -1) ? true : undefined), 5_000, 'the stand-in init to be named');
      const n = await t.open();
      expect(n.list()).toEqual([]);
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))])).toBe('SIGKILL');
      expect(fs.existsSync(dir)).toBe(false);
    } finally {
      // Killed and waited for here: the subreaper's reaping after the block would take
      // its status from Node, whose handle (and jest) would then wait for good.
      if (init.exitCode === null && init.signalCode === null) {
        init.kill('SIGKILL');
        await exited;
      }
    }
  });
});
