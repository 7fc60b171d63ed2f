import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NetworkPlan } from '../../specs/network';
import type { RestartPolicy } from '../../machines/restart-policy';
import { writeFileAtomic } from '../../base/files';
import type { SandboxPaths } from '../sandbox/state-store';
import type { HelperProcess } from '../../machines/network.machine';
import type { BridgeAttachment } from './bridge';

/**
 * `<state>/<id>/network.json`: what a sandbox's network is and which helper process
 * serves it, written before the helper starts and each time it changes, so a
 * supervisor that comes back (or one that finds a half-made sandbox) can find the
 * helper again, or stop it.
 */
export interface NetworkRecord {
  readonly plan: NetworkPlan;
  readonly restart?: RestartPolicy;
  /** The helper now running, with its start time (clock ticks since boot) against pid reuse. */
  readonly helper?: HelperProcess;
  /** The address of the host as the sandbox sees it (pasta maps it to the host's loopback). */
  readonly hostAddress?: string;
  /** `bridge`: what the sandbox has on the host (its lease is in `<stateDir>/.bridge.json`). */
  readonly bridge?: BridgeAttachment;
  /** `bridge`: the subnet its lease is of. */
  readonly subnet?: string;
  /** `bridge`: its tables and veth were removed (the sandbox ended); its lease stays until destroy. */
  readonly detached?: boolean;
}

export function networkFile(paths: SandboxPaths): string {
  return path.join(paths.dir, 'network.json');
}

export function networkLog(paths: SandboxPaths): string {
  return path.join(paths.dir, 'network.log');
}

export function helperPidFile(paths: SandboxPaths): string {
  return path.join(paths.dir, 'network.pid');
}

/** paddock's resolv.conf for `dns: true`, shared by every sandbox of the state dir. */
export function resolvConfFile(stateDir: string): string {
  return path.join(stateDir, '.resolv.conf');
}

export function saveNetworkRecord(paths: SandboxPaths, record: NetworkRecord): void {
  writeFileAtomic(networkFile(paths), JSON.stringify(record));
}

/** The record, or undefined when the sandbox has none (no helper) or it cannot be read. */
export function loadNetworkRecord(paths: SandboxPaths): NetworkRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(networkFile(paths), 'utf8')) as NetworkRecord;
    return typeof r === 'object' && r !== null && typeof r.plan === 'object' ? r : undefined;
  } catch {
    return undefined;
  }
}
