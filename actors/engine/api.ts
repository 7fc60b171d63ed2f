import type { Observable } from 'rxjs';
import type { createInspector } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';
import type { Readable, Writable } from 'node:stream';
import type { ExitStatus, LifecycleStatus } from '../../machines/types';
import type { KvmInfo, LaunchedInit, LaunchInitRequest, NativeFacade } from '../../native/facade';
import type { SandboxStacks } from '../observe/stacks';
import type { RuncStats } from '../observe/runc-stats';
import type { PaddockError } from '../../base/errors';
import type { Logger } from '../../base/logger';
import type { ContainerStats } from '../observe/proc-stats';
import type { CgroupLayout } from '../cgroups/sandbox-cgroup';
import type { HostLsms } from '../containers/lsm';
import type { OciResources } from '../../specs/oci';
import type { StdioMode } from '../sandbox/state-store';
import type { RestartOptions } from '../../machines/restart-policy';
import type { GroupEmitted, GroupStrategy } from '../../machines/group.machine';
import type { RestartPolicyName } from '../../machines/restart-policy';
import type { SandboxTemplate } from '../../specs/builder';
import type { IdPool } from '../sandbox/id-pool';
import type { NetworkOption, ResolvedForward } from '../../specs/network';

export type { ExitStatus, LifecycleStatus, StdioMode, ContainerStats, RestartOptions, SandboxTemplate, IdPool };
export type { NetworkMode, NetworkOption, NetworkOptions, PortForward } from '../../specs/network';

/** Options of {@link createEngine}. */
/** engine.checkpoint's options (runc's `checkpoint` flags). */
export interface CheckpointOptions {
  /** Absolute directory for the images: made when missing, refused when not empty. */
  readonly imagePath: string;
  /** Keep the container running after the dump (default false: it is killed, the sandbox stops). */
  readonly leaveRunning?: boolean;
  /** Dump established TCP connections (CRIU's --tcp-established). */
  readonly tcpEstablished?: boolean;
  /** Allow unix sockets whose peer is outside the tree (--ext-unix-sk). */
  readonly extUnixSk?: boolean;
  /** The tree is a shell job: its session or process group leader is outside it (--shell-job). */
  readonly shellJob?: boolean;
  /** Dump file locks (--file-locks). */
  readonly fileLocks?: boolean;
  /** Absolute directory for CRIU's log and work files (default imagePath). */
  readonly workPath?: string;
  /** CRIU's --manage-cgroups mode (default soft). */
  readonly manageCgroupsMode?: 'soft' | 'full' | 'strict' | 'ignore';
  /**
   * A pre-dump (runc --pre-dump): needs the kernel's dirty-page tracking; ENOT_SUPPORTED
   * where it is missing (as here).
   */
  readonly preDump?: boolean;
}

export interface CheckpointResult {
  readonly imagePath: string;
  /** What the sandbox is after the dump: running (leaveRunning) or stopped. */
  readonly state: 'running' | 'stopped';
}

/** engine.restore's options (runc's `restore` flags). */
export interface RestoreOptions {
  /** Absolute directory of a checkpoint made by engine.checkpoint. */
  readonly imagePath: string;
  readonly tcpEstablished?: boolean;
  readonly extUnixSk?: boolean;
  readonly shellJob?: boolean;
  readonly fileLocks?: boolean;
  /** Absolute directory for CRIU's restore log (default imagePath). */
  readonly workPath?: string;
  /**
   * CRIU's --manage-cgroups mode. Default 'ignore': CRIU runs inside the new sandbox's
   * cgroup, so the restored tree is in it without CRIU making the old paths again.
   */
  readonly manageCgroupsMode?: 'soft' | 'full' | 'strict' | 'ignore';
  /** As createSandbox's. */
  readonly logSizeMax?: number;
  /**
   * Where the restored process's stdio goes: 'pipe' (default) the new sandbox's stdin
   * FIFO and log files; 'inherit' this process's own fds 0–2, as runc's restore gives
   * the restored container its caller's stdio (the CLI).
   */
  readonly stdio?: 'pipe' | 'inherit';
}

