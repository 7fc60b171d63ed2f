import { constants } from 'node:os';
import { PaddockError } from '../../base/errors';

const BY_NAME: Record<string, number> = { ...(constants.signals as Record<string, number>) };

/**
 * Accepts what runc's `kill` accepts: a number 1..64, `SIGKILL`, `KILL`, `kill`,
 * and the real-time forms `SIGRTMIN+3`. Anything else is EINVALID_SIGNAL.
 */
export function parseSignal(signal: string | number): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal >= 1 && signal <= 64) return signal;
    throw new PaddockError('EINVALID_SIGNAL', `invalid signal ${signal}: must be 1 to 64`);
  }
  if (typeof signal !== 'string') throw new PaddockError('EINVALID_SIGNAL', 'signal must be a name or a number');
  const s = signal.trim();
  if (/^\d+$/.test(s)) return parseSignal(Number(s));
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const rt = /^SIGRT(MIN|MAX)([+-]\d+)?$/.exec(name);
  if (rt) {
    // glibc reserves 32 and 33 for itself, so SIGRTMIN is 34 as seen by processes.
    const base = rt[1] === 'MIN' ? 34 : 64;
    const n = base + Number(rt[2] ?? 0);
    if (n >= 34 && n <= 64) return n;
    throw new PaddockError('EINVALID_SIGNAL', `invalid signal ${signal}: out of the real-time range`);
  }
  const n = BY_NAME[name];
  if (n === undefined) throw new PaddockError('EINVALID_SIGNAL', `invalid signal ${signal}: no such signal`);
  return n;
}

export function signalName(signo: number): string {
  for (const [name, n] of Object.entries(BY_NAME)) if (n === signo) return name;
  return `SIG${signo}`;
}
