import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fnv1a32 } from '../../base/fnv';
import { PaddockError } from '../../base/errors';
import { checkOptionKeys } from '../../base/options';
import { formatSubnet, ipv4ToNumber, parseSubnet, subnetsOverlap, type NetworkPlan, type Subnet } from '../../specs/network';
import { gatewayOf } from './ipam';

type BridgePlan = Extract<NetworkPlan, { mode: 'bridge' }>;

/** The engine's bridge: its name and subnet (EngineOptions.bridge). */
export interface BridgeConfig {
  readonly name: string;
  readonly subnet: Subnet;
  /** Of the bridge and every veth end (default 1500, what leaves the host; decision 0041 measures a larger one). */
  readonly mtu: number;
}

/** What one sandbox has on the host: removed, all of it, when it ends. */
export interface BridgeAttachment {
  readonly bridge: string;
  readonly address: string;
  readonly gateway: string;
  /** The host end of the veth pair (the sandbox's end is its eth0). */
  readonly veth: string;
  /** Its nftables tables, `ip` and `bridge` families, both of this name. */
  readonly table: string;
}

/** Each command is bounded: a wedged `ip` or `nft` fails the step instead of the engine. */
const COMMAND_TIMEOUT_MS = 5_000;

function run(cmd: string, args: readonly string[], input?: string): { ok: boolean; err: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, stdio: ['pipe', 'ignore', 'pipe'] });
  return { ok: r.status === 0, err: (r.stderr ?? r.error?.message ?? '').trim() };
}

function must(step: string, cmd: string, args: readonly string[], input?: string): void {
  const r = run(cmd, args, input);
  if (!r.ok) throw new PaddockError('ENETWORK_UNAVAILABLE', `network: ${step}: ${cmd} ${args.join(' ')}: ${r.err || 'failed'}`, { step });
}

/**
 * Names derived from the sandbox's folder (its state dir and id: two engines may use the
 * same id): interface names have 15 bytes, nft names a narrow alphabet.
 */
export function bridgeNames(sandboxDir: string): { veth: string; table: string } {
  const h = fnv1a32(sandboxDir);
  return { veth: `pk${h}`, table: `paddock_${h}` };
}

/**
 * EINVALID_ARGUMENT when `subnet` shares an address with a route of the host's
 * (`/proc/net/route`; the default route and the bridge's own route aside): the
 * sandboxes' addresses would shadow or be shadowed by the host's.
 */
export function checkSubnetAgainstRoutes(config: BridgeConfig, routes = fs.readFileSync('/proc/net/route', 'utf8')): void {
  for (const line of routes.split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (iface === undefined || dest === undefined || mask === undefined || iface === config.name) continue;
    const m = leHex(mask);
    if (m === 0) continue;
    const prefix = 32 - Math.log2(2 ** 32 - m);
    const route: Subnet = { base: leHex(dest), prefix: Number.isInteger(prefix) ? prefix : 32 };
    if (subnetsOverlap(route, config.subnet)) {
      throw new PaddockError('EINVALID_ARGUMENT', `bridge.subnet: ${formatSubnet(config.subnet)} overlaps the host's route ${formatSubnet(route)} (dev ${iface}); give createEngine another bridge.subnet`, {
        field: 'bridge.subnet',
      });
    }
  }
}

function leHex(h: string): number {
  const n = parseInt(h, 16);
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
}

/** EINVALID_ARGUMENT when a forward cannot be done by nftables in the ip family. */
export function checkBridgeForwards(plan: BridgePlan): void {
  plan.forwards.forEach((f, i) => {
    if (f.hostIp.includes(':')) throw new PaddockError('EINVALID_ARGUMENT', `network.forwards[${i}].hostIp: bridge forwards are IPv4 only, not ${f.hostIp}`, { field: `network.forwards[${i}].hostIp` });
  });
}

/** The bridge, made if missing: its address is the subnet's gateway; loopback-addressed forwards need route_localnet on it. */
export function ensureBridge(config: BridgeConfig): void {
  const dir = `/sys/class/net/${config.name}`;
  if (fs.existsSync(dir)) {
    if (!fs.existsSync(`${dir}/bridge`)) throw new PaddockError('ENETWORK_UNAVAILABLE', `network: ${config.name} exists and is not a bridge`, { step: 'bridge' });
  } else {
    const r = run('ip', ['link', 'add', config.name, 'type', 'bridge']);
    // Another engine may have made it this instant.
    if (!r.ok && !/exists/i.test(r.err)) throw new PaddockError('ENETWORK_UNAVAILABLE', `network: bridge: ip link add ${config.name}: ${r.err}`, { step: 'bridge' });
  }
  const addr = `${gatewayOf(config.subnet)}/${config.subnet.prefix}`;
  const a = run('ip', ['addr', 'add', addr, 'dev', config.name]);
  if (!a.ok && !/exists|already assigned/i.test(a.err)) throw new PaddockError('ENETWORK_UNAVAILABLE', `network: bridge: ip addr add ${addr}: ${a.err}`, { step: 'bridge' });
  must('bridge', 'ip', ['link', 'set', config.name, 'mtu', String(config.mtu), 'up']);
  fs.writeFileSync(`/proc/sys/net/ipv4/conf/${config.name}/route_localnet`, '1');
}