export interface EngineOptions {
  /** Root of the state directory (runc's --root); one folder per sandbox below it. */
  readonly stateDir: string;
  /** Root pino logger; the engine derives one child per sandbox and container. */
  readonly logger?: Logger;
  /**
   * The criu binary for checkpoint/restore (docs/decisions/0040). Default: $PADDOCK_CRIU,
   * else paddock's own build (/var/lib/paddock/criu/sbin/criu, $PADDOCK_CRIU_PREFIX),
   * else `criu` on PATH; the first that passes `criu check`.
   */
  readonly criuPath?: string;
  /** Native layer; tests pass a fake. Defaults to the ffi-rs facade over libpaddock. */
  readonly native?: NativeFacade;
  /** paddock-init binary; defaults to the one built in native/build. */
  readonly initPath?: string;
  /**
   * @deprecated paddock-init writes its diagnostics to `<stateDir>/<id>/init.log`
   * (capped) and holds none of the supervisor's stdio, as conmon detaches
   * (docs/decisions/0031): `ignore` is the default. `inherit` still hands init the
   * supervisor's stderr and copies each diagnostic there too, for debugging; the
   * supervisor's caller then reads that stderr until every such sandbox is gone. A
   * sandbox created with `stdio: 'inherit'` gets the supervisor's fds 0–2 regardless.
   */
  readonly initStderr?: 'inherit' | 'ignore';
  /**
   * Default {@link CreateSandboxOptions.logSizeMax} for this engine's sandboxes
   * (bytes; default 4 MiB).
   */
  readonly logSizeMax?: number;
  /** Timeout of one control request to paddock-init, ms (default 5000). */
  readonly requestTimeoutMs?: number;
  /**
   * Reattach to the sandboxes already in `stateDir` (default true): restore each
   * machine from its snapshot, reopen pidfds, reconnect channels, and read every exit
   * status recorded while no supervisor ran.
   */
  readonly reattach?: boolean;
  /**
   * false: sandboxes are attached without connecting their control and event channels,
   * for callers that only read what they find (`paddock state`, `paddock list`): a
   * sandbox's status then comes from its machines, exits.log and init's pidfd, and any
   * command that needs init fails with ECONTROL ("attached read-only"). Default true.
   */
  readonly attachChannels?: boolean;
  /**
   * When an exit's report is recorded as made, relative to the `events$` emission
   * (decision 0017). 'at-most-once' (default): recorded just before, so a supervisor
   * SIGKILLed in between loses that one report. 'at-least-once': recorded just after, so
   * it repeats that one report instead, with the same `id`: a consumer that dedupes by
   * `id` sees every exit exactly once, across any number of supervisor deaths.
   */
  readonly exitReports?: 'at-most-once' | 'at-least-once';
  /**
   * How long a call waits for another process that holds a sandbox's lock (default 0:
   * fail at once with ELOCKED). The CLI waits, so concurrent calls are serialised.
   */
  readonly lockTimeoutMs?: number;
  /**
   * Where cgroups are mounted (default: detected from /proc/self/mountinfo); false runs
   * sandboxes without cgroups (a spec with limits then fails). Tests pass a temp tree.
   */
  readonly cgroups?: CgroupLayout | false;
  /**
   * runc's `--systemd-cgroup`: a root container's `linux.cgroupsPath` is
   * `slice:prefix:name` (default `system.slice:paddock:<id>`) and the sandbox's cgroup
   * is the directory systemd would give that scope (`system.slice/prefix-name.scope`).
   * Only on a host where systemd does not run: paddock cannot ask systemd for a scope,
   * so with systemd running a create fails with ECONFIG_UNSUPPORTED
   * (docs/decisions/0018). Default false: cgroupfs paths.
   */
  readonly systemdCgroup?: boolean;
  /** Whether systemd runs this host (default: `/run/systemd/system` exists). Tests override it. */
  readonly systemdRunning?: boolean;
  /**
   * Which LSMs the host runs, for the AppArmor/SELinux fields of a spec (actors/containers/lsm.ts);
   * default: detected from /sys. A field whose LSM is off is skipped with a warning.
   */
  readonly lsms?: HostLsms;
  /**
   * A directory where compiled seccomp filters are kept between processes
   * (actors/containers/seccomp-cache.ts), for callers that start a process per container: the CLI
   * keeps them next to its bundle. An entry is used only for the identical profile on
   * the same libseccomp. Process-wide from the engine's creation. Default: none.
   */
  readonly seccompCacheDir?: string;
  /**
   * Starts paddock-init for a new sandbox instead of `native.launchInit` in this
   * process. paddockd passes one that has the calling client start it, so that init is
   * the child of the runtime call as conmon and containerd's shim expect
   * (docs/decisions/0044). It may return undefined to leave that launch to `native`.
   */
  readonly launchInit?: (req: LaunchInitRequest) => Promise<LaunchedInit> | undefined;
  /**
   * The bridge of `network: { mode: 'bridge' }` sandboxes: its name (default `paddock0`)
   * and the IPv4 subnet their addresses come from (default `10.213.0.0/24`; the bridge
   * has its first address), and its MTU. Addresses are recorded in `<stateDir>/.bridge.json`. A subnet
   * that overlaps a route of the host's is refused at the first bridge create.
   */
  readonly bridge?: {
    readonly name?: string;
    readonly subnet?: string;
    /**
     * Of the bridge and every sandbox's veth (default 1500). A forward from the host's
     * loopback runs about five times faster at 65520 (docs/decisions/0041); what leaves
     * the host still leaves at its own interface's MTU.
     */
    readonly mtu?: number;
  };
  /**
   * Where every machine actor of the engine reports (sandbox, container, process,
   * supervisor, restart, pool, health, group), with ids that read as the sandbox and
   * container names: an inspection function or observer, an inspector from
   * @statelyai/inspect (`createWebSocketInspector({ url })`, `createBrowserInspector()`,
   * `createSkyInspector()`), or `{ url: 'ws://…' }` for a WebSocket inspector paddock
   * connects to itself (events are dropped, never queued without bound, while it is
   * slow or away). Snapshots and events are sanitised: no env values, no fds.
   * See also {@link Engine.serveInspector}.
   */
  readonly inspect?: InspectOption;
  /**
   * Host ids handed out to sandboxes with `userns: 'auto'` (templates, and bundles with
   * the `paddock.userns: auto` annotation): one range of 65,536 ids per sandbox, from
   * `start` (at least 65536: ids below are the host's own) for `size` ids (a multiple of
   * 65536). Who holds which range is recorded in the state dir (`.userns.json`), so every
   * engine and CLI call on one state dir shares the pool. Default: 4096 ranges from
   * 0x60000000 (1,610,612,736), above any id a host gives its users and below 2^31
   * (docs/decisions/0028). Bad values are an EINVALID_ARGUMENT at createEngine.
   */
  readonly idPool?: IdPool;
}

