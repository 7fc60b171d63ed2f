import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * The engine's root logger. JSON lines on stderr by default (a library must not
 * write to a host's stdout); `env` and `args` of processes are redacted because they
 * routinely carry secrets of the code being run.
 */
export function createRootLogger(level: string = process.env.PADDOCK_LOG_LEVEL ?? 'warn'): Logger {
  return pino(
    {
      name: 'paddock',
      level,
      redact: { paths: ['env', 'args', '*.env', '*.args'], censor: '[redacted]' },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}
