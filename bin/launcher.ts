#!/usr/bin/env node
/**
 * dist/cli/paddock.js: runs the bundled CLI (dist/cli/paddock-cli.js) from a V8 code
 * cache, so a call does not parse and compile the bundle's functions again.
 *
 * Every `paddock` call is a new process, and compiling the ~330 kB bundle (its top
 * level, then each function the call reaches) was a large share of the call's own
 * time (docs/decisions/0007). A cache holds the code of the functions one call
 * compiled, so there is one per verb (`run` and `state` reach different code): it is
 * written after a call of that verb that had none (or a stale one), next to the
 * bundle, temp + rename so concurrent calls never read a torn one. A cache is for one
 * bundle: its header names the bundle's size and mtime, and V8 itself rejects a cache
 * from another V8 version or other flags. Anything wrong with it only costs the
 * compile it was meant to save; a read-only install simply runs without one.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { isVerb, VALUE_FLAGS } from './command-list';

const BUNDLE = path.join(__dirname, 'paddock-cli.js');
const HEADER_BYTES = 64;

/** The verb this call runs, found as bin/paddock.ts will; anything else shares one cache. */
function verbOf(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('-')) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    return isVerb(a) ? a : 'other';
  }
  return 'other';
}

function readCache(file: string, header: string): Buffer | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  if (buf.length <= HEADER_BYTES || buf.toString('latin1', 0, HEADER_BYTES) !== header) return undefined;
  return buf.subarray(HEADER_BYTES);
}

function writeCache(file: string, script: vm.Script, header: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(header, 'latin1'), script.createCachedData()]), { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch {
    // Read-only install, full disk: the next call compiles again, nothing else changes.
    fs.rmSync(tmp, { force: true });
  }
}

function launch(): void {
  const st = fs.statSync(BUNDLE);
  const header = `paddock-cli ${st.size} ${Math.floor(st.mtimeMs)}\n`.padEnd(HEADER_BYTES, ' ');
  const cacheFile = `${BUNDLE}.${verbOf(process.argv.slice(2))}.cache`;
  const cachedData = readCache(cacheFile, header);
  // The bundle is ASCII and already the CommonJS wrapper function (scripts/bundle-cli.js):
  // compiled as read, with no copy of its ~360 kB.
  const script = new vm.Script(fs.readFileSync(BUNDLE, 'latin1'), {
    filename: BUNDLE,
    ...(cachedData ? { cachedData } : {}),
  });
  if (!cachedData || script.cachedDataRejected) {
    // After the call: by then the functions it ran are compiled and go into the cache.
    process.once('exit', () => writeCache(cacheFile, script, header));
  }
  const mod = { exports: {}, id: BUNDLE, filename: BUNDLE, loaded: false };
  const req = createRequire(BUNDLE);
  // The bundle runs its main() when it is the program's main module.
  (req as { main: unknown }).main = mod;
  (script.runInThisContext() as (...a: unknown[]) => void).call(mod.exports, mod.exports, req, mod, BUNDLE, __dirname);
}

launch();
