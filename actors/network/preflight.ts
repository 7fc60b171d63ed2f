import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { ResolvedForward } from '../../specs/network';
import { PaddockError } from '../../base/errors';

/*
 * What a network plan needs from the host, checked at create before anything is made:
 * the helper binary, and every forwarded host port free. A port can still be taken
 * between this check and the helper's bind; the helper's start then fails the create,
 * naming the port, and the sandbox is destroyed.
 */

/** Where a binary is looked for besides PATH: a supervisor started by systemd or cron may have a short one. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** PATH's absolute entries, then the usual system directories. */
export function searchDirs(envPath = process.env['PATH'] ?? ''): string[] {
  return [...envPath.split(':').filter((d) => path.isAbsolute(d)), ...EXTRA_DIRS];
}

/** Which Debian package brings each helper. */
const PACKAGES: Readonly<Record<string, string>> = { pasta: 'passt', slirp4netns: 'slirp4netns', nft: 'nftables' };

/** The absolute path of `name`, or ENETWORK_UNAVAILABLE naming the package to install. */
export function findHelper(name: string, dirs: readonly string[] = searchDirs()): string {
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  throw new PaddockError('ENETWORK_UNAVAILABLE', `network: ${name} is not installed (Debian package ${PACKAGES[name] ?? name}; apt-get install ${PACKAGES[name] ?? name})`, {
    field: 'network.mode',
  });
}

/** EPORT_IN_USE for the first forward whose host address and port cannot be bound now. */
export async function checkPortsFree(forwards: readonly ResolvedForward[], field = 'network'): Promise<void> {
  for (const [i, f] of forwards.entries()) {
    const err = f.protocol === 'tcp' ? await tryTcp(f.hostIp, f.hostPort) : await tryUdp(f.hostIp, f.hostPort);
    if (err === undefined) continue;
    const where = `${field}.forwards[${i}]`;
    if (err === 'EADDRINUSE' || err === 'EACCES') {
      throw new PaddockError('EPORT_IN_USE', `${where}: host port ${f.protocol} ${f.hostIp}:${f.hostPort} is ${err === 'EADDRINUSE' ? 'already in use' : 'not allowed to this process (EACCES)'}`, { field: where });
    }
    throw new PaddockError('EINVALID_ARGUMENT', `${where}.hostIp: cannot listen on ${f.hostIp} (${err}): not an address of this host`, { field: `${where}.hostIp` });
  }
}

function tryTcp(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'EINVAL'));
    // exclusive: a port held by another process of a cluster must count as in use.
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

function tryUdp(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.close();
      resolve(e.code ?? 'EINVAL');
    });
    s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}
