import { PaddockError } from './errors';

/*
 * Options are checked by name at every public entry: a misspelt key (`usrens:`,
 * `netwrok:`) is an EINVALID_ARGUMENT naming it, never silently ignored (a typo in a
 * security option would otherwise quietly run the sandbox without it). Ground floor:
 * depends on errors only, so specs/ (the builder's template) uses it too.
 */

/**
 * The key list of an options type, written as an object so the compiler checks that
 * it names every key of T and nothing else: `knownKeys<ExecOptions>()({ args: 1, ... })`.
 */
export function knownKeys<T>() {
  return <K extends Record<keyof T, 1>>(keys: K & Record<Exclude<keyof K, keyof T>, never>): readonly string[] =>
    Object.freeze(Object.keys(keys));
}

/**
 * Throws EINVALID_ARGUMENT when `value` (an options object, or undefined) has a key
 * not in `known`, naming the key, where it was (`what`) and the closest known key.
 * `undefined`/`null` pass (no options); a non-object is refused.
 */
export function checkOptionKeys(value: unknown, known: readonly string[], what: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new PaddockError('EINVALID_ARGUMENT', `${what}: must be an object, not ${Array.isArray(value) ? 'an array' : typeof value}`, { field: what });
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    throw new PaddockError(
      'EINVALID_ARGUMENT',
      `${what}: unknown option ${JSON.stringify(key)}${near !== undefined ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`,
      { field: `${what}.${key}` },
    );
  }
}

/** The known key at edit distance ≤ 2 (≤ 1 for short ones) from `key`, or that it begins (`memory` → `memoryBytes`), if one is. */
function closest(key: string, known: readonly string[]): string | undefined {
  if (key.length >= 3) {
    const prefixed = known.find((k) => k.toLowerCase().startsWith(key.toLowerCase()));
    if (prefixed !== undefined) return prefixed;
  }
  let best: string | undefined;
  let bestD = Math.min(2, Math.max(1, Math.floor(key.length / 3)));
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d <= bestD) {
      best = k;
      bestD = d - 1;
    }
  }
  return best;
}

/** Damerau-style edit distance (adjacent swaps count once: `netwrok` → `network`). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((d[i - 1]?.[j] ?? 0) + 1, (d[i]?.[j - 1] ?? 0) + 1, (d[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (d[i - 2]?.[j - 2] ?? 0) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return d[a.length]?.[b.length] ?? 0;
}
