/** actors/network's host-facing pieces that need no root: the helper lookup, free-port check, pasta's command line, /proc parsing. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseNetDev } from '../../../actors/network/interfaces';
import { pastaArgs } from '../../../actors/network/pasta';
import { checkPortsFree, findHelper } from '../../../actors/network/preflight';

describe('findHelper', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-net-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a missing pasta is ENETWORK_UNAVAILABLE naming the Debian package passt', () => {
    expect(() => findHelper('pasta', [dir])).toThrow(expect.objectContaining({ code: 'ENETWORK_UNAVAILABLE', message: expect.stringMatching(/pasta is not installed \(Debian package passt/) }));
    expect(() => findHelper('slirp4netns', [dir])).toThrow(expect.objectContaining({ message: expect.stringMatching(/package slirp4netns/) }));
  });

  test('an executable file is found; a file without x, or a directory, is not', () => {
    fs.writeFileSync(path.join(dir, 'pasta'), '#!/bin/sh\n', { mode: 0o644 });
    expect(() => findHelper('pasta', [dir])).toThrow(expect.objectContaining({ code: 'ENETWORK_UNAVAILABLE' }));
    fs.chmodSync(path.join(dir, 'pasta'), 0o755);
    expect(findHelper('pasta', ['relative/ignored', dir].filter((d) => path.isAbsolute(d)))).toBe(path.join(dir, 'pasta'));
    fs.mkdirSync(path.join(dir, 'nft'));
    expect(() => findHelper('nft', [dir])).toThrow(expect.objectContaining({ message: expect.stringMatching(/nftables/) }));
  });
});

describe('checkPortsFree', () => {
  test('a free port passes; one held by a listener is EPORT_IN_USE naming the forward', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    try {
      await expect(checkPortsFree([{ hostPort: port, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1' }])).rejects.toMatchObject({
        code: 'EPORT_IN_USE',
        context: { field: 'network.forwards[0]' },
      });
      // The same number over udp is another port.
      await expect(checkPortsFree([{ hostPort: port, containerPort: 80, protocol: 'udp', hostIp: '127.0.0.1' }])).resolves.toBeUndefined();
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
    await expect(checkPortsFree([{ hostPort: port, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1' }])).resolves.toBeUndefined();
  });

  test('an address that is not the host\'s is named as such', async () => {
    await expect(checkPortsFree([{ hostPort: 40_000, containerPort: 80, protocol: 'tcp', hostIp: '192.0.2.254' }])).rejects.toMatchObject({
      code: 'EINVALID_ARGUMENT',
      context: { field: 'network.forwards[0].hostIp' },
    });
  });
});

describe('pastaArgs', () => {
  const ids = { uid: 0, gid: 0 };
  test('only the forwards asked for, nothing from the sandbox to the host\'s ports, the interface configured', () => {
    const args = pastaArgs({ mode: 'user', egress: true, dns: false, forwards: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1' }] }, 4242, '/s/network.pid', ids);
    expect(args).toEqual(['--foreground', '--quiet', '--runas', '0:0', '--ns-ifname', 'eth0', '--pid', '/s/network.pid', '-t', '127.0.0.1/8080:80', '-u', 'none', '-T', 'none', '-U', 'none', '--config-net', '4242']);
  });
  test('egress false: no configuration and nothing offered to configure with; dns forwards to its address', () => {
    const off = pastaArgs({ mode: 'user', egress: false, dns: false, forwards: [] }, 1, '/p', { uid: 1000, gid: 1000 });
    expect(off).not.toContain('--config-net');
    expect(off).toEqual(expect.arrayContaining(['--no-map-gw', '--no-dhcp', '--no-dhcpv6', '--no-ndp', '--no-ra', '-t', 'none', '--runas', '1000:1000']));
    const dns = pastaArgs({ mode: 'user', egress: true, dns: true, forwards: [{ hostPort: 53, containerPort: 53, protocol: 'udp', hostIp: '::1' }] }, 1, '/p', ids);
    expect(dns).toEqual(expect.arrayContaining(['--dns-forward', '169.254.1.53', '-u', '::1/53:53', '-t', 'none']));
  });
});

describe('parseNetDev', () => {
  test('reads every interface\'s rx/tx counters; malformed lines are skipped', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0',
      '  eth0:    1722       6    1    2    0     0          0         0      521       7    3    4    0     0       0          0',
      ' junk: 1 2 3',
    ].join('\n');
    expect(parseNetDev(text)).toEqual([
      { name: 'lo', rx_bytes: 120, rx_packets: 2, rx_errors: 0, rx_dropped: 0, tx_bytes: 120, tx_packets: 2, tx_errors: 0, tx_dropped: 0 },
      { name: 'eth0', rx_bytes: 1722, rx_packets: 6, rx_errors: 1, rx_dropped: 2, tx_bytes: 521, tx_packets: 7, tx_errors: 3, tx_dropped: 4 },
    ]);
  });
});
