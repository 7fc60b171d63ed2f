'use strict';
/**
 * Jest runs CommonJS; @statelyai/inspect ships ES modules only (Node itself loads it
 * through require(esm)). This turns such a file into CommonJS for jest alone, with the
 * esbuild the CLI bundle already uses.
 */
// Without worker threads, esbuild's sync API runs one child per call and waits for it.
// With them (its default) it keeps a service child for the life of the jest process,
// which every later file that counts its children saw as theirs (`npm test` runs all
// files in one process). Set before esbuild loads: it reads the variable then.
process.env.ESBUILD_WORKER_THREADS = '0';
const esbuild = require('esbuild');

module.exports = {
  process(source, filename) {
    const out = esbuild.transformSync(source, { loader: 'js', format: 'cjs', target: 'node20', sourcefile: filename, sourcemap: 'inline' });
    return { code: out.code };
  },
};
