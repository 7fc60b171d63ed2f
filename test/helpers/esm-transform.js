'use strict';
/**
 * Jest runs CommonJS; @statelyai/inspect ships ES modules only (Node itself loads it
 * through require(esm)). This turns such a file into CommonJS for jest alone, with the
 * esbuild the CLI bundle already uses.
 */
const esbuild = require('esbuild');

module.exports = {
  process(source, filename) {
    const out = esbuild.transformSync(source, { loader: 'js', format: 'cjs', target: 'node20', sourcefile: filename, sourcemap: 'inline' });
    return { code: out.code };
  },
};
