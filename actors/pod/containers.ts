import { isValidId } from '../../machines/ids';
import { loadBundle, type Bundle } from '../../specs/load';
import type { ContainerHandle, ContainerSummary, StartContainerOptions } from '../engine/api';
import { podContainerCgroupPath } from '../cgroups/path';
import { checkConsole } from '../containers/console';
import { containerPlan, reattachedStdio } from '../containers/plan';
import { awaitStarted, holdContainer, holdWithConsole } from '../containers/start';
import { deferred } from '../../base/deferred';
import type { EngineCore } from '../engine/core';
import { refuseHooks } from '../engine/lifecycle-hooks';
import { PaddockError, StateError } from '../../base/errors';
import { killFrozenContainer } from '../cgroups/freezer';
import { checkLsmFields } from '../containers/lsm';
import { raiseInitRlimits } from '../containers/rlimits';
import { logConfigWarnings } from '../../specs/config-warnings';
import { makePodCgroup, removePodCgroup } from './cgroups';
import { podNamespaces } from './namespaces';
import { checkStdio, closeContainerStdio, prepareStdio, removeContainerFiles } from '../containers/stdio';
import { podView, sandboxSummary } from '../sandbox/summary';
import type { Supervision } from '../supervision/restart';
import type { ContainerRuntime, Runtime } from '../sandbox/runtime';
import { checkPodEgress } from '../network';

/*
 * The containers a sandbox runs besides its root (a pod's): added with a cgroup of
 * their own (docs/decisions/0022), started, and destroyed alone. The sandbox's root
 * container is made and ended with the sandbox itself (actors/engine/engine.ts).
 */

export async function addContainer(core: EngineCore, supervision: Supervision, sandboxId: string, containerId: string, bundleDir: string, opts: StartContainerOptions = {}): Promise<ContainerSummary> {
  const rt = core.get(sandboxId);
  if (!isValidId(containerId)) throw new PaddockError('EINVALID_ID', `invalid container id ${JSON.stringify(containerId)}`, { sandboxId });
  const stdio = checkStdio(opts.stdio);
  const restart = supervision.validate(opts.restart);
  const snap = rt.actor.getSnapshot();
  if (snap.context.containers[containerId] !== undefined || rt.containers.has(containerId)) {
    throw new StateError('ECONTAINER_EXISTS', `container ${containerId} already exists in sandbox ${sandboxId}`, { sandboxId, containerId });
  }
  core.requireCan(rt, { type: 'container.add', containerId, bundleDir: '/' }, 'addContainer');
  const bundle = await loadBundle(bundleDir);
  refuseHooks(bundle);
  checkPodEgress(rt, containerId, bundle.config);
  const where = podCgroupPath(core, rt, containerId, bundle);
  const podNs = podNamespaces(bundle.config, podView(rt), containerId);
  checkConsole(bundle.config.process?.terminal === true, opts.consoleSocket, { sandboxId, containerId });
  checkLsmFields(bundle.config, rt.log.child({ containerId }), core.options.lsms);
  logConfigWarnings(bundle.config, rt.log.child({ containerId }));
  if (rt.containers.has(containerId)) {
    throw new StateError('ECONTAINER_EXISTS', `container ${containerId} already exists in sandbox ${sandboxId}`, { sandboxId, containerId });
  }
  // Its own cgroup, limits applied, before anything else is made (decision 0022).
  const cgroup = makePodCgroup({
    layout: core.cgroupLayout,
    sandbox: rt.cgroup,
    paths: rt.paths,
    sandboxId,
    containerId,
    where,
    resources: bundle.config.linux?.resources,
    userns: [rt.bundle, bundle].some((b) => (b.config.linux?.namespaces ?? []).some((n) => n.type === 'user')),
    owner: rt.owner,
    native: core.native,
    log: rt.log,
  });
  rt.containers.set(containerId, { id: containerId, bundle, stdio, done: deferred<void>(), ...(cgroup ? { cgroup } : {}), ...podNs });
  try {
    // Before init forks it: a hard limit above init's cannot be raised inside (actors/containers/rlimits.ts).
    raiseInitRlimits(core.native, rt.actor.getSnapshot().context.initHostPid as number, rt.bundle.config, bundle.config.process?.rlimits);
    prepareStdio(core, rt, containerId, containerId, stdio);
  } catch (e) {
    rt.containers.delete(containerId);
    if (cgroup) await removePodCgroup(cgroup, rt.paths, containerId, rt.log);
    throw e;
  }
  rt.actor.send({ type: 'container.add', containerId, bundleDir: bundle.dir });
  core.persistNow(rt);
  supervision.register(sandboxId, containerId, bundle.dir, opts, restart);
  if (opts.consoleSocket !== undefined) {
    try {
      await holdWithConsole(core, rt, containerId, opts.consoleSocket);
    } catch (e) {
      await destroyContainer(core, supervision, sandboxId, containerId).catch((d) => rt.log.warn({ err: d }, 'could not remove the container after a failed console hand-off'));
      throw e;
    }
  } else if (opts.prepare === true) {
    try {
      await holdContainer(core, rt, containerId);
    } catch (e) {
      await destroyContainer(core, supervision, sandboxId, containerId).catch((d) => rt.log.warn({ err: d }, 'could not remove the container after a failed prepare'));
      throw e;
    }
  }
  return sandboxSummary(rt).containers.find((c) => c.id === containerId) as ContainerSummary;
}

