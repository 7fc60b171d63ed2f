/**
 * Value types shared by the machines. Only plain JSON data lives in machine context,
 * so every machine's persisted snapshot round-trips through JSON; fds, pidfds, plans
 * with bigint flags and channels stay in the engine's runtime table.
 */

/** How a process ended: exactly one of exitCode/signal is non-null. */
export interface ExitStatus {
  readonly exitCode: number | null;
  /** Terminating signal number (9 for SIGKILL) when killed by a signal. */
  readonly signal: number | null;
  /** ISO time the exit was reaped by paddock-init, when known. */
  readonly at?: string;
}

/** A failure kept in context so the engine can raise it as a typed error. */
export interface FailureInfo {
  readonly code: string;
  readonly message: string;
  readonly step?: string;
  readonly errno?: number;
  /** The spec field a launch failure is about (`linux.namespaces[1].path`). */
  readonly field?: string;
  readonly path?: string;
}

/**
 * What a checkpoint is asked to do (docs/decisions/0040). Plain data: it rides in the
 * `checkpoint` event and the sandbox's context while the dump runs.
 */
export interface CheckpointRequest {
  /** Absolute directory the CRIU images are written to. */
  readonly imagePath: string;
  /** Keep the container running after the dump (else CRIU kills it and the sandbox stops). */
  readonly leaveRunning: boolean;
  readonly tcpEstablished: boolean;
  readonly extUnixSk: boolean;
  readonly shellJob: boolean;
  readonly fileLocks: boolean;
  /** Where CRIU's log goes (default imagePath). */
  readonly workPath?: string;
  readonly manageCgroupsMode?: 'soft' | 'full' | 'strict' | 'ignore';
}

/** The one-line lifecycle word the OCI state and the engine report. */
export type LifecycleStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped' | 'failed';

export function toFailureInfo(error: unknown): FailureInfo {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; message?: unknown; context?: { step?: unknown; errno?: unknown; field?: unknown; path?: unknown } };
    const info: FailureInfo = {
      code: typeof e.code === 'string' ? e.code : 'EINTERNAL',
      message: typeof e.message === 'string' ? e.message : String(error),
      ...(typeof e.context?.step === 'string' ? { step: e.context.step } : {}),
      ...(typeof e.context?.errno === 'number' ? { errno: e.context.errno } : {}),
      ...(typeof e.context?.field === 'string' ? { field: e.context.field } : {}),
      ...(typeof e.context?.path === 'string' ? { path: e.context.path } : {}),
    };
    return info;
  }
  return { code: 'EINTERNAL', message: String(error) };
}
