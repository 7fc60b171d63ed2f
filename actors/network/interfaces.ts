import * as fs from 'node:fs';

/** Counters of one interface of a sandbox's network namespace, in runc's `network_interfaces` shape. */
export interface NetworkInterfaceStats {
  readonly name: string;
  readonly rx_bytes: number;
  readonly rx_packets: number;
  readonly rx_errors: number;
  readonly rx_dropped: number;
  readonly tx_bytes: number;
  readonly tx_packets: number;
  readonly tx_errors: number;
  readonly tx_dropped: number;
}

/**
 * Every interface of the network namespace that `pid` is in, from `/proc/<pid>/net/dev`
 * (that file shows the reader's view of the process's namespace: no setns needed).
 * Undefined when the process is gone.
 */
export function readInterfaces(pid: number): NetworkInterfaceStats[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  } catch {
    return undefined;
  }
  return parseNetDev(text);
}

export function parseNetDev(text: string): NetworkInterfaceStats[] {
  const out: NetworkInterfaceStats[] = [];
  // Two header lines; then "name: rx(8 fields) tx(8 fields)".
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({
      name: line.slice(0, colon).trim(),
      rx_bytes: f[0] as number,
      rx_packets: f[1] as number,
      rx_errors: f[2] as number,
      rx_dropped: f[3] as number,
      tx_bytes: f[8] as number,
      tx_packets: f[9] as number,
      tx_errors: f[10] as number,
      tx_dropped: f[11] as number,
    });
  }
  return out;
}

/** The IPv4 default gateway of the namespace `pid` is in (`/proc/<pid>/net/route`), or undefined. */
export function readGateway(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/net/route`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const [, dest, gw] = line.trim().split(/\s+/);
    if (dest !== '00000000' || gw === undefined) continue;
    // Little-endian hex of the address.
    const n = parseInt(gw, 16);
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
  }
  return undefined;
}
