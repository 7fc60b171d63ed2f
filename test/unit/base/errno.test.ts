import * as os from 'os';
import { errnoName, errnoNumber, errnoTable } from '../../../base/errno';

test('every errno Node knows has the same number here', () => {
  for (const [name, n] of Object.entries(os.constants.errno)) {
    expect({ name, n: errnoNumber(name) }).toEqual({ name, n });
  }
});

test('the table is complete from 1 to 133 except the unused 41 and 58', () => {
  const nums = errnoTable().map(([n]) => n);
  const want = Array.from({ length: 133 }, (_, i) => i + 1).filter((n) => n !== 41 && n !== 58);
  expect(nums).toEqual(want);
  expect(new Set(errnoTable().map(([, s]) => s)).size).toBe(want.length);
});

test('names and numbers round-trip; aliases resolve; unknown numbers still print', () => {
  expect(errnoName(22)).toBe('EINVAL');
  expect(errnoName(2)).toBe('ENOENT');
  expect(errnoName(3)).toBe('ESRCH');
  expect(errnoName(11)).toBe('EAGAIN');
  expect(errnoName(95)).toBe('EOPNOTSUPP');
  expect(errnoNumber('EWOULDBLOCK')).toBe(11);
  expect(errnoNumber('ENOTSUP')).toBe(95);
  expect(errnoNumber('EDEADLOCK')).toBe(35);
  expect(errnoNumber('ENOPE')).toBeUndefined();
  expect(errnoName(999)).toBe('E999');
  expect(errnoName(0)).toBe('E0');
  for (const [n, s] of errnoTable()) expect(errnoNumber(s)).toBe(n);
});
