import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Engine, EngineOptions } from '../../actors/engine/api';
import type { Logger } from '../../base/logger';
import { NativeError, type Fd, type HostPid, type LaunchedInit, type LaunchInitRequest, type NativeFacade } from '../../native/facade';
import { errnoName } from '../../base/errno';
import { CLONE } from '../../protocols/messages';
import { VALUE_FLAGS } from '../command-list';
import { engineOptionsFromEnv, type CliContext, type CliIo, type ResidentCall } from '../context';
import { main, type ContextMaker } from '../paddock';
import { residentIo } from './io';
import { FrameReader, KEEPALIVE_MS, frame, parseRequest, ProtocolError, type CallRequest } from './protocol';
import { daemonVersion } from './version';

/** The call a piece of engine work runs for: paddock-init's launch goes to its client. */
interface CallScope {
  readonly launch: (req: LaunchInitRequest) => Promise<LaunchedInit>;
  /** The call's --log: what the engine logs while working for this call goes there too. */
  logFile?: string;
}

const callScope = new AsyncLocalStorage<CallScope>();

/** The --log of the call the current piece of work is for (paddockd's log destination reads it). */
export function currentCallLog(): string | undefined {
  return callScope.getStore()?.logFile;
}

export interface DaemonConfig {
  readonly root: string;
  readonly socketPath: string;
  /** How long paddockd stays once it holds no sandbox and no call. */
  readonly idleMs: number;
  readonly logger: Logger;
  /** Engine options fixed for this daemon's life (from the call that started it). */
  readonly systemdCgroup: boolean;
  readonly env: Record<string, string>;
  /** Settles once the sandboxes found at start are attached; calls wait for it before using the engine. */
  readonly ready: Promise<void>;
  /** Called once the daemon has stopped serving (idle, drained for a newer version, SIGTERM). */
  readonly onStop: () => void;
}

/** How long a connected client has to send its request: a peer that says nothing is dropped. */
const REQUEST_TIMEOUT_MS = 5000;
/** How long the client has to answer a spawn or launch request (a fork and an exec). */
const CLIENT_ANSWER_MS = 10_000;

/**
 * EngineOptions.launchInit of paddockd's engine: a launch made for a call is the
 * client's (step 3 of issue 18), so paddock-init is the child of the `paddock create`
 * process as with runc; a launch of no call (a restart policy's) stays in the daemon.
 */
export function launchInCaller(req: LaunchInitRequest): Promise<LaunchedInit> | undefined {
  return callScope.getStore()?.launch(req);
}

/** The order of the launcher's join arguments (native/c/client/launch_request.c). */
const JOIN_ORDER = [CLONE.NEWNET, CLONE.NEWIPC, CLONE.NEWUTS, CLONE.NEWUSER, CLONE.NEWCGROUP, CLONE.NEWPID] as const;

/**
 * The "L" frame: the launcher's arguments as the client's launch_request.c reads them.
 * `imageFd` is our sealed copy of paddock-init (NativeFacade.initImage): the client
 * launches from it rather than copying the binary again on every call.
 */
export function launchFrame(req: LaunchInitRequest, daemonPid: number = process.pid, imageFd?: number): Buffer {
  const stdio = [0, 1, 2].map((i) => {
    const fd = req.stdio?.[i];
    if (fd === undefined) return '-';
    // The engine hands init "our" 0-2 for stdio: 'inherit', which here means the client's own.
    if (fd === 0 || fd === 1 || fd === 2) return String(fd);
    throw new Error(`launch in the client: stdio fd ${fd} is not one of the caller's`);
  });
  const joins = JOIN_ORDER.map((flag) => {
    const j = req.joinNamespaces?.find((x) => x.type === flag);
    // The client opens the same namespace file through our fd (root may: it can ptrace us).
    return j ? `/proc/${daemonPid}/fd/${j.fd}` : '';
  });
  const image = imageFd === undefined ? '' : `/proc/${daemonPid}/fd/${imageFd}`;
  // A path with a newline cannot be in the client's list; init is then moved by us (place()).
  const tasks = req.cgroup?.tasks.some((t) => t.includes('\n')) ? '' : (req.cgroup?.tasks.join('\n') ?? '');
  const fields = [req.initPath, req.sandboxDir, String(req.cloneFlags), req.uidMap ?? '', req.gidMap ?? '', ...stdio, ...joins, image, tasks, req.cgroup?.dir ?? ''];
  return frame('L', Buffer.from(fields.map((f) => `${f}\0`).join(''), 'utf8'));
}

