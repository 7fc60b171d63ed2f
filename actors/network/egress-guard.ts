import { PaddockError } from '../../base/errors';
import { grantsNetAdmin } from '../../specs/network';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciConfig } from '../../specs/oci';
import type { Runtime } from '../sandbox/runtime';
import { loadNetworkRecord } from './record';

/*
 * `egress: false` in `user` mode holds because nothing in the sandbox can give its
 * interface an address (docs/decisions/0041): a process with CAP_NET_ADMIN could. The
 * root container's config is checked at create; these check what comes later into the
 * same network namespace: an exec'd process and a pod container.
 */

function egressClosed(rt: Runtime): boolean {
  const plan = rt.network?.plan ?? loadNetworkRecord(rt.paths)?.plan;
  return plan?.mode === 'user' && !plan.egress;
}

const NET_ADMIN = 'CAP_NET_ADMIN';

/** EINVALID_ARGUMENT when an exec would hand CAP_NET_ADMIN to a process of a sandbox without egress. */
export function checkExecEgress(rt: Runtime, opts: { readonly capabilities?: Readonly<Record<string, readonly string[] | undefined>>; readonly addCapabilities?: readonly string[] }): void {
  if (!egressClosed(rt)) return;
  const field = opts.addCapabilities?.includes(NET_ADMIN)
    ? 'addCapabilities'
    : Object.values(opts.capabilities ?? {}).some((set) => set?.includes(NET_ADMIN))
      ? 'capabilities'
      : undefined;
  if (field === undefined) return;
  throw new PaddockError('EINVALID_ARGUMENT', `exec options.${field}: ${NET_ADMIN} in sandbox ${rt.id}, whose network has no egress (network.egress: false), would let the process configure its interface`, {
    sandboxId: rt.id,
    field,
  });
}

/** EINVALID_ARGUMENT when a pod container's config grants CAP_NET_ADMIN in a sandbox without egress. */
export function checkPodEgress(rt: Runtime, containerId: string, config: DeepReadonly<OciConfig>): void {
  if (!egressClosed(rt) || !grantsNetAdmin(config)) return;
  throw new PaddockError('EINVALID_ARGUMENT', `process.capabilities: container ${containerId} is granted ${NET_ADMIN} in sandbox ${rt.id}, whose network has no egress (network.egress: false)`, {
    sandboxId: rt.id,
    containerId,
    field: 'process.capabilities',
  });
}
