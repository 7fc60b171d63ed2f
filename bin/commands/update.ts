import * as fs from 'node:fs';
import { expectPositionals, parseArgs, str, type FlagSpec } from '../args';
import { resolvePath, type CliContext, type CliIo } from '../context';
import { resolveAttached } from './common';
import { PaddockError } from '../../base/errors';

/**
 * `update [flags] ID`: runc's update. New limits for the running container's cgroup
 * (engine.update, docs/decisions/0035), from `-r FILE` (`-` for stdin: a
 * linux.resources JSON object) and/or flags, which win over the file. What is not
 * given stays as it is. Prints nothing, as runc.
 */

type Key = readonly [section: 'memory' | 'cpu' | 'pids', key: string, kind: 'bytes' | 'int' | 'list'];

/** Flag → where its value goes in linux.resources, and how it is read. */
const FLAGS: Readonly<Record<string, Key>> = {
  memory: ['memory', 'limit', 'bytes'],
  'memory-reservation': ['memory', 'reservation', 'bytes'],
  'memory-swap': ['memory', 'swap', 'bytes'],
  // Accepted and ignored with a warning, as in the config (the kernel dropped them).
  'kernel-memory': ['memory', 'kernel', 'bytes'],
  'kernel-memory-tcp': ['memory', 'kernelTCP', 'bytes'],
  'cpu-period': ['cpu', 'period', 'int'],
  'cpu-quota': ['cpu', 'quota', 'int'],
  // runc's name is --cpu-share; --cpu-shares is what most people type.
  'cpu-share': ['cpu', 'shares', 'int'],
  'cpu-shares': ['cpu', 'shares', 'int'],
  'cpuset-cpus': ['cpu', 'cpus', 'list'],
  'cpuset-mems': ['cpu', 'mems', 'list'],
  'pids-limit': ['pids', 'limit', 'int'],
};

const SPECS: FlagSpec[] = [{ name: 'resources', alias: 'r', type: 'string' }, ...Object.keys(FLAGS).map((name) => ({ name, type: 'string' as const }))];

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

function badFlag(flag: string, reason: string): Error {
  return new PaddockError('EINVALID_ARGUMENT', `--${flag}: ${reason}`);
}

/** `-1`, a plain integer, or a size with a binary unit (`512m`, `1G`, `64KiB`), as runc's RAMInBytes. */
export function parseBytes(flag: string, v: string): number {
  if (v === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(v.trim());
  const n = m ? Math.round(Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? NaN)) : NaN;
  if (!Number.isSafeInteger(n)) throw badFlag(flag, `"${v}" is not a size (bytes, or with k, m, g, t; -1 for unlimited)`);
  return n;
}

function parseInt10(flag: string, v: string): number {
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(Number(v))) throw badFlag(flag, `"${v}" is not an integer`);
  return Number(v);
}

function readResources(io: Pick<CliIo, 'cwd' | 'stdinFd'>, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(io.stdinFd, 'utf8') : fs.readFileSync(resolvePath({ io }, file), 'utf8');
  } catch (e) {
    throw badFlag('resources', `cannot read ${file === '-' ? 'stdin' : file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badFlag('resources', `${file === '-' ? 'stdin' : file} is not valid json`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badFlag('resources', 'must hold a json object (linux.resources)');
  return parsed as Record<string, unknown>;
}

/** The resources a command line asks for: the file's, then each flag over it. */
export function resourcesFromArgs(argv: string[], io: Pick<CliIo, 'cwd' | 'stdinFd'> = { cwd: process.cwd(), stdinFd: 0 }): { id: string; resources: Record<string, Record<string, unknown>>; flagOf: Map<string, string> } {
  const p = parseArgs(argv, SPECS);
  const [id] = expectPositionals(p, 'update', ['container-id']) as [string];
  const file = str(p, 'resources');
  const resources = (file !== undefined ? readResources(io, file) : {}) as Record<string, Record<string, unknown>>;
  const flagOf = new Map<string, string>();
  for (const [flag, [section, key, kind]] of Object.entries(FLAGS)) {
    const v = str(p, flag);
    if (v === undefined) continue;
    const value = kind === 'bytes' ? parseBytes(flag, v) : kind === 'int' ? parseInt10(flag, v) : v;
    const cur = resources[section];
    resources[section] = { ...(typeof cur === 'object' && cur !== null ? cur : {}), [key]: value };
    flagOf.set(`${section}.${key}`, flag);
  }
  if (Object.keys(resources).length === 0) throw badFlag('resources', 'nothing to update: give -r FILE or a flag such as --memory');
  return { id, resources, flagOf };
}

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const { id, resources, flagOf } = resourcesFromArgs(argv, ctx.io);
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  try {
    await engine.update(r.sandboxId, resources, r.sub ? { containerId: r.containerId } : {});
  } catch (e) {
    // A value from a flag is named by the flag (`--memory: ...`), one from -r by its key.
    const field = (e as { context?: { field?: string } }).context?.field;
    const flag = field !== undefined ? flagOf.get(field) : undefined;
    if (flag !== undefined && e instanceof Error && e.message.startsWith(`${field}: `)) e.message = `--${flag}: ${e.message.slice(field!.length + 2)}`;
    throw e;
  }
  return 0;
}
