/**
 * Ids become file names in the state dir and socket paths, so they are restricted
 * the way runc restricts container ids (no '/', no leading '.', bounded length).
 */
const ID_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_RE.test(id);
}

/** The child actor id of an exec'd process inside its sandbox machine. */
export function processActorId(pid: number): string {
  return `pid-${pid}`;
}
