import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createEngine } from '../../index';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { CLI_MODE, runCli, sandboxEntries, stopDaemon } from '../helpers/cli';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, quietLogger, testStateDir } from '../helpers/env';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

const RECEIVER = path.resolve(__dirname, '..', '..', 'native', 'build', 'testbin', 'console-receiver');

/**
 * A console socket the way conmon holds one: native/c/testbin/console-receiver listens,
 * takes the pty master, types `input` and collects what the terminal prints until the
 * last slave closes. Bounded: the receiver gives up after 20 s of silence.
 */
class Receiver {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  readonly done: Promise<{ code: number | null; out: string; err: string }>;
  constructor(readonly socket: string, input: string) {
    this.child = spawn(RECEIVER, [socket, input, '20000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
    this.done = new Promise((resolve) => this.child.on('close', (code) => resolve({ code, out: this.out, err: this.err })));
  }
  /** Resolves once the socket accepts connections. */
  async listening(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!this.err.includes('listening')) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`console-receiver did not start: ${this.err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    fs.rmSync(this.socket, { force: true });
  }
}

const terminalSpec = (rows?: number, cols?: number) => (c: import('../../specs/oci').OciConfig) => {
  c.process!.terminal = true;
  if (rows !== undefined && cols !== undefined) c.process!.consoleSize = { height: rows, width: cols };
};

describeIf(['root', 'busybox'])('terminals through the engine', () => {
  const t = useEngine('tty');
  const receivers: Receiver[] = [];
  afterEach(() => {
    for (const r of receivers.splice(0)) r.kill();
  });
  const receiver = async (input: string) => {
    const r = new Receiver(path.join(t.stateDir, `cs-${receivers.length}.sock`), input);
    receivers.push(r);
    await r.listening();
    return r;
  };

  test('create with a console socket: the master arrives, the shell runs on /dev/pts/N at the spec size and its status is seen', async () => {
    const r = await receiver('echo hi; tty; stty size; exit 3\n');
    const sid = t.id();
    await t.engine.createSandbox(sid, t.bundle({ args: ['sh'], extra: terminalSpec(30, 100) }), { consoleSocket: r.socket });
    // Handed over at create, before start (what conmon waits for): the receiver
    // removes its socket once it holds the master.
    await waitUntil(() => !fs.existsSync(r.socket));
    expect(t.engine.list().find((s) => s.id === sid)?.containers[0]?.status).toBe('created');
    await t.engine.startRoot(sid);
    const status = await t.engine.wait(sid, sid, { timeoutMs: 20_000 });
    expect(status).toMatchObject({ exitCode: 3, signal: null });
    const got = await r.done;
    expect(got.code).toBe(0);
    expect(got.err).toContain('name /dev/ptmx');
    expect(got.out).toMatch(/\r\nhi\r\n/);
    expect(got.out).toMatch(/\/dev\/pts\/\d+\r\n/);
    expect(got.out).toContain('30 100');
  });

  test('exec with a terminal into a running container', async () => {
    const sid = t.id();
    await t.engine.createSandbox(sid, t.bundle({ args: ['sleep', '60'] }));
    await t.engine.startRoot(sid);
    const r = await receiver('tty; exit 4\n');
    const e = await t.engine.execute(sid, sid, { args: ['sh'], terminal: true, consoleSocket: r.socket });
    expect(e.stdout).toBeUndefined();
    expect(await t.engine.waitPid(sid, e.pid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 4 });
    expect((await r.done).out).toMatch(/\/dev\/pts\/\d+\r\n/);
  });

  test('bad input: no console socket for a terminal, one without a terminal, one that does not exist — ECONSOLE, nothing created', async () => {
    const tty = t.bundle({ args: ['sh'], extra: terminalSpec() });
    await expect(t.engine.createSandbox('nosock', tty)).rejects.toMatchObject({ code: 'ECONSOLE' });
    const missing = path.join(t.stateDir, 'missing.sock');
    await expect(t.engine.createSandbox('missing', tty, { consoleSocket: missing })).rejects.toMatchObject({
      code: 'ECONSOLE',
      message: expect.stringContaining('does not exist'),
    });
    const r = await receiver('exit\n');
    await expect(t.engine.createSandbox('notty', t.bundle({ args: ['true'] }), { consoleSocket: r.socket })).rejects.toMatchObject({ code: 'ECONSOLE' });
    expect(t.engine.list()).toEqual([]);
    expect(fs.readdirSync(t.stateDir).filter((f) => !f.endsWith('.sock'))).toEqual([]);
  });

  test('a console socket nobody listens on any more: ECONSOLE naming the step, the half-made sandbox is destroyed', async () => {
    const r = await receiver('exit\n');
    // SIGKILL leaves the socket file behind with no listener: connect is refused.
    r.child.kill('SIGKILL');
    await r.done;
    expect(fs.existsSync(r.socket)).toBe(true);
    const sid = t.id();
    await expect(t.engine.createSandbox(sid, t.bundle({ args: ['sh'], extra: terminalSpec() }), { consoleSocket: r.socket })).rejects.toMatchObject({
      code: 'ECONSOLE',
      context: { step: 'console_socket' },
      message: expect.stringContaining('ECONNREFUSED'),
    });
    expect(t.engine.list()).toEqual([]);
    expect(fs.existsSync(path.join(t.stateDir, sid))).toBe(false);
  });
});

describeIf(['root', 'busybox'])('terminals through the CLI', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  const receivers: Receiver[] = [];
  const cli = (...args: string[]) => runCli(root, args);
  const bundle = (args: string[], terminal: boolean) => {
    const b = makeBundle({ args, ...(terminal ? { extra: terminalSpec() } : {}) });
    bundles.push(b);
    return b.dir;
  };
  const receiver = async (input: string) => {
    const r = new Receiver(path.join(root, '..', `cs-${path.basename(root)}-${receivers.length}.sock`), input);
    receivers.push(r);
    await r.listening();
    return r;
  };

  useSubreaper();
  beforeEach(() => {
    root = testStateDir('cli-tty');
  });
  afterEach(() => {
    for (const r of receivers.splice(0)) r.kill();
    for (const id of sandboxEntries(root)) cli('delete', '--force', id);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test('create --console-socket, start: echo hi; tty; exit 3 on the received master', async () => {
    const r = await receiver('echo hi; tty; exit 3\n');
    expect(cli('create', '--bundle', bundle(['sh'], true), '--console-socket', r.socket, 't1')).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(cli('state', 't1').stdout)).toMatchObject({ status: 'created' });
    expect(cli('start', 't1')).toMatchObject({ code: 0, stderr: '' });
    const got = await r.done;
    expect(got.out).toMatch(/\r\nhi\r\n/);
    expect(got.out).toMatch(/\/dev\/pts\/\d+\r\n/);
    // The status, as a supervisor restarted on this root reads it. Through paddockd
    // (PADDOCK_TEST_CLI=daemon), that supervisor is the one to restart: it owns the root.
    if (CLI_MODE === 'daemon') stopDaemon(root);
    const engine = await createEngine({ stateDir: root, logger: quietLogger() });
    try {
      expect(await engine.wait('t1', 't1', { timeoutMs: 20_000 })).toMatchObject({ exitCode: 3 });
    } finally {
      await engine.close();
    }
  });

  test('run in the foreground relays the terminal itself, as runc does', () => {
    const r = cli('run', '--bundle', bundle(['sh', '-c', 'tty; echo fg; exit 5'], true), 'f1');
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\nfg\r\n$/);
    expect(sandboxEntries(root)).toEqual([]);
  });

  test('exec --detach --tty --console-socket', async () => {
    expect(cli('run', '--detach', '--bundle', bundle(['sleep', '60'], false), 'e1').code).toBe(0);
    const r = await receiver('tty; exit 0\n');
    expect(cli('exec', '--detach', '--tty', '--console-socket', r.socket, 'e1', 'sh')).toMatchObject({ code: 0, stderr: '' });
    expect((await r.done).out).toMatch(/\/dev\/pts\/\d+\r\n/);
    // In the foreground the CLI relays the terminal itself.
    const fg = cli('exec', '--tty', 'e1', 'sh', '-c', 'tty; exit 6');
    expect(fg.code).toBe(6);
    expect(fg.stdout).toMatch(/^\/dev\/pts\/\d+\r\n$/);
  });

  test('bad input: terminal without --console-socket, a socket that does not exist — one error line, nothing left', async () => {
    const b = bundle(['sh'], true);
    const none = cli('create', '--bundle', b, 'bad1');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^paddock: process\.terminal needs a console socket.*\(ECONSOLE\)\n$/);
    const missing = cli('create', '--bundle', b, '--console-socket', path.join(root, 'nope.sock'), 'bad2');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^paddock: console socket .*nope\.sock does not exist \(ECONSOLE\)\n$/);
    const notDetached = cli('exec', '--tty', '--console-socket', path.join(root, 'x.sock'), 'bad2', 'sh');
    expect(notDetached).toMatchObject({ code: 1, stderr: expect.stringMatching(/needs --tty .* and --detach \(ECONSOLE\)/) });
    expect(sandboxEntries(root)).toEqual([]);
  });
});

async function waitUntil(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
