/**
 * 1e. The `network` option (docs/decisions/0041): create + start + wait of /bin/true
 * from a template in each mode, as a ratio to `none` (interleaved rounds, medians); and
 * the throughput of a 1 GiB transfer through a `user` forward (pasta) and a `bridge`
 * forward (nftables DNAT from the host's loopback) against the host's loopback, the same sender (busybox `dd | nc -l`) on both sides, the receiver
 * this process.
 *
 * Alone with `bash bench/run.sh network` (after building dist/).
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { createEngine, type CreateSandboxOptions, type Engine, type SandboxTemplate } from '../index';
import { median } from './stats';

const GIB = 1024 * 1024 * 1024;

export interface NetworkFigures {
  readonly runs: number;
  readonly medianMs: Record<string, number>;
  readonly minMs: Record<string, number>;
  /** Each mode's median ÷ none's. */
  readonly ratioToNone: Record<string, number>;
  /** MiB/s of 1 GiB, median of the transfer runs. */
  readonly throughputMiBs: Record<string, number>;
  /** Each forward ÷ host loopback. */
  readonly throughputRatio: Record<string, number>;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function timeMode(engine: Engine, id: string, tpl: SandboxTemplate, opts: CreateSandboxOptions): Promise<number> {
  const t0 = process.hrtime.bigint();
  await engine.createSandbox(id, tpl, { stdio: 'ignore', ...opts });
  await engine.startRoot(id);
  const st = await engine.wait(id, id);
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (st.exitCode !== 0) throw new Error(`/bin/true in ${JSON.stringify(opts.network)} exited ${JSON.stringify(st)}`);
  await engine.destroy(id);
  return dt;
}

/** Connects (retrying while the listener comes up, 10 s at most) and reads `bytes`; MiB/s from the first byte. */
async function receive(port: number, bytes: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await new Promise<number | 'retry'>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let got = 0;
      let t0: bigint | undefined;
      sock.on('data', (d: Buffer) => {
        t0 ??= process.hrtime.bigint();
        got += d.length;
        if (got >= bytes) {
          const s = Number(process.hrtime.bigint() - t0) / 1e9;
          sock.destroy();
          resolve(bytes / (1024 * 1024) / s);
        }
      });
      sock.on('error', () => resolve('retry'));
      sock.on('close', () => {
        if (got === 0) resolve('retry');
        else if (got < bytes) reject(new Error(`the sender stopped after ${got} bytes`));
      });
    });
    if (r !== 'retry') return r;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const SENDER = (port: number) => `dd if=/dev/zero bs=1M count=1100 2>/dev/null | nc -l -p ${port}`;

export async function networkSection(work: string, rootfs: string, runs: number, log: (s: string) => void): Promise<NetworkFigures> {
  const engine = await createEngine({ stateDir: path.join(work, 'state-network'), logger: pino({ level: 'warn' }) });
  // The same forward over a bridge of MTU 65520, loopback's: what the MTU alone costs.
  const jumbo = await createEngine({ stateDir: path.join(work, 'state-network-jumbo'), logger: pino({ level: 'warn' }), bridge: { name: 'paddock9', subnet: '10.213.9.0/24', mtu: 65520 } });
  const tpl: SandboxTemplate = { rootfs, args: ['/bin/true'], hostname: 'bench' };
  const modes: Array<[string, CreateSandboxOptions]> = [
    ['none', { network: 'none' }],
    ['host', { network: 'host' }],
    ['user', { network: { mode: 'user' } }],
    ['user, egress false', { network: { mode: 'user', egress: false } }],
    ['bridge', { network: 'bridge' }],
  ];
  const t: Record<string, number[]> = Object.fromEntries(modes.map(([n]) => [n, []]));
  const mib: Record<string, number[]> = { 'host loopback': [], 'user forward (pasta)': [], 'bridge forward (nft)': [], 'bridge forward, mtu 65520': [] };
  let n = 0;
  try {
    for (let i = 0; i < 3 + runs; i++) {
      for (let k = 0; k < modes.length; k++) {
        const [name, opts] = modes[(i + k) % modes.length] as [string, CreateSandboxOptions];
        const d = await timeMode(engine, `n${n++}`, tpl, opts);
        if (i >= 3) t[name]?.push(d);
      }
    }
    const transfers = Math.max(3, Math.min(runs, 5));
    for (let i = 0; i < transfers; i++) {
      const hostPort = await freePort();
      const sender = spawn('/bin/busybox', ['sh', '-c', SENDER(hostPort)], { stdio: 'ignore' });
      try {
        mib['host loopback']?.push(await receive(hostPort, GIB));
      } finally {
        sender.kill('SIGKILL');
      }
      const forwards = [
        ['user forward (pasta)', 'user', engine],
        ['bridge forward (nft)', 'bridge', engine],
        ['bridge forward, mtu 65520', 'bridge', jumbo],
      ] as const;
      for (const [name, mode, e] of forwards) {
        const fwd = await freePort();
        const id = `x${n++}`;
        await e.createSandbox(id, { rootfs, args: ['sh', '-c', SENDER(9000)] }, { stdio: 'ignore', network: { mode, forwards: [{ hostPort: fwd, containerPort: 9000 }] } });
        await e.startRoot(id);
        try {
          mib[name]?.push(await receive(fwd, GIB));
        } finally {
          await e.destroy(id);
        }
      }
    }
  } finally {
    for (const e of [engine, jumbo]) {
      for (const s of e.list()) await e.destroy(s.id).catch(() => undefined);
      await e.close();
    }
  }
  const medianMs: Record<string, number> = {};
  const minMs: Record<string, number> = {};
  const ratioToNone: Record<string, number> = {};
  for (const [name, xs] of Object.entries(t)) {
    medianMs[name] = median(xs);
    minMs[name] = Math.min(...xs);
  }
  for (const name of Object.keys(t)) ratioToNone[name] = (medianMs[name] as number) / (medianMs['none'] as number);
  const throughputMiBs = Object.fromEntries(Object.entries(mib).map(([k, xs]) => [k, median(xs)]));
  const figures: NetworkFigures = {
    runs,
    medianMs,
    minMs,
    ratioToNone,
    throughputMiBs,
    throughputRatio: Object.fromEntries(Object.entries(throughputMiBs).map(([k, v]) => [k, v / (throughputMiBs['host loopback'] as number)])),
  };
  log(`\n1e. network modes: create + start + wait of /bin/true from a template (medians of ${runs}, interleaved)`);
  log(`${'mode'.padEnd(24)} ${'median ms'.padStart(10)} ${'min ms'.padStart(8)} ${'÷ none'.padStart(8)}`);
  for (const name of Object.keys(t)) {
    log(`${name.padEnd(24)} ${(medianMs[name] as number).toFixed(2).padStart(10)} ${(minMs[name] as number).toFixed(2).padStart(8)} ${(ratioToNone[name] as number).toFixed(2).padStart(8)}`);
  }
  log(`1 GiB to this process (busybox dd | nc -l as the sender), MiB/s, median of ${mib['host loopback']?.length}:`);
  for (const [k, v] of Object.entries(throughputMiBs)) log(`  ${k.padEnd(24)} ${v.toFixed(0).padStart(8)}  ÷ host loopback ${(figures.throughputRatio[k] as number).toFixed(2)}`);
  return figures;
}
