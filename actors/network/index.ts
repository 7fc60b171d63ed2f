/**
 * actors/network/ — the effects of a sandbox's `network` option (docs/decisions/0041):
 * checking the host before a create (helper binaries, free ports), running and
 * supervising the user-mode helper (pasta) under machines/network.machine.ts, its
 * record in the state dir, and the interface counters of the stats stream. The plan
 * itself is made in specs/network.ts. May import base pieces, machines/, native/'s
 * facade types, specs/ and actors/ modules of the floors below (state-store, errors).
 */

export { checkUserNetwork, detachNetwork, reattachNetwork, startNetwork, stopNetwork, stopOrphanHelper, withResolvConf, type SandboxNetwork } from './supervisor';
export { readInterfaces, type NetworkInterfaceStats } from './interfaces';
export { checkCreateNetwork, networkConfig, startCreateNetwork, type CreateNetwork } from './create';
export { loadNetworkRecord, type NetworkRecord } from './record';
