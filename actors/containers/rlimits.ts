/**
 * Hard limits a container asks for above what paddock-init has. Inside a user
 * namespace nothing can raise a hard limit (that needs CAP_SYS_RESOURCE in the initial
 * user namespace), so a container whose spec asks for more than init inherited from the
 * supervisor failed with `setrlimit: EPERM` — podman's default `nofile=1048576` with
 * `--uidmap` did. runc prlimits its child from the runtime; paddock raises init from
 * the supervisor before init forks the container, which then sets exactly its spec's
 * values (docs/decisions/0026). Only upward, only the hard limit.
 */

import type { NativeFacade } from '../../native/facade';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciConfig, OciRlimit } from '../../specs/oci';
import { RLIMITS, rlimitValue } from '../../specs/process-security';

/** Whether init is in a user namespace of the sandbox's own or a joined one. */
export function hasUserNamespace(config: DeepReadonly<OciConfig>): boolean {
  return (config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
}

/**
 * Raises init's (`initPid`) hard limits to the highest hard value `rlimits` name, for
 * a sandbox with a user namespace; nothing otherwise (init is then root on the host and
 * the container raises its own). Throws NativeError (step prlimit).
 */
export function raiseInitRlimits(
  native: Pick<NativeFacade, 'raiseRlimit'>,
  initPid: number,
  config: DeepReadonly<OciConfig>,
  rlimits: readonly DeepReadonly<OciRlimit>[] | undefined,
): void {
  if (rlimits === undefined || rlimits.length === 0 || !hasUserNamespace(config)) return;
  for (const r of rlimits) {
    const resource = RLIMITS[r.type];
    if (resource !== undefined) native.raiseRlimit(initPid, resource, rlimitValue(r.hard));
  }
}
