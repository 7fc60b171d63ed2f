import { isValidId, processActorId } from '../../../machines/ids';
import { toFailureInfo } from '../../../machines/types';

describe('isValidId', () => {
  test.each(['a', 'sb1', 'A_b-c.d', '_x', '0', 'a'.repeat(64), 'a..b', 'x.'])('accepts %p', (id) => {
    expect(isValidId(id)).toBe(true);
  });

  test.each([
    ['empty', ''],
    ['65 chars', 'a'.repeat(65)],
    ['slash', 'a/b'],
    ['leading slash', '/a'],
    ['leading dot', '.a'],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['leading dash', '-a'],
    ['space', 'a b'],
    ['unicode', 'sandbøx'],
    ['emoji', 'a😀'],
    ['newline at end', 'abc\n'],
    ['NUL', 'a\0b'],
  ])('rejects %s', (_label, id) => {
    expect(isValidId(id)).toBe(false);
  });

  test.each([undefined, null, 42, {}, ['a']])('rejects non-string %p', (id) => {
    expect(isValidId(id)).toBe(false);
  });
});

describe('processActorId', () => {
  test('is pid-<pid>', () => {
    expect(processActorId(1)).toBe('pid-1');
    expect(processActorId(4194304)).toBe('pid-4194304');
  });

  test('distinct pids give distinct ids', () => {
    expect(processActorId(12)).not.toBe(processActorId(1));
  });
});

describe('toFailureInfo', () => {
  test('PaddockError-like object keeps code, message, step and errno', () => {
    const err = Object.assign(new Error('clone3 failed'), { code: 'ESPAWN', context: { step: 'clone', errno: 1 } });
    expect(toFailureInfo(err)).toEqual({ code: 'ESPAWN', message: 'clone3 failed', step: 'clone', errno: 1 });
  });

  test('plain object with code and message', () => {
    expect(toFailureInfo({ code: 'EPROTO', message: 'bad frame' })).toEqual({ code: 'EPROTO', message: 'bad frame' });
  });

  test('step and errno of the wrong type are left out', () => {
    const info = toFailureInfo({ code: 'X', message: 'm', context: { step: 3, errno: '1' } });
    expect(info).toEqual({ code: 'X', message: 'm' });
    expect('step' in info).toBe(false);
    expect('errno' in info).toBe(false);
  });

  test('plain Error gets EINTERNAL and its message', () => {
    expect(toFailureInfo(new Error('boom'))).toEqual({ code: 'EINTERNAL', message: 'boom' });
  });

  test('non-string code is replaced by EINTERNAL', () => {
    // Node system errors carry string codes, but errno-style numeric codes must not leak through.
    expect(toFailureInfo({ code: 13, message: 'denied' })).toEqual({ code: 'EINTERNAL', message: 'denied' });
  });

  test('Node system error keeps its string code', () => {
    const err = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', errno: -2 });
    expect(toFailureInfo(err)).toEqual({ code: 'ENOENT', message: 'ENOENT: no such file' });
  });

  test('object without message is stringified', () => {
    expect(toFailureInfo({ code: 'E' })).toEqual({ code: 'E', message: '[object Object]' });
  });

  test('strings and other primitives', () => {
    expect(toFailureInfo('went wrong')).toEqual({ code: 'EINTERNAL', message: 'went wrong' });
    expect(toFailureInfo(42)).toEqual({ code: 'EINTERNAL', message: '42' });
    expect(toFailureInfo(undefined)).toEqual({ code: 'EINTERNAL', message: 'undefined' });
    expect(toFailureInfo(null)).toEqual({ code: 'EINTERNAL', message: 'null' });
  });

  test('result is plain JSON', () => {
    const err = Object.assign(new Error('x'), { code: 'E', context: { step: 's', errno: 2 } });
    const info = toFailureInfo(err);
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });
});
