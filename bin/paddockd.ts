/**
 * `paddockd --root DIR [--log FILE] [--idle-ms N] [--systemd-cgroup] [--leave-caller-cgroup]`: the resident
 * supervisor of one --root (docs/decisions/0044). The native `paddock` client starts
 * it on demand (detached, setsid) and forwards each call to it over
 * `<root>/paddockd.sock`; it runs today's commands (bin/commands/) against one warm
 * engine that holds every sandbox under the root, and exits after an idle time once it
 * holds no sandbox and no call. A killed paddockd loses nothing: the next call starts
 * another, which reattaches the root from its persisted state.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, str, bool } from './args';
import { processStartTime } from '../actors/sandbox/state-store';
import { LOCK_NAME, LOG_NAME, SOCKET_NAME } from './resident/protocol';

const DEFAULT_IDLE_MS = 30_000;
/** A starter that finds the lock held waits this long for it (a draining daemon of an older build). */
const LOCK_WAIT_MS = 15_000;

/**
 * One daemon per root: `<root>/paddockd.lock` holds "pid starttime" (O_EXCL), judged
 * stale once that process is gone. Two clients that start one each at the same moment
 * leave one: the other waits, sees the socket answer and leaves.
 */
async function takeLock(root: string, socketPath: string): Promise<(() => void) | undefined> {
  const file = path.join(root, LOCK_NAME);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, `${process.pid} ${processStartTime(process.pid) ?? 0}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8').split(' ')[0] === String(process.pid)) fs.rmSync(file, { force: true });
        } catch {
          // gone already
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner: string[] = [];
    try {
      owner = fs.readFileSync(file, 'utf8').trim().split(' ');
    } catch {
      continue;
    }
    const pid = Number(owner[0]);
    const alive = Number.isInteger(pid) && pid > 0 && processStartTime(pid) !== undefined && String(processStartTime(pid)) === owner[1];
    if (!alive) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 25));
    // Another daemon serves already (we lost a start race): nothing for us to do.
    if (fs.existsSync(socketPath) && (await answers(socketPath))) return undefined;
  }
}

function answers(socketPath: string): Promise<boolean> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('node:net') as typeof import('node:net');
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Supervises what the root holds from the start (a killed paddockd's sandboxes, those of
 * in-process calls): every sandbox with a state is attached, as a call would attach it.
 */
async function attachExisting(engine: import('../actors/engine/api').Engine, root: string, logger: import('../base/logger').Logger): Promise<void> {
  for (const d of fs.readdirSync(root, { withFileTypes: true })) {
    if (!d.isDirectory() || !fs.existsSync(path.join(root, d.name, 'state.json'))) continue;
    await engine.attach(d.name).catch((e: unknown) => logger.warn({ sandboxId: d.name, err: e }, 'could not attach at start'));
  }
}

async function daemonMain(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'root', type: 'string' },
    { name: 'log', type: 'string' },
    { name: 'idle-ms', type: 'string' },
    { name: 'systemd-cgroup', type: 'bool' },
    // The native client's on-demand start: leave the starting call's cgroups.
    { name: 'leave-caller-cgroup', type: 'bool' },
  ]);
  const root = path.resolve(str(p, 'root') ?? (process.env.PADDOCK_ROOT || '/run/paddock'));
  const idleText = str(p, 'idle-ms') ?? process.env.PADDOCK_DAEMON_IDLE_MS;
  const idleMs = idleText === undefined ? DEFAULT_IDLE_MS : Number(idleText);
  if (!Number.isInteger(idleMs) || idleMs < 0) throw new Error(`invalid --idle-ms ${idleText}`);
  // As the engine makes a state dir: a user-namespaced sandbox's uid must pass through it.
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const socketPath = path.join(root, SOCKET_NAME);
  const unlock = await takeLock(root, socketPath);
  if (!unlock) return 0;
  /* eslint-disable @typescript-eslint/no-require-imports */
  const pino = require('pino') as typeof import('pino');
  const { Daemon, launchInCaller, currentCallLog } = require('./resident/server') as typeof import('./resident/server');
  const own = pino.default.destination({ dest: str(p, 'log') ?? path.join(root, LOG_NAME), append: true, sync: true, mkdir: true });
  // Each line also goes to the --log of the call it was logged for, as the in-process CLI
  // would have written it there (containerd reads warnings and errors from that file).
  const dest = {
    write(line: string): boolean {
      const callLog = currentCallLog();
      if (callLog) {
        try {
          fs.appendFileSync(callLog, line);
        } catch {
          // The call's log is best effort, as in-process.
        }
      }
      return own.write(line);
    },
  };
  const logger = pino.default({ level: process.env.PADDOCK_DAEMON_DEBUG === '1' ? 'debug' : 'info', name: 'paddockd' }, dest);
  if (bool(p, 'leave-caller-cgroup')) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { moveSelfToRootCgroups } = require('../actors/cgroups/leave-caller') as typeof import('../actors/cgroups/leave-caller');
    const left = moveSelfToRootCgroups();
    if (left.failed.length > 0) logger.warn({ failed: left.failed }, 'paddockd stays in its starter\'s cgroup of these hierarchies');
  }
  const { createEngine } = require('../actors/engine/engine') as typeof import('../actors/engine/engine');
  const { loadNative } = require('../native/ffi') as typeof import('../native/ffi');
  const { engineOptionsFromEnv } = require('./context') as typeof import('./context');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const native = loadNative();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('PADDOCK_') && v !== undefined) env[k] = v;
  let daemon: InstanceType<typeof Daemon> | undefined;
  try {
    const engine = await createEngine({
      stateDir: root,
      // Not the engine's reattach of every folder: it removes one without state.json as
      // an unfinished create, and a root may hold other things (a test's bundle) or a
      // create in flight in another process. Sandboxes with a state are attached below.
      reattach: false,
      lockTimeoutMs: 10_000,
      logger,
      initStderr: 'ignore',
      native,
      launchInit: launchInCaller,
      ...(bool(p, 'systemd-cgroup') ? { systemdCgroup: true } : {}),
      ...(__dirname.endsWith(`${path.sep}dist${path.sep}cli`) ? { seccompCacheDir: path.join(__dirname, 'seccomp.cache') } : {}),
      ...engineOptionsFromEnv(env),
    });
    const ready = attachExisting(engine, root, logger);
    const done = new Promise<void>((resolve) => {
      daemon = new Daemon(engine, native, { root, socketPath, idleMs, logger, systemdCgroup: bool(p, 'systemd-cgroup'), env, ready, onStop: resolve });
    });
    await daemon!.listen();
    logger.info({ root, pid: process.pid, sandboxes: engine.list().length }, 'paddockd serving');
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void daemon?.stop(sig));
    await done;
    return 0;
  } finally {
    unlock();
  }
}

if (require.main === module) {
  daemonMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`paddockd: ${(e as Error).message ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
