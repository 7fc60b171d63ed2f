import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, runCli } from '../helpers/cli';

/**
 * The launcher (bin/launcher.ts) runs the bundle from a per-verb V8 code cache next to
 * it. A cache that does not belong to the bundle, or that V8 refuses, must only cost
 * the compile: the call works and leaves a good cache behind.
 */
describe('paddock launcher code cache', () => {
  const cache = path.join(path.dirname(CLI), 'paddock-cli.js.features.cache');
  let saved: Buffer | undefined;
  let root: string;

  beforeAll(() => {
    saved = fs.existsSync(cache) ? fs.readFileSync(cache) : undefined;
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-launcher-'));
  });
  afterAll(() => {
    if (saved) fs.writeFileSync(cache, saved);
    else fs.rmSync(cache, { force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });

  const features = () => {
    const r = runCli(root, ['features']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(r.stdout) as { ociVersionMin?: string };
  };
  const headerOf = () => fs.readFileSync(cache).toString('latin1', 0, 64);
  const bundleStamp = () => {
    const st = fs.statSync(path.join(path.dirname(CLI), 'paddock-cli.js'));
    return `paddock-cli ${st.size} ${Math.floor(st.mtimeMs)}\n`;
  };

  test('no cache: the call writes one for its verb; the next call uses it', () => {
    fs.rmSync(cache, { force: true });
    const first = features();
    expect(headerOf().startsWith(bundleStamp())).toBe(true);
    const written = fs.readFileSync(cache);
    expect(features()).toEqual(first);
    // A cache that was used is not written again.
    expect(fs.readFileSync(cache).equals(written)).toBe(true);
  });

  test("another bundle's cache is refused and replaced", () => {
    fs.writeFileSync(cache, Buffer.concat([Buffer.from('paddock-cli 1 2\n'.padEnd(64, ' '), 'latin1'), Buffer.alloc(4096, 7)]));
    expect(features().ociVersionMin).toEqual(expect.any(String));
    expect(headerOf().startsWith(bundleStamp())).toBe(true);
  });

  test('a cache V8 rejects (right header, corrupt body) only costs the compile', () => {
    fs.writeFileSync(cache, Buffer.concat([Buffer.from(bundleStamp().padEnd(64, ' '), 'latin1'), Buffer.alloc(4096, 7)]));
    expect(features().ociVersionMin).toEqual(expect.any(String));
    expect(fs.statSync(cache).size).toBeGreaterThan(64 + 4096);
  });
});
