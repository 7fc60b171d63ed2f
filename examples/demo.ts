/**
 * The main job: launches real sandboxes with the library and shows what happens.
 * Run with `npm run demo` (as root: sandboxes need namespaces and id maps).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { filter, firstValueFrom, tap, timeout } from 'rxjs';
import { createEngine, isPaddockError, type SandboxTemplate } from '../index';
import { defaultSpec } from '../specs/default-spec';

const ROOTFS = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'rootfs');

/**
 * The secure builder's input: a rootfs and a command. The engine makes the rest (its
 * default spec, a user namespace with a host id range of the sandbox's own, only
 * loopback, a read-only rootfs shown through an idmapped mount).
 */
function template(args: string[], more: Partial<SandboxTemplate> = {}): SandboxTemplate {
  return { rootfs: ROOTFS, args, limits: { memoryBytes: 64 << 20, pids: 64 }, ...more };
}

/** An OCI bundle written by hand, as podman or containerd would hand one over. */
function bundle(dir: string, args: string[], hostname: string): string {
  const b = fs.mkdtempSync(path.join(dir, 'bundle-'));
  const config = defaultSpec({ args, rootfs: ROOTFS, hostname, userns: { hostId: 100000, size: 65536 } });
  if (config.root) config.root.readonly = true;
  fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(config, null, 2));
  return b;
}

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of stream) s += c.toString();
  return s;
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOTFS, 'bin', 'busybox'))) throw new Error(`no rootfs at ${ROOTFS}: run npm run setup`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-demo-'));
  // Sandboxes run as an unprivileged host uid and must be able to reach their state dir.
  fs.chmodSync(work, 0o711);
  const stateDir = path.join(work, 'state');
  const engine = await createEngine({ stateDir });
  const sub = engine.events$.subscribe((e) => {
    if (e.type === 'exit') console.log(`  event: ${e.sandboxId}/${e.containerId} ${e.kind} pid ${e.pid} exited ${JSON.stringify({ code: e.exit.exitCode, signal: e.exit.signal })}`);
    else if (e.type === 'state' && !e.containerId) console.log(`  event: ${e.sandboxId} -> ${e.status}`);
  });
  try {
    console.log('1. a sandbox from a template: says hello from inside its namespaces');
    let t = process.hrtime.bigint();
    const hello = await engine.createSandbox(
      'hello',
      template(['sh', '-c', 'read _ h n < /proc/self/uid_map; echo "hello from pid $$ on $(hostname) as uid $(id -u) (host uid $h, $n ids of its own); /bin owned by uid $(stat -c %u /bin); nets: $(ls /sys/class/net)"'], { hostname: 'demo-box' }),
    );
    await engine.startRoot('hello');
    console.log(`  status: ${JSON.stringify(await engine.wait('hello', 'hello'))}`);
    console.log(`  output: ${(await collect(hello.stdio!.stdout)).trim()}`);
    console.log(`  create+start+wait took ${Number(process.hrtime.bigint() - t) / 1e6} ms`);
    await engine.destroy('hello');

    console.log('2. exit codes and signals');
    await engine.createSandbox('seven', bundle(work, ['sh', '-c', 'exit 7'], 'seven'));
    await engine.startRoot('seven');
    console.log(`  sh -c 'exit 7' -> ${JSON.stringify(await engine.wait('seven', 'seven'))}`);
    await engine.destroy('seven');
    await engine.createSandbox('sleeper', bundle(work, ['sleep', '60'], 'sleeper'));
    await engine.startRoot('sleeper');
    await engine.signal('sleeper', 'sleeper', 'SIGKILL');
    console.log(`  sleep 60 + SIGKILL -> ${JSON.stringify(await engine.wait('sleeper', 'sleeper'))}`);
    await engine.destroy('sleeper');

    console.log('3. exec into a running container, ps, a second container in the same sandbox');
    await engine.createSandbox('pod', bundle(work, ['sleep', '60'], 'pod'));
    await engine.startRoot('pod');
    const ex = await engine.execute('pod', 'pod', { args: ['sh', '-c', 'echo exec sees $(ls /proc | grep -c "^[0-9]") processes'] });
    console.log(`  exec pid ${ex.pid} -> ${JSON.stringify(await engine.waitPid('pod', ex.pid))}: ${(await collect(ex.stdout!)).trim()}`);
    const side = await engine.startContainer('pod', 'sidecar', bundle(work, ['sh', '-c', 'echo sidecar on $(hostname); sleep 60'], 'pod'));
    console.log(`  sidecar pid ${side.pid} (host ${side.hostPid})`);
    console.log(`  ps pod: ${(await engine.processes('pod', 'pod')).map((p) => `${p.kind}:${p.hostPid}`).join(' ')}`);
    console.log(`  stats pod: ${JSON.stringify(await engine.event('pod', 'pod'))}`);
    console.log(`  list: ${engine.list().map((s) => `${s.id}=${s.status}[${s.containers.map((c) => `${c.id}:${c.status}`).join(',')}]`).join(' ')}`);
    await engine.destroy('pod');

    console.log('4. ten sandboxes at once from one template, each with host ids of its own (events no longer printed)');
    sub.unsubscribe();
    t = process.hrtime.bigint();
    const ids = Array.from({ length: 10 }, (_, i) => `par${i}`);
    const ranges = new Set<string>();
    await Promise.all(ids.map(async (id) => {
      const h = await engine.createSandbox(id, template(['true']));
      ranges.add(fs.readFileSync(`/proc/${h.pid}/uid_map`, 'utf8').trim().split(/\s+/)[1] as string);
      await engine.startRoot(id);
      await engine.wait(id, id);
      await engine.destroy(id);
    }));
    console.log(`  10 sandboxes created, run and destroyed in ${Number(process.hrtime.bigint() - t) / 1e6} ms; ${ranges.size} distinct host id ranges`);

    console.log('5. bad input is a typed error that changes nothing');
    for (const attempt of [
      () => engine.createSandbox('bad', '/nonexistent'),
      () => engine.createSandbox('bad', template(['true']), { usrens: 'auto' } as never),
      () => engine.startRoot('nope'),
      () => engine.signal('nope', 'nope', 'SIGWHAT'),
    ]) {
      try {
        await attempt();
      } catch (e) {
        console.log(`  ${isPaddockError(e) ? e.code : 'unexpected'}: ${(e as Error).message}`);
      }
    }
    console.log(`  sandboxes left: ${engine.list().length}`);

    console.log('6. supervision: a crashing container restarted on its backoff, then given up; a warm pool');
    // Prints the schedule as it happens and resolves at the give-up (bounded).
    const gaveUp = firstValueFrom(
      engine.events$.pipe(
        tap((e) => {
          if (e.type === 'restart.scheduled') console.log(`  restart #${e.attempt} of ${e.sandboxId} in ${e.delayMs} ms (exit ${e.exit.exitCode})`);
          else if (e.type === 'restart.gaveUp') console.log(`  gave up on ${e.sandboxId}: ${e.reason}`);
        }),
        filter((e) => e.type === 'restart.gaveUp' && e.sandboxId === 'crashy'),
        timeout(30_000),
      ),
    );
    await engine.createSandbox('crashy', bundle(work, ['sh', '-c', 'exit 1'], 'crashy'), {
      stdio: 'ignore',
      restart: { policy: 'on-failure', maxRestarts: 3, periodMs: 60_000, backoff: { initialMs: 50, maxMs: 400, factor: 2, jitter: 0 } },
    });
    await engine.startRoot('crashy');
    await gaveUp;
    await engine.destroy('crashy');
    const pool = await engine.pool('warm', { bundle: template(['sh', '-c', 'echo from a warm sandbox']), size: 2 });
    const filled = Date.now() + 30_000;
    while (pool.stats().idle < 2) {
      if (Date.now() > filled) throw new Error('the pool did not fill within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    t = process.hrtime.bigint();
    const got = await pool.acquire();
    console.log(`  pool.acquire() -> ${got.id} running in ${Number(process.hrtime.bigint() - t) / 1e6} ms; it says: ${(await collect(got.stdio!.stdout)).trim()}`);
    await engine.wait(got.id, got.id);
    await engine.destroy(got.id);
    await pool.drain();
    console.log(`  after drain: ${engine.list().length} sandboxes`);
  } finally {
    sub.unsubscribe();
    // Stops what is left (SIGTERM, then SIGKILL after the grace period) and closes.
    await engine.shutdown({ mode: 'stop', graceMs: 1_000 }).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`demo failed: ${isPaddockError(e) ? `${e.code}: ` : ''}${(e as Error).message}`);
  process.exit(1);
});
