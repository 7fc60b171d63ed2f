/**
 * paddock — a sandbox supervision engine for Node.js.
 *
 * `createEngine` launches sandboxes (paddock-init in fresh Linux namespaces), runs
 * OCI bundles as containers inside them and tracks everything as XState machines;
 * commands are async methods, events an rxjs Observable.
 */
export { createEngine } from './actors/engine';
export type {
  Engine,
  EngineOptions,
  EngineEvent,
  CreateSandboxOptions,
  SandboxHandle,
  StartContainerOptions,
  ContainerHandle,
  ExecOptions,
  ExecResult,
  ProcessEntry,
  SandboxSummary,
  ContainerSummary,
  LogsOptions,
  StdioHandles,
  ExitStatus,
  LifecycleStatus,
  StdioMode,
  ContainerStats,
  EngineCommand,
  CommandOutput,
  ShutdownOptions,
  ShutdownReport,
  HealthOptions,
  RestartOptions,
  Pool,
  PoolOptions,
  PoolStats,
  PoolEvent,
  PooledSandbox,
  AcquireOptions,
} from './actors/api';
export type { SupervisorSpec, SupervisorHandle, SupervisorStatus, SupervisorEvent, LeafSpec } from './actors/supervision-tree';
export { PaddockError, SpecError, LaunchError, StateError, ChannelError, PoolError, ErrorCodes, isPaddockError } from './actors/errors';
export type { ErrorCode, ErrorContext } from './actors/errors';
export { sandboxMachine, containerMachine, processMachine, supervisorMachine, restartMachine, groupMachine, poolMachine } from './machines';
