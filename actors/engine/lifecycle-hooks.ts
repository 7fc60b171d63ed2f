import type { Bundle } from '../../specs/load';
import type { EngineCore } from './core';
import { SpecError, type PaddockError } from '../../base/errors';
import { runHooks, runHooksWarn, type HookState, type Hooks } from '../containers/oci-hooks';
import type { Runtime } from '../sandbox/runtime';

/*
 * When the engine runs a sandbox's OCI lifecycle hooks, and what a failure does
 * (actors/containers/oci-hooks.ts runs them; docs/decisions/0010).
 */

function hookState(rt: Runtime, status: HookState['status'], pid: number): HookState {
  const annotations = rt.bundle.config?.annotations;
  return { ociVersion: '1.0.2', id: rt.id, status, pid, bundle: rt.bundle.dir, ...(annotations ? { annotations } : {}) };
}

/**
 * prestart then createRuntime, once init is ready and before the container starts.
 * A failure fails the create: the sandbox is destroyed (poststop hooks included, as
 * the spec's lifecycle continues at delete) and nothing is left.
 */
export async function runCreateHooks(core: EngineCore, rt: Runtime, pid: number, destroy: (sandboxId: string) => Promise<void>): Promise<void> {
  const hooks = core.hooks.get(rt.id);
  if (!hooks) return;
  // The container is created (init holds its namespaces, nothing of the user's runs
  // yet): crun reports `created` here, and so do the conformance checks.
  const state = hookState(rt, 'created', pid);
  try {
    await runHooks('prestart', hooks, state, { sandboxId: rt.id });
    await runHooks('createRuntime', hooks, state, { sandboxId: rt.id });
  } catch (e) {
    rt.log.warn({ err: e, step: (e as PaddockError).context?.step }, 'create hook failed; destroying the sandbox');
    await destroy(rt.id).catch((d) => rt.log.warn({ err: d }, 'could not destroy the sandbox after a failed hook'));
    throw e;
  }
}

/** poststart: a failure is a warning (logged, and an `error` event); the container keeps running. */
export async function runPoststartHooks(core: EngineCore, rt: Runtime): Promise<void> {
  const hooks = core.hooks.get(rt.id);
  if (!hooks?.poststart?.length) return;
  const pid = rt.actor.getSnapshot().context.initHostPid ?? 0;
  await runHooksWarn('poststart', hooks, hookState(rt, 'running', pid), { sandboxId: rt.id }, (err) => hookWarning(core, rt.id, err));
}

/** poststop, after the sandbox is gone: failures are warnings, as for poststart. */
export async function runPoststopHooks(core: EngineCore, rt: Runtime, hooks: Hooks | undefined): Promise<void> {
  if (!hooks?.poststop?.length) return;
  await runHooksWarn('poststop', hooks, hookState(rt, 'stopped', 0), { sandboxId: rt.id }, (err) => hookWarning(core, rt.id, err));
}

function hookWarning(core: EngineCore, sandboxId: string, error: PaddockError): void {
  core.log.warn({ sandboxId, err: error, step: error.context.step }, 'hook failed');
  if (!core.closed) core.emit({ type: 'error', sandboxId, error });
}

/** Hooks are run for a sandbox's root container only; a second container's are refused, not skipped. */
export function refuseHooks(bundle: Bundle): void {
  for (const [kind, list] of Object.entries(bundle.config.hooks ?? {})) {
    // createContainer/startContainer travel in the container's own plan and run
    // inside it (paddock-init), so every container can have them.
    if (kind === 'createContainer' || kind === 'startContainer') continue;
    if (Array.isArray(list) && list.length > 0) {
      const field = `hooks.${kind}`;
      throw new SpecError('ECONFIG_UNSUPPORTED', `${field}: hooks are run for the root container of a sandbox only`, { field, path: bundle.dir });
    }
  }
}
