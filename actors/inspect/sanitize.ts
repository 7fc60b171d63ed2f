/**
 * Keys whose values never leave the engine through an inspector: environment values
 * and file descriptors (a viewer is another process, maybe another machine; an fd
 * number is meaningless there and an env value may be a secret). The machines keep
 * neither in their context today; this is the guard that keeps it so.
 */
const HIDDEN = new Set(['env', 'environment', 'envs', 'fd', 'fds', 'pidfd', 'pidfds', 'token', 'secret', 'password', 'consoleSocket']);

/** How deep a snapshot or event is copied; deeper values become '[…]'. */
const MAX_DEPTH = 8;

/**
 * A plain-JSON copy of `value` that a viewer may see: hidden keys dropped, actor
 * references and functions named instead of copied, errors reduced to code and message,
 * cycles and depth cut. Never throws.
 */
export function sanitize(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'undefined') return undefined;
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
  if (typeof value !== 'object') return String(value);
  if (seen.has(value)) return '[cycle]';
  if (depth >= MAX_DEPTH) return '[…]';
  if (isActorRef(value)) return `[actor ${String((value as { id?: unknown }).id)}]`;
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  if (value instanceof Date) return value.toISOString();
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.slice(0, 1000).map((v) => sanitize(v, depth + 1, seen) ?? null);
    if (value instanceof Map || value instanceof Set || ArrayBuffer.isView(value)) return `[${value.constructor.name}]`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (HIDDEN.has(k)) continue;
      const s = sanitize(v, depth + 1, seen);
      if (s !== undefined) out[k] = s;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function isActorRef(v: object): boolean {
  return typeof (v as { send?: unknown }).send === 'function' && typeof (v as { getSnapshot?: unknown }).getSnapshot === 'function';
}

/** The parts of a machine snapshot a viewer needs, sanitised (no children refs, no history). */
export function viewOfSnapshot(snapshot: unknown): { status: string; value: unknown; context: unknown; error?: unknown; output?: unknown } {
  const s = (snapshot ?? {}) as { status?: unknown; value?: unknown; context?: unknown; error?: unknown; output?: unknown };
  return {
    status: typeof s.status === 'string' ? s.status : 'active',
    value: sanitize(s.value),
    context: sanitize(s.context),
    ...(s.error !== undefined ? { error: sanitize(s.error) } : {}),
    ...(s.output !== undefined ? { output: sanitize(s.output) } : {}),
  };
}
