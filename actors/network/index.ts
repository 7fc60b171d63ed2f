/** The network room's surface (README.md). */
export { checkUserNetwork, detachNetwork, reattachNetwork, startNetwork, stopNetwork, stopOrphanHelper, withResolvConf, type SandboxNetwork } from './supervisor';
export { readInterfaces, type NetworkInterfaceStats } from './interfaces';
export { checkCreateNetwork, networkConfig, startCreateNetwork, type CreateNetwork } from './create';
export { loadNetworkRecord, type NetworkRecord } from './record';
export { resolveBridgeConfig } from './bridge';
export { checkExecEgress, checkPodEgress } from './egress-guard';
