/**
 * Compiled seccomp filters kept between processes (EngineOptions.seccompCacheDir; the
 * CLI keeps them next to its bundle, docs/decisions/0007).
 *
 * Each CLI `create` is a new process, and compiling a profile the size of podman's
 * default (~430 syscalls) cost it 25-40 ms: libseccomp's own BPF generation and some
 * 900 calls through ffi-rs. What comes out depends only on the profile's text, the
 * architecture and the libseccomp version, so the result is kept under that key.
 *
 * An entry holds its whole key and is used only when the key matches exactly: a name
 * clash, a torn or foreign file costs a compile, never a wrong filter. A profile is
 * kept only after it compiled, so an entry has passed validation. Entries are written
 * temp + rename; at most MAX_ENTRIES are kept, the oldest go. The directory is as
 * trusted as the code next to it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fnv1a32 } from '../../base/fnv';
import { removeFile } from '../../base/remove-tree';
import { libseccomp } from '../../native/seccomp-ffi';
import type { CompiledSeccomp } from '../../native/seccomp-compile';
import { compileSeccomp } from './seccomp';
import { writeFileAtomic } from '../../base/files';

/** Changes whenever what compileSeccomp makes of a profile changes. */
const FORMAT = 'paddock-seccomp 1';
const MAX_ENTRIES = 64;

let cacheDir: string | undefined;

/** Where filters are kept from now on in this process; undefined: nowhere (the default). */
export function keepSeccompIn(dir: string | undefined): void {
  cacheDir = dir;
  // What this process compiled is forgotten too, so a new place starts from what it holds.
  memory.clear();
}

interface Entry {
  key: string;
  flags: number;
  skipped: string[];
  bpf: string;
}

/**
 * Compiled filters of this process by the profile's text, most recent last (at most
 * MEMORY_ENTRIES). plan.ts also keeps one per frozen config object, but a template
 * sandbox gets a fresh config each time, with paddock's default profile in it: without
 * this every such create compiled the same ~400-syscall profile again (~15 ms).
 */
const memory = new Map<string, CompiledSeccomp>();
const MEMORY_ENTRIES = 32;

/** compileSeccomp, or what an earlier compile of the same profile kept. Throws what compileSeccomp throws. */
export function compileSeccompKept(seccomp: unknown): CompiledSeccomp {
  if (seccomp === null || typeof seccomp !== 'object') return compileSeccomp(seccomp);
  const same = byObject.get(seccomp);
  if (same) return same;
  const compiled = compileSeccompByText(seccomp);
  byObject.set(seccomp, compiled);
  return compiled;
}

/**
 * Compiled filters by linux.seccomp object: a container's config is frozen, so every
 * exec into it reuses the bytes its root process got without even serialising it.
 */
const byObject = new WeakMap<object, CompiledSeccomp>();

function compileSeccompByText(seccomp: object): CompiledSeccomp {
  const text = JSON.stringify(seccomp);
  const hit = memory.get(text);
  if (hit) {
    memory.delete(text);
    memory.set(text, hit);
    return hit;
  }
  const compiled = compileSeccompOrDisk(seccomp, text);
  memory.set(text, compiled);
  if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value as string);
  return compiled;
}

function compileSeccompOrDisk(seccomp: object, text: string): CompiledSeccomp {
  const dir = cacheDir;
  if (dir === undefined) return compileSeccomp(seccomp);
  let key: string;
  try {
    key = `${FORMAT}\n${process.arch}\n${libseccomp().version()}\n${text}`;
  } catch {
    return compileSeccomp(seccomp); // no libseccomp: compileSeccomp says so
  }
  const file = path.join(dir, `${fnv1a32(key)}-${key.length}.json`);
  const kept = read(file, key);
  if (kept) return kept;
  const compiled = compileSeccomp(seccomp);
  write(dir, file, { key, flags: compiled.flags, skipped: compiled.skipped, bpf: compiled.bpf.toString('base64') });
  return compiled;
}

function read(file: string, key: string): CompiledSeccomp | undefined {
  try {
    const e = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Entry>;
    if (e.key !== key || typeof e.flags !== 'number' || !Array.isArray(e.skipped) || typeof e.bpf !== 'string') return undefined;
    const bpf = Buffer.from(e.bpf, 'base64');
    // struct sock_filter is 8 bytes; anything else is not a program we wrote.
    if (bpf.length === 0 || bpf.length % 8 !== 0) return undefined;
    return { bpf, flags: e.flags, skipped: e.skipped.map(String) };
  } catch {
    return undefined;
  }
}

function write(dir: string, file: string, entry: Entry): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify(entry), 0o600);
    trim(dir);
  } catch {
    // A read-only install or a full disk: the next process compiles again.
  }
}

/** Keeps the newest MAX_ENTRIES entries. */
function trim(dir: string): void {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  if (names.length <= MAX_ENTRIES) return;
  const byAge = names
    .map((n) => {
      try {
        return { n, t: fs.statSync(path.join(dir, n)).mtimeMs };
      } catch {
        return { n, t: 0 };
      }
    })
    .sort((a, b) => a.t - b.t);
  // removeFile: another process may have trimmed it first.
  for (const { n } of byAge.slice(0, names.length - MAX_ENTRIES)) removeFile(path.join(dir, n));
}

/** The compiled filter a config asks for (linux.seccomp), kept as above; undefined when it asks for none. */
export function seccompOf(config: { readonly linux?: { readonly seccomp?: unknown } }): CompiledSeccomp | undefined {
  const seccomp = config.linux?.seccomp;
  return seccomp === undefined || seccomp === null ? undefined : compileSeccompKept(seccomp);
}
