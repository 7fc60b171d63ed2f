/**
 * Eight random hex characters for names of sockets the engine and the CLI bind.
 *
 * `node:crypto` is required on the first call only: loading it costs every CLI call
 * several milliseconds, and most calls never bind a socket of this kind.
 */
export function randomSuffix(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { randomBytes } = require('node:crypto') as typeof import('node:crypto');
  return randomBytes(4).toString('hex');
}
