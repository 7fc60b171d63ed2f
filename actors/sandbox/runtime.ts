/**
 * The Runtime record: what the engine keeps per sandbox beside its machine (fds,
 * channels, plans, watchers), and per container and exec'd process. Types and the
 * constructor only, so the many modules that pass a Runtime around import nothing
 * that launches.
 */
import type { Subscription } from 'rxjs';
import type { Actor } from 'xstate';
import type { sandboxMachine } from '../../machines/sandbox.machine';
import type { Fd } from '../../native/facade';
import type { MessageOf, ProcessPlan } from '../../protocols/messages';
import type { Bundle } from '../../specs/load';
import { deferred, type Deferred } from '../../base/deferred';
import type { Logger } from '../../base/logger';
import type { StdioHandles } from '../engine/api';
import type { ControlClient } from '../channels/control-client';
import type { EventSubscriber } from '../channels/event-subscriber';
import type { SandboxCgroup } from '../cgroups/sandbox-cgroup';
import type { ResolvedCgroupsPath } from '../cgroups/path';
import type { HeldRelease } from '../containers/held-release';
import type { OomWatch } from '../observe/oom';
import type { HealthActor, ResolvedHealth } from './health';
import type { SandboxPaths, StdioMode } from './state-store';
import type { SandboxNetwork } from '../network';

/** What the engine keeps per sandbox besides its machine: fds, channels, plans. Never persisted. */
export interface Runtime {
  readonly id: string;
  readonly paths: SandboxPaths;
  readonly log: Logger;
  bundle: Bundle;
  owner: { uid: number; gid: number };
  readonly containers: Map<string, ContainerRuntime>;
  readonly execs: Map<number, ExecRuntime>;
  execCounter: number;
  readonly seenExits: Set<string>;
  /** Bytes of exits.log already delivered (the log only grows). */
  exitsRead: number;
  /** The processes that died with init were reported as lost (by this engine or, per exits.cursor, an earlier one). */
  lostReported?: boolean;
  /** Root-process exit records by container, as read from exits.log. */
  readonly containerExits: Map<string, MessageOf<'EV_EXITED'>>;
  readonly initExited: Deferred<void>;
  initAlive: boolean;
  rootStdio: StdioMode;
  /** Cap of each container output file, bytes (0: none), sent to init in SANDBOX_PLAN (decision 0031). Only known at create. */
  readonly logSizeMax?: number;
  readonly createdAt: string;
  actor: Actor<typeof sandboxMachine>;
  pidfd?: Fd;
  watchToken?: number;
  control?: ControlClient;
  events?: EventSubscriber;
  eventsSub?: Subscription;
  /** Resolves when the event subscription has seen EV_PROBE. */
  probed?: Promise<void>;
  persistQueued: boolean;
  /** Set by engine.release(): watching only, no lock, no persistence. */
  observer?: boolean;
  /** The sandbox's cgroup (actors/cgroups/sandbox-cgroup.ts); absent when none could be made and no limit was asked. */
  cgroup?: SandboxCgroup;
  /** OOM events of the cgroup (actors/observe/oom.ts); stopped on detach and destroy. */
  oom?: OomWatch;
  /** The root container's linux.cgroupsPath, resolved at create (actors/cgroups/path.ts); relPath absent: paddock's default. */
  cgroupsPath?: ResolvedCgroupsPath;
  /** Liveness probe settings (createSandbox's `health`), persisted so a reattach keeps probing. */
  health?: ResolvedHealth;
  healthActor?: HealthActor;
  /**
   * config.json of a bundle the engine made (a template's, or a bundle given a range of
   * the id pool), written to `bundle.dir` (`<state>/<id>/bundle`) once the folder exists.
   */
  generatedConfig?: string;
  /** `userns: 'auto'` with an idmapped rootfs: this rootfs is idmapped for init's user namespace (decision 0028). */
  idmapRootfs?: string;
  /** The network helper's supervisor (`network: 'user'`; actors/network/). */
  network?: SandboxNetwork;
}

/** What a new Runtime is made of; the rest starts empty (nothing read, seen or connected yet). */
export type RuntimeSeed = Pick<Runtime, 'id' | 'paths' | 'log' | 'bundle' | 'owner' | 'containers' | 'execCounter' | 'rootStdio' | 'createdAt'> &
  Partial<Pick<Runtime, 'health' | 'cgroupsPath' | 'generatedConfig' | 'idmapRootfs' | 'logSizeMax'>>;

/** A Runtime for a sandbox being created or reattached; its actor is set once it is started. */
export function newRuntime(seed: RuntimeSeed): Runtime {
  return {
    ...seed,
    execs: new Map(),
    seenExits: new Set(),
    exitsRead: 0,
    containerExits: new Map(),
    initExited: deferred<void>(),
    initAlive: false,
    actor: undefined as unknown as Runtime['actor'],
    persistQueued: false,
  };
}

export interface ContainerRuntime {
  readonly id: string;
  readonly bundle: Bundle;
  readonly stdio: StdioMode;
  readonly done: Deferred<void>;
  readonly noPivot?: boolean;
  plan?: ProcessPlan;
  /**
   * Makes `plan` at its first use (containers/plan.ts planOf), for a container a
   * reattached engine found: most calls on it (state, kill, delete, a start by direct
   * release) never send a plan, and planning compiles its seccomp profile (podman's
   * default: ~400 rules through libseccomp, the largest part of a CLI `start`).
   */
  replan?: () => ProcessPlan;
  /**
   * START_CONTAINER for `plan`, encoded while the container was prepared, so the start
   * that releases it sends these bytes at once. Used only while `plan` is still the one encoded.
   */
  startRequest?: { readonly plan: ProcessPlan; readonly bytes: Buffer };
  /** The prepared process waits in paddock-hold and this side holds its release (containers/held-release.ts). */
  held?: HeldRelease;
  /** Released directly, its execve's outcome not collected yet (awaitStarted does). */
  releasing?: HeldRelease;
  /** Released by startRoot just before the machines' start, which then only records it. */
  releasedEarly?: boolean;
  /** The release found nobody to read it: the held process died before its start. */
  heldGone?: boolean;
  /** A pod container sharing this container's pid namespace (actors/pod/namespaces.ts). */
  pidNsOf?: string;
  /** A pod container sharing this container's cgroup namespace (actors/pod/namespaces.ts). */
  cgroupNsOf?: string;
  stdinFd?: number;
  streams?: StdioHandles;
  /** A pod container's own cgroup (actors/pod/cgroups.ts, decision 0022); never the root's. */
  cgroup?: SandboxCgroup;
}

export interface ExecRuntime {
  readonly name: string;
  readonly containerId: string;
  readonly done: Deferred<void>;
  readonly stdinFd?: number;
}
