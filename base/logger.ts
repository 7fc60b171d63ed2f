import type { Logger } from 'pino';

export type { Logger };

/**
 * The engine's root logger. JSON lines on stderr by default (a library must not
 * write to a host's stdout); `env` and `args` of processes are redacted because they
 * routinely carry secrets of the code being run.
 */
export function createRootLogger(level: string = process.env.PADDOCK_LOG_LEVEL ?? 'warn'): Logger {
  // Required here, not at the top: callers that bring their own logger never load pino.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pino = require('pino') as typeof import('pino');
  return pino.default(
    {
      name: 'paddock',
      level,
      redact: { paths: ['env', 'args', '*.env', '*.args'], censor: '[redacted]' },
    },
    pino.default.destination({ dest: 2, sync: true }),
  );
}

/**
 * A logger that drops everything, without loading pino: one-shot callers (the CLI
 * without --log or --debug) start measurably faster without it.
 */
export function createSilentLogger(): Logger {
  const noop = () => undefined;
  const silent: Record<string, unknown> = {
    level: 'silent',
    trace: noop,
    debug: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    isLevelEnabled: () => false,
  };
  silent.child = () => silent;
  return silent as unknown as Logger;
}