export interface CreateSandboxOptions {
  /** Use MS_MOVE + chroot instead of pivot_root (runc's --no-pivot, for ramfs roots). */
  readonly noPivot?: boolean;
  /**
   * Liveness probe: paddock-init is pinged over the control channel; a sandbox that stops
   * answering is killed (SIGKILL through its pidfd), so its restart policy restarts it or
   * it stays stopped. `true` uses the defaults (10 s interval, 2 s timeout, 3 misses).
   */
  readonly health?: HealthOptions | boolean;
  /**
   * stdio of the root container. 'pipe' (default): output goes to log files in the
   * state dir and is returned as streams; stdin is a FIFO. 'inherit': the
   * supervisor's own fds 0–2. 'ignore': /dev/null.
   */
  readonly stdio?: StdioMode;
  /**
   * Cap of each container output file of the sandbox (`stdio: 'pipe'`: the root's,
   * pod containers' and exec'd processes' `.stdout`/`.stderr`), in bytes, like conmon's
   * `log-size-max`. paddock-init relays the output and, when a file would grow past the
   * cap, renames it to `<name>.1` (replacing the previous one) and begins a new file
   * with a marker line, so a process holds at most about twice the cap per stream; the
   * streams and `engine.logs({ follow })` go on in the new file. It holds while no
   * supervisor runs. Default: `EngineOptions.logSizeMax`, else 4 MiB; at least 4096;
   * 0: no cap (the process writes the file itself, no relay). docs/decisions/0031.
   */
  readonly logSizeMax?: number;
  /**
   * With `process.terminal: true` (and only then): a listening unix socket that gets
   * the pty master with SCM_RIGHTS, as runc's `--console-socket`. The root container's
   * process is then made at create, its terminal handed over, and it waits before
   * execve for startRoot (docs/decisions/0012). Must already exist.
   */
  readonly consoleSocket?: string;
  /**
   * Build the root container now (mounts, pivot_root, identity, createContainer hooks)
   * and hold it just before execve, so startRoot is one round trip to paddock-init — as
   * runc's create does. Warm pools and the CLI's `create` use it. Default false.
   */
  readonly prepare?: boolean;
  /**
   * Restart policy of the sandbox (its root container's exit ends it): 'never',
   * 'on-failure' or 'always', with backoff and an OTP restart intensity. Without it the
   * sandbox is not supervised. Defaults and semantics: docs/decisions/0015.
   */
  readonly restart?: RestartOptions;
  /**
   * 'auto': the sandbox gets a user namespace whose ids 0..65535 map to a range of host
   * ids of its own, taken from the engine's `idPool` (replacing the spec's mappings, or
   * adding a user namespace), recorded in the state dir and freed on destroy; its rootfs
   * is shown through an idmapped mount (see `idmapRootfs`). An exhausted pool is
   * EUSERNS_EXHAUSTED and nothing is made. The default for a template; for a bundle, also
   * asked by the annotation `"paddock.userns": "auto"` in its config.json (the CLI's way).
   */
  readonly userns?: 'auto';
  /**
   * With `userns: 'auto'`: show the rootfs to the sandbox through an idmapped mount
   * (default true), so files owned by host root look owned by the sandbox's root and
   * nothing on disk is chowned. false: the rootfs is seen through the user namespace
   * as it is (files of unmapped host ids show as nobody), for filesystems that cannot
   * be idmapped.
   */
  readonly idmapRootfs?: boolean;
  /**
   * Give the container /dev/kvm (docs/decisions/0038): a linux.devices entry (0666,
   * root's) and a device-cgroup allow for c 10:232 are added to the config, as
   * podman's `--device /dev/kvm` writes them; in a user namespace the node is one the
   * supervisor made for this sandbox, owned by its root. A host where /dev/kvm does not
   * work is EKVM_UNAVAILABLE, and nothing is made (also for a bundle that lists
   * /dev/kvm itself).
   */
  readonly kvm?: boolean;
  /**
   * The sandbox's network (docs/decisions/0041): `'none'` (loopback only in a network
   * namespace of its own), `'host'` (the host's network namespace, no interface
   * touched), or `{ mode: 'user', forwards, egress, dns }`: pasta (Debian's `passt`)
   * gives it an interface and forwards host ports into it (on 127.0.0.1 unless
   * `hostIp` says otherwise); the helper is supervised, restarted per `restart` or the
   * sandbox killed, with `network` events. `{ mode: 'bridge', forwards, nat,
   * isolated }` (root): a veth into the engine's bridge (EngineOptions.bridge), forwards
   * and NAT by nftables, isolated from other sandboxes unless both say `isolated:
   * false`. Absent: what the config says (a template: its own `network`, else
   * `'none'`). Bad values, a port in use or a missing `pasta`/`nft` are typed errors at
   * create, and nothing is made.
   */
  readonly network?: NetworkOption;
}

export interface HealthOptions {
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly failureThreshold?: number;
}

export interface StdioHandles {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
}

export interface SandboxHandle {
  readonly id: string;
  /** Host pid of paddock-init (what runc's --pid-file would hold). */
  readonly pid: number;
  readonly rootContainerId: string;
  /** Streams of the root container when stdio is 'pipe'. */
  readonly stdio?: StdioHandles;
}

