import {
  DEFAULT_RESTART_POLICY,
  backoffDelay,
  exceedsIntensity,
  resolveRestartPolicy,
  restartsInWindow,
  wantsRestart,
} from '../../../machines/restart-policy';

const issue = (input: unknown) => {
  const r = resolveRestartPolicy(input);
  return 'issue' in r ? r.issue : undefined;
};

describe('resolveRestartPolicy', () => {
  test('defaults: CrashLoopBackOff schedule and an OTP intensity', () => {
    expect(resolveRestartPolicy({})).toEqual({ policy: DEFAULT_RESTART_POLICY });
    expect(DEFAULT_RESTART_POLICY).toEqual({
      policy: 'on-failure',
      maxRestarts: 10,
      periodMs: 3_600_000,
      backoff: { initialMs: 10_000, maxMs: 300_000, factor: 2, jitter: 0 },
      resetAfterMs: 600_000,
    });
  });

  test('partial input keeps the other defaults', () => {
    const r = resolveRestartPolicy({ policy: 'always', backoff: { initialMs: 50 } });
    expect(r).toEqual({ policy: { ...DEFAULT_RESTART_POLICY, policy: 'always', backoff: { ...DEFAULT_RESTART_POLICY.backoff, initialMs: 50 } } });
  });

  test.each([
    [{ policy: 'sometimes' }, 'restart.policy'],
    [{ policy: 3 }, 'restart.policy'],
    [{ maxRestarts: -1 }, 'restart.maxRestarts'],
    [{ maxRestarts: 1.5 }, 'restart.maxRestarts'],
    [{ maxRestarts: '3' }, 'restart.maxRestarts'],
    [{ periodMs: -5 }, 'restart.periodMs'],
    [{ periodMs: 0 }, 'restart.periodMs'],
    [{ resetAfterMs: Number.NaN }, 'restart.resetAfterMs'],
    [{ backoff: { initialMs: -1 } }, 'restart.backoff.initialMs'],
    [{ backoff: { maxMs: -1 } }, 'restart.backoff.maxMs'],
    [{ backoff: { initialMs: 100, maxMs: 10 } }, 'restart.backoff.maxMs'],
    [{ backoff: { factor: 0.5 } }, 'restart.backoff.factor'],
    [{ backoff: { factor: Infinity } }, 'restart.backoff.factor'],
    [{ backoff: { jitter: -0.1 } }, 'restart.backoff.jitter'],
    [{ backoff: { jitter: 1.5 } }, 'restart.backoff.jitter'],
    [{ backoff: 5 }, 'restart.backoff'],
    [{ backoff: { initalMs: 5 } }, 'restart.backoff.initalMs'],
    [{ polcy: 'always' }, 'restart.polcy'],
    ['always', 'restart'],
    [null, 'restart'],
  ])('%j is refused at %s', (input, field) => {
    expect(issue(input)?.field).toBe(field);
  });

  test('messages say what is expected', () => {
    expect(issue({ backoff: { initialMs: -1 } })).toEqual({ field: 'restart.backoff.initialMs', message: 'must be >= 0' });
    expect(issue({ policy: 'sometimes' })?.message).toMatch(/'never', 'on-failure' or 'always'/);
  });

  test('a smaller initial delay without a ceiling keeps the default ceiling', () => {
    const r = resolveRestartPolicy({ backoff: { initialMs: 400_000 } });
    expect('policy' in r && r.policy.backoff.maxMs).toBe(400_000);
  });
});

describe('backoffDelay', () => {
  const b = { initialMs: 10_000, maxMs: 300_000, factor: 2, jitter: 0 };

  test('CrashLoopBackOff: 10 s doubling to 5 min', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50, 5000].map((n) => backoffDelay(b, n))).toEqual([
      10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000, 300_000,
    ]);
  });

  test('factor 1 is a constant delay; initial 0 is immediate', () => {
    expect([1, 2, 3].map((n) => backoffDelay({ ...b, factor: 1 }, n))).toEqual([10_000, 10_000, 10_000]);
    expect(backoffDelay({ ...b, initialMs: 0 }, 7)).toBe(0);
  });

  test('jitter lengthens within [delay, delay × (1 + jitter)] and never shortens', () => {
    const j = { ...b, jitter: 0.5 };
    for (let attempt = 1; attempt <= 8; attempt++) {
      const base = backoffDelay(b, attempt);
      for (const r of [0, 0.001, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(j, attempt, r);
        expect(d).toBeGreaterThanOrEqual(base);
        expect(d).toBeLessThanOrEqual(base * 1.5);
      }
    }
    expect(backoffDelay(j, 1, 0.5)).toBe(12_500);
    // Out-of-range draws from a faulty source are clamped, not trusted.
    expect(backoffDelay(j, 1, 7)).toBe(15_000);
    expect(backoffDelay(j, 1, -3)).toBe(10_000);
  });
});

describe('intensity window', () => {
  test('restarts older than periodMs drop out', () => {
    expect(restartsInWindow([0, 100, 900, 1000], 1000, 1000)).toEqual([100, 900, 1000]);
  });

  test('more than maxRestarts within periodMs exceeds', () => {
    expect(exceedsIntensity([], 0, 0, 1000)).toBe(true);
    expect(exceedsIntensity([10, 20], 30, 3, 1000)).toBe(false);
    expect(exceedsIntensity([10, 20, 25], 30, 3, 1000)).toBe(true);
    expect(exceedsIntensity([10, 20, 25], 1015, 3, 1000)).toBe(false);
  });

  test('wantsRestart follows OTP permanent/transient/temporary', () => {
    const ok = { exitCode: 0, signal: null };
    const bad = { exitCode: 1, signal: null };
    const killed = { exitCode: null, signal: 9 };
    expect([wantsRestart('never', bad), wantsRestart('on-failure', ok), wantsRestart('on-failure', bad), wantsRestart('on-failure', killed)]).toEqual([
      false,
      false,
      true,
      true,
    ]);
    expect(wantsRestart('always', ok)).toBe(true);
  });
});
