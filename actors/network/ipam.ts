import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../base/files';
import { PaddockError } from '../../base/errors';
import { numberToIpv4, subnetSize, type Subnet } from '../../specs/network';
import { processStartTime } from '../sandbox/state-store';
import { withTableLock } from '../sandbox/table-lock';

/*
 * Addresses of the bridge's subnet (docs/decisions/0041), recorded like the id pool's
 * ranges (actors/sandbox/id-pool.ts): `<stateDir>/.bridge.json`, read and rewritten
 * under an O_EXCL lock file, so every engine and CLI call on one state dir shares the
 * subnet, a supervisor that restarts keeps its sandboxes' addresses, and destroy frees
 * them. A lease counts while its sandbox's folder exists or the process that took it is
 * alive (a create in progress); others are collected at the next allocation.
 */

interface Lease {
  readonly sandboxId: string;
  readonly pid: number;
  readonly start: number;
  /** Its forwards' host ports (`tcp 127.0.0.1:8080`): nothing binds them (nftables does the work), so they are claimed here. */
  readonly ports?: readonly string[];
}

interface Table {
  version: 1;
  leases: Record<string, Lease>;
}

/** The gateway (the bridge's own address) is the subnet's first host address. */
export function gatewayOf(subnet: Subnet): string {
  return numberToIpv4(subnet.base + 1);
}

export class BridgeIpam {
  private readonly file: string;
  private readonly lockFile: string;
  constructor(private readonly stateDir: string, private readonly subnet: Subnet) {
    this.file = path.join(stateDir, '.bridge.json');
    this.lockFile = path.join(stateDir, '.bridge.lock');
  }

  /** A free address for `sandboxId` (its own again if it holds one); ENETWORK_UNAVAILABLE when the subnet is full. */
  allocate(sandboxId: string, ports: readonly string[] = []): string {
    return this.withLock((t) => {
      this.collect(t);
      for (const [ip, l] of Object.entries(t.leases)) if (l.sandboxId === sandboxId) return ip;
      for (const l of Object.values(t.leases)) {
        const taken = ports.find((p) => l.ports?.includes(p));
        if (taken !== undefined) throw new PaddockError('EPORT_IN_USE', `network: host port ${taken} is already forwarded to sandbox ${l.sandboxId}`, { sandboxId, field: 'network.forwards' });
      }
      // .0 is the network, .1 the gateway, the last the broadcast.
      for (let n = 2; n < subnetSize(this.subnet) - 1; n++) {
        const ip = numberToIpv4(this.subnet.base + n);
        if (t.leases[ip] !== undefined) continue;
        t.leases[ip] = { sandboxId, pid: process.pid, start: processStartTime(process.pid) ?? 0, ports: [...ports] };
        return ip;
      }
      throw new PaddockError('ENETWORK_UNAVAILABLE', `network: every address of the bridge's subnet is in use (${Object.keys(t.leases).length} sandboxes)`, { sandboxId, field: 'bridge.subnet' });
    });
  }

  /** Frees what `sandboxId` holds; returns how many leases are left. */
  release(sandboxId: string): number {
    return this.withLock((t) => {
      for (const [ip, l] of Object.entries(t.leases)) if (l.sandboxId === sandboxId) delete t.leases[ip];
      this.collect(t);
      return Object.keys(t.leases).length;
    });
  }

  leases(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.read().leases).map(([ip, l]) => [ip, l.sandboxId]));
  }

  private collect(t: Table): void {
    for (const [ip, l] of Object.entries(t.leases)) {
      if (fs.existsSync(path.join(this.stateDir, l.sandboxId))) continue;
      if (l.start !== 0 && processStartTime(l.pid) === l.start) continue;
      delete t.leases[ip];
    }
  }

  private read(): Table {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return { version: 1, leases: {} };
    }
    try {
      const t = JSON.parse(text) as Table;
      if (t.version !== 1 || typeof t.leases !== 'object' || t.leases === null) throw new Error('unknown version');
      return t;
    } catch (e) {
      throw new PaddockError('ESTATE_CORRUPT', `${this.file} cannot be read: ${(e as Error).message}`, { path: this.file });
    }
  }

  private withLock<T>(fn: (t: Table) => T): T {
    return withTableLock(this.lockFile, `the bridge's address table of ${this.stateDir}`, 2_000, () => {
      const t = this.read();
      const out = fn(t);
      writeFileAtomic(this.file, JSON.stringify(t), 0o600);
      return out;
    });
  }

}