export interface StartContainerOptions {
  readonly stdio?: StdioMode;
  /** Restart policy of this container inside its sandbox (see CreateSandboxOptions.restart). */
  readonly restart?: RestartOptions;
  /** As CreateSandboxOptions.consoleSocket, for a container added to a sandbox. */
  readonly consoleSocket?: string;
  /** As CreateSandboxOptions.prepare, for addContainer. */
  readonly prepare?: boolean;
}

export interface ContainerHandle {
  readonly sandboxId: string;
  readonly containerId: string;
  readonly pid: number;
  readonly hostPid: number;
  readonly stdio?: StdioHandles;
}

export interface ExecOptions {
  readonly args: readonly string[];
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly user?: { readonly uid: number; readonly gid: number; readonly additionalGids?: readonly number[] };
  readonly stdio?: StdioMode;
  /** Override the container's process.capabilities (OCI form: lists of CAP_* names per set). */
  readonly capabilities?: {
    readonly bounding?: readonly string[];
    readonly effective?: readonly string[];
    readonly permitted?: readonly string[];
    readonly inheritable?: readonly string[];
    readonly ambient?: readonly string[];
  };
  /** Override the container's process.rlimits. */
  readonly rlimits?: readonly { readonly type: string; readonly soft: number; readonly hard: number }[];
  /** Override the container's process.noNewPrivileges. */
  readonly noNewPrivileges?: boolean;
  /**
   * CAP_* names added to the bounding, effective and permitted sets of the process's
   * capabilities (the container's, or `capabilities` when given), as `runc exec --cap`.
   */
  readonly addCapabilities?: readonly string[];
  /**
   * Give the process a terminal made in the container; its master goes to
   * `consoleSocket` (required with it, refused without it). `stdio` is then unused.
   */
  readonly terminal?: boolean;
  readonly consoleSocket?: string;
}

export interface ExecResult {
  /** Pid as paddock-init sees it (use it with waitPid and signal). */
  readonly pid: number;
  readonly hostPid: number;
  readonly stdin?: Writable;
  readonly stdout?: Readable;
  readonly stderr?: Readable;
}

export interface ProcessEntry {
  readonly containerId: string;
  /** Pid in paddock-init's view, when init started it; undefined for descendants. */
  readonly pid?: number;
  readonly hostPid: number;
  readonly ppid: number;
  readonly command: string;
  readonly kind: 'container' | 'exec' | 'descendant';
}

export interface ContainerSummary {
  readonly id: string;
  readonly status: LifecycleStatus;
  readonly pid?: number;
  readonly hostPid?: number;
  readonly exit?: ExitStatus;
  readonly bundle: string;
}

export interface SandboxSummary {
  readonly id: string;
  readonly status: LifecycleStatus;
  readonly pid?: number;
  readonly bundle: string;
  /** ISO time of createSandbox. */
  readonly createdAt: string;
  readonly rootContainerId?: string;
  readonly containers: readonly ContainerSummary[];
  readonly exit?: ExitStatus;
}

export type EngineEvent =
  | { readonly type: 'state'; readonly sandboxId: string; readonly containerId?: string; readonly pid?: number; readonly status: string }
  | {
      readonly type: 'exit';
      readonly sandboxId: string;
      readonly containerId: string;
      readonly pid: number;
      readonly kind: 'container' | 'exec';
      readonly exit: ExitStatus;
      /**
       * The same for every report of this exit, whichever supervisor makes it: the
       * sandbox, container and pid with init's reap time (or, for a lost exit, the host
       * pid of the init that died). A consumer dedupes by it (decision 0017).
       */
      readonly id: string;
      /** paddock-init died before it could record this exit (the kernel killed the process with it): the status is unknown. */
      readonly lost?: true;
    }
  | { readonly type: 'error'; readonly sandboxId?: string; readonly error: PaddockError }
  /**
   * The OOM killer acted in the sandbox's memory cgroup (its limit was hit): runc's
   * `oom` event. `oomKills` is the cgroup's total so far. The killed process's exit
   * (SIGKILL) is reported as an `exit` event of its own.
   */
  | { readonly type: 'oom'; readonly sandboxId: string; readonly containerId: string; readonly oomKills: number }
  /** The health probe gave up on the sandbox; the engine kills it (its exit follows). */
  | { readonly type: 'unhealthy'; readonly sandboxId: string; readonly failures: number; readonly reason: string }
  /** A supervised child ended and will be relaunched after `delayMs` (attempt 1 after a healthy run). */
  | {
      readonly type: 'restart.scheduled';
      readonly sandboxId: string;
      readonly containerId?: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly exit: ExitStatus;
    }
  /** The backoff is over: the exited instance is being replaced. */
  | { readonly type: 'restart.launched'; readonly sandboxId: string; readonly containerId?: string; readonly attempt: number }
  /** More than maxRestarts restarts within periodMs: the child is left stopped. */
  | { readonly type: 'restart.gaveUp'; readonly sandboxId: string; readonly containerId?: string; readonly reason: string; readonly restarts: number }
  /** Supervision of the child ended without giving up: its policy does not restart this exit, or the user stopped it. */
  | { readonly type: 'restart.stopped'; readonly sandboxId: string; readonly containerId?: string; readonly reason: string }
  | NetworkEvent
  | PoolEvent;

/**
 * A sandbox's network changed (docs/decisions/0041): its helper is `up` (the sandbox
 * can reach out, and `hostAddress` is the address at which it reaches the host's
 * loopback) or `down` (with `restartInMs` when it will be started again, `final` when
 * the sandbox is killed for it); `forwards` are bound or unbound on the host.
 */
