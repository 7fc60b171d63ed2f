/**
 * The part of the OCI runtime spec (config.json, Linux) that paddock reads.
 *
 * Fields paddock refuses (see specs/UNSUPPORTED.md) are still typed here so the
 * validator can name them; being in this file does not mean being honoured.
 * Field names and shapes follow runtime-spec v1.x exactly, so a config written for
 * runc parses unchanged.
 */

export interface OciConfig {
  ociVersion: string;
  root?: OciRoot;
  process?: OciProcess;
  hostname?: string;
  domainname?: string;
  mounts?: OciMount[];
  hooks?: OciHooks;
  annotations?: Record<string, string>;
  linux?: OciLinux;
}

export interface OciRoot {
  path: string;
  readonly?: boolean;
}

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface OciCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciConsoleSize {
  height: number;
  width: number;
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: OciConsoleSize;
  user: OciUser;
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
  selinuxLabel?: string;
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciMount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
}

export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface OciHooks {
  prestart?: OciHook[];
  createRuntime?: OciHook[];
  createContainer?: OciHook[];
  startContainer?: OciHook[];
  poststart?: OciHook[];
  poststop?: OciHook[];
}

export const NAMESPACE_TYPES = [
  'pid',
  'network',
  'mount',
  'ipc',
  'uts',
  'user',
  'cgroup',
  'time',
] as const;
export type OciNamespaceType = (typeof NAMESPACE_TYPES)[number];

export interface OciNamespace {
  type: OciNamespaceType;
  path?: string;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciMemoryResources {
  limit?: number;
  reservation?: number;
  /** memory + swap, as in cgroup v1 memsw. */
  swap?: number;
  /** cgroup v1 memory.swappiness, 0..100. */
  swappiness?: number;
  /** cgroup v1 memory.oom_control. */
  disableOOMKiller?: boolean;
  [key: string]: unknown;
}

export interface OciCpuResources {
  shares?: number;
  quota?: number;
  period?: number;
  cpus?: string;
  mems?: string;
  [key: string]: unknown;
}

/** What paddock applies to the sandbox's cgroup (actors/cgroups/sandbox-cgroup.ts); the rest is refused. */
export interface OciResources {
  devices?: OciDeviceCgroup[];
  memory?: OciMemoryResources;
  cpu?: OciCpuResources;
  pids?: { limit?: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface OciSeccomp {
  defaultAction: string;
  [key: string]: unknown;
}

export interface OciDevice {
  type: string;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export type OciPropagation =
  | 'private'
  | 'rprivate'
  | 'shared'
  | 'rshared'
  | 'slave'
  | 'rslave'
  | 'unbindable'
  | 'runbindable';

export interface OciLinux {
  namespaces?: OciNamespace[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
  maskedPaths?: string[];
  readonlyPaths?: string[];
  rootfsPropagation?: OciPropagation;
  sysctl?: Record<string, string>;
  resources?: OciResources;
  seccomp?: OciSeccomp;
  devices?: OciDevice[];
  cgroupsPath?: string;
  mountLabel?: string;
}
