/**
 * paddock — a sandbox supervision engine for Node.js.
 *
 * `createEngine` launches sandboxes (paddock-init in fresh Linux namespaces), runs
 * OCI bundles as containers inside them and tracks everything as XState machines;
 * commands are async methods, events an rxjs Observable.
 */
export { createEngine } from './actors/engine/engine';
/**
 * The secure builder: a complete OCI config (paddock's default spec, a user namespace,
 * a network namespace with only loopback, a read-only rootfs, cgroup limits) from a
 * {@link SandboxTemplate}. `engine.createSandbox(id, template)` uses it and gives the
 * sandbox a host id range of its own (`userns: 'auto'`).
 */
export { buildSpec, USERNS_ANNOTATION } from './specs/builder';
/** A template, its limits and a host id range, as {@link buildSpec} takes them. */
export type { SandboxTemplate, SandboxLimits, HostIdRange } from './specs/builder';
/** The default pool of host ids for `userns: 'auto'` (EngineOptions.idPool). */
export { DEFAULT_ID_POOL } from './actors/sandbox/id-pool';
/** A pool of host ids, `{ start, size }` (EngineOptions.idPool). */
export type { IdPool } from './actors/sandbox/id-pool';
export type { KvmInfo, KvmExtension } from './native/facade';
export type { RuncStats, RuncCpuUsage, RuncMemoryEntry, RuncThrottling, RuncBlkioEntry } from './actors/observe/runc-stats';
export type { SandboxStacks, ContainerStacks, ProcessStacks, ContainerProcessStacks, ThreadStack } from './actors/observe/stacks';
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
  StatsOptions,
  CheckpointOptions,
  CheckpointResult,
  RestoreOptions,
  StatsEvent,
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
  NetworkEvent,
  NetworkMode,
  NetworkOption,
  NetworkOptions,
  PortForward,
} from './actors/engine/api';
export type { NetworkInterfaceStats } from './actors/network';
export type { InspectorServer, ServeInspectorOptions, InspectOption, InspectUrl, StatelyInspector } from './actors/engine/api';
export type { SupervisorSpec, SupervisorHandle, SupervisorStatus, SupervisorEvent, LeafSpec } from './actors/engine/api';
export { PaddockError, SpecError, LaunchError, StateError, ChannelError, PoolError, ErrorCodes, isPaddockError } from './base/errors';
export type { ErrorCode, ErrorContext } from './base/errors';
export { sandboxMachine, containerMachine, processMachine, supervisorMachine, restartMachine, groupMachine, poolMachine } from './machines';
