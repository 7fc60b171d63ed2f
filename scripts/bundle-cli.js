#!/usr/bin/env node
/**
 * Builds the CLI (setup.sh runs it after tsc; docs/decisions/0007):
 *   dist/cli/paddock-cli.js  the whole CLI as one file (native addons stay external)
 *   dist/cli/paddock.js      the small launcher that runs it from a V8 code cache
 *   dist/cli/paddockd.js     the resident supervisor the native client talks to (0044)
 *
 * One file, because each call is a new process: loading hundreds of modules cost
 * 0.41 s -> 0.26 s per `paddock run`. Adjustments to what esbuild does by itself:
 *  - rxjs's exports map sends platform node to its CommonJS build (every operator, no
 *    tree shaking): an alias takes its ES build, of which the CLI keeps Observable and
 *    Subject.
 *  - `import * as fs from 'node:fs'` becomes, in a CommonJS bundle, a copy of the
 *    module's every property into a fresh namespace object, once per importing
 *    module: ~40 copies of fs/path/net, ~20 ms of each call. The sources only read
 *    properties of those namespaces, which the module object itself serves, so for
 *    Node's built-in modules the import is given the module object.
 *  - The bundle is written already wrapped as the function the launcher compiles
 *    (CommonJS's `(function (exports, require, module, __filename, __dirname) {...})`),
 *    without bin/paddock.ts's #! line, and pure ASCII (esbuild's default charset), so
 *    the launcher reads it as latin1 and compiles that string as it is: no copy for
 *    the #!, no concatenation for V8 to flatten. Each copy of ~360 kB is ~90 fresh
 *    pages, and a page fault costs ~20 us on the hosts measured (docs/decisions/0007).
 */
'use strict';
const esbuild = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');
const { builtinModules } = require('node:module');

const root = path.resolve(__dirname, '..');
const builtins = new Set(builtinModules);
const NAMESPACE_IMPORT = /^import \* as ([A-Za-z_$][\w$]*) from '((?:node:)?[a-z_/]+)';$/gm;

/** Our own .ts sources: namespace imports of built-ins become plain requires. */
const builtinNamespaces = {
  name: 'builtin-namespaces',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const source = await fs.promises.readFile(args.path, 'utf8');
      const contents = source.replace(NAMESPACE_IMPORT, (whole, name, spec) =>
        builtins.has(spec.replace(/^node:/, '')) ? `const ${name} = require('${spec}');` : whole,
      );
      return { contents, loader: 'ts' };
    });
  },
};

async function main() {
  // PADDOCK_CLI_PLAIN=1: unminified, for reading CPU profiles of a call.
  const common = { bundle: true, platform: 'node', target: 'node20', minify: process.env.PADDOCK_CLI_PLAIN !== '1', logLevel: 'warning', absWorkingDir: root };
  const cli = await esbuild.build({
    ...common,
    write: false,
    entryPoints: ['bin/paddock.ts'],
    mainFields: ['module', 'main'],
    alias: { rxjs: './node_modules/rxjs/dist/esm/index.js' },
    // Not nanomsg's JavaScript either: it is sloppy-mode code (it assigns to a
    // getter-only stream property), which the bundle's strict mode would break.
    // ws and @statelyai/inspect: only `inspect` and `createEngine({ inspect: { url } })` load
    // them; every other call would pay for their parse in its code cache.
    external: ['nanomsg', 'ffi-rs', 'ws', '@statelyai/inspect'],
    plugins: [builtinNamespaces],
    outfile: 'dist/cli/paddock-cli.js',
  });
  const code = cli.outputFiles[0].text.replace(/^#![^\n]*\n/, '');
  // latin1 in the launcher reads ASCII exactly; anything else would come out garbled.
  if (/[^\x00-\x7f]/.test(code)) throw new Error('the CLI bundle is not ASCII: the launcher reads it as latin1');
  fs.mkdirSync(path.join(root, 'dist', 'cli'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dist', 'cli', 'paddock-cli.js'), `(function (exports, require, module, __filename, __dirname) {${code}\n})`);
  await esbuild.build({ ...common, entryPoints: ['bin/launcher.ts'], outfile: 'dist/cli/paddock.js' });
  // The resident supervisor (docs/decisions/0044): one bundle, started once per root
  // and then warm, so it needs no code cache.
  await esbuild.build({
    ...common,
    entryPoints: ['bin/paddockd.ts'],
    mainFields: ['module', 'main'],
    alias: { rxjs: './node_modules/rxjs/dist/esm/index.js' },
    external: ['nanomsg', 'ffi-rs'],
    plugins: [builtinNamespaces],
    outfile: 'dist/cli/paddockd.js',
  });
  const dir = path.join(root, 'dist', 'cli');
  // Caches made from the previous bundle are worthless (the launcher would refuse them anyway).
  for (const f of fs.readdirSync(dir)) if (/^paddock-cli\.js\..*cache/.test(f)) fs.rmSync(path.join(dir, f), { force: true });
  // Filters compiled by the previous build's code (bin/context.ts): its compiler may have changed.
  fs.rmSync(path.join(dir, 'seccomp.cache'), { recursive: true, force: true });
  fs.chmodSync(path.join(dir, 'paddock.js'), 0o755);
  copyInspectPage();
}

/**
 * The live view's page (actors/inspect-page) goes where actors/inspect/server.ts looks
 * for it: beside the compiled actors/inspect/ and beside the CLI bundle. No CDN: users
 * run it offline.
 */
function copyInspectPage() {
  const from = path.join(root, 'actors', 'inspect-page');
  for (const to of [path.join(root, 'dist', 'actors', 'inspect-page'), path.join(root, 'dist', 'cli', 'inspect-page')]) {
    fs.rmSync(to, { recursive: true, force: true });
    fs.mkdirSync(to, { recursive: true });
    for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
