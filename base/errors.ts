/**
 * paddock's error catalogue. Every error a caller can see is a PaddockError with a
 * stable `code`; callers (and the CLI) branch on the code, never on the message.
 * docs/errors.md mirrors this table and a unit test checks that the two agree.
 * Messages are lowercase with no trailing period.
 */

export const ErrorCodes = {
  ESANDBOX_NOT_FOUND: 'no sandbox with this id',
  ESANDBOX_EXISTS: 'a sandbox with this id already exists',
  ECONTAINER_NOT_FOUND: 'no container with this id in the sandbox',
  ECONTAINER_EXISTS: 'a container with this id already exists in the sandbox',
  EPROCESS_NOT_FOUND: 'no process with this pid in the sandbox',
  EINVALID_STATE: 'the command is not allowed in the current state',
  EINVALID_ID: 'ids are 1 to 64 characters of [A-Za-z0-9_.-], not starting with . or -',
  EINVALID_ARGUMENT: 'an argument is out of range or of the wrong type',
  EINVALID_SIGNAL: 'no such signal',
  EBUNDLE_NOT_FOUND: 'the bundle directory does not exist',
  ECONFIG_MISSING: 'the bundle has no config.json',
  ECONFIG_MALFORMED: 'config.json is not valid JSON',
  ECONFIG_INVALID: 'config.json does not satisfy the OCI runtime spec',
  ECONFIG_UNSUPPORTED: 'config.json asks for something paddock cannot honour',
  EROOTFS_MISSING: 'the bundle root filesystem does not exist',
  ELAUNCH_STEP: 'a launch step failed',
  EHOOK_FAILED: 'a lifecycle hook failed, timed out or could not be started',
  ECONTROL: 'the control channel to paddock-init failed',
  ETIMEOUT: 'an operation did not finish in time',
  EFREEZER: 'the cgroup freezer could not freeze or thaw the sandbox',
  ECGROUP_IN_USE: 'the cgroup asked for (linux.cgroupsPath) holds processes or child cgroups: another sandbox or program uses it',
  ESANDBOX_DEAD: 'the sandbox process has exited',
  EPROTOCOL: 'a message did not decode',
  ENATIVE_UNAVAILABLE: 'the native layer is not built or cannot load',
  EKVM_UNAVAILABLE: 'kvm is not available on this host',
  ENOT_SUPPORTED: 'not supported yet',
  ECRIU_UNAVAILABLE: 'no criu that passes `criu check`: scripts/setup-criu.sh builds one',
  ECRIU_FAILED: 'criu could not checkpoint or restore; the message has its error lines and names its log',
  ECHECKPOINT_INVALID: 'the image path holds no paddock checkpoint',
  EENGINE_CLOSED: 'the engine is closed',
  ESTATE_CORRUPT: 'a persisted state file cannot be read',
  ELOCKED: 'the sandbox state is locked by another process',
  ECONSOLE: 'a terminal needs a console socket (and only a terminal takes one), or the console socket cannot be used',
  EPOOL_EXISTS: 'a pool with this name already exists',
  EPOOL_DRAINED: 'the pool is drained and hands out no more sandboxes',
  EUSERNS_EXHAUSTED: 'every host id range of the id pool is held by a sandbox (userns: auto)',
  ENETWORK_UNAVAILABLE: 'the network helper a mode needs is not installed, or it could not set up the sandbox\'s network',
  EPORT_IN_USE: 'a host port of a port forward is already in use',
  EINSPECTOR_LISTEN: 'the live view cannot listen on the host and port asked for (taken, or not an address of this host)',
  EINSPECTOR_DENIED: 'the live view refused an action: it is read-only, or the token is wrong',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorContext {
  readonly sandboxId?: string;
  readonly containerId?: string;
  readonly pid?: number;
  /** The launch or control step that failed (`pivot_root`, `connect`). */
  readonly step?: string;
  readonly errno?: number;
  /** The JSON path of a bad config field (`process.args`). */
  readonly field?: string;
  readonly verb?: string;
  readonly state?: string;
  readonly path?: string;
  /** The warm pool concerned (engine.pool). */
  readonly pool?: string;
}

/** Base class of every error paddock raises at its boundary. */
export class PaddockError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'PaddockError';
    this.code = code;
    this.context = context;
  }
}

/** Errors about a bundle or its config.json. */
export class SpecError extends PaddockError {
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown) {
    super(code, message, context, cause);
    this.name = 'SpecError';
  }
}

/** A native launch step failed: the message names the step and errno. */
export class LaunchError extends PaddockError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super('ELAUNCH_STEP', message, context, cause);
    this.name = 'LaunchError';
  }
}

/** Lookups and state checks: unknown ids, verbs not allowed now. */
export class StateError extends PaddockError {
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown) {
    super(code, message, context, cause);
    this.name = 'StateError';
  }
}

/** Control/event channel and protocol failures. */
export class ChannelError extends PaddockError {
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown) {
    super(code, message, context, cause);
    this.name = 'ChannelError';
  }
}

/** Warm pools: duplicate names, acquire after drain. */
export class PoolError extends PaddockError {
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, cause?: unknown) {
    super(code, message, context, cause);
    this.name = 'PoolError';
  }
}

export function isPaddockError(e: unknown, code?: ErrorCode): e is PaddockError {
  return e instanceof PaddockError && (code === undefined || e.code === code);
}

/** A machine keeps a failure as plain data (FailureInfo, machines/types.ts): a typed error again for the caller. */
export function restoreError(
  info: { code: string; message: string; step?: string; errno?: number; field?: string; path?: string } | undefined,
  sandboxId: string,
  fallback: 'ELAUNCH_STEP' | 'ECONTROL',
  containerId?: string,
): PaddockError {
  const code = (info?.code ?? fallback) as ConstructorParameters<typeof PaddockError>[0];
  return new PaddockError(code, info?.message ?? 'failed', {
    sandboxId,
    ...(containerId ? { containerId } : {}),
    ...(info?.step ? { step: info.step } : {}),
    ...(info?.errno !== undefined ? { errno: info.errno } : {}),
    ...(info?.field !== undefined ? { field: info.field } : {}),
    ...(info?.path !== undefined ? { path: info.path } : {}),
  });
}
