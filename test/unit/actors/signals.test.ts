import { parseSignal, signalName } from '../../../actors/containers/signals';

describe('parseSignal', () => {
  test.each([
    ['SIGKILL', 9],
    ['KILL', 9],
    ['kill', 9],
    ['sigterm', 15],
    [' 15 ', 15],
    [9, 9],
    [64, 64],
    ['SIGRTMIN', 34],
    ['SIGRTMIN+3', 37],
    ['SIGRTMAX', 64],
    ['SIGRTMAX-2', 62],
  ])('%p is %p', (input, want) => {
    expect(parseSignal(input as string | number)).toBe(want);
  });

  test.each([0, 65, -1, 1.5, 'SIGNOPE', '', 'SIGRTMIN+40', 'SIGRTMAX+1', '9x'])('%p is EINVALID_SIGNAL', (input) => {
    expect(() => parseSignal(input as string | number)).toThrow(expect.objectContaining({ code: 'EINVALID_SIGNAL' }));
  });

  test('signalName is the inverse for standard signals', () => {
    expect(signalName(9)).toBe('SIGKILL');
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalName(40)).toBe('SIG40');
  });
});
