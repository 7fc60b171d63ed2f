import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The floors of the house (docs/decisions/0043): each may import from the floors below
 * it and from itself, never from above.
 *
 *   0 base/                     errors, whole-file writes, hashing, tree removal, small helpers
 *   1 protocols/, machines/     the wire format; the pure state machines (siblings: neither imports the other)
 *   2 native/                   the C layer's facades (libpaddock, libseccomp)
 *   3 specs/                    OCI config → plans, pure
 *   4 actors/                   the effects: the engine and what it drives
 *   5 bin/, index.ts            the CLI and the library's front door
 *
 * Type-only imports count too: a type from above is a dependency on above. Instead of
 * a lint plugin, this reads every import, export-from, require() and import() of the
 * code, and also checks what each floor may take from npm and Node.
 */
const ROOT = path.join(__dirname, '..', '..');
const FLOORS: Readonly<Record<string, number>> = { base: 0, protocols: 1, machines: 1, native: 2, specs: 3, actors: 4, bin: 5, 'index.ts': 5 };

function sourcesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    // protocols/vectors generates the C decoder's test vectors: test tooling, not code.
    if (e.isDirectory()) {
      if (rel !== path.join('protocols', 'vectors') && rel !== path.join('native', 'build')) out.push(...sourcesUnder(rel));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const FILES = Object.keys(FLOORS).flatMap((top) => (top.endsWith('.ts') ? [top] : sourcesUnder(top)));

interface Import {
  readonly spec: string;
  readonly typeOnly: boolean;
}

function importsOf(file: string): Import[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(/^\s*(import|export)(\s+type)?[^'";]*?from\s+['"]([^'"]+)['"]/gm)) out.push({ spec: m[3] as string, typeOnly: m[2] !== undefined });
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push({ spec: m[1] as string, typeOnly: false });
  for (const m of text.matchAll(/\b(require|import)\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push({ spec: m[2] as string, typeOnly: false });
  return out;
}

const topOf = (rel: string) => rel.split(path.sep)[0] as string;

/** The repo-relative file an import names, or undefined for a package or a Node module. */
function target(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return path.normalize(path.join(path.dirname(file), spec));
}

/** What each floor may take from outside the repo. */
const PACKAGES: Readonly<Record<string, (spec: string, file: string) => boolean>> = {
  base: (s) => isNode(s) || s === 'pino',
  protocols: (s) => isNode(s),
  machines: (s) => s === 'xstate',
  native: (s) => isNode(s) || s === 'ffi-rs',
  // Reading a bundle is specs' one touch of the file system; nothing else does I/O.
  specs: (s, f) => s === 'node:path' || s === 'path' || ((s === 'node:fs' || s === 'fs') && f === path.join('specs', 'load.ts')),
};
const isNode = (s: string) => s.startsWith('node:') || ['fs', 'path', 'os', 'buffer', 'child_process', 'net', 'util', 'crypto', 'events', 'stream'].includes(s);

describe('layering', () => {
  test('the scan sees the real imports', () => {
    expect(FILES).toEqual(expect.arrayContaining(['index.ts', path.join('machines', 'sandbox.machine.ts'), path.join('base', 'errors.ts')]));
    expect(FILES.length).toBeGreaterThan(100);
    const seen = importsOf(path.join('specs', 'seccomp.ts')).map((i) => i.spec);
    expect(seen).toEqual(expect.arrayContaining(['../base/errors', '../native/seccomp-compile']));
    expect(importsOf(path.join('specs', 'seccomp.ts')).find((i) => i.spec === '../native/seccomp-compile')?.typeOnly).toBe(true);
  });

  test('no import runs upward, and siblings on one floor stay apart', () => {
    const upward: string[] = [];
    for (const file of FILES) {
      const from = topOf(file);
      for (const { spec } of importsOf(file)) {
        const to = target(file, spec);
        if (to === undefined) continue;
        const toTop = topOf(to);
        const toFloor = FLOORS[toTop];
        if (toFloor === undefined) {
          upward.push(`${file} -> ${spec} (outside every floor)`);
          continue;
        }
        const fromFloor = FLOORS[from] as number;
        if (toFloor > fromFloor || (toFloor === fromFloor && toTop !== from && fromFloor < 5)) upward.push(`${file} -> ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });

  test.each(['base', 'protocols', 'machines', 'native', 'specs'])('%s/ takes from npm and Node only what its floor allows', (top) => {
    const bad: string[] = [];
    for (const file of FILES.filter((f) => topOf(f) === top)) {
      for (const { spec } of importsOf(file)) {
        if (!spec.startsWith('.') && !(PACKAGES[top] as (s: string, f: string) => boolean)(spec, file)) bad.push(`${file} -> ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test('specs/ is pure: from native/ it takes types and data tables only, never the code that calls C', () => {
    const DATA = new Set([path.join('native', 'seccomp-arches')]);
    const bad: string[] = [];
    for (const file of FILES.filter((f) => topOf(f) === 'specs')) {
      for (const { spec, typeOnly } of importsOf(file)) {
        const to = target(file, spec);
        if (to !== undefined && topOf(to) === 'native' && !typeOnly && !DATA.has(to)) bad.push(`${file} -> ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test('machines/ are pure definitions: no I/O, no clock, no console', () => {
    for (const file of FILES.filter((f) => topOf(f) === 'machines')) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      expect({ file, require: /\brequire\(/.test(text) }).toEqual({ file, require: false });
      expect({ file, console: /\bconsole\./.test(text) }).toEqual({ file, console: false });
      expect({ file, clock: /\b(setTimeout|setInterval|Date\.now)\(/.test(text) }).toEqual({ file, clock: false });
    }
  });

  test('every folder of the code says at its top what it holds and what it may import', () => {
    const dirs = new Set(FILES.map((f) => path.dirname(f)).filter((d) => d !== '.'));
    const missing = [...dirs].filter((d) => !fs.existsSync(path.join(ROOT, d, 'README.md')));
    expect(missing).toEqual([]);
  });
});
