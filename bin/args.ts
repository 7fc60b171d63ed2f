/**
 * A small argv parser for runc-style command lines: `--flag value`, `--flag=value`,
 * boolean flags, short aliases (`-d`), repeatable flags (`--env A --env B`), and
 * positionals. Unknown flags are an error (exit 1 with one line), as in runc.
 */

export interface FlagSpec {
  readonly name: string;
  readonly alias?: string;
  readonly type: 'bool' | 'string' | 'list';
}

export interface Parsed {
  readonly flags: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * `--help` (or `-h` where the verb gives `-h` no meaning of its own) among a verb's
 * flags: runc prints the verb's usage and exits 0, and callers rely on it (podman asks
 * `checkpoint --help` to learn whether a runtime can checkpoint at all).
 */
export class HelpRequested extends Error {
  constructor(readonly flags: readonly FlagSpec[]) {
    super('help');
    this.name = 'HelpRequested';
  }
}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], opts: { stopAtFirstPositional?: boolean } = {}): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(`--${s.name}`, s);
    if (s.alias) byName.set(`-${s.alias}`, s);
  }
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (opts.stopAtFirstPositional) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    // runc (urfave/cli) accepts -flag as well as --flag for long names.
    const spec = byName.get(key) ?? (key.startsWith('-') && !key.startsWith('--') ? byName.get(`-${key}`) : undefined);
    if (!spec && (key === '--help' || key === '-h' || key === '-help')) throw new HelpRequested(specs);
    if (!spec) throw new UsageError(`flag provided but not defined: ${key}`);
    if (spec.type === 'bool') {
      flags[spec.name] = eq > 0 ? arg.slice(eq + 1) !== 'false' : true;
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`flag needs an argument: ${key}`);
    if (spec.type === 'list') flags[spec.name] = [...((flags[spec.name] as string[] | undefined) ?? []), value];
    else flags[spec.name] = value;
  }
  return { flags, positionals };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function bool(p: Parsed, name: string): boolean {
  return p.flags[name] === true;
}

export function list(p: Parsed, name: string): string[] {
  const v = p.flags[name];
  return Array.isArray(v) ? v : [];
}

/** Exactly `n` positionals (the container id, ...), or a usage error naming the command. */
export function expectPositionals(p: Parsed, cmd: string, names: string[], optional = 0): string[] {
  const min = names.length - optional;
  if (p.positionals.length < min || p.positionals.length > names.length) {
    throw new UsageError(`"${cmd}" requires ${min === names.length ? `exactly ${min}` : `${min} to ${names.length}`} argument(s): ${names.join(' ')}`);
  }
  return p.positionals;
}
