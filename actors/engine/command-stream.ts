import type { SandboxTemplate } from '../../specs/builder';
import { firstValueFrom, Observable } from 'rxjs';
import type { Subscription } from 'rxjs';
import type { CommandOutput, Engine, EngineCommand } from './api';
import { PaddockError, isPaddockError } from '../../base/errors';

/**
 * `engine.run(commands$)`: a higher system drives the engine with a stream of
 * commands and reads one stream back — each command's result or error, correlated by
 * the command's `id`, interleaved with the engine's own events.
 *
 * Commands on one sandbox run in the order they arrived (a `start` never overtakes its
 * `createSandbox`); commands on different sandboxes run concurrently. A failing
 * command is a `command.error` output and the stream goes on. The output completes
 * once the input has completed and every command has settled.
 */
export function runCommands(engine: Engine, commands$: Observable<EngineCommand>): Observable<CommandOutput> {
  return new Observable<CommandOutput>((out) => {
    // Per sandbox, the tail of its command chain.
    const chains = new Map<string, Promise<void>>();
    let pending = 0;
    let inputDone = false;
    const finishIfIdle = () => {
      if (inputDone && pending === 0) out.complete();
    };

    const events: Subscription = engine.events$.subscribe({ next: (e) => out.next(e) });

    const accept = (cmd: EngineCommand) => {
      const commandId = typeof cmd?.id === 'string' ? cmd.id : '';
      const command = typeof cmd?.type === 'string' ? cmd.type : '';
      const sandboxId = typeof (cmd as { sandboxId?: unknown })?.sandboxId === 'string' ? (cmd as { sandboxId: string }).sandboxId : undefined;
      pending++;
      const key = sandboxId ?? '';
      const prev = chains.get(key) ?? Promise.resolve();
      const run = prev.then(async () => {
        try {
          const value = await execute(engine, cmd);
          out.next({ type: 'command.result', commandId, command, ...(sandboxId ? { sandboxId } : {}), value });
        } catch (e) {
          const error = isPaddockError(e)
            ? e
            : new PaddockError('EINVALID_ARGUMENT', e instanceof Error ? e.message : String(e), sandboxId ? { sandboxId } : {});
          out.next({ type: 'command.error', commandId, command, ...(sandboxId ? { sandboxId } : {}), error });
        }
      });
      const tail = run.finally(() => {
        pending--;
        if (chains.get(key) === tail) chains.delete(key);
        finishIfIdle();
      });
      chains.set(key, tail);
    };

    const input = commands$.subscribe({
      next: accept,
      error: (e) => {
        events.unsubscribe();
        out.error(e);
      },
      complete: () => {
        inputDone = true;
        finishIfIdle();
      },
    });
    return () => {
      input.unsubscribe();
      events.unsubscribe();
    };
  });
}

const bad = (message: string, field?: string) => new PaddockError('EINVALID_ARGUMENT', message, field ? { field } : {});

function str(cmd: Record<string, unknown>, name: string): string {
  const v = cmd[name];
  if (typeof v !== 'string' || v === '') throw bad(`${String(cmd.type)}: ${name} must be a non-empty string`, name);
  return v;
}

/** Runs one command; results are plain data (no streams), so they can cross a wire. */
async function execute(engine: Engine, cmd: EngineCommand): Promise<unknown> {
  if (typeof cmd !== 'object' || cmd === null) throw bad('a command must be an object');
  const c = cmd as unknown as Record<string, unknown>;
  if (typeof c.id !== 'string' || c.id === '') throw bad('a command needs a string id', 'id');
  const container = () => (typeof c.containerId === 'string' ? c.containerId : str(c, 'sandboxId'));
  switch (cmd.type) {
    case 'createSandbox': {
      // A bundle directory, or a template (an object; createSandbox checks it field by field).
      const bundle = typeof c.bundle === 'object' && c.bundle !== null ? (c.bundle as SandboxTemplate) : str(c, 'bundle');
      const h = await engine.createSandbox(str(c, 'sandboxId'), bundle, { stdio: 'ignore', ...(cmd.options ?? {}) });
      return { id: h.id, pid: h.pid, rootContainerId: h.rootContainerId };
    }
    case 'start': {
      const h = await engine.startRoot(str(c, 'sandboxId'));
      return { containerId: h.containerId, pid: h.pid, hostPid: h.hostPid };
    }
    case 'startContainer': {
      const h = await engine.startContainer(str(c, 'sandboxId'), str(c, 'containerId'), cmd.bundle, { stdio: 'ignore', ...(cmd.options ?? {}) });
      return { containerId: h.containerId, pid: h.pid, hostPid: h.hostPid };
    }
    case 'exec': {
      const r = await engine.execute(str(c, 'sandboxId'), container(), { stdio: 'ignore', ...cmd.options });
      return { pid: r.pid, hostPid: r.hostPid };
    }
    case 'signal':
      await engine.signal(str(c, 'sandboxId'), container(), cmd.signal, cmd.options ?? {});
      return undefined;
    case 'wait':
      return engine.wait(str(c, 'sandboxId'), container(), cmd.timeoutMs === undefined ? {} : { timeoutMs: cmd.timeoutMs });
    case 'destroy':
      await engine.destroy(str(c, 'sandboxId'));
      return undefined;
    case 'pause':
      await engine.pause(str(c, 'sandboxId'));
      return undefined;
    case 'resume':
      await engine.resume(str(c, 'sandboxId'));
      return undefined;
    case 'processes':
      return engine.processes(str(c, 'sandboxId'), container());
    case 'list':
      return engine.list();
    case 'addContainer':
      return engine.addContainer(str(c, 'sandboxId'), str(c, 'containerId'), str(c, 'bundle'), { stdio: 'ignore', ...(cmd.options ?? {}) });
    case 'logs': {
      if ((cmd.options as { follow?: unknown } | undefined)?.follow !== undefined) throw bad('logs: follow is not for a command (its result is what the log holds now)', 'options.follow');
      const chunks: Buffer[] = [];
      for await (const chunk of engine.logs(str(c, 'sandboxId'), container(), cmd.options ?? {})) chunks.push(Buffer.from(chunk as Buffer));
      return Buffer.concat(chunks).toString('utf8');
    }
    case 'stats': {
      const sandboxId = str(c, 'sandboxId');
      const sample = await firstValueFrom(engine.stats$(sandboxId, typeof c.containerId === 'string' ? { containerId: c.containerId } : {}));
      return sample.data;
    }
    case 'stacks':
      return engine.stacks(str(c, 'sandboxId'));
    case 'checkpoint':
      return engine.checkpoint(str(c, 'sandboxId'), cmd.options);
    case 'restore': {
      const h = await engine.restore(str(c, 'sandboxId'), str(c, 'bundle'), cmd.options);
      return { id: h.id, pid: h.pid, rootContainerId: h.rootContainerId };
    }
    default:
      throw bad(`unknown command type ${JSON.stringify((cmd as { type?: unknown }).type)}`, 'type');
  }
}
