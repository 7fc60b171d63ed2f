/**
 * The `network` option (issue 17, docs/decisions/0041) against real sandboxes: `none`
 * and `host` read from inside a container; `user` through a real pasta, with a server
 * in the sandbox reached from the host's loopback through a forward, and a server on
 * the host's loopback reached from the sandbox through pasta's mapping of the host
 * (and not with `egress: false`). Only loopback and the sandboxes' own namespaces are
 * used. After each test nothing is left: no helper process, no bound port.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstValueFrom, take } from 'rxjs';
import type { EngineEvent, SandboxTemplate } from '../../index';
import { fixtureRootfs } from '../helpers/bundle';
import { useEngine, useSuccessiveEngines } from '../helpers/engine-fixture';
import { describeIf, poll, readAll } from '../helpers/env';
import { useSubreaper } from '../helpers/subreaper';

type NetEvent = Extract<EngineEvent, { type: 'network' }>;

const ROOT = path.resolve(__dirname, '..', '..');

/** A TCP port of the host's loopback that nothing listens on now. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** GET `url` with a bounded wait; the body, or undefined when it cannot be had. */
function httpGet(url: string, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function portFree(port: number): Promise<boolean> {
  const s = net.createServer();
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => r(true));
  });
  if (ok) await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/** Every pasta process on the host that serves a sandbox of `stateDir` (its pid file is there). */
function pastasUnder(stateDir: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.startsWith(stateDir + path.sep)) && cmd.includes('--ns-ifname')) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

const template = (args: string[], more: Partial<SandboxTemplate> = {}): SandboxTemplate => ({ rootfs: fixtureRootfs(), args, ...more });

describeIf(['root', 'busybox', 'fixture-rootfs'])('network: none and host', () => {
  const t = useEngine('nn');

  async function run(tpl: SandboxTemplate, opts: Parameters<typeof t.engine.createSandbox>[2] = {}) {
    const id = t.id();
    const h = await t.engine.createSandbox(id, tpl, opts);
    await t.engine.startRoot(id);
    const status = await t.engine.wait(id, id, { timeoutMs: 20_000 });
    return { status, stdout: await readAll(h.stdio!.stdout), stderr: await readAll(h.stdio!.stderr) };
  }

  test("none (the default, and named): only loopback, up; the stats stream counts it", async () => {
    const dflt = await run(template(['sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags']));
    expect(dflt.status.exitCode).toBe(0);
    const named = await run(template(['sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags']), { network: 'none' });
    expect(named.stdout).toBe(dflt.stdout);
    const [ifaces, , flags] = named.stdout.trim().split('\n');
    expect(ifaces).toBe('lo');
    // IFF_UP (0x1) set on the sandbox's own lo.
    expect(Number(flags) & 1).toBe(1);

    const id = t.id();
    await t.engine.createSandbox(id, template(['sh', '-c', 'nc -l -p 9000 >/dev/null & sleep 0.2; echo hello | nc -w 1 127.0.0.1 9000; sleep 30']), { network: { mode: 'none' } });
    await t.engine.startRoot(id);
    const sample = await poll(
      async () => {
        const s = await firstValueFrom(t.engine.stats$(id, { intervalMs: 100 }).pipe(take(1)));
        const lo = s.data.network_interfaces?.find((i) => i.name === 'lo');
        return lo && lo.rx_packets >= 3 ? s : undefined;
      },
      10_000,
      'lo counters',
    );
    expect(sample.data.network_interfaces?.map((i) => i.name)).toEqual(['lo']);
  });

  test("a bundle given network 'none' gets a namespace of its own", async () => {
    const bundle = t.bundle({
      args: ['sh', '-c', "sed -n 's/^ *\\([a-z0-9]*\\):.*/\\1/p' /proc/net/dev"],
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'network');
        // sysfs needs the owner of the network namespace: a bind of the host's until the option gives one.
        c.mounts = c.mounts!.map((m) => (m.destination === '/sys' ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'ro'] } : m));
      },
    });
    const id = t.id();
    const h = await t.engine.createSandbox(id, bundle, { network: 'none' });
    await t.engine.startRoot(id);
    await t.engine.wait(id, id, { timeoutMs: 20_000 });
    expect((await readAll(h.stdio!.stdout)).trim()).toBe('lo');
  });

  test("host: the host's interfaces, none of them touched; no interface counters in stats", async () => {
    const hostIfaces = fs.readdirSync('/sys/class/net').sort();
    const flagsBefore = hostIfaces.map((i) => fs.readFileSync(`/sys/class/net/${i}/flags`, 'utf8'));
    const r = await run(template(['sh', '-c', 'ls /sys/class/net']), { network: 'host' });
    expect(r.status.exitCode).toBe(0);
    expect(r.stdout.trim().split(/\s+/).sort()).toEqual(hostIfaces);
    expect(hostIfaces.map((i) => fs.readFileSync(`/sys/class/net/${i}/flags`, 'utf8'))).toEqual(flagsBefore);
    // The template's own field says the same.
    const r2 = await run(template(['sh', '-c', 'ls /sys/class/net'], { network: 'host' }));
    expect(r2.stdout.trim().split(/\s+/).sort()).toEqual(hostIfaces);

    const id = t.id();
    await t.engine.createSandbox(id, template(['sleep', '30']), { network: 'host' });
    await t.engine.startRoot(id);
    const s = await firstValueFrom(t.engine.stats$(id, { intervalMs: 100 }).pipe(take(1)));
    expect(s.data.network_interfaces).toBeUndefined();
  });
});

