import type { DeepReadonly } from '../../specs/freeze';
import { applyNetworkPlan, checkNetworkNamespace, planNetwork, type NetworkOption, type NetworkPlan } from '../../specs/network';
import type { OciConfig } from '../../specs/oci';
import type { RestartPolicy } from '../../machines/restart-policy';
import type { EngineCore } from '../engine/core';
import { PaddockError } from '../../base/errors';
import type { Runtime } from '../sandbox/runtime';
import { checkUserNetwork, startNetwork, withResolvConf } from './supervisor';
import type { BridgeConfig } from './bridge';
import { checkBridgeNetwork, startBridge } from './bridged';

/** A create's network, once checked: its plan and, for `user`, the helper binary found. */
export interface CreateNetwork {
  readonly plan: NetworkPlan;
  readonly binary?: string;
  /** `bridge`: the engine's bridge. */
  readonly bridge?: BridgeConfig;
}

/**
 * The `network` of a create (option or template; one place only), checked against the
 * host and the config before anything is made. Undefined when neither says anything:
 * the config decides, as before the option existed.
 */
export async function checkCreateNetwork(core: EngineCore, option: NetworkOption | undefined, templateOption: NetworkOption | undefined, config: DeepReadonly<OciConfig>, rootfs: string, hasUserns: boolean): Promise<CreateNetwork | undefined> {
  if (option !== undefined && templateOption !== undefined) {
    throw new PaddockError('EINVALID_ARGUMENT', 'network: given both as a createSandbox option and in the template; give it in one place', { field: 'network' });
  }
  const plan = option !== undefined ? planNetwork(option, 'network') : planNetwork(templateOption, 'template.network');
  if (plan === undefined) return undefined;
  // Refused here rather than when the copy is written: a config joining a namespace by path.
  checkNetworkNamespace(config, plan);
  if (plan.mode === 'bridge') return { plan, bridge: await checkBridgeNetwork(core, plan) };
  if (plan.mode !== 'user') return { plan };
  return { plan, binary: await checkUserNetwork(plan, config, rootfs, hasUserns) };
}

/** The config as the network needs it (namespace, /sys, resolv.conf). */
export function networkConfig(config: OciConfig, net: CreateNetwork, stateDir: string): OciConfig {
  const out = applyNetworkPlan(config, net.plan);
  return net.plan.mode === 'user' && net.plan.dns ? withResolvConf(out, stateDir) : out;
}

/** Starts the helper of a created sandbox, when its plan has one. */
export async function startCreateNetwork(core: EngineCore, rt: Runtime, net: CreateNetwork | undefined, restart: RestartPolicy | undefined): Promise<void> {
  if (net?.plan.mode === 'bridge' && net.bridge) startBridge(core, rt, net.plan, net.bridge);
  if (net?.plan.mode !== 'user' || net.binary === undefined) return;
  await startNetwork(core, rt, net.plan, net.binary, restart);
}
