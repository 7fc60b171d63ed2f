import * as fs from 'node:fs';
import { PaddockError } from '../../base/errors';
import { formatSubnet, parseSubnet, type NetworkPlan } from '../../specs/network';
import type { EngineCore } from '../engine/core';
import type { Runtime } from '../sandbox/runtime';
import type { SandboxPaths } from '../sandbox/state-store';
import { attachSandbox, checkBridgeForwards, checkSubnetAgainstRoutes, detachSandbox, removeBridge, resolveBridgeConfig, type BridgeConfig } from './bridge';
import { BridgeIpam } from './ipam';
import { checkPortsFree, findHelper } from './preflight';
import { loadNetworkRecord, saveNetworkRecord, type NetworkRecord } from './record';

type BridgePlan = Extract<NetworkPlan, { mode: 'bridge' }>;

/*
 * A `bridge` sandbox's network from create to destroy (docs/decisions/0041): checked
 * before anything is made, wired once init's namespaces exist, its rules removed when
 * the sandbox ends (or is found dead on reattach), its address freed on destroy. No
 * helper process: what it has lives in the kernel, and in network.json and
 * .bridge.json, which say what to remove.
 */

function portKeys(plan: BridgePlan): string[] {
  return plan.forwards.map((f) => `${f.protocol} ${f.hostIp === '0.0.0.0' ? '*' : f.hostIp}:${f.hostPort}`);
}

/** Root, the tools, IPv4 forwards, free ports and a subnet clear of the host's routes; the engine's bridge config. */
export async function checkBridgeNetwork(core: EngineCore, plan: BridgePlan): Promise<BridgeConfig> {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) {
    throw new PaddockError('EINVALID_ARGUMENT', `network.mode: bridge needs root (this supervisor runs as uid ${uid}); use mode user`, { field: 'network.mode' });
  }
  const config = resolveBridgeConfig(core.options.bridge);
  for (const tool of ['nft', 'ip', 'nsenter']) findHelper(tool);
  checkBridgeForwards(plan);
  checkSubnetAgainstRoutes(config);
  await checkPortsFree(plan.forwards);
  return config;
}

/** Wires the created sandbox into the bridge; its lease first, freed again if the wiring fails. */
export function startBridge(core: EngineCore, rt: Runtime, plan: BridgePlan, config: BridgeConfig): void {
  const initPid = rt.actor.getSnapshot().context.initHostPid;
  if (initPid === undefined) throw new PaddockError('ESANDBOX_DEAD', `sandbox ${rt.id} is not running`, { sandboxId: rt.id });
  const ipam = new BridgeIpam(core.stateDir, config.subnet);
  const address = ipam.allocate(rt.id, portKeys(plan));
  try {
    // Recorded before it is made: a supervisor that dies halfway leaves a record of what to remove.
    const subnet = formatSubnet(config.subnet);
    saveNetworkRecord(rt.paths, { plan, subnet });
    const a = attachSandbox(config, plan, rt.paths.dir, initPid, address);
    saveNetworkRecord(rt.paths, { plan, subnet, bridge: a });
  } catch (e) {
    if (ipam.release(rt.id) === 0) removeBridge(config.name);
    throw e;
  }
  const rec = loadNetworkRecord(rt.paths);
  rt.log.info({ address, step: 'network' }, 'bridge network up');
  if (!core.closed && rec?.bridge) {
    core.emit({ type: 'network', sandboxId: rt.id, event: 'up', mode: 'bridge', address: rec.bridge.address, hostAddress: rec.bridge.gateway, egress: plan.nat });
    core.emit({ type: 'network', sandboxId: rt.id, event: 'forwards', mode: 'bridge', forwards: plan.forwards, bound: true });
  }
}

/**
 * Removes what the sandbox has on the host: its tables and veth always, its address
 * (and the bridge, when it was the last) when `release` (destroy). Returns whether
 * anything was there.
 */
export function stopBridge(paths: SandboxPaths, record: NetworkRecord, release: boolean): boolean {
  const b = record.bridge;
  const wasUp = b !== undefined && record.detached !== true;
  // Idempotent: what is already gone is skipped.
  if (b) detachSandbox(b);
  if (release && record.plan.mode === 'bridge' && record.subnet !== undefined) {
    const left = new BridgeIpam(paths.stateDir, parseSubnet(record.subnet, 'bridge.subnet')).release(paths.sandboxId);
    if (left === 0 && b) removeBridge(b.bridge);
  }
  if (wasUp && fs.existsSync(paths.dir)) saveNetworkRecord(paths, { ...record, detached: true });
  return wasUp;
}
