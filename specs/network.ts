/**
 * The `network` option of a sandbox (issue 17, docs/decisions/0041), checked and
 * turned into a plan. Pure: nothing is read from the host here; what depends on it (a
 * port in use, a missing binary) is checked in actors/network/ before anything is made.
 *
 * - `none` (the default): a network namespace of the sandbox's own with loopback only.
 * - `host`: no network namespace; the host's interfaces, untouched (decision 0026).
 * - `user`: user-mode networking by pasta (Debian's `passt`), no privilege on the host;
 *   port forwards bind on the host's loopback unless told otherwise; `egress: false`
 *   leaves the sandbox with no route out.
 * - `bridge` (root): a veth pair into paddock's bridge, an address of the engine's subnet,
 *   forwards and outbound NAT by nftables; isolated from the other sandboxes on the
 *   bridge unless `isolated: false` (on both).
 */

import { PaddockError } from '../base/errors';
import { checkOptionKeys, knownKeys } from '../base/options';
import type { DeepReadonly } from './freeze';
import type { OciConfig, OciNamespace } from './oci';

export type NetworkMode = 'none' | 'host' | 'user' | 'bridge';

/** One port of the host forwarded into the sandbox. */
export interface PortForward {
  /** Port the host listens on (1 to 65535). */
  readonly hostPort: number;
  /** Port inside the sandbox that connections are forwarded to (1 to 65535). */
  readonly containerPort: number;
  /** `tcp` (default) or `udp`. */
  readonly protocol?: 'tcp' | 'udp';
  /** Host address to listen on, an IPv4 or IPv6 literal; default `127.0.0.1`, so a forward is never public unasked. */
  readonly hostIp?: string;
}

/** The object form of the `network` option; a bare mode string is the same with no other field. */
export interface NetworkOptions {
  readonly mode: NetworkMode;
  /** `user` and `bridge` modes: ports of the host forwarded into the sandbox. */
  readonly forwards?: readonly PortForward[];
  /** `bridge` mode: masquerade what the sandbox sends out of the host (default true); false: it reaches only the bridge and the host. */
  readonly nat?: boolean;
  /** `bridge` mode: no traffic with the other sandboxes on the bridge (default true); two sandboxes both `isolated: false` reach each other. */
  readonly isolated?: boolean;
  /**
   * `user` mode: false leaves the sandbox without an address or a route on its
   * interface, so nothing it sends leaves it; forwards from the host's loopback still
   * reach it. Default true.
   */
  readonly egress?: boolean;
  /**
   * `user` mode: write `/etc/resolv.conf` in the container, naming pasta's DNS forwarder
   * (which asks the host's resolvers). Only when the config does not mount its own
   * `/etc/resolv.conf` and the rootfs has the file to mount over. Default false.
   */
  readonly dns?: boolean;
}

export type NetworkOption = NetworkMode | NetworkOptions;

export interface ResolvedForward {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
  readonly hostIp: string;
}

/** What the option comes to; `user` is the only mode with a helper process. */
export type NetworkPlan =
  | { readonly mode: 'none' }
  | { readonly mode: 'host' }
  | { readonly mode: 'user'; readonly forwards: readonly ResolvedForward[]; readonly egress: boolean; readonly dns: boolean }
  | { readonly mode: 'bridge'; readonly forwards: readonly ResolvedForward[]; readonly nat: boolean; readonly isolated: boolean };

export const NETWORK_KEYS = knownKeys<NetworkOptions>()({ mode: 1, forwards: 1, egress: 1, dns: 1, nat: 1, isolated: 1 });
const FORWARD_KEYS = knownKeys<PortForward>()({ hostPort: 1, containerPort: 1, protocol: 1, hostIp: 1 });
const MODES: readonly string[] = ['none', 'host', 'user', 'bridge'];
/** The address pasta answers DNS on inside the sandbox (link-local: never a real server's). */
export const DNS_FORWARD_ADDRESS = '169.254.1.53';

function bad(field: string, what: string): never {
  throw new PaddockError('EINVALID_ARGUMENT', `${field}: ${what}`, { field });
}

/** An IPv4 dotted quad or an IPv6 literal (RFC 4291 text forms, no zone); written here because specs/ takes nothing from node:net. */
export function isIpLiteral(s: string): boolean {
  return isIpv4(s) || isIpv6(s);
}

