import * as fs from 'node:fs';
import { fromPromise } from 'xstate';
import { containerMachine } from '../../machines/container.machine';
import { sandboxMachine, type LaunchedSandbox } from '../../machines/sandbox.machine';
import { startProcess } from '../containers/start';
import type { EngineCore } from '../engine/core';
import { freezeSandbox, killFrozen, thawSandbox } from '../cgroups/freezer';
import { onEvent, onInitExit } from './init-watch';
import { destroySandboxResources, launchSandbox } from './launcher';
import { freezerHost } from '../cgroups/pause';
import { removePodCgroup } from '../pod/cgroups';
import { removeFile, removeTree } from '../../base/remove-tree';
import { closeContainerStdio, prepareStdio } from '../containers/stdio';
import type { ContainerRuntime } from './runtime';
import type { CheckpointRequest } from '../../machines/types';
import type { StartedProcess } from '../../machines/container.machine';
import { dumpSandbox } from '../checkpoint/dump';
import { restoreIntoSandbox } from '../checkpoint/restore';
import { stopNetwork } from '../network';

/*
 * The effects the sandbox machine runs (docs/decisions/0004): bringing a sandbox up,
 * tearing it down, freezing and thawing it, starting a container's process, and
 * checkpointing and restoring it with CRIU (docs/decisions/0040).
 */

/** The sandbox machine with this engine's effects provided; machines never do I/O themselves. */
export function provideSandboxMachine(core: EngineCore): typeof sandboxMachine {
  return sandboxMachine.provide({
    actors: {
      launchSandbox: fromPromise<LaunchedSandbox, { sandboxId: string }>(({ input }) => launch(core, input.sandboxId)),
      destroySandbox: fromPromise<void, { sandboxId: string }>(({ input }) => teardown(core, input.sandboxId)),
      freezeSandbox: fromPromise<void, { sandboxId: string; initHostPid?: number }>(({ input }) =>
        freezeSandbox(freezerHost(core.mustRuntime(input.sandboxId)), { keep: input.initHostPid !== undefined ? [input.initHostPid] : [], timeoutMs: core.requestTimeout }),
      ),
      thawSandbox: fromPromise<void, { sandboxId: string }>(({ input }) => thawSandbox(freezerHost(core.mustRuntime(input.sandboxId)), { timeoutMs: core.requestTimeout })),
      checkpointSandbox: fromPromise<void, { sandboxId: string; request: CheckpointRequest }>(({ input }) => dumpSandbox(core, input.sandboxId, input.request)),
      restoreSandbox: fromPromise<StartedProcess, { sandboxId: string; containerId: string; imagePath: string }>(({ input }) =>
        restoreIntoSandbox(core, input.sandboxId, input.containerId, input.imagePath),
      ),
      container: containerMachine.provide({
        actors: {
          startContainer: fromPromise(({ input }) => startProcess(core, input.sandboxId, input.containerId)),
        },
      }),
    },
  });
}

async function launch(core: EngineCore, sandboxId: string): Promise<LaunchedSandbox> {
  const rt = core.mustRuntime(sandboxId);
  const root = rt.containers.get(sandboxId) as ContainerRuntime;
  const launched = await launchSandbox(rt, {
    native: core.native,
    watcher: core.watcher,
    initPath: core.options.initPath,
    requestTimeoutMs: core.requestTimeout,
    onEvent: (m) => onEvent(core, rt, m),
    onInitExit: () => onInitExit(core, rt),
    rootStdio: rt.rootStdio,
    ...(core.options.initStderr ? { initStderr: core.options.initStderr } : {}),
    ...(core.options.launchInit ? { launchInit: core.options.launchInit } : {}),
    cgroups: core.cgroupLayout,
  });
  prepareStdio(core, rt, root.id, root.id, root.stdio);
  return launched;
}

async function teardown(core: EngineCore, sandboxId: string): Promise<void> {
  const rt = core.mustRuntime(sandboxId);
  // First, so the helper's death is not taken for a crash; its ports are free when this returns.
  await stopNetwork(core, rt, true);
  // A paused sandbox's processes must be able to die before init can (v1 holds SIGKILL).
  killFrozen(freezerHost(rt));
  // Once init is gone with every process of its pid namespace, the pod containers'
  // cgroups are empty; they go before the sandbox's (a parent they share goes with it).
  await destroySandboxResources(rt, core.native, () => core.exits.readLog(rt), async () => {
    for (const c of rt.containers.values()) if (c.cgroup) await removePodCgroup(c.cgroup, rt.paths, c.id, rt.log);
  });
  if (rt.watchToken !== undefined) core.watcher.unwatch(rt.watchToken);
  rt.watchToken = undefined;
  for (const c of rt.containers.values()) closeContainerStdio(c);
  for (const e of rt.execs.values()) if (e.stdinFd !== undefined) closeQuietly(e.stdinFd);
  // state.json first: a supervisor killed while the folder is being removed leaves a
  // folder without it, which the next one removes as half-made (removeHalfCreated, actors/sandbox/reattach.ts),
  // never a sandbox whose exits.cursor is gone but whose exits.log would be reported again.
  removeFile(rt.paths.stateFile);
  removeTree(rt.paths.dir);
  // After the folder: while it exists the range counts as held (actors/sandbox/id-pool.ts).
  core.releaseIds(rt.id);
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
