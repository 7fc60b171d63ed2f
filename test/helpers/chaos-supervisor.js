/**
 * The supervisor the chaos test runs in a child process and SIGKILLs at random:
 * it opens an engine on the state dir, subscribes to events before it reattaches, and
 * journals every event (with the sandbox's init pid, which tells one run of a sandbox
 * id from the next) to an append-only file with one synchronous write per line: the
 * write is done when the emission returns, so with `exitReports: 'at-least-once'` no
 * exit can be missing from the journal, only repeated (same id) by the next supervisor.
 *
 *   node chaos-supervisor.js DIST STATE_DIR JOURNAL BUNDLE COUNT MODE [RESTART_JSON]
 *   MODE: init (create COUNT sandboxes, then supervise) | resume (reattach, supervise)
 *         | stop (reattach, then shutdown({ mode: 'stop' }) and exit)
 */
'use strict';
const fs = require('node:fs');
const [dist, stateDir, journalPath, bundle, countArg, mode, restartJson] = process.argv.slice(2);
const { createEngine } = require(`${dist}/index.js`);
const pino = require('pino');

const journal = fs.openSync(journalPath, 'a');
const write = (o) => fs.writeSync(journal, `${JSON.stringify({ t: Date.now(), sup: process.pid, ...o })}\n`);

(async () => {
  // at-least-once: a report repeated by the next supervisor carries the same id (decision 0017).
  const engine = await createEngine({ stateDir, logger: pino({ level: 'silent' }), reattach: false, exitReports: 'at-least-once' });
  const initPidOf = new Map();
  engine.events$.subscribe((e) => {
    const s = engine.list().find((x) => x.id === e.sandboxId);
    if (s && s.pid) initPidOf.set(e.sandboxId, s.pid);
    const plain = { ...e };
    // A container's state events carry no pid (those with one are exec'd processes): take it from list().
    if (e.type === 'state' && e.containerId && e.pid === undefined && e.status === 'running') {
      const c = s && s.containers.find((k) => k.id === e.containerId);
      if (c && c.pid !== undefined) plain.containerPid = c.pid;
    }
    if (plain.error) plain.error = { code: plain.error.code, message: plain.error.message };
    write({ ev: e.type, initPid: initPidOf.get(e.sandboxId), e: plain });
  });
  await engine.attachAll();
  const snapshot = engine.list().map((s) => ({
    id: s.id,
    status: s.status,
    initPid: s.pid,
    containers: s.containers.map((c) => ({ id: c.id, status: c.status, pid: c.pid, exit: c.exit })),
  }));
  write({ ev: 'attached', sandboxes: snapshot });
  if (mode === 'stop') {
    const report = await engine.shutdown({ mode: 'stop', graceMs: 300 });
    write({ ev: 'shutdown', report });
    process.exit(0);
  }
  if (mode === 'init') {
    const restart = restartJson ? JSON.parse(restartJson) : undefined;
    for (let i = 0; i < Number(countArg); i++) {
      const id = `chaos${i}`;
      await engine.createSandbox(id, bundle, { stdio: 'ignore', ...(restart ? { restart } : {}) });
      await engine.startRoot(id);
    }
  }
  write({ ev: 'ready' });
  process.stdout.write('ready\n');
  setInterval(() => undefined, 60_000);
})().catch((err) => {
  write({ ev: 'fatal', message: String(err && err.stack ? err.stack : err) });
  process.stdout.write(`fatal ${err && err.message}\n`);
  process.exit(1);
});