describeIf(['root', 'busybox', 'fixture-rootfs', 'passt'])('network: user (pasta)', () => {
  const t = useEngine('nu');
  useSubreaper();
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
    // Nothing of any test is left: the fixture destroyed every sandbox.
    expect(pastasUnder(t.stateDir)).toEqual([]);
  });

  /** An HTTP server on the host's loopback answering `text`. */
  async function hostServer(text: string): Promise<number> {
    const s = http.createServer((_req, res) => res.end(text));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
    return (s.address() as net.AddressInfo).port;
  }

  function networkEvents(id: string): NetEvent[] {
    const seen: NetEvent[] = [];
    const sub = t.engine.events$.subscribe((e) => {
      if (e.type === 'network' && e.sandboxId === id) seen.push(e);
    });
    afterEachUnsub.push(() => sub.unsubscribe());
    return seen;
  }
  const afterEachUnsub: Array<() => void> = [];
  afterEach(() => {
    for (const u of afterEachUnsub.splice(0)) u();
  });

  test('a server in the sandbox is reached from the host\'s loopback through a forward; events, stats; nothing left after destroy', async () => {
    const id = t.id();
    const port = await freePort();
    const events = networkEvents(id);
    await t.engine.createSandbox(id, template(['httpd', '-f', '-p', '8080', '-h', '/etc']), {
      network: { mode: 'user', forwards: [{ hostPort: port, containerPort: 8080 }] },
    });
    const up = events.find((e) => e.event === 'up') as Extract<NetEvent, { event: 'up' }>;
    expect(up).toMatchObject({ mode: 'user', egress: true });
    expect(alive(up.helperPid as number)).toBe(true);
    expect(events.find((e) => e.event === 'forwards')).toMatchObject({ bound: true, forwards: [{ hostPort: port, containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1' }] });
    // Bound on loopback only, as the default says.
    const listening = fs.readFileSync('/proc/net/tcp', 'utf8');
    expect(listening).toContain(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`);
    await t.engine.startRoot(id);
    const body = await poll(() => httpGet(`http://127.0.0.1:${port}/hostname`), 10_000, 'the forward');
    expect(body.trim()).toBe('paddock');

    const s = await firstValueFrom(t.engine.stats$(id, { intervalMs: 100 }).pipe(take(1)));
    const names = s.data.network_interfaces?.map((i) => i.name).sort();
    expect(names).toEqual(['eth0', 'lo']);
    // The forwarded connection from the host's loopback is spliced to the sandbox's lo.
    const lo = s.data.network_interfaces?.find((i) => i.name === 'lo');
    expect(lo?.rx_bytes).toBeGreaterThan(0);
    expect(lo?.tx_packets).toBeGreaterThan(0);

    await t.engine.destroy(id);
    expect(alive(up.helperPid as number)).toBe(false);
    expect(await portFree(port)).toBe(true);
    expect(fs.existsSync(path.join(t.stateDir, id))).toBe(false);
    expect(events.filter((e) => e.event === 'down' || (e.event === 'forwards' && !e.bound)).map((e) => e.event)).toEqual(['forwards', 'down']);
  });

  test("the sandbox reaches a server on the host's loopback through pasta's mapping of the host; with egress: false it cannot, and a forward still works", async () => {
    const hostPort = await hostServer('from the host');
    // nc, not wget: the static busybox's wget crashes in a rootfs without NSS files.
    // busybox's nc may go on once the peer closed (printing what it read, or waiting):
    // the first match is enough, and `timeout` ends it.
    const get = (addr: string, port: number) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc -w 2 ${addr} ${port} 2>/dev/null | grep -m1 -c 'from the host'`;
    const probe = `GW=$(ip route | awk '/^default/ {print $3}'); echo "gw=$GW"; ${get('"$GW"', hostPort)}`;
    const id = t.id();
    const events = networkEvents(id);
    const h = await t.engine.createSandbox(id, template(['sh', '-c', probe]), { network: { mode: 'user' } });
    await t.engine.startRoot(id);
    await t.engine.wait(id, id, { timeoutMs: 20_000 });
    const out = await readAll(h.stdio!.stdout);
    const up = events.find((e) => e.event === 'up') as Extract<NetEvent, { event: 'up' }>;
    expect(up.hostAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(out).toContain(`gw=${up.hostAddress}`);
    expect(out.trim().split('\n')[1]).toBe('1');

    // egress: false: no route, no address; the host is not reached, whatever address is tried.
    const hostAddrs = Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address);
    const tries = [up.hostAddress as string, ...hostAddrs].map((a) => get(a, hostPort)).join('; ');
    const fwd = await freePort();
    const id2 = t.id();
    const ev2 = networkEvents(id2);
    const h2 = await t.engine.createSandbox(id2, template(['sh', '-c', `ip -4 addr show dev eth0 | grep -c inet; ip route | wc -l; ${tries}; httpd -f -p 8080 -h /etc`]), {
      network: { mode: 'user', egress: false, forwards: [{ hostPort: fwd, containerPort: 8080 }] },
    });
    expect(ev2.find((e) => e.event === 'up')).toMatchObject({ egress: false });
    await t.engine.startRoot(id2);
    const body = await poll(() => httpGet(`http://127.0.0.1:${fwd}/hostname`), 20_000, 'the forward without egress');
    expect(body.trim()).toBe('paddock');
    // Nothing joining later may configure the interface either.
    await expect(t.engine.execute(id2, id2, { args: ['ip', 'addr', 'add', '10.9.9.9/24', 'dev', 'eth0'], addCapabilities: ['CAP_NET_ADMIN'] })).rejects.toMatchObject({
      code: 'EINVALID_ARGUMENT',
      context: { field: 'addCapabilities' },
    });
    await expect(t.engine.execute(id2, id2, { args: ['true'], capabilities: { bounding: ['CAP_NET_ADMIN'] } })).rejects.toMatchObject({ context: { field: 'capabilities' } });
    await t.engine.signal(id2, id2, 'SIGKILL');
    await t.engine.wait(id2, id2, { timeoutMs: 10_000 });
    const lines = (await readAll(h2.stdio!.stdout)).trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['0', '0']);
    expect(lines.slice(2)).toEqual(Array(1 + hostAddrs.length).fill('0'));
  });

  test("dns: the container's /etc/resolv.conf names pasta's forwarder, read-only, when its rootfs has one to mount over", async () => {
    // A copy of the fixture rootfs with an /etc/resolv.conf (the shared one has none).
    const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-dns-rootfs-'));
    try {
      // realpath: in a checkout of a closed folder the fixture is a link to a copy others can reach.
      fs.cpSync(fs.realpathSync(fixtureRootfs()), rootfs, { recursive: true, verbatimSymlinks: true });
      fs.writeFileSync(path.join(rootfs, 'etc/resolv.conf'), 'nameserver 203.0.113.1\n');
      const id = t.id();
      const h = await t.engine.createSandbox(id, { rootfs, args: ['sh', '-c', 'cat /etc/resolv.conf; echo x >> /etc/resolv.conf 2>/dev/null || echo read-only'] }, { network: { mode: 'user', dns: true } });
      await t.engine.startRoot(id);
      await t.engine.wait(id, id, { timeoutMs: 20_000 });
      const out = await readAll(h.stdio!.stdout);
      expect(out).toMatch(/^nameserver 169\.254\.1\.53$/m);
      expect(out).not.toContain('203.0.113.1');
      expect(out.trim().split('\n').at(-1)).toBe('read-only');
      // The rootfs's own file is untouched.
      expect(fs.readFileSync(path.join(rootfs, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 203.0.113.1\n');
      await t.engine.destroy(id);
    } finally {
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
  });

  test('a pasta killed with SIGKILL: without a restart policy the sandbox is failed (killed), with an event; with one, pasta is started again and the forward works', async () => {
    const id = t.id();
    const events = networkEvents(id);
    await t.engine.createSandbox(id, template(['sleep', '60']), { network: { mode: 'user' } });
    await t.engine.startRoot(id);
    const up = events.find((e) => e.event === 'up') as Extract<NetEvent, { event: 'up' }>;
    process.kill(up.helperPid as number, 'SIGKILL');
    // init is SIGKILLed: its container's status is lost with it.
    const status = await t.engine.wait(id, id, { timeoutMs: 10_000 });
    expect(status).toMatchObject({ exitCode: null, signal: null });
    expect(t.engine.isRunning(id)).toBe(false);
    expect(events.find((e) => e.event === 'down')).toMatchObject({ final: true, reason: expect.stringMatching(/pasta .* (killed by signal 9|exited)/) });
    await t.engine.destroy(id);

    const id2 = t.id();
    const port = await freePort();
    const ev2 = networkEvents(id2);
    await t.engine.createSandbox(id2, template(['httpd', '-f', '-p', '8080', '-h', '/etc']), {
      network: { mode: 'user', forwards: [{ hostPort: port, containerPort: 8080 }] },
      restart: { policy: 'on-failure', backoff: { initialMs: 50, maxMs: 50 } },
    });
    await t.engine.startRoot(id2);
    await poll(() => httpGet(`http://127.0.0.1:${port}/hostname`), 10_000, 'the forward');
    const first = ev2.find((e) => e.event === 'up') as Extract<NetEvent, { event: 'up' }>;
    process.kill(first.helperPid as number, 'SIGKILL');
    const second = await poll(() => ev2.filter((e) => e.event === 'up')[1] as Extract<NetEvent, { event: 'up' }> | undefined, 10_000, 'pasta started again');
    expect(second.helperPid).not.toBe(first.helperPid);
    expect(ev2.find((e) => e.event === 'down')).toMatchObject({ restartInMs: 50 });
    expect((await poll(() => httpGet(`http://127.0.0.1:${port}/hostname`), 10_000, 'the forward again')).trim()).toBe('paddock');
    expect(t.engine.isRunning(id2)).toBe(true);
  });
});

describeIf(['root', 'busybox', 'fixture-rootfs', 'passt'])('network: user across supervisors', () => {
  const s = useSuccessiveEngines('nr');
  useSubreaper();

  test('a supervisor gone: the next one watches the same pasta; a sandbox that died meanwhile has its pasta stopped; nothing left after destroy', async () => {
    const port = await freePort();
    const e1 = await s.open();
    const seen: NetEvent[] = [];
    e1.events$.subscribe((e) => e.type === 'network' && seen.push(e));
    await e1.createSandbox('a', template(['httpd', '-f', '-p', '8080', '-h', '/etc']), { network: { mode: 'user', forwards: [{ hostPort: port, containerPort: 8080 }] } });
    await e1.startRoot('a');
    const h2 = await e1.createSandbox('b', template(['sleep', '60']), { network: { mode: 'user' } });
    await e1.startRoot('b');
    const [pa, pb] = seen.filter((e) => e.event === 'up').map((e) => (e as Extract<NetEvent, { event: 'up' }>).helperPid);
    await e1.close();
    // While no supervisor runs: b's sandbox dies; a's pasta keeps serving.
    process.kill(h2.pid, 'SIGKILL');
    await poll(() => (alive(h2.pid) ? undefined : true), 5_000, 'b gone');
    expect((await poll(() => httpGet(`http://127.0.0.1:${port}/hostname`), 10_000, 'the forward, no supervisor')).trim()).toBe('paddock');

    const e2 = await s.open();
    expect(alive(pa as number)).toBe(true);
    await poll(() => (alive(pb as number) ? undefined : true), 5_000, "b's pasta stopped");
    // The next one supervises a's pasta: killing it now fails the sandbox (no restart policy).
    process.kill(pa as number, 'SIGKILL');
    await e2.wait('a', 'a', { timeoutMs: 10_000 });
    expect(e2.isRunning('a')).toBe(false);
    await e2.destroy('a');
    await e2.destroy('b');
    expect(await portFree(port)).toBe(true);
    expect(pastasUnder(s.stateDir)).toEqual([]);
  });
});

describeIf(['root', 'busybox', 'fixture-rootfs', 'passt'])('network: user, supervisor SIGKILLed', () => {
  const s = useSuccessiveEngines('nk');
  useSubreaper();

  test('a supervisor process SIGKILLed: its pasta keeps serving; the sandbox then dies alone; the next supervisor stops the pasta; nothing left after destroy', async () => {
    const port = await freePort();
    const script = `
      const { createEngine } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      const pino = require('pino');
      (async () => {
        const e = await createEngine({ stateDir: ${JSON.stringify(s.stateDir)}, logger: pino({ level: 'silent' }) });
        let helper;
        e.events$.subscribe((ev) => { if (ev.type === 'network' && ev.event === 'up') helper = ev.helperPid; });
        const h = await e.createSandbox('k', { rootfs: ${JSON.stringify(fixtureRootfs())}, args: ['httpd', '-f', '-p', '8080', '-h', '/etc'] },
          { network: { mode: 'user', forwards: [{ hostPort: ${port}, containerPort: 8080 }] } });
        await e.startRoot('k');
        process.stdout.write('up ' + h.pid + ' ' + helper + '\\n');
        setInterval(() => {}, 1000);
      })().catch((err) => { process.stdout.write('error ' + err.message + '\\n'); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`supervisor child did not start: ${buf}`)), 20_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) {
          clearTimeout(timer);
          resolve(buf.trim());
        }
      });
    });
    expect(line).toMatch(/^up \d+ \d+$/);
    const [initPid, helperPid] = line.split(' ').slice(1).map(Number) as [number, number];
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await poll(() => httpGet(`http://127.0.0.1:${port}/hostname`), 10_000, 'the forward with no supervisor')).trim()).toBe('paddock');
    process.kill(initPid, 'SIGKILL');
    await poll(() => (alive(initPid) ? undefined : true), 5_000, 'the sandbox gone');
    expect(alive(helperPid)).toBe(true);

    const n = await s.open();
    await poll(() => (alive(helperPid) ? undefined : true), 5_000, 'its pasta stopped by the next supervisor');
    expect(await portFree(port)).toBe(true);
    expect(n.isRunning('k')).toBe(false);
    await n.destroy('k');
    expect(fs.existsSync(path.join(s.stateDir, 'k'))).toBe(false);
    expect(pastasUnder(s.stateDir)).toEqual([]);
  });
});

/** The host's nftables tables and interfaces named after paddock's bridge sandboxes. */
function bridgeLeftovers(): string[] {
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter((l) => / paddock_[0-9a-f]{8}$/.test(l));
  const links = fs.readdirSync('/sys/class/net').filter((n) => /^pk[0-9a-f]{8}$/.test(n) || n === BRIDGE);
  return [...tables, ...links];
}
/** A bridge and subnet of the tests' own, so a paddock0 of anyone else's is never touched. */
const BRIDGE = 'pdktest0';
const SUBNET = '10.214.7.0/24';

describeIf(['root', 'busybox', 'fixture-rootfs', 'nftables'])('network: bridge', () => {
  const s = useSuccessiveEngines('ng');
  useSubreaper();
  afterEach(() => {
    expect(bridgeLeftovers()).toEqual([]);
  });
  const open = () => s.open({ bridge: { name: BRIDGE, subnet: SUBNET } });

  /** `nc` from inside a sandbox to `addr:port`: 1 when the page came back, 0 when not. */
  const probe = (addr: string, port: number) => `printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc -w 2 ${addr} ${port} 2>/dev/null | grep -m1 -c paddock`;

  test('a server in the sandbox is reached from the host\'s loopback through a forward; its address is recorded; nothing left after destroy', async () => {
    const e = await open();
    const seen: NetEvent[] = [];
    e.events$.subscribe((ev) => ev.type === 'network' && seen.push(ev));
    const port = await freePort();
    await e.createSandbox('web', template(['httpd', '-f', '-p', '8080', '-h', '/etc']), { network: { mode: 'bridge', forwards: [{ hostPort: port, containerPort: 8080 }] } });
    await e.startRoot('web');
    const up = seen.find((x) => x.event === 'up') as Extract<NetEvent, { event: 'up' }>;
    expect(up).toMatchObject({ mode: 'bridge', address: '10.214.7.2', hostAddress: '10.214.7.1' });
    expect(JSON.parse(fs.readFileSync(path.join(s.stateDir, '.bridge.json'), 'utf8')).leases['10.214.7.2']).toMatchObject({ sandboxId: 'web' });
    expect((await poll(() => httpGet(`http://127.0.0.1:${port}/hostname`), 10_000, 'the forward')).trim()).toBe('paddock');
    // Also straight at its address, from the host.
    expect((await httpGet('http://10.214.7.2:8080/hostname'))?.trim()).toBe('paddock');
    // MTU 1500 by default, both ends.
    expect(fs.readFileSync(`/sys/class/net/${BRIDGE}/mtu`, 'utf8').trim()).toBe('1500');
    const st = await firstValueFrom(e.stats$('web', { intervalMs: 100 }).pipe(take(1)));
    expect(st.data.network_interfaces?.find((i) => i.name === 'eth0')?.rx_packets).toBeGreaterThan(0);
    await e.destroy('web');
    expect(JSON.parse(fs.readFileSync(path.join(s.stateDir, '.bridge.json'), 'utf8')).leases).toEqual({});
    expect(seen.map((x) => x.event)).toEqual(['up', 'forwards', 'forwards', 'down']);
  });

  test('two sandboxes reach each other only when both say isolated: false', async () => {
    const e = await open();
    const addrs = new Map<string, string>();
    e.events$.subscribe((ev) => ev.type === 'network' && ev.event === 'up' && addrs.set(ev.sandboxId, ev.address as string));
    for (const [server, isolated] of [['s1', true], ['s2', false]] as const) {
      await e.createSandbox(server, template(['httpd', '-f', '-p', '8080', '-h', '/etc']), { network: { mode: 'bridge', isolated } });
      await e.startRoot(server);
    }
    const run = async (id: string, target: string, isolated: boolean) => {
      const h = await e.createSandbox(id, template(['sh', '-c', probe(addrs.get(target) as string, 8080)]), { network: { mode: 'bridge', isolated } });
      await e.startRoot(id);
      await e.wait(id, id, { timeoutMs: 20_000 });
      const out = (await readAll(h.stdio!.stdout)).trim();
      await e.destroy(id);
      return out;
    };
    // Isolated by default: neither an isolated server nor an open one is reached from an isolated sandbox.
    expect(await run('c1', 's1', true)).toBe('0');
    expect(await run('c2', 's2', true)).toBe('0');
    // An open sandbox reaches an open one, and still not an isolated one.
    expect(await run('c3', 's2', false)).toBe('1');
    expect(await run('c4', 's1', false)).toBe('0');
    // The host reaches both (the bridge is the host's).
    expect((await httpGet(`http://${addrs.get('s1') as string}:8080/hostname`))?.trim()).toBe('paddock');
    await e.destroy('s1');
    await e.destroy('s2');
  });

  test('nat: false has no masquerade and drops what leaves the bridge; nat: true masquerades', async () => {
    const e = await open();
    for (const [id, nat] of [['n1', true], ['n2', false]] as const) {
      await e.createSandbox(id, template(['sleep', '30']), { network: { mode: 'bridge', nat } });
    }
    const rules = execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
    expect(rules).toMatch(/ip saddr 10\.214\.7\.2 oifname != "pdktest0" masquerade/);
    expect(rules).not.toMatch(/ip saddr 10\.214\.7\.3 oifname != "pdktest0" masquerade/);
    expect(rules).toMatch(/iifname "pdktest0" ip saddr 10\.214\.7\.3 oifname != "pdktest0" drop/);
    await e.destroy('n1');
    await e.destroy('n2');
  });

  test('a sandbox that died while no supervisor ran: the next one removes its rules at reattach and its address at destroy', async () => {
    const e1 = await open();
    const port = await freePort();
    const h = await e1.createSandbox('gone', template(['sleep', '60']), { network: { mode: 'bridge', forwards: [{ hostPort: port, containerPort: 80 }] } });
    await e1.startRoot('gone');
    const { table } = { table: execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').find((l) => l.startsWith('table ip paddock_')) };
    expect(table).toBeDefined();
    await e1.close();
    process.kill(h.pid, 'SIGKILL');
    await poll(() => (alive(h.pid) ? undefined : true), 5_000, 'the sandbox gone');
    const e2 = await open();
    expect(e2.isRunning('gone')).toBe(false);
    expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain(table?.slice('table ip '.length) as string);
    // Its address is kept until destroy, and its forward's port with it.
    expect(JSON.parse(fs.readFileSync(path.join(s.stateDir, '.bridge.json'), 'utf8')).leases['10.214.7.2']).toMatchObject({ sandboxId: 'gone' });
    await expect(e2.createSandbox('other', template(['true']), { network: { mode: 'bridge', forwards: [{ hostPort: port, containerPort: 80 }] } })).rejects.toMatchObject({ code: 'EPORT_IN_USE' });
    expect(fs.existsSync(path.join(s.stateDir, 'other'))).toBe(false);
    await e2.destroy('gone');
    expect(JSON.parse(fs.readFileSync(path.join(s.stateDir, '.bridge.json'), 'utf8')).leases).toEqual({});
  });

  test('bad input: a subnet over a host route, a malformed one, an IPv6 forward; nothing made', async () => {
    // A route of the host's own (the first that is not the default one).
    const route = fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).find((f) => f.length > 7 && f[7] !== '00000000');
    const le = (h: string) => { const n = parseInt(h, 16); return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.'); };
    expect(route).toBeDefined();
    const over = `${le((route as string[])[1] as string)}/24`;
    const e = await s.open({ bridge: { name: BRIDGE, subnet: over } });
    await expect(e.createSandbox('b1', template(['true']), { network: 'bridge' })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'bridge.subnet' }, message: expect.stringMatching(/overlaps the host's route/) });
    expect(fs.existsSync(path.join(s.stateDir, 'b1'))).toBe(false);
    await expect(s.open({ bridge: { name: BRIDGE, subnet: '10.214.7.5/24' } })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'bridge.subnet' } });
    await expect(s.open({ bridge: { name: BRIDGE, sbunet: SUBNET } as never })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', message: expect.stringMatching(/did you mean "subnet"/) });
    const ok = await open();
    await expect(ok.createSandbox('b2', template(['true']), { network: { mode: 'bridge', forwards: [{ hostPort: 8080, containerPort: 80, hostIp: '::1' }] } })).rejects.toMatchObject({
      code: 'EINVALID_ARGUMENT',
      context: { field: 'network.forwards[0].hostIp' },
    });
    expect(fs.existsSync(path.join(s.stateDir, 'b2'))).toBe(false);
  });
});

describeIf(['root', 'busybox', 'fixture-rootfs', 'passt'])('network: bad input', () => {
  const t = useEngine('nb');

  async function refused(opts: Parameters<typeof t.engine.createSandbox>[2], tpl: SandboxTemplate = template(['true'])) {
    const id = t.id();
    const err = await t.engine.createSandbox(id, tpl, opts).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; context: { field?: string } },
    );
    expect(fs.existsSync(path.join(t.stateDir, id))).toBe(false);
    expect(t.engine.list()).toEqual([]);
    return err;
  }

  test('each is a typed error naming the field, and nothing is made', async () => {
    expect(await refused({ network: { mode: 'user', forwards: [{ hostPort: 8080, containerPort: 80, protocol: 'sctp' as 'tcp' }] } })).toMatchObject({
      code: 'EINVALID_ARGUMENT',
      context: { field: 'network.forwards[0].protocol' },
    });
    expect(await refused({ network: { mode: 'user', fowards: [] } as never })).toMatchObject({ code: 'EINVALID_ARGUMENT', message: expect.stringMatching(/fowards.*did you mean "forwards"/) });
    expect(await refused({ network: 'wifi' as never })).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'network.mode' } });
    expect(await refused({ network: { mode: 'host', egress: false } })).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'network.egress' } });
    expect(await refused({ network: 'host' }, template(['true'], { network: 'none' }))).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'network' } });

    // A host port in use.
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      expect(await refused({ network: { mode: 'user', forwards: [{ hostPort: port, containerPort: 80 }] } })).toMatchObject({
        code: 'EPORT_IN_USE',
        context: { field: 'network.forwards[0]' },
      });
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
    // user mode on a bundle without a user namespace (pasta could not enter it unprivileged).
    const bundle = t.bundle({ args: ['true'], userns: false });
    const id = t.id();
    await expect(t.engine.createSandbox(id, bundle, { network: { mode: 'user' } })).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'network.mode' } });
    expect(fs.existsSync(path.join(t.stateDir, id))).toBe(false);
    // dns: true on a rootfs without /etc/resolv.conf to mount over.
    expect(await refused({ network: { mode: 'user', dns: true } })).toMatchObject({ code: 'EINVALID_ARGUMENT', context: { field: 'network.dns' } });
  });
});