export type NetworkEvent =
  | {
      readonly type: 'network';
      readonly sandboxId: string;
      readonly event: 'up';
      readonly mode: 'user' | 'bridge';
      /** `user`: pasta's host pid. */
      readonly helperPid?: number;
      /** `bridge`: the sandbox's address on the bridge. */
      readonly address?: string;
      readonly hostAddress?: string;
      /** Whether it reaches out (`user`: egress; `bridge`: nat). */
      readonly egress: boolean;
    }
  | { readonly type: 'network'; readonly sandboxId: string; readonly event: 'down'; readonly mode: 'user' | 'bridge'; readonly reason: string; readonly restartInMs?: number; readonly final?: true }
  | { readonly type: 'network'; readonly sandboxId: string; readonly event: 'forwards'; readonly mode: 'user' | 'bridge'; readonly forwards: readonly ResolvedForward[]; readonly bound: boolean };

/** A command for {@link Engine.run}; `id` correlates it with its result. */
export type EngineCommand =
  | { readonly id: string; readonly type: 'createSandbox'; readonly sandboxId: string; readonly bundle: string | SandboxTemplate; readonly options?: CreateSandboxOptions }
  | { readonly id: string; readonly type: 'start'; readonly sandboxId: string }
  | {
      readonly id: string;
      readonly type: 'startContainer';
      readonly sandboxId: string;
      readonly containerId: string;
      readonly bundle?: string;
      readonly options?: StartContainerOptions;
    }
  | { readonly id: string; readonly type: 'exec'; readonly sandboxId: string; readonly containerId?: string; readonly options: ExecOptions }
  | {
      readonly id: string;
      readonly type: 'signal';
      readonly sandboxId: string;
      readonly containerId?: string;
      readonly signal: string | number;
      readonly options?: { readonly pid?: number; readonly all?: boolean };
    }
  | { readonly id: string; readonly type: 'wait'; readonly sandboxId: string; readonly containerId?: string; readonly timeoutMs?: number }
  | { readonly id: string; readonly type: 'destroy' | 'pause' | 'resume'; readonly sandboxId: string }
  | { readonly id: string; readonly type: 'processes'; readonly sandboxId: string; readonly containerId?: string }
  | { readonly id: string; readonly type: 'list' }
  | { readonly id: string; readonly type: 'addContainer'; readonly sandboxId: string; readonly containerId: string; readonly bundle: string; readonly options?: StartContainerOptions }
  /** What the log file holds now (not followed), as text. */
  | { readonly id: string; readonly type: 'logs'; readonly sandboxId: string; readonly containerId?: string; readonly options?: Omit<LogsOptions, 'follow'> }
  /** One sample of {@link Engine.stats$} (its `data`). */
  | { readonly id: string; readonly type: 'stats'; readonly sandboxId: string; readonly containerId?: string }
  | { readonly id: string; readonly type: 'stacks'; readonly sandboxId: string }
  /** engine.checkpoint; its result is the CheckpointResult. */
  | { readonly id: string; readonly type: 'checkpoint'; readonly sandboxId: string; readonly options: CheckpointOptions }
  /** engine.restore; its result is the new sandbox's id, init pid and root container. */
  | { readonly id: string; readonly type: 'restore'; readonly sandboxId: string; readonly bundle: string; readonly options: RestoreOptions };

/** What {@link Engine.run} emits: results and errors by command id, and the engine's events. */
export type CommandOutput =
  | EngineEvent
  | { readonly type: 'command.result'; readonly commandId: string; readonly command: string; readonly sandboxId?: string; readonly value: unknown }
  | { readonly type: 'command.error'; readonly commandId: string; readonly command: string; readonly sandboxId?: string; readonly error: PaddockError };

export interface ShutdownOptions {
  /**
   * 'detach' (default) leaves every sandbox running for a later createEngine on the same
   * state dir; 'stop' sends SIGTERM to every process, SIGKILL after `graceMs`, waits on
   * the pidfds, then destroys the sandboxes.
   */
  readonly mode?: 'detach' | 'stop';
  /** Grace between SIGTERM and SIGKILL in 'stop' mode, ms (default 10000). */
  readonly graceMs?: number;
}

export interface ShutdownReport {
  /** Sandboxes whose processes exited within the grace period. */
  readonly stopped: readonly string[];
  /** Sandboxes that were still running after it and were killed. */
  readonly killed: readonly string[];
  /** Sandboxes left running ('detach'). */
  readonly detached: readonly string[];
}

/**
 * What a warm pool reports on `events$`: a launch that failed (and when the next
 * one will be tried), and the end of a drain. Its members' own state changes are
 * ordinary `state` events.
 */
export type PoolEvent =
  | {
      readonly type: 'pool';
      readonly pool: string;
      readonly event: 'refillFailed';
      /** The member id whose launch failed. */
      readonly sandboxId: string;
      /** Consecutive failed launches so far. */
      readonly attempt: number;
      /** The backoff before the next launch. */
      readonly retryInMs: number;
      readonly error: PaddockError;
    }
  | { readonly type: 'pool'; readonly pool: string; readonly event: 'drained' };

