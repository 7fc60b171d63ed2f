#!/usr/bin/env node
/**
 * `paddock` — an OCI runtime command line compatible with runc/runsc, so podman,
 * containerd and CRI can drive paddock sandboxes. Each call restores the sandbox's
 * machine from its persisted snapshot in --root, acts, persists and exits.
 *
 * Kept lean on purpose: a command module is required only when it runs, and the
 * engine only by commands that touch sandboxes.
 */
import { HelpRequested, UsageError, parseArgs, str, bool, type FlagSpec } from './args';
import { COMMANDS, isVerb, type Verb } from './command-list';
import { makeContext, processIo, reportError, type CliContext, type CliIo, type Command } from './context';


/* eslint-disable @typescript-eslint/no-require-imports */
// Literal requires, one per verb of COMMANDS, so the bundler sees them and each
// command's code is initialised only when that command runs.
const LOADERS: { readonly [V in Verb]: () => { run: Command } } = {
  create: () => require('./commands/create'),
  start: () => require('./commands/start'),
  run: () => require('./commands/run'),
  state: () => require('./commands/state'),
  kill: () => require('./commands/kill'),
  delete: () => require('./commands/delete'),
  exec: () => require('./commands/exec'),
  ps: () => require('./commands/ps'),
  list: () => require('./commands/list'),
  events: () => require('./commands/events'),
  pause: () => require('./commands/pause'),
  resume: () => require('./commands/resume'),
  checkpoint: () => require('./commands/checkpoint'),
  restore: () => require('./commands/restore'),
  spec: () => require('./commands/spec'),
  features: () => require('./commands/features'),
  update: () => require('./commands/update'),
  debug: () => require('./commands/debug'),
  inspect: () => require('./commands/inspect'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

const GLOBAL_FLAGS = [
  { name: 'root', type: 'string' },
  { name: 'log', type: 'string' },
  { name: 'log-format', type: 'string' },
  { name: 'debug', type: 'bool' },
  { name: 'systemd-cgroup', type: 'bool' },
  { name: 'rootless', type: 'string' },
  { name: 'criu', type: 'string' },
  { name: 'version', alias: 'v', type: 'bool' },
  { name: 'help', alias: 'h', type: 'bool' },
] as const;

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([c, d]) => `   ${c.padEnd(11)} ${d}`);
  return `usage: paddock [global options] command [command options] [arguments...]\n\ncommands:\n${lines.join('\n')}\n\nglobal options: --root DIR (default $PADDOCK_ROOT or /run/paddock) --log FILE --log-format text|json --debug --systemd-cgroup\n`;
}

/** How a call gets its context: in-process, makeContext; in paddockd, one over its warm engine. */
export type ContextMaker = (globals: Parameters<typeof makeContext>[0], io: CliIo) => CliContext;

export async function main(argv: string[], io: CliIo = processIo(), makeCtx: ContextMaker = makeContext): Promise<number> {
  let ctx: CliContext | undefined;
  try {
    const g = parseArgs(argv, GLOBAL_FLAGS, { stopAtFirstPositional: true });
    if (bool(g, 'version')) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { version } = require('./version') as typeof import('./version');
      io.stdout.write(version());
      return 0;
    }
    const [cmd, ...rest] = g.positionals;
    if (!cmd || bool(g, 'help') || cmd === 'help') {
      io.stdout.write(usage());
      return cmd || bool(g, 'help') ? 0 : 1;
    }
    const fmt = str(g, 'log-format');
    if (fmt !== undefined && fmt !== 'text' && fmt !== 'json') throw new UsageError(`invalid --log-format ${fmt}: text or json`);
    ctx = makeCtx({ root: str(g, 'root'), log: str(g, 'log'), logFormat: fmt, debug: bool(g, 'debug'), systemdCgroup: bool(g, 'systemd-cgroup') }, io);
    if (!isVerb(cmd)) throw new UsageError(`no such command: ${cmd}`);
    return await LOADERS[cmd]().run(ctx, rest);
  } catch (e) {
    if (isInProcessOnly(e)) throw e;
    if (e instanceof HelpRequested) {
      io.stdout.write(verbUsage(argv, e.flags));
      return 0;
    }
    reportError(ctx, messageOf(e), io.stderr);
    return 1;
  } finally {
    await ctx?.close().catch(() => undefined);
  }
}

/** `paddock VERB --help`: the verb's line of COMMANDS and its flags, as runc prints a verb's usage. */
function verbUsage(argv: readonly string[], flags: readonly FlagSpec[]): string {
  const verb = parseArgs(argv, GLOBAL_FLAGS, { stopAtFirstPositional: true }).positionals[0] ?? '';
  const about = isVerb(verb) ? COMMANDS[verb] : '';
  const lines = flags.map((f) => `   --${f.name}${f.alias ? `, -${f.alias}` : ''}${f.type === 'bool' ? '' : ' value'}`);
  return `usage: paddock [global options] ${verb} [command options] [arguments...]\n\n${about}\n${lines.length ? `\noptions:\n${lines.join('\n')}\n` : ''}`;
}

function isInProcessOnly(e: unknown): boolean {
  return (e as { inProcessOnly?: boolean } | undefined)?.inProcessOnly === true;
}

function messageOf(e: unknown): string {
  if (e instanceof UsageError) return e.message;
  const err = e as { code?: string; message?: string };
  // A user mistake is one line with its code, never a stack trace.
  // containerd's shim and conmon recognise a missing container by runc's words.
  if (err?.code === 'ESANDBOX_NOT_FOUND' && !/does not exist/.test(err.message ?? '')) return `${err.message}: container does not exist (${err.code})`;
  if (typeof err?.code === 'string' && /^E[A-Z_]+$/.test(err.code)) return `${err.message} (${err.code})`;
  return err?.message ?? String(e);
}

// Not in paddockd's bundle, where this module is part of the main module too.
if (require.main === module && !/paddockd\.[jt]s$/.test(module.filename)) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Every command has awaited its work and closed the engine by now; what is left
      // in the event loop is teardown (nanomsg sockets, watchers) that only delays the
      // exit by several ms. stdout/stderr are synchronous for files and pipes on Linux.
      process.exit(code);
    },
    (e) => {
      process.stderr.write(`paddock: ${String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
