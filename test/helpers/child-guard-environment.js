'use strict';
/**
 * jest's node environment, plus one check when a test file ends: it left no child of
 * the jest process behind.
 *
 * `npm test` runs every file in one jest process, so a child one file leaves (a
 * sandbox's init adopted through the subreaper, a tool's resident service) is seen by
 * every later file that counts its own children, and those files took the blame: a CI
 * run failed in native.int.test.ts for a child an earlier file had started. Checked
 * here, after all of the file's afterAll hooks, the file that leaves it fails, naming
 * the process.
 *
 * Zombies among the new children are orphans the file adopted as subreaper and killed
 * after its last reap: they are reaped here, not counted. A live child is a leak: it
 * is reported, then killed and reaped so later files start clean.
 */
const fs = require('node:fs');
const { TestEnvironment } = require('jest-environment-node');

const SETTLE_MS = 10_000;
const ZOMBIE_GRACE_MS = 250;

/** This process's children: pid -> "pid state (comm) cmdline". */
function children() {
  const me = process.pid;
  const out = new Map();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (Number(ppid) !== me) continue;
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${ent}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        // a zombie's cmdline may be unreadable
      }
      out.set(Number(ent), { state, text: `${ent} ${state} ${stat.slice(stat.indexOf('('), close + 1)} ${cmd}`.slice(0, 300) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

let waitpidFn;
/** waitpid(pid, WNOHANG) through ffi-rs (the package the tests' helpers already use). */
function reap(pid) {
  if (!waitpidFn) {
    const { DataType, load, open } = require('ffi-rs');
    open({ library: 'libc', path: '' });
    waitpidFn = (p) =>
      load({ library: 'libc', funcName: 'waitpid', retType: DataType.I32, paramsType: [DataType.I32, DataType.I64, DataType.I32], paramsValue: [p, 0, 1] });
  }
  return waitpidFn(pid);
}

class ChildGuardEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
    this.checked = false;
  }

  async setup() {
    await super.setup();
    this.before = new Set(children().keys());
  }

  async teardown() {
    // jest calls teardown a second time when the first throws: check once.
    if (!this.checked) {
      this.checked = true;
      const left = await this.settle();
      if (left.length > 0) {
        for (const c of left) {
          try {
            process.kill(c.pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
        await this.settle(5000);
        await super.teardown();
        throw new Error(`${this.testPath} left ${left.length} child process(es) of the test process running:\n  ${left.map((c) => c.text).join('\n  ')}`);
      }
    }
    await super.teardown();
  }

  /**
   * Waits (bounded) for the file's new children to go, reaping zombies; returns those
   * still alive. A zombie is reaped only once it has stayed one for ZOMBIE_GRACE_MS: one
   * that Node spawned is Node's to reap (libuv does on its next turn), and taking its
   * status would leave Node's handle open for good, and jest with it.
   */
  async settle(ms = SETTLE_MS) {
    const deadline = Date.now() + ms;
    const zombieSince = new Map();
    for (;;) {
      const left = [];
      for (const [pid, c] of children()) {
        if (this.before.has(pid)) continue;
        if (c.state !== 'Z') {
          left.push({ pid, text: c.text });
          continue;
        }
        if (!zombieSince.has(pid)) zombieSince.set(pid, Date.now());
        if (Date.now() - zombieSince.get(pid) >= ZOMBIE_GRACE_MS) reap(pid);
        else left.push({ pid, text: c.text, zombie: true });
      }
      // Zombies in their grace time are no leak: wait them out (250 ms at most).
      if (left.length > 0 && left.every((c) => c.zombie)) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      if (left.length === 0 || Date.now() >= deadline) return left.filter((c) => !c.zombie);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

module.exports = ChildGuardEnvironment;
