import type { AnyActorRef } from 'xstate';
import { processActorId } from '../../machines/ids';
import type { MessageOf } from '../../protocols/messages';
import { raiseInitRlimits } from './rlimits';
import { planExec } from '../../specs/plan';
import type { ExecOptions, ExecResult } from '../engine/api';
import { checkConsole, withConsole } from './console';
import { deferred } from '../../base/deferred';
import type { EngineCore } from '../engine/core';
import { StateError } from '../../base/errors';
import { checkOptionKeys } from '../../base/options';
import { EXEC_CAPS_KEYS, EXEC_KEYS, EXEC_USER_KEYS } from '../engine/option-keys';
import { placeTreeInPodCgroup } from '../pod/cgroups';
import { podExecPlan } from '../pod/plan';
import { processTree } from '../observe/proc-stats';
import { checkStdio, prepareStdio } from './stdio';
import { seccompOf } from './seccomp-cache';
import { checkExecEgress } from '../network';

/*
 * A process exec'd into a running container: planned from the container's bundle,
 * forked by paddock-init, moved into the container's own cgroup, and watched as a
 * child machine of the sandbox.
 */

export async function execute(core: EngineCore, sandboxId: string, containerId: string, opts: ExecOptions): Promise<ExecResult> {
  checkOptionKeys(opts, EXEC_KEYS, 'exec options');
  if (opts !== null && typeof opts === 'object') {
    checkOptionKeys(opts.user, EXEC_USER_KEYS, 'exec options.user');
    checkOptionKeys(opts.capabilities, EXEC_CAPS_KEYS, 'exec options.capabilities');
  }
  const rt = core.get(sandboxId);
  const c = core.containerActor(rt, containerId);
  if (!c.getSnapshot().can({ type: 'exec' })) {
    throw new StateError('EINVALID_STATE', `cannot exec into container ${containerId}: it is ${c.getSnapshot().value as string}`, {
      sandboxId,
      containerId,
      verb: 'exec',
      state: String(c.getSnapshot().value),
    });
  }
  const cont = rt.containers.get(containerId);
  if (!cont) throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
  checkExecEgress(rt, opts);
  const stdio = checkStdio(opts.stdio);
  const terminal = opts.terminal === true;
  checkConsole(terminal, opts.consoleSocket, { sandboxId, containerId });
  const name = `${containerId}.exec-${++rt.execCounter}`;
  const plan = podExecPlan(planExec(
    {
      args: opts.args as string[],
      ...(opts.env ? { env: opts.env as string[] } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.user ? { user: opts.user as { uid: number; gid: number; additionalGids?: number[] } } : {}),
      ...(opts.capabilities !== undefined ? { capabilities: opts.capabilities } : {}),
      ...(opts.rlimits !== undefined ? { rlimits: opts.rlimits } : {}),
      ...(opts.noNewPrivileges !== undefined ? { noNewPrivileges: opts.noNewPrivileges } : {}),
      ...(opts.addCapabilities !== undefined ? { addCapabilities: opts.addCapabilities } : {}),
    },
    cont.bundle.config,
    seccompOf(cont.bundle.config),
  ), cont, rt);
  // init forks the process: a hard limit above init's cannot be raised inside (actors/containers/rlimits.ts).
  raiseInitRlimits(core.native, rt.actor.getSnapshot().context.initHostPid as number, rt.bundle.config, opts.rlimits ?? cont.bundle.config.process?.rlimits);
  // A terminal replaces fds 0-2 in the process, so it needs no files or FIFO.
  const io = prepareStdio(core, rt, name, undefined, terminal ? 'ignore' : stdio);
  let reply: MessageOf<'OK'>;
  try {
    reply = terminal
      ? await withConsole(core.native, core.requestTimeout, rt, opts.consoleSocket as string, (endpoint) =>
          core.control(rt).request({ type: 'EXEC', cid: containerId, plan: { ...plan, terminal: true, consoleSocket: endpoint } }),
        (r) => core.control(rt).request({ type: 'SIGNAL', cid: containerId, signo: 9, pid: r.pid as number }).then(() => undefined),
        )
      : await core.control(rt).request({ type: 'EXEC', cid: containerId, plan: { ...plan, ...io.plan } });
  } catch (e) {
    io.close();
    throw e;
  }
  const pid = reply.pid as number;
  const hostPid = reply.hostPid as number;
  if (cont.cgroup) {
    // init forks and execs at once: moved with what it forked as soon as its pid is known (decision 0022).
    try {
      placeTreeInPodCgroup(cont.cgroup, hostPid, { sandboxId, containerId }, processTree);
    } catch (e) {
      rt.log.warn({ containerId, hostPid, err: (e as Error).message, step: 'cgroup' }, "exec'd process could not be moved into its container's cgroup");
    }
  }
  const done = deferred<void>();
  rt.execs.set(pid, { name, containerId, done, stdinFd: io.stdinFd });
  c.send({ type: 'exec' });
  rt.actor.send({ type: 'process.add', containerId, pid, hostPid });
  // Its exit may have been delivered before it was registered (see pendingExits, machines/sandbox.machine.ts).
  const child = rt.actor.getSnapshot().children[processActorId(pid)] as AnyActorRef | undefined;
  if (child?.getSnapshot().value === 'exited') done.resolve();
  core.persistNow(rt);
  const streams = io.streams(done.promise);
  rt.log.child({ containerId }).debug({ pid, hostPid, step: 'exec' }, 'exec started');
  return { pid, hostPid, ...(streams ?? {}) };
}
