import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, PaddockError, SpecError, isPaddockError } from '../../../base/errors';

describe('error catalogue', () => {
  test('docs/errors.md lists exactly the codes of base/errors.ts, with the same meaning', () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual({ ...ErrorCodes });
  });

  test('codes are E-prefixed upper snake case and meanings are lowercase with no trailing period', () => {
    for (const [code, meaning] of Object.entries(ErrorCodes)) {
      expect(code).toMatch(/^E[A-Z_]+$/);
      expect(meaning[0]).toBe(meaning[0]?.toLowerCase());
      expect(meaning).not.toMatch(/\.$/);
    }
  });

  test('errors carry code, context and cause; isPaddockError narrows by code', () => {
    const cause = new Error('root cause');
    const e = new SpecError('ECONFIG_INVALID', 'process.args: must be non-empty', { field: 'process.args' }, cause);
    expect(e).toBeInstanceOf(PaddockError);
    expect(e.code).toBe('ECONFIG_INVALID');
    expect(e.context.field).toBe('process.args');
    expect(e.cause).toBe(cause);
    expect(isPaddockError(e)).toBe(true);
    expect(isPaddockError(e, 'ECONFIG_INVALID')).toBe(true);
    expect(isPaddockError(e, 'ETIMEOUT')).toBe(false);
    expect(isPaddockError(new Error('x'))).toBe(false);
  });
});