function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

function isIpv6(s: string): boolean {
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = (h: string): string[] | undefined => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (!head || !tail) return false;
  const all = [...head, ...tail];
  // A trailing dotted quad counts as two groups (::ffff:127.0.0.1).
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    if (!isIpv4(last)) return false;
    all.pop();
    count += 1;
  }
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65_535;

/**
 * Checks the option by name and value and returns its plan; undefined when it is
 * absent (the config decides, as before). `field` names it in errors
 * (`network.forwards[0].protocol: ...`).
 */
export function planNetwork(option: unknown, field = 'network'): NetworkPlan | undefined {
  if (option === undefined) return undefined;
  const opts: NetworkOptions =
    typeof option === 'string' ? { mode: option as NetworkMode } : typeof option === 'object' && option !== null && !Array.isArray(option) ? (option as NetworkOptions) : bad(field, 'must be a mode name or an object');
  checkOptionKeys(opts, NETWORK_KEYS, field);
  if (typeof opts.mode !== 'string' || !MODES.includes(opts.mode)) bad(`${field}.mode`, `must be one of ${MODES.join(', ')}, not ${JSON.stringify(opts.mode)}`);
  const applies: Record<NetworkMode, readonly string[]> = { none: [], host: [], user: ['forwards', 'egress', 'dns'], bridge: ['forwards', 'nat', 'isolated'] };
  const stray = (['forwards', 'egress', 'dns', 'nat', 'isolated'] as const).find((k) => opts[k] !== undefined && !applies[opts.mode].includes(k));
  if (stray !== undefined) {
    const modes = (Object.keys(applies) as NetworkMode[]).filter((m) => applies[m].includes(stray));
    bad(`${field}.${stray}`, `only applies to mode ${modes.join(' and ')}, not ${opts.mode}`);
  }
  if (opts.mode === 'none' || opts.mode === 'host') return { mode: opts.mode };
  if (opts.forwards !== undefined && !Array.isArray(opts.forwards)) bad(`${field}.forwards`, 'must be an array');
  const forwards = resolveForwards(opts.forwards ?? [], field);
  if (opts.mode === 'bridge') {
    for (const k of ['nat', 'isolated'] as const) if (opts[k] !== undefined && typeof opts[k] !== 'boolean') bad(`${field}.${k}`, 'must be a boolean');
    return { mode: 'bridge', forwards, nat: opts.nat ?? true, isolated: opts.isolated ?? true };
  }
  if (opts.egress !== undefined && typeof opts.egress !== 'boolean') bad(`${field}.egress`, 'must be a boolean');
  if (opts.dns !== undefined && typeof opts.dns !== 'boolean') bad(`${field}.dns`, 'must be a boolean');
  const egress = opts.egress ?? true;
  if (opts.dns === true && !egress) bad(`${field}.dns`, 'needs egress: a sandbox without egress cannot reach a resolver');
  return { mode: 'user', forwards, egress, dns: opts.dns ?? false };
}

function resolveForwards(list: readonly unknown[], field: string): ResolvedForward[] {
  const forwards = list.map((f, i) => resolveForward(f, `${field}.forwards[${i}]`));
  const seen = new Map<string, number>();
  forwards.forEach((f, i) => {
    const key = `${f.protocol} ${f.hostIp} ${f.hostPort}`;
    const first = seen.get(key);
    if (first !== undefined) bad(`${field}.forwards[${i}]`, `host port ${f.protocol} ${f.hostIp}:${f.hostPort} is already forwarded by forwards[${first}]`);
    seen.set(key, i);
  });
  return forwards;
}

function resolveForward(f: unknown, field: string): ResolvedForward {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) bad(field, 'must be an object');
  checkOptionKeys(f, FORWARD_KEYS, field);
  const p = f as PortForward;
  if (!isPort(p.hostPort)) bad(`${field}.hostPort`, 'must be an integer from 1 to 65535');
  if (!isPort(p.containerPort)) bad(`${field}.containerPort`, 'must be an integer from 1 to 65535');
  if (p.protocol !== undefined && p.protocol !== 'tcp' && p.protocol !== 'udp') bad(`${field}.protocol`, `must be tcp or udp, not ${JSON.stringify(p.protocol)}`);
  if (p.hostIp !== undefined && (typeof p.hostIp !== 'string' || !isIpLiteral(p.hostIp))) bad(`${field}.hostIp`, `must be an IPv4 or IPv6 address, not ${JSON.stringify(p.hostIp)}`);
  return { hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol ?? 'tcp', hostIp: p.hostIp ?? '127.0.0.1' };
}

