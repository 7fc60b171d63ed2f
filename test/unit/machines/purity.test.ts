import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Machines are pure definitions: no I/O, no clock, no native code. Instead of a lint
 * plugin, this checks every import of machines/ (STYLE.md C.3).
 */
describe('machines/ imports', () => {
  const dir = path.join(__dirname, '..', '..', '..', 'machines');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));

  const importsOf = (file: string) =>
    [...fs.readFileSync(path.join(dir, file), 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);

  test('the import scan sees the machines\' real imports', () => {
    expect(importsOf('sandbox.machine.ts')).toEqual(expect.arrayContaining(['xstate', './container.machine']));
  });

  test.each(files)('%s imports only xstate, machines/, protocols/ and specs/ types', (file) => {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const specifiers = [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] as string);
    for (const s of specifiers) {
      const allowed = s === 'xstate' || s.startsWith('./') || s.startsWith('../protocols/') || s.startsWith('../specs/');
      expect({ file, import: s, allowed }).toEqual({ file, import: s, allowed: true });
    }
    expect(text).not.toMatch(/\brequire\(/);
    expect(text).not.toMatch(/\bconsole\./);
    expect(text).not.toMatch(/\b(setTimeout|setInterval|Date\.now)\(/);
  });
});