/** The client's "R": its launch, whose fds are copied out of it, or the launcher's error. */
export function launchedFrom(reply: string, native: NativeFacade, clientPidfd: Fd): LaunchedInit {
  const bad = () => new ProtocolError(`bad launch reply ${JSON.stringify(reply.slice(0, 60))}`);
  const m = /^(-?\d+) (\S+) ?(.*)$/s.exec(reply);
  if (!m) throw bad();
  const first = Number(m[1]);
  if (first < 0) throw new NativeError(m[2] as string, -first, errnoName(-first), m[3] || undefined);
  const [pidfdNo, readyNo] = [Number(m[2]), Number(m[3])];
  if (first === 0 || !Number.isInteger(pidfdNo) || !Number.isInteger(readyNo) || pidfdNo < 0 || readyNo < 0) throw bad();
  const pidfd = native.pidfdGetfd(clientPidfd, pidfdNo);
  try {
    return { pid: first as HostPid, pidfd, readyFd: native.pidfdGetfd(clientPidfd, readyNo) };
  } catch (e) {
    native.closeFd(pidfd);
    throw e;
  }
}

/** The verb of a command line, found as bin/paddock.ts finds it. */
function verbOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return argv[i + 1];
    if (a.startsWith('-')) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

export class Daemon {
  private readonly server: net.Server;
  private calls = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private socketIno: number | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly native: NativeFacade,
    private readonly config: DaemonConfig,
  ) {
    this.server = net.createServer((sock) => this.onConnection(sock));
  }

  /**
   * Our sealed copy of paddock-init for the client to launch from; undefined when it
   * cannot be made, and the client then copies the file itself as before.
   */
  private initImage(initPath: string): Fd | undefined {
    try {
      return this.native.initImage(initPath);
    } catch (e) {
      this.config.logger.warn({ err: e, initPath }, 'no shared paddock-init image: the client copies the binary itself');
      return undefined;
    }
  }

  /** Listens on the socket (mode 0600 from its first moment); the caller holds the daemon lock, so any socket file there is stale. */
  async listen(): Promise<void> {
    fs.rmSync(this.config.socketPath, { force: true });
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.config.socketPath, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    this.socketIno = fs.statSync(this.config.socketPath).ino;
    this.armIdle();
  }

  /** Stops taking calls, lets the running ones finish, closes the engine (sandboxes keep running). */
  stop(reason: string): Promise<void> {
    if (!this.stopping) {
      this.config.logger.info({ reason }, 'paddockd stopping');
      this.stopping = this.drain();
    }
    return this.stopping;
  }

  private async drain(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.server.close();
    // Only our own socket: a newer daemon may already listen at that path.
    try {
      if (fs.statSync(this.config.socketPath).ino === this.socketIno) fs.rmSync(this.config.socketPath, { force: true });
    } catch {
      // gone already
    }
    const deadline = Date.now() + 60_000;
    while (this.calls > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.engine.close().catch((e: unknown) => this.config.logger.warn({ err: e }, 'engine close failed'));
    this.config.onStop();
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.stopping || this.calls > 0 || this.engine.list().length > 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.calls === 0 && this.engine.list().length === 0) void this.stop('idle');
      else this.armIdle();
    }, this.config.idleMs);
    this.idleTimer.unref();
  }

  private onConnection(sock: net.Socket): void {
    if (this.stopping) return void sock.destroy();
    clearTimeout(this.idleTimer);
    this.calls++;
    this.serve(sock)
      .catch((e: unknown) => this.config.logger.warn({ err: e }, 'call failed'))
      .finally(() => {
        this.calls--;
        sock.destroy();
        // A stopped sandbox still counts: it is held until someone deletes it.
        this.armIdle();
      });
  }

  private async serve(sock: net.Socket): Promise<void> {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) throw new Error('accepted socket without an fd');
    const peer = this.native.peerCredentials(fd);
    const me = process.geteuid?.() ?? 0;
    if (peer.uid !== me && peer.uid !== 0) {
      this.config.logger.warn({ peer }, 'call refused: another user');
      sock.end(frame('E', `paddockd of ${this.config.root} serves uid ${me}, not ${peer.uid} (EPERM)`));
      return;
    }
    const { request, reader } = await readRequest(sock);
    if (request.version !== daemonVersion()) {
      // The client belongs to another build: this daemon gives the root up, and the
      // client starts one of its own (the engine's state on disk carries everything over).
      sock.end(frame('V', daemonVersion()));
      void this.stop(`client of version ${request.version}`);
      return;
    }
    const verb = verbOf(request.argv);
    const env = request.env;
    if ((verb === 'create' || verb === 'run') && !sameEngineOptions(request.argv, env, this.config)) {
      sock.end(frame('F', 'engine options differ from this supervisor\'s'));
      return;
    }
    const client = takeStdio(this.native, peer.pid, sock);
    const fds = client.fds;
    const replies = new Replies(sock, reader);
    const resident: ResidentCall = {
      callerPid: peer.pid,
      gone: new Promise<void>((resolve) => sock.once('close', () => resolve())),
      spawnSelf: async (argv) => {
        const reply = await replies.ask(frame('S', Buffer.from(argv.map((a) => `${a}\0`).join(''), 'utf8')), 'P', CLIENT_ANSWER_MS);
        const pid = Number(reply.toString('latin1'));
        if (!Number.isInteger(pid) || pid <= 0) throw Object.assign(new Error(`the client could not start the relay (${reply.toString('latin1')})`), { code: 'ELAUNCH' });
        return pid;
      },
    };
    const scope: CallScope = {
      launch: async (req) => launchedFrom((await replies.ask(launchFrame(req, process.pid, this.initImage(req.initPath)), 'R', CLIENT_ANSWER_MS)).toString('utf8'), this.native, client.pidfd),
    };
    const io = residentIo(fds, request.cwd, env);
    sock.write(frame('H'));
    const keepalive = setInterval(() => sock.writable && sock.write(frame('K')), KEEPALIVE_MS);
    let code: number;
    try {
      code = await callScope.run(scope, () => main(request.argv, io, this.contextMaker(resident, scope)));
    } catch (e) {
      if (!(e as { inProcessOnly?: boolean }).inProcessOnly) throw e;
      clearInterval(keepalive);
      // The call will attach this sandbox in the client's process: it needs the lock
      // this daemon holds (a prepared container keeps it here, and the call waits).
      const handOver = (e as { sandboxId?: string }).sandboxId;
      if (handOver !== undefined) await this.engine.detach(handOver).catch((err: unknown) => this.config.logger.warn({ err, sandboxId: handOver }, 'could not hand the sandbox over'));
      await io.finish();
      sock.end(frame('F', (e as Error).message));
      return;
    } finally {
      clearInterval(keepalive);
      // After the call: a launch copied init's pidfd and ready pipe out of the client through it.
      this.native.closeFd(client.pidfd);
    }
    await io.finish();
    // The engine writes a burst of state changes once, on the next turn (setImmediate):
    // one more turn first, so the caller hears of a change only once it is on disk, and a
    // paddockd killed right after its answer does not come back to an older state.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (sock.writable) sock.end(frame('X', String(code)));
  }

  private contextMaker(resident: ResidentCall, scope: CallScope): ContextMaker {
    const engine = this.engine;
    const ready = this.config.ready;
    // The daemon owns every sandbox it attached for as long as it runs: a command's
    // release() (how a one-shot exec stops blocking other processes) has nothing to do here.
    const shared = new Proxy(engine, {
      get(target, key, receiver) {
        if (key === 'release') return () => undefined;
        if (key === 'close') return async () => undefined;
        const v = Reflect.get(target, key, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return (globals, io: CliIo): CliContext => {
      const logFile = globals.log ? path.resolve(io.cwd, globals.log) : undefined;
      scope.logFile = logFile;
      return {
        root: this.config.root,
        ...(logFile ? { logFile } : {}),
        logFormat: globals.logFormat === 'json' ? 'json' : 'text',
        debug: globals.debug ?? false,
        io,
        resident,
        engine: async () => {
          await ready;
          return shared;
        },
        close: async () => undefined,
      };
    };
  }
}

/** Whether a create in this daemon's engine means what it would in-process (else the client runs it itself). */
function sameEngineOptions(argv: readonly string[], env: Record<string, string>, config: DaemonConfig): boolean {
  const verb = verbOf(argv);
  const globals = argv.slice(0, verb === undefined ? argv.length : argv.indexOf(verb));
  const systemd = globals.includes('--systemd-cgroup');
  return systemd === config.systemdCgroup && JSON.stringify(engineOptionsFromEnv(env)) === JSON.stringify(engineOptionsFromEnv(config.env));
}

/**
 * A pidfd of the client and copies of its fds 0-2 (pidfd_getfd: Node's sockets
 * cannot receive SCM_RIGHTS). The pid is the one SO_PEERCRED recorded at connect; it is still the
 * client's as long as the connection is open, which is checked after the pidfd exists.
 * A closed fd of the client's becomes /dev/null, as the kernel would give a child.
 */
function takeStdio(native: NativeFacade, pid: number, sock: net.Socket): { pidfd: Fd; fds: [number, number, number] } {
  const pidfd = native.pidfdOpen(pid);
  try {
    if (sock.destroyed || !sock.readable) throw new ProtocolError('the client went away before its fds were taken');
    const fds = [0, 1, 2].map((n) => {
      try {
        return native.pidfdGetfd(pidfd, n);
      } catch {
        return fs.openSync('/dev/null', n === 0 ? 'r' : 'w');
      }
    }) as [number, number, number];
    return { pidfd, fds };
  } catch (e) {
    native.closeFd(pidfd);
    throw e;
  }
}

function readRequest(sock: net.Socket): Promise<{ request: CallRequest; reader: FrameReader }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new ProtocolError('no request within 5 s')), REQUEST_TIMEOUT_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let parsed;
      try {
        parsed = parseRequest(buf);
      } catch (e) {
        return fail(e as Error);
      }
      if (!parsed) return;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      const reader = new FrameReader();
      if (parsed.rest.length > 0) reader.push(parsed.rest);
      resolve({ request: parsed.request, reader });
    };
    const onClose = () => fail(new ProtocolError('the client closed before its request'));
    sock.on('data', onData);
    sock.once('close', onClose);
  });
}

/** The client's answers to the daemon's requests (S, L), one outstanding at a time per type. */
class Replies {
  private readonly waiting = new Map<string, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly sock: net.Socket,
    reader: FrameReader,
  ) {
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (e) {
        for (const w of this.waiting.values()) w.reject(e as Error);
        this.waiting.clear();
        return;
      }
      for (const f of frames) {
        const w = this.waiting.get(f.type);
        this.waiting.delete(f.type);
        w?.resolve(f.payload);
      }
    });
    sock.once('close', () => {
      for (const w of this.waiting.values()) w.reject(Object.assign(new Error('the client went away'), { code: 'ECLIENT_GONE' }));
      this.waiting.clear();
    });
  }

  ask(request: Buffer, replyType: string, timeoutMs: number): Promise<Buffer> {
    if (this.sock.destroyed) return Promise.reject(Object.assign(new Error('the client went away'), { code: 'ECLIENT_GONE' }));
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(replyType);
        reject(Object.assign(new Error(`the client did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      this.waiting.set(replyType, {
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sock.write(request);
    });
  }
}

export type { EngineOptions };
