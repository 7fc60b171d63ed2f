import * as fs from 'fs';
import * as path from 'path';
import { loadBundle } from '../../../specs/load';
import { locateJsonError } from '../../../specs/json-position';
import { caughtAsync, spec, tempDirs, writeBundle } from './helpers';

const tmp = tempDirs();
afterEach(() => tmp.cleanup());

describe('loadBundle', () => {
  it('loads a valid bundle, resolving the rootfs against the bundle', async () => {
    const dir = writeBundle(tmp.make(), spec());
    const b = await loadBundle(dir);
    expect(b.dir).toBe(fs.realpathSync(dir));
    expect(b.rootfs).toBe(path.join(fs.realpathSync(dir), 'rootfs'));
    expect(b.config.process?.args).toEqual(['sh']);
  });

  it('accepts a relative bundle path and an absolute root.path', async () => {
    const dir = tmp.make();
    const rootfs = tmp.make();
    writeBundle(dir, spec((c) => { c.root.path = rootfs; }), false);
    const b = await loadBundle(path.relative(process.cwd(), dir));
    expect(b.dir).toBe(fs.realpathSync(dir));
    expect(b.rootfs).toBe(fs.realpathSync(rootfs));
  });

  it('returns a deep-frozen bundle', async () => {
    const b = await loadBundle(writeBundle(tmp.make(), spec()));
    expect(Object.isFrozen(b)).toBe(true);
    expect(Object.isFrozen(b.config)).toBe(true);
    expect(Object.isFrozen(b.config.process?.args)).toBe(true);
    expect(Object.isFrozen(b.config.mounts?.[1]?.options)).toBe(true);
    expect(Object.isFrozen(b.config.linux?.uidMappings?.[0])).toBe(true);
    expect(() => { (b.config.process!.args as string[]).push('x'); }).toThrow(TypeError);
  });

  it('EBUNDLE_NOT_FOUND when the directory does not exist', async () => {
    const missing = path.join(tmp.make(), 'nope');
    const e = await caughtAsync(loadBundle(missing));
    expect(e.code).toBe('EBUNDLE_NOT_FOUND');
    expect(e.context.path).toBe(missing);
    expect(e.message).toContain(missing);
  });

  it('EBUNDLE_NOT_FOUND when the bundle is a file', async () => {
    const file = path.join(tmp.make(), 'f');
    fs.writeFileSync(file, '{}');
    const e = await caughtAsync(loadBundle(file));
    expect(e.code).toBe('EBUNDLE_NOT_FOUND');
    expect(e.message).toMatch(/not a directory/);
  });

  it('ECONFIG_MISSING without config.json', async () => {
    const e = await caughtAsync(loadBundle(tmp.make()));
    expect(e.code).toBe('ECONFIG_MISSING');
    expect(e.message).toMatch(/^bundle has no config\.json: /);
  });

  it('ECONFIG_MISSING when config.json is a directory', async () => {
    const dir = tmp.make();
    fs.mkdirSync(path.join(dir, 'config.json'));
    const e = await caughtAsync(loadBundle(dir));
    expect(e.code).toBe('ECONFIG_MISSING');
    expect(e.message).toMatch(/not a regular file/);
  });

  it('ECONFIG_MALFORMED with the line and column of the error', async () => {
    const dir = writeBundle(tmp.make(), '{\n  "ociVersion": "1.0.2",\n  "process": }\n');
    const e = await caughtAsync(loadBundle(dir));
    expect(e.code).toBe('ECONFIG_MALFORMED');
    expect(e.message).toBe(`config.json: invalid json at line 3 column 14: unexpected "}"`);
    expect(e.context.path).toBe(path.join(fs.realpathSync(dir), 'config.json'));
  });

  it('ECONFIG_MALFORMED for an empty file', async () => {
    const e = await caughtAsync(loadBundle(writeBundle(tmp.make(), '')));
    expect(e.code).toBe('ECONFIG_MALFORMED');
    expect(e.message).toMatch(/line 1 column 1: unexpected end of input/);
  });

  it('ECONFIG_INVALID names the field and the config path', async () => {
    const dir = writeBundle(tmp.make(), spec((c) => { c.mounts[2].destination = 'dev/pts'; }));
    const e = await caughtAsync(loadBundle(dir));
    expect(e.code).toBe('ECONFIG_INVALID');
    expect(e.context.field).toBe('mounts[2].destination');
    expect(e.context.path).toBe(path.join(fs.realpathSync(dir), 'config.json'));
  });

  it('ECONFIG_UNSUPPORTED is raised at load', async () => {
    const e = await caughtAsync(loadBundle(writeBundle(tmp.make(), spec((c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY' }; }))));
    expect(e.code).toBe('ECONFIG_UNSUPPORTED');
    expect(e.context.field).toBe('linux.seccomp.defaultAction');
  });

  it('EROOTFS_MISSING when root.path does not exist', async () => {
    const dir = writeBundle(tmp.make(), spec(), false);
    const e = await caughtAsync(loadBundle(dir));
    expect(e.code).toBe('EROOTFS_MISSING');
    expect(e.context.field).toBe('root.path');
    expect(e.context.path).toBe(path.join(fs.realpathSync(dir), 'rootfs'));
  });

  it('EROOTFS_MISSING when root.path is a file', async () => {
    const dir = writeBundle(tmp.make(), spec(), false);
    fs.writeFileSync(path.join(dir, 'rootfs'), '');
    const e = await caughtAsync(loadBundle(dir));
    expect(e.code).toBe('EROOTFS_MISSING');
    expect(e.message).toMatch(/^root\.path: not a directory: /);
  });

  it('ECONFIG_INVALID when a bind source is missing; relative sources resolve against the bundle', async () => {
    const dir = tmp.make();
    writeBundle(dir, spec((c) => { c.mounts.push({ destination: '/data', source: 'data', options: ['rbind', 'ro'] }); }));
    const e = await caughtAsync(loadBundle(dir));
    expect(e.code).toBe('ECONFIG_INVALID');
    expect(e.context.field).toBe('mounts[6].source');
    fs.mkdirSync(path.join(dir, 'data'));
    await expect(loadBundle(dir)).resolves.toBeDefined();
  });

  it('an unchanged bundle is shared between loads; a changed config, rootfs or bind source is seen at once', async () => {
    const dir = tmp.make();
    writeBundle(dir, spec((c) => { c.mounts.push({ destination: '/data', source: 'data', options: ['rbind', 'ro'] }); }));
    fs.mkdirSync(path.join(dir, 'data'));
    const first = await loadBundle(dir);
    expect(await loadBundle(dir)).toBe(first);
    // The same text is not trusted for what is on disk: the bind source and the rootfs are checked each time.
    fs.rmdirSync(path.join(dir, 'data'));
    expect((await caughtAsync(loadBundle(dir))).code).toBe('ECONFIG_INVALID');
    fs.mkdirSync(path.join(dir, 'data'));
    fs.rmdirSync(path.join(dir, 'rootfs'));
    expect((await caughtAsync(loadBundle(dir))).code).toBe('EROOTFS_MISSING');
    fs.mkdirSync(path.join(dir, 'rootfs'));
    expect(await loadBundle(dir)).toBe(first);
    // Another config: another bundle, and a broken one is refused, not served from before.
    writeBundle(dir, spec((c) => { c.process.args = ['true']; c.mounts.push({ destination: '/data', source: 'data', options: ['rbind', 'ro'] }); }));
    const second = await loadBundle(dir);
    expect(second).not.toBe(first);
    expect(second.config.process?.args).toEqual(['true']);
    writeBundle(dir, '{"ociVersion": ');
    expect((await caughtAsync(loadBundle(dir))).code).toBe('ECONFIG_MALFORMED');
  });
});

describe('locateJsonError', () => {
  it.each([
    ['{"a": 1,}', 1, 9, /expected a property name/],
    ['[1 2]', 1, 4, /expected ',' or '\]'/],
    ['{"a": "x\\q"}', 1, 10, /bad escape/],
    ['{"a": tru}', 1, 7, /unexpected "t"/],
    ['{}\n x', 2, 2, /after the json value/],
    ['{"a": "\n"}', 1, 8, /control character/],
    ['{"a": -}', 1, 7, /unexpected "-"/],
  ])('%j → line %i column %i', (text, line, column, reason) => {
    expect(() => JSON.parse(text)).toThrow();
    const pos = locateJsonError(text);
    expect(pos).toMatchObject({ line, column });
    expect(pos?.reason).toMatch(reason);
  });

  it('finds nothing wrong in valid JSON', () => {
    expect(locateJsonError('{"a":[1,-2.5e3,true,false,null,"\\u00e9"]}')).toBeUndefined();
  });
});
