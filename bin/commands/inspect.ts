import { bool, expectPositionals, parseArgs, str, UsageError } from '../args';
import { INDEX_DIR } from '../container-index';
import { InProcessOnly, makeContext, resolvePath, type CliContext } from '../context';

/**
 * `inspect [--root R] [--port P] [--host H] [--token T] [--actions]`: serves the live
 * view of the sandboxes run from the root (by podman, containerd or plain CLI calls),
 * prints its address with the token, and runs until SIGINT or SIGTERM. Loopback and
 * read-only by default.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'root', type: 'string' },
    { name: 'port', alias: 'p', type: 'string' },
    { name: 'host', type: 'string' },
    { name: 'token', type: 'string' },
    { name: 'actions', type: 'bool' },
  ]);
  expectPositionals(p, 'inspect', []);
  const portText = str(p, 'port') ?? '0';
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new UsageError(`invalid --port ${portText}: a number from 0 to 65535`);
  // `--root` after the verb too, as the usage in the docs puts it.
  const root = str(p, 'root');
  // paddockd serves its own root only; another is the caller's own engine to open.
  if (root !== undefined && ctx.resident && resolvePath(ctx, root) !== ctx.root) throw new InProcessOnly('inspect of another root');
  const c = root !== undefined && root !== ctx.root ? makeContext({ root, ...(ctx.logFile ? { log: ctx.logFile } : {}), logFormat: ctx.logFormat, debug: ctx.debug }) : ctx;
  try {
    const engine = await c.engine();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { followRoot } = require('../../actors/inspect/root-follower') as typeof import('../../actors/inspect/root-follower');
    const follower = followRoot(engine, c.root, silentLog, { skip: (name) => name === INDEX_DIR });
    await follower.ready;
    const host = str(p, 'host');
    const token = str(p, 'token');
    const server = await engine.serveInspector({
      port: Number(portText),
      ...(host !== undefined ? { host } : {}),
      ...(token !== undefined ? { token } : {}),
      actions: bool(p, 'actions'),
    });
    ctx.io.stdout.write(`paddock inspect: ${server.url}\n`);
    await new Promise<void>((resolve) => {
      // In paddockd the view lives as long as its caller: the client ends on SIGINT and its connection with it.
      if (ctx.resident) return void ctx.resident.gone.then(resolve);
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    follower.stop();
    await server.close();
    return 0;
  } finally {
    if (c !== ctx) await c.close();
  }
}

/** The follower's retries are routine; the CLI's logger already reports real errors. */
const silentLog = { debug: () => undefined } as unknown as import('../../base/logger').Logger;
