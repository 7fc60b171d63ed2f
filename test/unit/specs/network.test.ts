/** The network option's plan (specs/network.ts) and the builder's `network` field: pure, every bad value names its field. */
import { buildSpec } from '../../../specs/builder';
import { applyNetworkPlan, formatSubnet, grantsNetAdmin, ipv4ToNumber, isIpLiteral, parseSubnet, planNetwork, subnetsOverlap, type NetworkPlan } from '../../../specs/network';
import { defaultSpec } from '../../../specs/default-spec';
import { validateConfig } from '../../../specs/validate';

function refusal(f: () => unknown): { code: string; message: string; field?: string } {
  try {
    f();
  } catch (e) {
    const err = e as { code: string; message: string; context: { field?: string } };
    return { code: err.code, message: err.message, ...(err.context.field !== undefined ? { field: err.context.field } : {}) };
  }
  throw new Error('not refused');
}

describe('planNetwork', () => {
  test('absent: no plan (the config decides); a mode name or object: its plan', () => {
    expect(planNetwork(undefined)).toBeUndefined();
    expect(planNetwork('none')).toEqual({ mode: 'none' });
    expect(planNetwork({ mode: 'host' })).toEqual({ mode: 'host' });
    expect(planNetwork('user')).toEqual({ mode: 'user', forwards: [], egress: true, dns: false });
    expect(planNetwork('bridge')).toEqual({ mode: 'bridge', forwards: [], nat: true, isolated: true });
    expect(planNetwork({ mode: 'bridge', nat: false, isolated: false, forwards: [{ hostPort: 1, containerPort: 2 }] })).toEqual({
      mode: 'bridge',
      nat: false,
      isolated: false,
      forwards: [{ hostPort: 1, containerPort: 2, protocol: 'tcp', hostIp: '127.0.0.1' }],
    });
  });

  test('forwards default to tcp on 127.0.0.1; hostIp may be any IPv4 or IPv6 literal', () => {
    const plan = planNetwork({ mode: 'user', egress: false, forwards: [{ hostPort: 8080, containerPort: 80 }, { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIp: '::1' }] });
    expect(plan).toEqual({
      mode: 'user',
      egress: false,
      dns: false,
      forwards: [
        { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1' },
        { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIp: '::1' },
      ],
    });
  });

  test.each([
    [{ mode: 'wifi' }, 'EINVALID_ARGUMENT', 'network.mode'],
    [42, 'EINVALID_ARGUMENT', 'network'],
    [{ mode: 'user', forwards: [{ hostPort: 80, containerPort: 80, protocol: 'sctp' }] }, 'EINVALID_ARGUMENT', 'network.forwards[0].protocol'],
    [{ mode: 'user', forwards: [{ hostPort: 0, containerPort: 80 }] }, 'EINVALID_ARGUMENT', 'network.forwards[0].hostPort'],
    [{ mode: 'user', forwards: [{ hostPort: 80, containerPort: 65536 }] }, 'EINVALID_ARGUMENT', 'network.forwards[0].containerPort'],
    [{ mode: 'user', forwards: [{ hostPort: 80, containerPort: 80, hostIp: 'localhost' }] }, 'EINVALID_ARGUMENT', 'network.forwards[0].hostIp'],
    [{ mode: 'user', forwards: [{ hostPort: 80, containerPort: 80, hostPot: 1 }] }, 'EINVALID_ARGUMENT', 'network.forwards[0].hostPot'],
    [{ mode: 'user', forwards: [{ hostPort: 80, containerPort: 80 }, { hostPort: 80, containerPort: 81 }] }, 'EINVALID_ARGUMENT', 'network.forwards[1]'],
    [{ mode: 'user', forwards: {} }, 'EINVALID_ARGUMENT', 'network.forwards'],
    [{ mode: 'user', egress: 'no' }, 'EINVALID_ARGUMENT', 'network.egress'],
    [{ mode: 'user', egress: false, dns: true }, 'EINVALID_ARGUMENT', 'network.dns'],
    [{ mode: 'none', forwards: [] }, 'EINVALID_ARGUMENT', 'network.forwards'],
    [{ mode: 'host', dns: true }, 'EINVALID_ARGUMENT', 'network.dns'],
    [{ mode: 'user', nat: false }, 'EINVALID_ARGUMENT', 'network.nat'],
    [{ mode: 'bridge', egress: false }, 'EINVALID_ARGUMENT', 'network.egress'],
    [{ mode: 'bridge', isolated: 'yes' }, 'EINVALID_ARGUMENT', 'network.isolated'],
  ])('%j is %s naming %s', (option, code, field) => {
    expect(refusal(() => planNetwork(option))).toMatchObject({ code, field });
  });

  test('a misspelt key is named, with the key it was probably meant to be', () => {
    expect(refusal(() => planNetwork({ mode: 'user', egres: false }))).toMatchObject({ code: 'EINVALID_ARGUMENT', message: expect.stringMatching(/egres.*did you mean "egress"/) });
  });

  test('the same port twice is refused only for the same protocol and address', () => {
    expect(planNetwork({ mode: 'user', forwards: [{ hostPort: 53, containerPort: 53 }, { hostPort: 53, containerPort: 53, protocol: 'udp' }, { hostPort: 53, containerPort: 54, hostIp: '127.0.0.2' }] })).toBeDefined();
  });
});

describe('isIpLiteral', () => {
  test.each(['127.0.0.1', '0.0.0.0', '255.255.255.255', '::', '::1', 'fd00::2', '2001:db8:0:0:0:0:0:1', '::ffff:127.0.0.1', 'fe80::1:2:3:4'])('%s is one', (s) => {
    expect(isIpLiteral(s)).toBe(true);
  });
  test.each(['', 'localhost', '256.0.0.1', '1.2.3', '01.2.3.4', ':::', '1::2::3', '2001:db8:0:0:0:0:0:0:1', '12345::', 'fe80::1%eth0', '::ffff:1.2.3'])('%j is not', (s) => {
    expect(isIpLiteral(s)).toBe(false);
  });
});

describe('applyNetworkPlan', () => {
  const user: NetworkPlan = { mode: 'user', forwards: [], egress: true, dns: false };

  test('host: no network namespace, /sys a read-only bind of the host\'s; the input is not changed; the result is a valid config', () => {
    const base = defaultSpec({ userns: { hostId: 100000, size: 65536 } });
    const before = JSON.stringify(base);
    const out = applyNetworkPlan(base, { mode: 'host' });
    expect(JSON.stringify(base)).toBe(before);
    expect(out.linux?.namespaces?.some((n) => n.type === 'network')).toBe(false);
    expect(out.mounts?.find((m) => m.destination === '/sys')).toEqual({ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
    expect(() => validateConfig(out as never, { path: 'config.json' })).not.toThrow();
  });

  test('none and user: one network namespace of its own, added when missing', () => {
    const without = defaultSpec({ network: false });
    for (const plan of [{ mode: 'none' } as const, user]) {
      expect(applyNetworkPlan(without, plan).linux?.namespaces?.filter((n) => n.type === 'network')).toEqual([{ type: 'network' }]);
      expect(applyNetworkPlan(defaultSpec(), plan).linux?.namespaces?.filter((n) => n.type === 'network')).toEqual([{ type: 'network' }]);
    }
  });

  test('a config that joins a network namespace by path cannot take the option', () => {
    const joined = defaultSpec();
    joined.linux!.namespaces = joined.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: '/run/netns/x' } : n));
    expect(refusal(() => applyNetworkPlan(joined, { mode: 'host' }))).toMatchObject({ code: 'ECONFIG_UNSUPPORTED', field: 'linux.namespaces' });
  });

  test('grantsNetAdmin looks at every set', () => {
    const spec = defaultSpec();
    expect(grantsNetAdmin(spec)).toBe(false);
    spec.process!.capabilities = { bounding: ['CAP_NET_ADMIN'] };
    expect(grantsNetAdmin(spec)).toBe(true);
  });
});

