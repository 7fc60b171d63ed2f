/**
 * Where paddock's files are, from source (ts-jest runs native/*.ts) and from dist/
 * (dist/native/*.js) alike: everything is found relative to the package root, the
 * nearest directory upwards whose package.json is named "paddock".
 */
import * as fs from 'fs';
import * as path from 'path';

let cachedRoot: string | undefined;

export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    try {
      const parsed = JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: unknown };
      if (parsed.name === 'paddock') {
        cachedRoot = dir;
        return dir;
      }
    } catch {
      // no package.json here (or not ours): keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`paddock: no package.json named "paddock" above ${__dirname}`);
    }
    dir = parent;
  }
}

/** native/build: what `npm run build:native` (make -C native) produces. */
export function nativeBuildDir(): string {
  return path.join(packageRoot(), 'native', 'build');
}

/** The host's paddock-init; sandboxes run a sealed memfd copy of it. */
export function initBinaryPath(): string {
  return path.join(nativeBuildDir(), 'paddock-init');
}

/** libpaddock.so, loaded through ffi-rs by native/ffi.ts. */
export function libraryPath(): string {
  return path.join(nativeBuildDir(), 'libpaddock.so');
}

/** A static test program from native/c/testbin (fake-init and probes). */
export function testBinaryPath(name: string): string {
  return path.join(nativeBuildDir(), 'testbin', name);
}
