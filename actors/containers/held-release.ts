/**
 * Starting a prepared container without a round trip through paddock-init
 * (docs/decisions/0020).
 *
 * A prepared container waits in paddock-hold (native/c/hold/holder.c) with a write
 * end of its release pipe on fd 5 and the read end of a notify pipe on fd 7. The
 * supervisor takes copies of both with pidfd_getfd(2) once the container is held;
 * the start is then one byte written here (go), and the notify pipe's EOF (the
 * holder's execve closed it) says the container's program is running, or a report
 * says which step failed, in init's own report format (outcome). The engine lets its
 * machines and state write run between the two, while the kernel does the execve.
 * init learns the same from its error pipe and needs no message; a START_CONTAINER
 * that comes later anyway (a CLI `start`, a reattached engine) finds the release done.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { NativeFacade, Fd } from '../../native/facade';
import { WireCode } from '../../protocols/messages';
import { PaddockError } from '../../base/errors';
import { wireError } from '../channels/control-client';

/** The holder's descriptors: see native/c/hold/holder.c. */
const HOLD_W = 5;
const NOTIFY_R = 7;
/** struct pi_child_report: i32 errno, char step[32], char detail[220]. */
const REPORT_SIZE = 256;
const GO = Buffer.from('g');
/** argv[0] of a process waiting in paddock-hold; paddock-init's own copy keeps init's. */
const HOLDER_NAME = 'paddock-hold';
const INIT_NAME = 'paddock-init';

/** argv[0] of a process, or undefined when it is gone. */
function argv0Of(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0];
  } catch {
    return undefined;
  }
}

/**
 * The held process has died (a zombie init has not reaped yet, or gone). Its death can
 * be seen before init reaps it and writes its exit, whose reap time may then be later
 * than a start sent meanwhile: the start must not take that record for "started and
 * exited at once".
 */
export function heldProcessDead(hostPid: number): boolean {
  try {
    return /\) [ZX] /.test(fs.readFileSync(`/proc/${hostPid}/stat`, 'latin1'));
  } catch {
    return true;
  }
}

/** A prepared container's process still waits (in paddock-hold or as init's copy); undefined: gone. */
export function stillHeld(hostPid: number): boolean | undefined {
  const name = argv0Of(hostPid);
  return name === undefined ? undefined : name === HOLDER_NAME || name === INIT_NAME;
}

/**
 * How long the start may hold the event loop, blocked in poll(2) on the notify pipe,
 * before it waits through libuv instead. A container's execve here takes 0.3-1 ms:
 * waiting in the kernel spares the loop's wake-up and a stream's machinery; a start
 * slower than this costs the loop at most this much, once.
 */
const SYNC_WAIT_MS = 2;

export class HeldRelease {
  private goFd: number | undefined;
  private notifyFd: number | undefined;

  /** Takes the holder's fds; throws NativeError when they cannot be had (then init releases it). */
  static take(native: NativeFacade, hostPid: number): HeldRelease {
    const pidfd = native.pidfdOpen(hostPid);
    let go: Fd | undefined;
    try {
      // The pid is the holder's, not a reused one: checked by name after the pidfd
      // pinned it; a getfd that then succeeds proves that process still lives, so the
      // name read was its own. Anything else: init releases it.
      if (argv0Of(hostPid) !== HOLDER_NAME) {
        throw new Error(`process ${hostPid} is not a paddock-hold`);
      }
      go = native.pidfdGetfd(pidfd, HOLD_W);
      const notify = native.pidfdGetfd(pidfd, NOTIFY_R);
      return new HeldRelease(native, go, notify);
    } catch (e) {
      if (go !== undefined) native.closeFd(go);
      throw e;
    } finally {
      native.closeFd(pidfd);
    }
  }

  private constructor(
    private readonly native: NativeFacade,
    goFd: number,
    notifyFd: number,
  ) {
    this.goFd = goFd;
    this.notifyFd = notifyFd;
  }

  /**
   * Writes the release byte. 'gone': nobody reads the release pipe, so the held process
   * died before this start (EPIPE is proof: only it holds the read end). 'none': no
   * direct release (init's START releases it). Unless released, this side's fds are closed.
   */
  go(): 'released' | 'gone' | 'none' {
    const goFd = this.goFd;
    this.goFd = undefined;
    if (goFd === undefined || this.notifyFd === undefined) {
      if (goFd !== undefined) fs.closeSync(goFd);
      this.dispose();
      return 'none';
    }
    try {
      fs.writeSync(goFd, GO);
      return 'released';
    } catch (e) {
      this.dispose();
      return (e as NodeJS.ErrnoException).code === 'EPIPE' ? 'gone' : 'none';
    } finally {
      fs.closeSync(goFd);
    }
  }

  /** After go(): resolves once the program runs, rejects with the step that failed. */
  async outcome(sandboxId: string, containerId: string, timeoutMs: number): Promise<void> {
    const notifyFd = this.notifyFd as number;
    this.notifyFd = undefined;
    let readable: boolean;
    try {
      readable = this.native.waitReadable(notifyFd as Fd, SYNC_WAIT_MS);
    } catch (e) {
      fs.closeSync(notifyFd);
      throw e;
    }
    let report: Buffer;
    if (readable) {
      try {
        report = readReportSync(notifyFd);
      } finally {
        fs.closeSync(notifyFd);
      }
    } else {
      report = await readReportAsync(notifyFd, sandboxId, containerId, timeoutMs);
    }
    if (report.length > 0) throw reportError(report, sandboxId, containerId);
  }

  /** Closes what this side holds; the container stays held (init can still release it). */
  dispose(): void {
    for (const fd of [this.goFd, this.notifyFd]) if (fd !== undefined) fs.closeSync(fd);
    this.goFd = this.notifyFd = undefined;
  }
}

/** The fd is readable: EOF (empty), or a report the holder wrote whole before exiting. */
function readReportSync(fd: number): Buffer {
  const buf = Buffer.alloc(REPORT_SIZE);
  let got = 0;
  while (got < REPORT_SIZE) {
    const n = fs.readSync(fd, buf, got, REPORT_SIZE - got, null);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** The slow path: the notify pipe in libuv's epoll, bounded by timeoutMs. Takes over the fd. */
function readReportAsync(fd: number, sandboxId: string, containerId: string, timeoutMs: number): Promise<Buffer> {
  const sock = new net.Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new PaddockError('ETIMEOUT', `container ${containerId}: no word from its start within ${timeoutMs} ms`, { sandboxId, containerId }));
    }, timeoutMs);
    const done = (b: Buffer) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(b);
    };
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.once('end', () => done(Buffer.concat(chunks)));
    sock.once('error', () => done(Buffer.concat(chunks)));
  });
}

function reportError(report: Buffer, sandboxId: string, containerId: string): PaddockError {
  if (report.length < REPORT_SIZE) {
    return wireError({ type: 'ERROR', code: WireCode.LAUNCH, errno: 71 /* EPROTO */, step: 'notify_pipe' }, sandboxId, { type: 'WAIT', cid: containerId });
  }
  const text = (from: number, to: number) => {
    const b = report.subarray(from, to);
    const nul = b.indexOf(0);
    return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
  };
  const detail = text(36, REPORT_SIZE);
  return wireError(
    { type: 'ERROR', code: WireCode.LAUNCH, errno: report.readInt32LE(0), step: text(4, 36), ...(detail ? { msg: detail } : {}) },
    sandboxId,
    { type: 'WAIT', cid: containerId }, // only its cid is read: the error's containerId
  );
}