/** Removes the bridge (the last sandbox on it is gone). */
export function removeBridge(name: string): void {
  run('ip', ['link', 'del', name]);
}

/**
 * The sandbox's nftables tables: forwards (DNAT from the host's addresses, loopback
 * included), masquerading of loopback-sourced forwarded connections, outbound NAT or
 * its refusal, and isolation from the other ports of the bridge.
 */
export function nftScript(plan: BridgePlan, a: BridgeAttachment): string {
  const dnat = plan.forwards.map((f) => {
    const match = f.hostIp === '0.0.0.0' ? 'fib daddr type local' : `ip daddr ${f.hostIp}`;
    return `${match} ${f.protocol} dport ${f.hostPort} dnat to ${a.address}:${f.containerPort}`;
  });
  const lines = [
    `table ip ${a.table} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...dnat.filter((r) => !r.startsWith('ip daddr 127.')).map((r) => `    ${r}`),
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...dnat.map((r) => `    ${r}`),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    // A connection from the host's loopback leaves through the bridge: give it a source the sandbox can answer.
    `    ip saddr 127.0.0.0/8 ip daddr ${a.address} masquerade`,
    ...(plan.nat ? [`    ip saddr ${a.address} oifname != "${a.bridge}" masquerade`] : []),
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...(plan.nat ? [] : [`    iifname "${a.bridge}" ip saddr ${a.address} oifname != "${a.bridge}" drop`]),
    '  }',
    '}',
    `table bridge ${a.table} {`,
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...(plan.isolated ? [`    iifname "${a.veth}" drop`, `    oifname "${a.veth}" drop`] : []),
    '  }',
    '}',
  ];
  return lines.join('\n') + '\n';
}

/**
 * Wires a created sandbox (init `initPid`) into the bridge: a veth pair whose inner end
 * is its eth0 with `address`, a default route through the bridge, then its nftables
 * tables. A step that fails undoes what was made and is ENETWORK_UNAVAILABLE naming it.
 */
export function attachSandbox(config: BridgeConfig, plan: BridgePlan, sandboxDir: string, initPid: number, address: string): BridgeAttachment {
  const { veth, table } = bridgeNames(sandboxDir);
  const a: BridgeAttachment = { bridge: config.name, address, gateway: gatewayOf(config.subnet), veth, table };
  try {
    ensureBridge(config);
    const mtu = String(config.mtu);
    must('veth', 'ip', ['link', 'add', veth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', String(initPid)]);
    must('veth', 'ip', ['link', 'set', veth, 'master', config.name, 'up']);
    const inside = [`addr add ${address}/${config.subnet.prefix} dev eth0`, 'link set eth0 up', `route add default via ${a.gateway}`].join('\n') + '\n';
    must('address', 'nsenter', [`--net=/proc/${initPid}/ns/net`, 'ip', '-batch', '-'], inside);
    must('nft', 'nft', ['-f', '-'], nftScript(plan, a));
  } catch (e) {
    detachSandbox(a);
    throw e;
  }
  return a;
}

/** Removes the sandbox's tables and host-side veth; what is already gone is skipped. */
export function detachSandbox(a: Pick<BridgeAttachment, 'veth' | 'table'>): void {
  run('nft', ['delete', 'table', 'ip', a.table]);
  run('nft', ['delete', 'table', 'bridge', a.table]);
  if (fs.existsSync(`/sys/class/net/${a.veth}`)) run('ip', ['link', 'del', a.veth]);
}

/** Whether the address is inside the subnet (a lease of another subnet is not reused). */
export function inSubnet(address: string, subnet: Subnet): boolean {
  const n = ipv4ToNumber(address);
  return n >= subnet.base && n < subnet.base + 2 ** (32 - subnet.prefix);
}

export const DEFAULT_BRIDGE = { name: 'paddock0', subnet: '10.213.0.0/24', mtu: 1500 } as const;

/** EngineOptions.bridge, checked (EINVALID_ARGUMENT naming `bridge.name` / `bridge.subnet`) and resolved with the defaults. */
export function resolveBridgeConfig(opt: unknown): BridgeConfig {
  if (opt !== undefined && (typeof opt !== 'object' || opt === null || Array.isArray(opt))) throw new PaddockError('EINVALID_ARGUMENT', 'bridge: must be an object', { field: 'bridge' });
  const o = (opt ?? {}) as { name?: unknown; subnet?: unknown; mtu?: unknown };
  checkOptionKeys(o, ['name', 'subnet', 'mtu'], 'createEngine options.bridge');
  const mtu = o.mtu ?? DEFAULT_BRIDGE.mtu;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 1280 || mtu > 65_535) throw new PaddockError('EINVALID_ARGUMENT', `bridge.mtu: must be an integer from 1280 to 65535, not ${JSON.stringify(mtu)}`, { field: 'bridge.mtu' });
  const name = o.name ?? DEFAULT_BRIDGE.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new PaddockError('EINVALID_ARGUMENT', `bridge.name: must be 1 to 15 characters of [A-Za-z0-9_.-], not ${JSON.stringify(name)}`, { field: 'bridge.name' });
  return { name, subnet: parseSubnet(o.subnet ?? DEFAULT_BRIDGE.subnet, 'bridge.subnet'), mtu };
}