/** Options of {@link Engine.pool}: the bundle and size, plus createSandbox's options for every member. */
export interface PoolOptions extends CreateSandboxOptions {
  /** OCI bundle of every member, or a template (each member then gets `userns: 'auto'`); validated once when the pool is made. */
  readonly bundle: string | SandboxTemplate;
  /** Members kept created and idle (1 to 10000). */
  readonly size: number;
  /** Idle members older than this are destroyed and replaced (default: kept until used). */
  readonly maxAgeMs?: number;
  /** Delay between failed launches: initialMs × factor^(n-1), capped at maxMs (default 200 ms × 2 up to 30 s). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number; readonly factor?: number };
}

export interface AcquireOptions {
  /** How long to wait for a member when none is idle (default 30000); ETIMEOUT after. */
  readonly timeoutMs?: number;
}

/** A sandbox handed out by a pool: created, its root container started. It is the caller's now. */
export interface PooledSandbox extends SandboxHandle {
  readonly container: ContainerHandle;
}

export interface PoolStats {
  readonly name: string;
  /** `filling` (a launch in flight), `full`, `backingOff`, `draining`, `drained`. */
  readonly status: 'filling' | 'full' | 'backingOff' | 'draining' | 'drained';
  readonly size: number;
  readonly idle: number;
  /** Acquirers waiting for a member. */
  readonly waiting: number;
  /** Launches begun since the pool was made (failed ones included). */
  readonly launches: number;
  /** Consecutive failed launches (0 after a success). */
  readonly failures: number;
  readonly handedOut: number;
  /** Idle members destroyed for age. */
  readonly recycled: number;
}

/** A warm pool (engine.pool): members are created ahead; acquire() only starts one. */
export interface Pool {
  readonly name: string;
  /**
   * Takes the oldest idle member, starts its root container and hands it over (the
   * caller waits on and destroys it like any sandbox). Waits in line when none is
   * idle. EPOOL_DRAINED after drain().
   */
  acquire(opts?: AcquireOptions): Promise<PooledSandbox>;
  /** Rejects waiting acquirers, destroys idle members (and one still launching); later acquires fail. */
  drain(): Promise<void>;
  stats(): PoolStats;
}

export interface LogsOptions {
  readonly stream?: 'stdout' | 'stderr';
  /** Keep streaming until the process exits (default false: what is there now). */
  readonly follow?: boolean;
  /** An exec'd process's pid instead of the container's root process. */
  readonly pid?: number;
}

export interface StatsOptions {
  /** Time between two samples, ms (default 5000, runc's `--interval 5s`); a positive integer. */
  readonly intervalMs?: number;
  /** A pod container with a cgroup of its own (0022) instead of the sandbox's. */
  readonly containerId?: string;
}

/** One sample of {@link Engine.stats$}: runc's `events --stats` line. */
export interface StatsEvent {
  readonly type: 'stats';
  /** The container id (the sandbox's root container unless `containerId` was given). */
  readonly id: string;
  readonly data: RuncStats;
}

