import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Fd, NativeFacade } from '../../native/facade';
import { PaddockError } from '../../base/errors';
import { randomSuffix } from '../../base/random-suffix';
import { removeFile } from '../../base/remove-tree';
import type { Runtime } from '../sandbox/runtime';

/*
 * Terminals (docs/decisions/0012): init cannot reach the caller's --console-socket (it
 * runs as the sandbox's root, the socket is the host root's), so the supervisor listens
 * on a one-off socket in the sandbox folder, takes the pty master from init there and
 * passes it on.
 */

/**
 * Listens on a fresh endpoint in the sandbox's stdin/ folder (owned by the sandbox's root,
 * which init runs as), sends the request that makes init connect there with the pty
 * master, and passes the master on to `consoleSocket`. `undo` runs when the master
 * could not be passed on after the request succeeded.
 */
export async function withConsole<T>(
  native: NativeFacade,
  timeoutMs: number,
  rt: Runtime,
  consoleSocket: string,
  request: (endpoint: string) => Promise<T>,
  undo?: (r: T) => Promise<void>,
): Promise<T> {
  // In stdin/, which init owns and reaches even once the sandbox's folder is closed to
  // it (decision 0030). The name is short so that the path is no longer than the old
  // `<dir>/console-<suffix>.sock`: podman's 64-character ids leave little of sun_path.
  const endpoint = path.join(rt.paths.stdinDir, `pty-${randomSuffix()}`);
  const initPid = rt.actor.getSnapshot().context.initHostPid as number;
  const listenFd = consoleCall(rt, consoleSocket, () => native.consoleListen(endpoint, rt.owner.uid, rt.owner.gid));
  try {
    const r = await request(endpoint);
    try {
      const master = consoleCall(rt, consoleSocket, () => native.consoleAccept(listenFd, initPid, timeoutMs));
      try {
        consoleCall(rt, consoleSocket, () => native.sendFd(consoleSocket, master, '/dev/ptmx'));
      } finally {
        native.closeFd(master);
      }
    } catch (e) {
      await undo?.(r).catch(() => undefined);
      throw e;
    }
    return r;
  } finally {
    native.closeFd(listenFd);
    removeFile(endpoint);
  }
}

/** A native console step, its failure as ECONSOLE naming the step. */
function consoleCall<T extends Fd | void>(rt: Runtime, consoleSocket: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    const n = e as { step?: string; errno?: number; message?: string };
    throw new PaddockError('ECONSOLE', `console socket ${consoleSocket}: ${n.message ?? String(e)}`, {
      sandboxId: rt.id,
      path: consoleSocket,
      ...(n.step ? { step: n.step } : {}),
      ...(n.errno ? { errno: n.errno } : {}),
    }, e);
  }
}

/**
 * runc's rule: a terminal needs a console socket to send its master to, and a
 * console socket without a terminal is a mistake. The socket must exist already (the
 * caller listens on it), which is checked before anything is created.
 */
export function checkConsole(terminal: boolean, consoleSocket: string | undefined, context: { sandboxId: string; containerId?: string }): void {
  if (terminal && consoleSocket === undefined) {
    throw new PaddockError('ECONSOLE', 'process.terminal needs a console socket (--console-socket) to send the terminal to', context);
  }
  if (!terminal && consoleSocket !== undefined) {
    throw new PaddockError('ECONSOLE', 'a console socket needs process.terminal: true', { ...context, path: String(consoleSocket) });
  }
  if (consoleSocket === undefined) return;
  if (typeof consoleSocket !== 'string' || !path.isAbsolute(consoleSocket)) {
    throw new PaddockError('ECONSOLE', `console socket must be an absolute path, got ${JSON.stringify(consoleSocket)}`, context);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(consoleSocket);
  } catch (e) {
    throw new PaddockError('ECONSOLE', `console socket ${consoleSocket} does not exist`, { ...context, path: consoleSocket }, e);
  }
  if (!st.isSocket()) throw new PaddockError('ECONSOLE', `console socket ${consoleSocket} is not a unix socket`, { ...context, path: consoleSocket });
}
