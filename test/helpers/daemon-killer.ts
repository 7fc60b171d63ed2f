import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A process beside the test (a test that drives the CLI with spawnSync blocks its own
 * event loop) that SIGKILLs whichever paddockd holds `lockFile` every `minMs`–`maxMs`,
 * drawn from `seed` so a run can be replayed. It kills only a pid > 0 whose /proc start
 * time is the lock's: a lock paddockd has made but not written yet reads as pid 0, and
 * kill(0) is this whole process group (jest with it); a dead paddockd's pid may be
 * someone else's by then.
 */
export interface DaemonKiller {
  /** Stops the killer and waits for it; resolves to how many paddockds it killed. */
  stop(): Promise<number>;
}

export function startDaemonKiller(lockFile: string, seed: number, minMs: number, maxMs: number): DaemonKiller {
  const script = `
    const fs = require('fs'); let s = ${seed}, kills = 0;
    const next = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
    process.on('SIGTERM', () => { process.stdout.write(String(kills)); process.exit(0); });
    const tick = () => {
      try {
        const [pid, start] = fs.readFileSync(${JSON.stringify(lockFile)}, 'utf8').trim().split(' ').map(Number);
        const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
        if (pid > 0 && Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19]) === start) { process.kill(pid, 'SIGKILL'); kills++; }
      } catch {}
      setTimeout(tick, ${minMs} + next() * ${maxMs - minMs});
    };
    setTimeout(tick, ${minMs});`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  // Waited for before it resolves: a subreaper's reaping must not take its exit from Node.
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  let stopping: Promise<number> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
        return Number(out) || 0;
      })();
      return stopping;
    },
  };
}