/** The engine: commands are async methods, events are an rxjs Observable. */
export interface Engine {
  readonly events$: Observable<EngineEvent>;
  /**
   * Creates a sandbox from an OCI bundle directory, or from a {@link SandboxTemplate}
   * (specs/builder.ts): the engine then writes the generated bundle (`config.json`, its
   * root.path the template's rootfs) into the sandbox's state folder (`<id>/bundle`),
   * and the sandbox gets `userns: 'auto'`.
   */
  createSandbox(id: string, bundle: string | SandboxTemplate, opts?: CreateSandboxOptions): Promise<SandboxHandle>;
  /**
   * Whether /dev/kvm works on this host, as the sandbox option `kvm` needs it: API
   * version 12 and KVM_CAP_USER_MEMORY, with the extensions that matter (irqchip,
   * hlt, vcpu counts...), or why not. Never throws but EENGINE_CLOSED.
   */
  kvm(): KvmInfo;
  startRoot(sandboxId: string): Promise<ContainerHandle>;
  /**
   * Registers a container in a running sandbox without starting it (`created`, persisted:
   * a later process may start it). The bundle is loaded and planned now.
   */
  addContainer(sandboxId: string, containerId: string, bundleDir: string, opts?: StartContainerOptions): Promise<ContainerSummary>;
  /**
   * Starts a container registered by addContainer; with a bundleDir, adds it first (and
   * on a failed start removes it again, leaving the sandbox as it was).
   */
  startContainer(sandboxId: string, containerId: string, bundleDir?: string, opts?: StartContainerOptions): Promise<ContainerHandle>;
  execute(sandboxId: string, containerId: string, opts: ExecOptions): Promise<ExecResult>;
  processes(sandboxId: string, containerId: string): Promise<ProcessEntry[]>;
  event(sandboxId: string, containerId: string): Promise<ContainerStats>;
  /**
   * Usage of the sandbox's cgroup (or a pod container's), one sample at once and then
   * every `intervalMs`, in runc's `events --stats` shape (cpu total/per-cpu/throttling,
   * memory usage/limit/cache/swap/failcnt, pids, blkio, hugetlb; v1 or v2, what the
   * host has). Completes when the sandbox stops. Throws at once, changing nothing:
   * EINVALID_ARGUMENT for an interval that is not a positive integer,
   * ESANDBOX_NOT_FOUND / ECONTAINER_NOT_FOUND for an unknown id, ENOT_SUPPORTED for a
   * sandbox without a cgroup.
   */
  stats$(sandboxId: string, opts?: StatsOptions): Observable<StatsEvent>;
  /**
   * runc's `update`: writes new linux.resources limits (memory, cpu, pids; what is not
   * given stays) into the running sandbox's cgroup, or a pod container's own. Returns
   * what was applied. EINVALID_ARGUMENT names a bad key (`memory.limit`).
   */
  update(sandboxId: string, resources: OciResources, opts?: { containerId?: string }): Promise<OciResources>;
  wait(sandboxId: string, containerId: string, opts?: { timeoutMs?: number }): Promise<ExitStatus>;
  waitPid(sandboxId: string, pid: number, opts?: { timeoutMs?: number }): Promise<ExitStatus>;
  signal(sandboxId: string, containerId: string, signal: string | number, opts?: { pid?: number; all?: boolean }): Promise<void>;
  destroyContainer(sandboxId: string, containerId: string): Promise<void>;
  destroy(sandboxId: string): Promise<void>;
  isRunning(sandboxId: string): boolean;
  list(): SandboxSummary[];
  logs(sandboxId: string, containerId: string, opts?: LogsOptions): Readable;
  /**
   * Freezes the sandbox's containers with the cgroup freezer (paddock-init stays awake):
   * running → paused. EINVALID_STATE unless running; ETIMEOUT/EFREEZER when the freeze
   * fails (thawed back, still running); ENOT_SUPPORTED without a cgroup.
   *
   * With `containerId` naming a container added to the sandbox (not its root), only
   * that container's own cgroup is frozen and only its machine goes to paused; the
   * sandbox must be running (EINVALID_STATE otherwise). Naming the root is the same as
   * pausing the sandbox.
   */
  pause(sandboxId: string, containerId?: string): Promise<void>;
  /** Thaws a paused sandbox (or, with `containerId`, one pod container paused alone): paused → running. EINVALID_STATE unless paused. */
  resume(sandboxId: string, containerId?: string): Promise<void>;
  /**
   * Checkpoints the sandbox's root container with CRIU (docs/decisions/0040): its process
   * tree is dumped into `imagePath`. running → checkpointing → stopped (the dump kills
   * the tree, and paddock-init exits with it), or back to running with `leaveRunning`
   * (or when the dump fails: CRIU resumes the tree). ECRIU_UNAVAILABLE without a working
   * criu (scripts/setup-criu.sh builds one), ESANDBOX_NOT_FOUND, EINVALID_STATE unless
   * running (a stopped sandbox, a second checkpoint in flight), EINVALID_ARGUMENT for a
   * bad or misspelt option or an image path that is not an empty directory,
   * ECRIU_FAILED with CRIU's own error lines.
   */
  checkpoint(sandboxId: string, opts: CheckpointOptions): Promise<CheckpointResult>;
  /**
   * Makes sandbox `sandboxId` from `bundle` (the checkpointed container's bundle, or one
   * with the same rootfs and mounts) and restores the checkpoint in `imagePath` as its
   * root container: creating → created → restoring → running. The restored tree is
   * paddock-init's child, and a sandbox like any other: exec, signal, wait, exits
   * reported, destroy. Its stdout and stderr go on into the new sandbox's log files.
   * ESANDBOX_EXISTS for an id in use, ECHECKPOINT_INVALID for an image path that holds
   * no paddock checkpoint, ECRIU_UNAVAILABLE, ECRIU_FAILED (the sandbox made for it is
   * destroyed again: nothing is left).
   */
  restore(sandboxId: string, bundle: string, opts: RestoreOptions): Promise<SandboxHandle>;
  /**
   * A dump for debugging a stuck sandbox (runsc's `debug --stacks`): paddock-init's
   * threads and its own process table, and for every process of every running
   * container each thread's state, wchan, syscall and kernel stack
   * (`/proc/<pid>/task/<tid>/stack`), grouped by container, root first.
   * `paddock debug stacks ID` prints it. ESANDBOX_NOT_FOUND for an unknown id.
   */
  stacks(sandboxId: string): Promise<SandboxStacks>;
  /**
   * Reattaches one sandbox of the state dir, for callers that created the engine with
   * `reattach: false` (one-shot tools such as the CLI). ESANDBOX_NOT_FOUND if unknown.
   */
  attach(sandboxId: string): Promise<void>;
  /**
   * Reattaches every sandbox of the state dir not attached yet and returns the ids
   * attached. With `createEngine({ reattach: false })`, a caller subscribes to events$
   * first and then calls this, so it also sees the exits reported by the reattach.
   */
  attachAll(): Promise<string[]>;
  /**
   * Keeps watching a sandbox without owning it: releases its lock and stops persisting
   * its state (for callers that only wait, such as `paddock exec`).
   */
  release(sandboxId: string): void;
  /**
   * Lets go of a sandbox entirely, without touching it: its state persisted, its lock
   * released, its channels and watchers closed and its machine forgotten; the sandbox
   * runs on, and a later attach() takes it up again from the state dir. Returns false,
   * and keeps it, while a container of it waits prepared (its release pipe lives here).
   * For a resident supervisor handing a sandbox to a call that runs in another process.
   */
  detach(sandboxId: string): Promise<boolean>;
  /**
   * For a sandbox given up with {@link release}: takes its machine again from the state
   * file when another process (a CLI call) has moved it on, e.g. started or paused it,
   * which its channels do not tell. A machine that has stopped is kept (a sandbox does
   * not come back from stopped; an older file must not bring it back). One whose folder
   * is gone (its owner deleted it) is let go of. Returns whether the machine was replaced
   * or let go of. `paddock inspect` calls it when a state file changes or goes.
   */
  refresh(sandboxId: string): boolean;
  /**
   * An OTP supervisor tree over sandboxes, as plain config (strategies one_for_one,
   * one_for_all, rest_for_one; intensity; nested groups escalate to their parent).
   * Validated at once (EINVALID_ARGUMENT naming the field); nothing runs until start().
   */
  supervise(spec: SupervisorSpec): SupervisorHandle;
  /**
   * Makes a warm pool of `size` members (ids `<name>-<n>`) from one bundle. Bad input
   * (size < 1, negative maxAgeMs, a used name, a bad bundle) is refused before anything
   * is created. close() drains every pool.
   */
  pool(name: string, opts: PoolOptions): Promise<Pool>;
  /**
   * Releases sockets, watchers and locks so the host process can exit; sandboxes keep
   * running, except warm pools' idle members, which are destroyed (drain).
   */
  close(): Promise<void>;
  /**
   * Ends the engine: stops supervision (restarts, health probes), then either detaches
   * from the sandboxes or stops them (SIGTERM, SIGKILL after the grace period, waiting
   * on pidfds) and destroys them; finally closes.
   */
  shutdown(opts?: ShutdownOptions): Promise<ShutdownReport>;
  /**
   * Drives the engine with a stream of commands; results and errors come back by
   * command id, interleaved with the engine's events. Commands on one sandbox keep
   * their order; errors are outputs, the stream goes on.
   */
  run(commands$: Observable<EngineCommand>): Observable<CommandOutput>;
  /**
   * Serves paddock's live view of this engine: one page (no CDN, its files ship in the
   * package) with the actor tree, each machine's statechart with its state lit, a live
   * timeline (states, exits, restarts counting down, errors) and usage sparklines.
   * Loopback and a random port by default; the returned `url` carries the token that
   * guards it. Read-only unless `actions: true` (kill, pause, resume; each carries the
   * token). EINSPECTOR_LISTEN when the port is taken or the host is not this one's.
   * engine.close() closes it too.
   */
  serveInspector(opts?: ServeInspectorOptions): Promise<InspectorServer>;
}

