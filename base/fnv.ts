/**
 * FNV-1a (32 bits) of a string's UTF-16 code units, as 8 hex digits: a cheap name for
 * things that only need telling apart (state dirs in cgroup paths, seccomp cache
 * files), where loading node:crypto for a digest would cost a CLI call milliseconds.
 * Never a security boundary: whatever it names is checked in full where it matters.
 */
export function fnv1a32(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
