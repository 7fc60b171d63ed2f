/**
 * A supervisor that creates one sandbox, leaves it running and exits (decision 0031):
 * the detach test reads this process's stdout and stderr until EOF, which must come
 * while the sandbox still lives.
 *
 *   node leave-sandbox.js DIST STATE_DIR BUNDLE ID [INIT_STDERR]
 */
'use strict';
const [dist, stateDir, bundle, id, initStderr] = process.argv.slice(2);
const { createEngine } = require(`${dist}/index.js`);
const pino = require('pino');

(async () => {
  const engine = await createEngine({ stateDir, logger: pino({ level: 'silent' }), ...(initStderr ? { initStderr } : {}) });
  const sb = await engine.createSandbox(id, bundle);
  await engine.startRoot(id);
  process.stdout.write(`${sb.pid}\n`);
  process.stderr.write('leaving it running\n');
  await engine.shutdown({ mode: 'detach' });
})().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