describe('buildSpec with network', () => {
  const T = { rootfs: '/srv/rootfs', args: ['true'] };
  test("default and 'none': a namespace of its own; 'host': none, /sys bound; user: its own (the engine runs the helper)", () => {
    expect(buildSpec(T).linux?.namespaces?.filter((n) => n.type === 'network')).toEqual([{ type: 'network' }]);
    expect(buildSpec({ ...T, network: 'none' }).linux?.namespaces?.filter((n) => n.type === 'network')).toEqual([{ type: 'network' }]);
    const host = buildSpec({ ...T, network: 'host', limits: { pids: 10 } });
    expect(host.linux?.namespaces?.some((n) => n.type === 'network')).toBe(false);
    expect(host.linux?.namespaces?.some((n) => n.type === 'user')).toBe(true);
    expect(host.mounts?.find((m) => m.destination === '/sys')?.type).toBe('none');
    // Limits and the annotation still reach the config it returns.
    expect(host.linux?.resources?.pids).toEqual({ limit: 10 });
    expect(host.annotations).toEqual({ 'paddock.userns': 'auto' });
    expect(buildSpec({ ...T, network: { mode: 'user' } }).linux?.namespaces?.filter((n) => n.type === 'network')).toEqual([{ type: 'network' }]);
  });
  test('a bad network is named under template.network', () => {
    expect(refusal(() => buildSpec({ ...T, network: { mode: 'user', forwards: [{ hostPort: 1, containerPort: 1, protocol: 'icmp' as 'tcp' }] } }))).toMatchObject({
      field: 'template.network.forwards[0].protocol',
    });
  });
});

describe('parseSubnet', () => {
  test('a /16 to /29 with its host bits zero; overlap is any shared address', () => {
    const s = parseSubnet('10.213.0.0/24', 'f');
    expect(s).toEqual({ base: ipv4ToNumber('10.213.0.0'), prefix: 24 });
    expect(formatSubnet(s)).toBe('10.213.0.0/24');
    expect(subnetsOverlap(s, parseSubnet('10.213.0.128/25', 'f'))).toBe(true);
    expect(subnetsOverlap(s, parseSubnet('10.0.0.0/16', 'f'))).toBe(false);
    expect(subnetsOverlap(s, parseSubnet('10.212.0.0/16', 'f'))).toBe(false);
    expect(subnetsOverlap(parseSubnet('10.0.0.0/16', 'f'), s)).toBe(false);
    expect(subnetsOverlap({ base: ipv4ToNumber('10.0.0.0'), prefix: 8 }, s)).toBe(true);
  });
  test.each(['10.213.0.1/24', '10.213.0.0/8', '10.213.0.0/30', '10.213.0.0', 'fd00::/64', 7])('%j is refused naming the field', (v) => {
    expect(refusal(() => parseSubnet(v, 'bridge.subnet'))).toMatchObject({ code: 'EINVALID_ARGUMENT', field: 'bridge.subnet' });
  });
});
