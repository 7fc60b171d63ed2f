import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasHooks, runHook, runHooks, runHooksWarn, type HookState } from '../../../actors/containers/oci-hooks';
import { PaddockError } from '../../../base/errors';

const state: HookState = { ociVersion: '1.0.2', id: 'sb', status: 'creating', pid: 1234, bundle: '/', annotations: { a: 'b' } };
const ctx = { sandboxId: 'sb' };

describe('actors/containers/oci-hooks', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-hooks-unit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const script = (name: string, body: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  };

  it('hands the state JSON on stdin, argv (args[0] included) and exactly the given env', async () => {
    const out = path.join(dir, 'out');
    const hook = script('h', `cat > ${out}.stdin; echo "$0|$1|$2|\${FOO-unset}|\${HOME-unset}" > ${out}`);
    await runHook('prestart', 0, { path: hook, args: ['my-hook', 'x', 'y'], env: ['FOO=bar'] }, state, ctx);
    expect(JSON.parse(fs.readFileSync(`${out}.stdin`, 'utf8'))).toEqual(state);
    // sh reports the script path as $0; the args after args[0] are $1, $2.
    expect(fs.readFileSync(out, 'utf8').trim()).toBe(`${hook}|x|y|bar|unset`);
  });

  it('a hook that does not read stdin is fine', async () => {
    await expect(runHook('poststop', 0, { path: '/bin/true' }, state, ctx)).resolves.toBeUndefined();
  });

  it('a non-zero exit is EHOOK_FAILED naming the hook, with its output', async () => {
    const hook = script('bad', 'echo "no network for you" >&2; exit 3');
    const e = (await runHook('createRuntime', 2, { path: hook }, state, ctx).catch((x) => x)) as PaddockError;
    expect(e).toBeInstanceOf(PaddockError);
    expect(e.code).toBe('EHOOK_FAILED');
    expect(e.context).toMatchObject({ sandboxId: 'sb', step: 'hook createRuntime[2]', path: hook });
    expect(e.message).toMatch(/^hook createRuntime\[2\] \(.*\) exited with status 3: no network for you$/);
  });

  it('a missing binary is EHOOK_FAILED', async () => {
    const e = (await runHook('prestart', 0, { path: path.join(dir, 'nope') }, state, ctx).catch((x) => x)) as PaddockError;
    expect(e.code).toBe('EHOOK_FAILED');
    expect(e.message).toMatch(/could not be started: ENOENT/);
  });

  it('a hook exceeding its timeout is killed, with what it started', async () => {
    const pidFile = path.join(dir, 'child.pid');
    const hook = script('slow', `sleep 30 & echo $! > ${pidFile}; wait`);
    const e = (await runHook('prestart', 0, { path: hook, timeout: 1 }, state, ctx).catch((x) => x)) as PaddockError;
    expect(e.code).toBe('EHOOK_FAILED');
    expect(e.message).toMatch(/timed out after 1s/);
    const child = Number(fs.readFileSync(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    expect(fs.existsSync(`/proc/${child}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${child}/status`, 'utf8'))).toBe(false);
  });

  it('a hook that leaves a daemon holding its stdout still returns', async () => {
    const pidFile = path.join(dir, 'daemon.pid');
    const hook = script('daemon', `sleep 5 & echo $! > ${pidFile}; exit 0`);
    await runHook('poststart', 0, { path: hook }, state, ctx);
    // It returned while the daemon (holding the hook's stdout) still runs.
    const daemon = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(fs.existsSync(`/proc/${daemon}`)).toBe(true);
    process.kill(daemon, 'SIGKILL');
  });

  it('runHooks stops at the first failure; runHooksWarn runs them all', async () => {
    const log = path.join(dir, 'log');
    const ok = script('ok', `echo ok >> ${log}`);
    const bad = script('bad2', `echo bad >> ${log}; exit 1`);
    const hooks = { poststop: [{ path: bad }, { path: ok }] };
    await expect(runHooks('poststop', hooks, state, ctx)).rejects.toMatchObject({ code: 'EHOOK_FAILED', context: { step: 'hook poststop[0]' } });
    expect(fs.readFileSync(log, 'utf8')).toBe('bad\n');
    fs.rmSync(log);
    const warnings: PaddockError[] = [];
    await runHooksWarn('poststop', hooks, state, ctx, (e) => warnings.push(e));
    expect(fs.readFileSync(log, 'utf8')).toBe('bad\nok\n');
    expect(warnings.map((w) => w.context.step)).toEqual(['hook poststop[0]']);
  });

  it('hasHooks', () => {
    expect(hasHooks(undefined)).toBe(false);
    expect(hasHooks({ prestart: [], poststop: [] })).toBe(false);
    expect(hasHooks({ poststop: [{ path: '/bin/true' }] })).toBe(true);
  });
});
