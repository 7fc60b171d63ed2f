/**
 * Restart policies as plain data and pure math: defaults, validation, the backoff
 * schedule, jitter and the restart-intensity window. No clock and no randomness of its
 * own — callers pass `now` and `random` — so the restart and group machines stay pure
 * and tests decide every number (docs/decisions/0015-restart-policies.md).
 */

export type RestartPolicyName = 'never' | 'on-failure' | 'always';

export interface BackoffOptions {
  /** Delay before the first restart, ms. */
  readonly initialMs: number;
  /** Ceiling of the doubling schedule, ms (jitter may add up to `jitter` × this). */
  readonly maxMs: number;
  /** Growth per consecutive restart (>= 1; 1 is a constant delay). */
  readonly factor: number;
  /** Fraction in [0, 1] by which a delay may be lengthened at random (never shortened). */
  readonly jitter: number;
}

export interface RestartPolicy {
  readonly policy: RestartPolicyName;
  /** More than this many restarts within `periodMs` and the child is given up (OTP intensity). */
  readonly maxRestarts: number;
  readonly periodMs: number;
  readonly backoff: BackoffOptions;
  /** Running this long without exiting resets the backoff to `initialMs`. */
  readonly resetAfterMs: number;
}

/** What a caller may write: every field optional, defaults filled in by {@link resolveRestartPolicy}. */
export interface RestartOptions {
  readonly policy?: RestartPolicyName;
  readonly maxRestarts?: number;
  readonly periodMs?: number;
  readonly backoff?: Partial<BackoffOptions>;
  readonly resetAfterMs?: number;
}

/**
 * Kubernetes' CrashLoopBackOff schedule (10 s doubling to 5 min, reset after 10 min of
 * healthy running, no jitter) and an OTP-style intensity chosen so that a child that
 * crashes forever is given up: at the 5 min ceiling it restarts 12 times an hour, more
 * than 10, so it is marked failed after about 35 minutes of crash looping.
 */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  policy: 'on-failure',
  maxRestarts: 10,
  periodMs: 3_600_000,
  backoff: { initialMs: 10_000, maxMs: 300_000, factor: 2, jitter: 0 },
  resetAfterMs: 600_000,
};

export interface PolicyIssue {
  /** Dotted path of the offending field, from `restart` (`restart.backoff.initialMs`). */
  readonly field: string;
  readonly message: string;
}

const POLICIES: readonly string[] = ['never', 'on-failure', 'always'];
/** setTimeout's ceiling: a longer delay would fire at once. */
const MAX_DELAY_MS = 2_147_483_647;

/**
 * Checks caller input and fills in defaults. Returns the first problem found (with the
 * field it concerns) instead of throwing, so the machines/ layer needs no error classes.
 */