/**
 * The config the plan needs, as a new object (the input is not changed): `host` drops
 * the network namespace and shows /sys as a read-only bind of the host's (sysfs can
 * only be mounted by the owner of the network namespace); every other mode makes sure
 * of a namespace of the sandbox's own. A config that joins a network namespace by
 * path belongs to whoever made it: the option cannot apply there (ECONFIG_UNSUPPORTED).
 */
export function applyNetworkPlan(config: OciConfig, plan: NetworkPlan): OciConfig {
  checkNetworkNamespace(config, plan);
  const namespaces: OciNamespace[] = [...(config.linux?.namespaces ?? [])];
  const others = namespaces.filter((ns) => ns.type !== 'network');
  const out: OciConfig = { ...config, linux: { ...(config.linux ?? {}), namespaces: plan.mode === 'host' ? others : [...others, { type: 'network' }] } };
  if (plan.mode === 'host' && config.mounts !== undefined) {
    out.mounts = config.mounts.map((m) =>
      m.destination.replace(/\/+$/, '') === '/sys' && m.type === 'sysfs' ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m,
    );
  }
  return out;
}

/** ECONFIG_UNSUPPORTED when the config joins a network namespace by path: the option cannot apply there. */
export function checkNetworkNamespace(config: DeepReadonly<OciConfig>, plan: NetworkPlan): void {
  const joined = (config.linux?.namespaces ?? []).find((ns) => ns.type === 'network' && ns.path !== undefined);
  if (joined) {
    throw new PaddockError('ECONFIG_UNSUPPORTED', `linux.namespaces: the config joins the network namespace ${joined.path as string}; the network option (${plan.mode}) cannot apply to it`, {
      field: 'linux.namespaces',
    });
  }
}

/** Whether the config grants CAP_NET_ADMIN to its process (in any set): such a process can configure its own interface. */
export function grantsNetAdmin(config: DeepReadonly<OciConfig>): boolean {
  const caps = config.process?.capabilities;
  if (!caps) return false;
  return Object.values(caps).some((set) => Array.isArray(set) && set.includes('CAP_NET_ADMIN'));
}

/** The /etc/resolv.conf written for `dns: true`. */
export function resolvConf(): string {
  return `# written by paddock: pasta forwards queries to the host's resolvers\nnameserver ${DNS_FORWARD_ADDRESS}\n`;
}

/** An IPv4 subnet: its first address as a 32-bit number and its prefix length. */
export interface Subnet {
  readonly base: number;
  readonly prefix: number;
}

export function ipv4ToNumber(s: string): number {
  return s.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/**
 * `a.b.c.d/len` with len 16 to 29 (room for a gateway and at least five sandboxes, and
 * no more than 65,534), its host bits zero; EINVALID_ARGUMENT naming `field` otherwise.
 */
export function parseSubnet(cidr: unknown, field: string): Subnet {
  const m = typeof cidr === 'string' ? /^([0-9.]+)\/(\d{1,2})$/.exec(cidr) : null;
  if (!m || !isIpv4(m[1] as string)) bad(field, `must be an IPv4 subnet such as 10.213.0.0/24, not ${JSON.stringify(cidr)}`);
  const prefix = Number(m[2]);
  if (prefix < 16 || prefix > 29) bad(field, `prefix length must be 16 to 29, not ${prefix}`);
  const base = ipv4ToNumber(m[1] as string);
  if (base % 2 ** (32 - prefix) !== 0) bad(field, `${cidr as string} has host bits set (the subnet is ${numberToIpv4(base - (base % 2 ** (32 - prefix)))}/${prefix})`);
  return { base, prefix };
}

export function subnetSize(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

/** Whether two subnets share an address. */
export function subnetsOverlap(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + subnetSize(b) && b.base < a.base + subnetSize(a);
}

export function formatSubnet(s: Subnet): string {
  return `${numberToIpv4(s.base)}/${s.prefix}`;
}