export async function startContainer(core: EngineCore, supervision: Supervision, sandboxId: string, containerId: string, bundleDir?: string, opts: StartContainerOptions = {}): Promise<ContainerHandle> {
  const rt = core.get(sandboxId);
  const registered = rt.containers.has(containerId) && rt.actor.getSnapshot().context.containers[containerId] !== undefined;
  if (!registered && bundleDir === undefined) {
    throw new StateError('ECONTAINER_NOT_FOUND', `no container ${containerId} in sandbox ${sandboxId}`, { sandboxId, containerId });
  }
  if (registered && bundleDir !== undefined) {
    throw new StateError('ECONTAINER_EXISTS', `container ${containerId} already exists in sandbox ${sandboxId}`, { sandboxId, containerId });
  }
  if (!registered) await addContainer(core, supervision, sandboxId, containerId, bundleDir as string, opts);
  if (containerId === rt.actor.getSnapshot().context.rootContainerId) {
    throw new StateError('EINVALID_STATE', `container ${containerId} is the root of sandbox ${sandboxId}: use startRoot`, { sandboxId, containerId, verb: 'startContainer' });
  }
  const c = core.containerActor(rt, containerId);
  if (!c.getSnapshot().can({ type: 'start' }) || !rt.actor.getSnapshot().can({ type: 'container.start', containerId })) {
    throw new StateError('EINVALID_STATE', `cannot start container ${containerId}: it is ${String(c.getSnapshot().value)} in a ${String(rt.actor.getSnapshot().value)} sandbox`, {
      sandboxId,
      containerId,
      verb: 'startContainer',
      state: String(c.getSnapshot().value),
    });
  }
  const cr = rt.containers.get(containerId) as ContainerRuntime;
  if (!cr.plan) {
    // Registered by another process and its bundle could not be planned again here
    // (or names namespaces by path, which need the running sandbox to resolve).
    Object.assign(cr, podNamespaces(cr.bundle.config, podView(rt), containerId));
    cr.plan = containerPlan(cr, reattachedStdio(rt.paths, containerId, cr.stdio), rt);
  }
  // A container with its own cgroup is moved into it while held before its execve
  // (decision 0022): one not prepared yet is prepared now, one round trip more.
  try {
    if (cr.cgroup && c.getSnapshot().context.prepared === undefined) await holdContainer(core, rt, containerId);
    rt.actor.send({ type: 'container.start', containerId });
    return await awaitStarted(core, rt, containerId);
  } catch (e) {
    if (!registered) {
      // A container added and started in one call that failed to start is not kept: the sandbox is as it was.
      rt.actor.send({ type: 'container.remove', containerId });
      closeContainerStdio(rt.containers.get(containerId));
      rt.containers.get(containerId)?.held?.dispose();
      rt.containers.delete(containerId);
      supervision.drop(sandboxId, containerId);
      if (cr.cgroup) await removePodCgroup(cr.cgroup, rt.paths, containerId, rt.log);
    }
    core.persistNow(rt);
    throw e;
  }
}

export async function destroyContainer(core: EngineCore, supervision: Supervision, sandboxId: string, containerId: string): Promise<void> {
  const rt = core.get(sandboxId);
  const c = core.containerActor(rt, containerId);
  const sandboxState = String(rt.actor.getSnapshot().value);
  if (sandboxState === 'paused' || sandboxState === 'pausing' || sandboxState === 'resuming') {
    // Its processes are frozen: resume first, or destroy the whole sandbox.
    throw new StateError('EINVALID_STATE', `cannot destroy container ${containerId}: sandbox ${sandboxId} is ${sandboxState}`, { sandboxId, containerId, verb: 'destroyContainer', state: sandboxState });
  }
  if (containerId === rt.actor.getSnapshot().context.rootContainerId) {
    throw new StateError('EINVALID_STATE', `container ${containerId} is the root of sandbox ${sandboxId}: destroy the sandbox instead`, {
      sandboxId,
      containerId,
      verb: 'destroyContainer',
    });
  }
  supervision.userStop(sandboxId, containerId);
  const cgroup = rt.containers.get(containerId)?.cgroup;
  // Paused alone: its tasks must be able to die (v1 holds even SIGKILL while frozen).
  killFrozenContainer(cgroup);
  // A container that was only added (never started) has nothing in paddock-init.
  if (rt.initAlive && c.getSnapshot().value !== 'created') {
    await core.control(rt).request({ type: 'DESTROY_CONTAINER', cid: containerId });
  }
  if (cgroup) await removePodCgroup(cgroup, rt.paths, containerId, rt.log);
  core.exits.readLog(rt);
  rt.actor.send({ type: 'container.remove', containerId });
  closeContainerStdio(rt.containers.get(containerId));
  rt.containers.get(containerId)?.held?.dispose();
  rt.containers.delete(containerId);
  for (const [pid, e] of rt.execs) if (e.containerId === containerId) rt.execs.delete(pid);
  removeContainerFiles(rt, containerId);
  core.persistNow(rt);
}

/**
 * Where a pod container's own cgroup goes: its linux.cgroupsPath (containerd's
 * sibling of the sandbox's), else nested in the sandbox's (decision 0022). Checked
 * before anything is made.
 */
function podCgroupPath(core: EngineCore, rt: Runtime, containerId: string, bundle: Bundle) {
  const sandboxRel = rt.cgroup?.relPath ?? rt.cgroupsPath?.relPath ?? '';
  return podContainerCgroupPath(bundle.config.linux?.cgroupsPath, sandboxRel, containerId, { ...core.cgroupsPathOptions(rt.id, bundle.dir), sandboxId: rt.id });
}