export function resolveRestartPolicy(input: unknown, prefix = 'restart'): { policy: RestartPolicy } | { issue: PolicyIssue } {
  if (input === undefined) return { policy: DEFAULT_RESTART_POLICY };
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { issue: { field: prefix, message: 'must be an object' } };
  }
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['policy', 'maxRestarts', 'periodMs', 'backoff', 'resetAfterMs'].includes(k)) {
      return { issue: { field: `${prefix}.${k}`, message: 'unknown field' } };
    }
  }
  if (o.policy !== undefined && (typeof o.policy !== 'string' || !POLICIES.includes(o.policy))) {
    return { issue: { field: `${prefix}.policy`, message: `must be 'never', 'on-failure' or 'always', not ${JSON.stringify(o.policy)}` } };
  }
  const d = DEFAULT_RESTART_POLICY;
  const maxRestarts = count(o.maxRestarts, d.maxRestarts, `${prefix}.maxRestarts`);
  if ('issue' in maxRestarts) return maxRestarts;
  const periodMs = delay(o.periodMs, d.periodMs, `${prefix}.periodMs`);
  if ('issue' in periodMs) return periodMs;
  if (periodMs.value === 0) return { issue: { field: `${prefix}.periodMs`, message: 'must be > 0' } };
  const resetAfterMs = delay(o.resetAfterMs, d.resetAfterMs, `${prefix}.resetAfterMs`);
  if ('issue' in resetAfterMs) return resetAfterMs;
  if (o.backoff !== undefined && (o.backoff === null || typeof o.backoff !== 'object' || Array.isArray(o.backoff))) {
    return { issue: { field: `${prefix}.backoff`, message: 'must be an object' } };
  }
  const b = (o.backoff ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['initialMs', 'maxMs', 'factor', 'jitter'].includes(k)) return { issue: { field: `${prefix}.backoff.${k}`, message: 'unknown field' } };
  }
  const initialMs = delay(b.initialMs, d.backoff.initialMs, `${prefix}.backoff.initialMs`);
  if ('issue' in initialMs) return initialMs;
  // A ceiling left out follows a smaller initial delay down rather than contradicting it.
  const maxMs = delay(b.maxMs, Math.max(d.backoff.maxMs, initialMs.value), `${prefix}.backoff.maxMs`);
  if ('issue' in maxMs) return maxMs;
  if (maxMs.value < initialMs.value) return { issue: { field: `${prefix}.backoff.maxMs`, message: 'must be >= backoff.initialMs' } };
  const factor = b.factor ?? d.backoff.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    return { issue: { field: `${prefix}.backoff.factor`, message: 'must be a finite number >= 1' } };
  }
  const jitter = b.jitter ?? d.backoff.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    return { issue: { field: `${prefix}.backoff.jitter`, message: 'must be a number in [0, 1]' } };
  }
  return {
    policy: {
      policy: (o.policy as RestartPolicyName | undefined) ?? d.policy,
      maxRestarts: maxRestarts.value,
      periodMs: periodMs.value,
      backoff: { initialMs: initialMs.value, maxMs: maxMs.value, factor, jitter },
      resetAfterMs: resetAfterMs.value,
    },
  };
}

function count(v: unknown, dflt: number, field: string): { value: number } | { issue: PolicyIssue } {
  if (v === undefined) return { value: dflt };
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return { issue: { field, message: 'must be an integer >= 0' } };
  return { value: v };
}

function delay(v: unknown, dflt: number, field: string): { value: number } | { issue: PolicyIssue } {
  if (v === undefined) return { value: dflt };
  if (typeof v !== 'number' || !Number.isFinite(v)) return { issue: { field, message: 'must be a finite number of ms' } };
  if (v < 0) return { issue: { field, message: 'must be >= 0' } };
  if (v > MAX_DELAY_MS) return { issue: { field, message: `must be <= ${MAX_DELAY_MS}` } };
  return { value: v };
}

/**
 * The delay before restart number `attempt` (1 for the first restart after a healthy
 * run): initialMs × factor^(attempt-1), capped at maxMs, then lengthened by up to
 * `jitter` × itself using `random` in [0, 1). Never shorter than the schedule, so a
 * caller can rely on "at least initialMs"; rounded to whole ms for timers. Warm pools'
 * refill backoff is the same schedule without jitter.
 */
export function backoffDelay(b: Omit<BackoffOptions, 'jitter'> & { readonly jitter?: number }, attempt: number, random = 0): number {
  const n = Math.max(1, Math.floor(attempt));
  // factor^(n-1) overflows to Infinity for long crash loops; the cap absorbs it.
  const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, n - 1));
  const r = Math.min(Math.max(random, 0), 1);
  return Math.min(MAX_DELAY_MS, Math.round(base * (1 + (b.jitter ?? 0) * r)));
}

/** Restart times still inside the intensity window ending at `now` (OTP keeps the same list). */
export function restartsInWindow(restarts: readonly number[], now: number, periodMs: number): number[] {
  return restarts.filter((t) => t > now - periodMs && t <= now);
}

/** OTP: one more restart now would make more than `maxRestarts` within `periodMs`. */
export function exceedsIntensity(restarts: readonly number[], now: number, maxRestarts: number, periodMs: number): boolean {
  return restartsInWindow(restarts, now, periodMs).length + 1 > maxRestarts;
}

/** Whether a child that ended with this status is restarted under the policy (OTP permanent/transient/temporary). */
export function wantsRestart(policy: RestartPolicyName, exit: { exitCode: number | null; signal: number | null }): boolean {
  if (policy === 'never') return false;
  if (policy === 'always') return true;
  return !(exit.exitCode === 0 && exit.signal === null);
}
