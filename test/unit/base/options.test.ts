/**
 * Options are checked by name (base/options.ts): a misspelt key at any public entry
 * is an EINVALID_ARGUMENT naming it, before anything is done. The engine runs on the
 * fake native facade: nothing here needs root or a sandbox.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { createEngine, type Engine } from '../../../index';
import { checkOptionKeys, knownKeys } from '../../../base/options';
import { FakeNative } from '../../../native/fake';

describe('checkOptionKeys', () => {
  const KEYS = ['network', 'userns', 'stdio'];
  test('known keys and no options pass', () => {
    expect(() => checkOptionKeys({ network: 1, userns: 'auto' }, KEYS, 'opts')).not.toThrow();
    expect(() => checkOptionKeys(undefined, KEYS, 'opts')).not.toThrow();
    expect(() => checkOptionKeys({}, KEYS, 'opts')).not.toThrow();
  });
  test('an unknown key is named, with the closest known one', () => {
    expect(() => checkOptionKeys({ netwrok: 1 }, KEYS, 'opts')).toThrow(expect.objectContaining({
      code: 'EINVALID_ARGUMENT',
      message: 'opts: unknown option "netwrok" (did you mean "network"?)',
      context: { field: 'opts.netwrok' },
    }));
    expect(() => checkOptionKeys({ usrens: 1 }, KEYS, 'opts')).toThrow('opts: unknown option "usrens" (did you mean "userns"?)');
    expect(() => checkOptionKeys({ colour: 1 }, KEYS, 'opts')).toThrow('opts: unknown option "colour"');
    expect(() => checkOptionKeys({ colour: 1 }, KEYS, 'opts')).not.toThrow(/did you mean/);
  });
  test('a key set to undefined is still a key the caller wrote', () => {
    expect(() => checkOptionKeys({ usrens: undefined }, KEYS, 'opts')).toThrow(/unknown option "usrens"/);
  });
  test('options that are not an object are refused', () => {
    expect(() => checkOptionKeys('auto', KEYS, 'opts')).toThrow('opts: must be an object, not string');
    expect(() => checkOptionKeys([1], KEYS, 'opts')).toThrow('opts: must be an object, not an array');
  });
  test('knownKeys lists the keys it is given (the compiler checks them against the type)', () => {
    expect(knownKeys<{ a?: number; b: string }>()({ a: 1, b: 1 })).toEqual(['a', 'b']);
  });
});

describe('every public entry refuses a misspelt option and does nothing', () => {
  let dir: string;
  let engine: Engine;
  let native: FakeNative;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-opts-'));
    native = new FakeNative();
    engine = await createEngine({ stateDir: path.join(dir, 'state'), native, logger: pino({ level: 'silent' }), reattach: false });
  });
  afterEach(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const bad = (field: string, key: string) => expect.objectContaining({ code: 'EINVALID_ARGUMENT', message: expect.stringContaining(`${field}: unknown option ${JSON.stringify(key)}`) });

  test('createEngine', async () => {
    await expect(createEngine({ stateDir: path.join(dir, 'other'), reattch: false } as never)).rejects.toEqual(bad('createEngine options', 'reattch'));
    expect(fs.existsSync(path.join(dir, 'other'))).toBe(false);
  });
  test('createSandbox (and its health, restart and restart.backoff), before the bundle is even looked at', async () => {
    await expect(engine.createSandbox('a', '/no/such/bundle', { usrens: 'auto' } as never)).rejects.toEqual(bad('createSandbox options', 'usrens'));
    await expect(engine.createSandbox('a', '/no/such/bundle', { health: { intervalMS: 5 } } as never)).rejects.toEqual(bad('createSandbox options.health', 'intervalMS'));
    await expect(engine.createSandbox('a', '/no/such/bundle', { restart: { polcy: 'always' } } as never)).rejects.toEqual(bad('restart', 'polcy'));
    await expect(engine.createSandbox('a', '/no/such/bundle', { restart: { backoff: { intialMs: 1 } } } as never)).rejects.toEqual(bad('restart.backoff', 'intialMs'));
    expect(native.calls.filter((c) => c.fn === 'launchInit')).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'state'))).toEqual([]);
  });
  test('a template with a misspelt key', async () => {
    await expect(engine.createSandbox('a', { rootfs: '/r', args: ['true'], netwrok: 'none' } as never)).rejects.toEqual(bad('template', 'netwrok'));
    await expect(engine.createSandbox('a', { rootfs: '/r', args: ['true'], limits: { memory: 1 } } as never)).rejects.toEqual(bad('template.limits', 'memory'));
  });
  test('addContainer, startContainer, exec (and its user and capabilities)', async () => {
    await expect(engine.addContainer('a', 'b', '/x', { stdoi: 'pipe' } as never)).rejects.toEqual(bad('addContainer options', 'stdoi'));
    await expect(engine.startContainer('a', 'b', '/x', { prepair: true } as never)).rejects.toEqual(bad('startContainer options', 'prepair'));
    await expect(engine.execute('a', 'a', { args: ['ls'], cwdir: '/' } as never)).rejects.toEqual(bad('exec options', 'cwdir'));
    await expect(engine.execute('a', 'a', { args: ['ls'], user: { uid: 0, gid: 0, groups: [] } } as never)).rejects.toEqual(bad('exec options.user', 'groups'));
    await expect(engine.execute('a', 'a', { args: ['ls'], capabilities: { effectve: [] } } as never)).rejects.toEqual(bad('exec options.capabilities', 'effectve'));
  });
  test('wait, waitPid, signal, logs, shutdown', async () => {
    await expect(engine.wait('a', 'a', { timeout: 1 } as never)).rejects.toEqual(bad('wait options', 'timeout'));
    await expect(engine.waitPid('a', 2, { timeout: 1 } as never)).rejects.toEqual(bad('waitPid options', 'timeout'));
    await expect(engine.signal('a', 'a', 'TERM', { al: true } as never)).rejects.toEqual(bad('signal options', 'al'));
    expect(() => engine.logs('a', 'a', { folow: true } as never)).toThrow(bad('logs options', 'folow'));
    await expect(engine.shutdown({ grace: 1 } as never)).rejects.toEqual(bad('shutdown options', 'grace'));
  });
  test('supervise: a group and a leaf (and its restart)', () => {
    const leaf = { id: 's1', bundle: '/x' };
    expect(() => engine.supervise({ name: 'g', strategy: 'one_for_one', children: [leaf], maxRestart: 1 } as never)).toThrow(bad('supervisor', 'maxRestart'));
    expect(() => engine.supervise({ name: 'g', strategy: 'one_for_one', children: [{ ...leaf, bundel: '/y' }] } as never)).toThrow(bad('supervisor.children[0]', 'bundel'));
    expect(() => engine.supervise({ name: 'g', strategy: 'one_for_one', children: [{ ...leaf, restart: { polcy: 'always' } }] } as never)).toThrow(bad('supervisor.children[0].restart', 'polcy'));
  });
  test('pool (and its backoff), acquire', async () => {
    await expect(engine.pool('p', { bundle: '/x', size: 1, maxAge: 5 } as never)).rejects.toEqual(bad('pool p options', 'maxAge'));
    await expect(engine.pool('p', { bundle: '/x', size: 1, backoff: { max: 5 } } as never)).rejects.toEqual(bad('pool p options.backoff', 'max'));
  });
});
