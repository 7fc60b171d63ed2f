/** actors/network's host-facing pieces that need no root: the helper lookup, free-port check, pasta's command line, /proc parsing. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseNetDev } from '../../../actors/network/interfaces';
import { pastaArgs } from '../../../actors/network/pasta';
import { checkPortsFree, findHelper } from '../../../actors/network/preflight';
import { bridgeNames, checkSubnetAgainstRoutes, nftScript, resolveBridgeConfig } from '../../../actors/network/bridge';
import { BridgeIpam } from '../../../actors/network/ipam';
import { parseSubnet } from '../../../specs/network';

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

describe('bridge pieces', () => {
  const config = { name: 'paddock0', subnet: parseSubnet('10.213.0.0/24', 'f'), mtu: 1500 };
  const routes = (lines: string[]) => ['Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT', ...lines].join('\n');

  test('a subnet over a host route is refused naming it; the default route and the bridge\'s own are not routes to avoid', () => {
    // 192.0.2.0/24 dev eth0, and a default route.
    const host = ['eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', 'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0'];
    expect(() => checkSubnetAgainstRoutes(config, routes(host))).not.toThrow();
    expect(() => checkSubnetAgainstRoutes({ ...config, subnet: parseSubnet('192.0.2.0/25', 'f') }, routes(host))).toThrow(
      expect.objectContaining({ code: 'EINVALID_ARGUMENT', message: expect.stringMatching(/overlaps the host's route 192\.0\.2\.0\/24 \(dev eth0\)/) }),
    );
    // 10.213.0.0/24 on paddock0 itself.
    expect(() => checkSubnetAgainstRoutes(config, routes(['paddock0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0']))).not.toThrow();
    expect(() => checkSubnetAgainstRoutes(config, routes(['other0\t0000D50A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0']))).toThrow(expect.objectContaining({ code: 'EINVALID_ARGUMENT' }));
  });

  test('the nft script: forwards on loopback only in output, on an address in prerouting too, NAT and isolation as asked', () => {
    const a = { bridge: 'paddock0', address: '10.213.0.2', gateway: '10.213.0.1', veth: 'pk0011aabb', table: 'paddock_0011aabb' };
    const forwards = [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' as const, hostIp: '127.0.0.1' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp' as const, hostIp: '0.0.0.0' },
    ];
    const open = nftScript({ mode: 'bridge', forwards, nat: true, isolated: false }, a);
    expect(open).toContain('ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.213.0.2:80');
    expect(open).toContain('fib daddr type local udp dport 5353 dnat to 10.213.0.2:53');
    expect(open.split('chain output')[0]).not.toContain('127.0.0.1 tcp dport 8080');
    expect(open).toContain('ip saddr 10.213.0.2 oifname != "paddock0" masquerade');
    expect(open).not.toContain('drop');
    const shut = nftScript({ mode: 'bridge', forwards: [], nat: false, isolated: true }, a);
    expect(shut).not.toContain('oifname != "paddock0" masquerade');
    expect(shut).toContain('iifname "paddock0" ip saddr 10.213.0.2 oifname != "paddock0" drop');
    expect(shut).toContain('iifname "pk0011aabb" drop');
    expect(shut).toContain('oifname "pk0011aabb" drop');
  });

  test('names fit an interface (15 bytes) and differ by state dir', () => {
    const a = bridgeNames('/var/lib/paddock/a');
    expect(a.veth.length).toBeLessThanOrEqual(15);
    expect(bridgeNames('/tmp/other/a').veth).not.toBe(a.veth);
  });

  test('the engine option: defaults, a misspelt key, a bad name', () => {
    expect(resolveBridgeConfig(undefined)).toEqual({ name: 'paddock0', subnet: parseSubnet('10.213.0.0/24', 'f'), mtu: 1500 });
    expect(resolveBridgeConfig({ mtu: 65520 }).mtu).toBe(65520);
    expect(() => resolveBridgeConfig({ mtu: 100 })).toThrow(expect.objectContaining({ context: { field: 'bridge.mtu' } }));
    expect(() => resolveBridgeConfig({ sbunet: '10.0.0.0/24' })).toThrow(expect.objectContaining({ message: expect.stringMatching(/did you mean "subnet"/) }));
    expect(() => resolveBridgeConfig({ name: 'a-name-far-too-long' })).toThrow(expect.objectContaining({ context: { field: 'bridge.name' } }));
  });
});

describe('BridgeIpam', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ipam-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('addresses from .2 up, the same again for the same sandbox, freed on release; claimed ports are refused to another', () => {
    const ipam = new BridgeIpam(dir, parseSubnet('10.1.2.0/29', 'f'));
    for (const id of ['a', 'b']) fs.mkdirSync(path.join(dir, id));
    expect(ipam.allocate('a', ['tcp 127.0.0.1:8080'])).toBe('10.1.2.2');
    expect(ipam.allocate('a')).toBe('10.1.2.2');
    expect(() => ipam.allocate('b', ['tcp 127.0.0.1:8080'])).toThrow(expect.objectContaining({ code: 'EPORT_IN_USE' }));
    expect(ipam.allocate('b')).toBe('10.1.2.3');
    // A second store on the same dir (another engine) sees the same table.
    expect(new BridgeIpam(dir, parseSubnet('10.1.2.0/29', 'f')).leases()).toEqual({ '10.1.2.2': 'a', '10.1.2.3': 'b' });
    expect(ipam.release('a')).toBe(1);
    expect(ipam.allocate('b')).toBe('10.1.2.3');
  });

  test('a /29 holds five sandboxes; the sixth is refused; leases of vanished sandboxes are collected', () => {
    const ipam = new BridgeIpam(dir, parseSubnet('10.1.2.0/29', 'f'));
    for (const id of ['s1', 's2', 's3', 's4', 's5']) {
      fs.mkdirSync(path.join(dir, id));
      ipam.allocate(id);
    }
    fs.mkdirSync(path.join(dir, 's6'));
    expect(() => ipam.allocate('s6')).toThrow(expect.objectContaining({ code: 'ENETWORK_UNAVAILABLE' }));
    // s1's folder gone and its allocating process (this one) alive: still held while alive...
    fs.rmSync(path.join(dir, 's1'), { recursive: true });
    expect(() => ipam.allocate('s6')).toThrow(expect.objectContaining({ code: 'ENETWORK_UNAVAILABLE' }));
    // ...and free once it was taken by a process that is gone.
    const t = JSON.parse(fs.readFileSync(path.join(dir, '.bridge.json'), 'utf8'));
    t.leases['10.1.2.2'].pid = 0x3fffffff;
    fs.writeFileSync(path.join(dir, '.bridge.json'), JSON.stringify(t));
    expect(ipam.allocate('s6')).toBe('10.1.2.2');
  });
});
