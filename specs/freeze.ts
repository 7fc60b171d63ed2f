/** Recursively freezes objects and arrays; returns the same value, now immutable. */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  // Object.freeze throws on a non-empty typed array or Buffer; their bytes stay mutable.
  if (ArrayBuffer.isView(value)) return value;
  if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v, seen);
  }
  return value;
}

/** Deep-readonly view of a type, for values that went through deepFreeze. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