// ---- supervision trees (engine.supervise; actors/supervision/tree.ts runs them) ----

/** A sandbox in a tree: started with createSandbox + startRoot, stopped with destroy. */
export interface LeafSpec {
  readonly id: string;
  readonly bundle: string;
  /** Only `policy` is read (OTP restart type); restarts follow the group's intensity, at once, as OTP does. */
  readonly restart?: { readonly policy?: RestartPolicyName };
}

export interface SupervisorSpec {
  readonly name: string;
  readonly strategy: GroupStrategy;
  /** OTP defaults: 1 restart within 5000 ms. */
  readonly maxRestarts?: number;
  readonly periodMs?: number;
  readonly children: ReadonlyArray<LeafSpec | SupervisorSpec>;
}

export type SupervisorEvent = GroupEmitted;

export interface SupervisorStatus {
  readonly name: string;
  /** starting | running | restarting | escalating | escalated | stopping | stopped */
  readonly state: string;
  readonly reason?: string;
  readonly children: ReadonlyArray<{ readonly id: string; readonly generation: number } | SupervisorStatus>;
}

export interface SupervisorHandle {
  readonly name: string;
  readonly events$: Observable<SupervisorEvent>;
  /** Resolves once every child runs (in order); rejects with the reason if the tree escalated instead. */
  start(): Promise<void>;
  /** Stops every child, newest first. */
  stop(): Promise<void>;
  status(): SupervisorStatus;
}

/**
 * What `EngineOptions.inspect` takes:
 * - an inspection function or observer, as XState's `createActor(…, { inspect })` does;
 * - an inspector made by @statelyai/inspect (`createWebSocketInspector`,
 *   `createBrowserInspector`, `createSkyInspector`): anything with an `inspect` observer;
 * - `{ url }`: paddock makes a WebSocket inspector to that `ws://` or `wss://` address
 *   (the Stately inspector's wire format, sent without ever blocking the engine).
 */
export type InspectOption = ((event: InspectionEvent) => void) | Partial<Observer<InspectionEvent>> | StatelyInspector | InspectUrl;

/** What @statelyai/inspect's create*Inspector functions return (the library exports no name for it). */
export type StatelyInspector = Pick<ReturnType<typeof createInspector>, 'inspect'> & { readonly stop?: () => void };

/** A WebSocket inspector endpoint, e.g. `{ url: 'ws://127.0.0.1:8080' }`. */
export interface InspectUrl {
  readonly url: string;
}

/** Options of {@link serveInspector} (engine.serveInspector, `paddock inspect`). */
export interface ServeInspectorOptions {
  /** TCP port; 0 (the default) takes a free one (read it from `url`). */
  readonly port?: number;
  /** Address to bind; loopback (127.0.0.1) by default. Anything else lets other hosts in (with the token). */
  readonly host?: string;
  /** The token the URL carries (16 to 128 of [A-Za-z0-9_-]); a random one by default. */
  readonly token?: string;
  /** Let the page kill, pause and resume sandboxes (each action carries the token too). Default false: read-only. */
  readonly actions?: boolean;
}

/** A running live view. */
export interface InspectorServer {
  /** The page's address with its token, as Jupyter prints it: open this. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly token: string;
  /** Stops serving: viewers are disconnected, the port is freed. */
  close(): Promise<void>;
}
