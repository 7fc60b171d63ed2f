import type { RestartOptions } from '../../machines/restart-policy';
import type {
  AcquireOptions,
  CheckpointOptions,
  RestoreOptions,
  CreateSandboxOptions,
  EngineOptions,
  ExecOptions,
  HealthOptions,
  InspectUrl,
  ServeInspectorOptions,
  LogsOptions,
  PoolOptions,
  ShutdownOptions,
  StartContainerOptions,
  StatsOptions,
} from './api';
import { knownKeys } from '../../base/options';

/*
 * The keys of every public options type, for checkOptionKeys (base/options.ts).
 * Written through knownKeys<T>(), so the compiler fails when a type gains or loses a
 * key and its list here is not changed with it.
 */

export const ENGINE_KEYS = knownKeys<EngineOptions>()({
  stateDir: 1,
  logger: 1,
  native: 1,
  initPath: 1,
  criuPath: 1,
  initStderr: 1,
  requestTimeoutMs: 1,
  reattach: 1,
  attachChannels: 1,
  exitReports: 1,
  lockTimeoutMs: 1,
  cgroups: 1,
  systemdCgroup: 1,
  systemdRunning: 1,
  lsms: 1,
  seccompCacheDir: 1,
  launchInit: 1,
  inspect: 1,
  bridge: 1,
  idPool: 1,
  logSizeMax: 1,
});

export const CREATE_SANDBOX_KEYS = knownKeys<CreateSandboxOptions>()({
  noPivot: 1,
  health: 1,
  stdio: 1,
  consoleSocket: 1,
  prepare: 1,
  restart: 1,
  userns: 1,
  idmapRootfs: 1,
  logSizeMax: 1,
  kvm: 1,
  network: 1,
});

export const START_CONTAINER_KEYS = knownKeys<StartContainerOptions>()({ stdio: 1, restart: 1, consoleSocket: 1, prepare: 1 });

export const EXEC_KEYS = knownKeys<ExecOptions>()({
  args: 1,
  env: 1,
  cwd: 1,
  user: 1,
  stdio: 1,
  capabilities: 1,
  addCapabilities: 1,
  rlimits: 1,
  noNewPrivileges: 1,
  terminal: 1,
  consoleSocket: 1,
});
export const EXEC_USER_KEYS = knownKeys<NonNullable<ExecOptions['user']>>()({ uid: 1, gid: 1, additionalGids: 1 });
export const EXEC_CAPS_KEYS = knownKeys<NonNullable<ExecOptions['capabilities']>>()({ bounding: 1, effective: 1, permitted: 1, inheritable: 1, ambient: 1 });

export const POOL_KEYS = knownKeys<PoolOptions>()({
  ...{ noPivot: 1, health: 1, stdio: 1, consoleSocket: 1, prepare: 1, restart: 1, userns: 1, idmapRootfs: 1, logSizeMax: 1, kvm: 1, network: 1 },
  bundle: 1,
  size: 1,
  maxAgeMs: 1,
  backoff: 1,
} as const);
export const POOL_BACKOFF_KEYS = knownKeys<NonNullable<PoolOptions['backoff']>>()({ initialMs: 1, maxMs: 1, factor: 1 });
export const ACQUIRE_KEYS = knownKeys<AcquireOptions>()({ timeoutMs: 1 });
export const SHUTDOWN_KEYS = knownKeys<ShutdownOptions>()({ mode: 1, graceMs: 1 });
export const LOGS_KEYS = knownKeys<LogsOptions>()({ stream: 1, follow: 1, pid: 1 });
export const STATS_KEYS = knownKeys<StatsOptions>()({ intervalMs: 1, containerId: 1 });
export const HEALTH_KEYS = knownKeys<HealthOptions>()({ intervalMs: 1, timeoutMs: 1, failureThreshold: 1 });
export const RESTART_KEYS = knownKeys<RestartOptions>()({ policy: 1, maxRestarts: 1, periodMs: 1, backoff: 1, resetAfterMs: 1 });
export const RESTART_BACKOFF_KEYS = ['initialMs', 'maxMs', 'factor', 'jitter'] as const;
export const CHECKPOINT_KEYS = knownKeys<CheckpointOptions>()({
  imagePath: 1,
  leaveRunning: 1,
  tcpEstablished: 1,
  extUnixSk: 1,
  shellJob: 1,
  fileLocks: 1,
  workPath: 1,
  manageCgroupsMode: 1,
  preDump: 1,
});
export const RESTORE_KEYS = knownKeys<RestoreOptions>()({
  imagePath: 1,
  tcpEstablished: 1,
  extUnixSk: 1,
  shellJob: 1,
  fileLocks: 1,
  workPath: 1,
  manageCgroupsMode: 1,
  logSizeMax: 1,
  stdio: 1,
});
export const WAIT_KEYS = ['timeoutMs'] as const;
export const SIGNAL_KEYS = ['pid', 'all'] as const;
export const SERVE_INSPECTOR_KEYS = knownKeys<ServeInspectorOptions>()({ port: 1, host: 1, token: 1, actions: 1 });
export const INSPECT_URL_KEYS = knownKeys<InspectUrl>()({ url: 1 });
