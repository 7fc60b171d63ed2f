/**
 * `engine.stacks(id)`: what runsc's `debug --stacks` is for, a dump to look at a stuck
 * sandbox. Read from the host's /proc (the supervisor is root): for paddock-init and
 * for every process of every container, each thread's state, wchan, current syscall
 * and kernel stack. A process or thread that exits while it is read is left out.
 */

import * as fs from 'node:fs';

export interface ThreadStack {
  readonly tid: number;
  /** comm of the thread. */
  readonly name: string;
  /** /proc/<pid>/status State: `S (sleeping)`, `R (running)`, `D (disk sleep)`... */
  readonly state: string;
  /** Kernel function the thread sleeps in (`pipe_read`, `hrtimer_nanosleep`...), '' when running. */
  readonly wchan: string;
  /**
   * /proc/.../syscall: the syscall number it is blocked in (`0` read, `230`
   * clock_nanosleep on x86-64), `running`, or `-1` (not in a syscall). '' when unreadable.
   */
  readonly syscall: string;
  /** Kernel stack, innermost first (`pipe_read+0x2f3/0x430`). Empty when the kernel does not expose it. */
  readonly stack: readonly string[];
}

export interface ProcessStacks {
  readonly hostPid: number;
  readonly ppid: number;
  readonly command: string;
  readonly threads: readonly ThreadStack[];
}

export interface ContainerProcessStacks extends ProcessStacks {
  /** Pid in paddock-init's view, for the processes init started. */
  readonly pid?: number;
  readonly kind: 'container' | 'exec' | 'descendant';
}

export interface ContainerStacks {
  readonly containerId: string;
  readonly processes: readonly ContainerProcessStacks[];
}

export interface SandboxStacks {
  readonly sandboxId: string;
  /** paddock-init: its threads as above, and the process table it reports itself. */
  readonly init: ProcessStacks & { readonly table: string };
  /** Every container with a process, root first. */
  readonly containers: readonly ContainerStacks[];
}

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/** `[<0>] pipe_read+0x2f3/0x430` lines → `pipe_read+0x2f3/0x430`. */
export function parseKernelStack(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/^\[<[0-9a-fx]+>\]\s*/, '').trim())
    .filter((l) => l.length > 0);
}

function readThread(pid: number, tid: number): ThreadStack | undefined {
  const dir = `/proc/${pid}/task/${tid}`;
  const status = read(`${dir}/status`);
  if (status === undefined) return undefined;
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  const wchan = (read(`${dir}/wchan`) ?? '').trim();
  return {
    tid,
    name: field('Name'),
    state: field('State'),
    wchan: wchan === '0' ? '' : wchan,
    syscall: (read(`${dir}/syscall`) ?? '').trim().split(' ')[0] ?? '',
    stack: parseKernelStack(read(`${dir}/stack`) ?? ''),
  };
}

/** One process with all its threads, or undefined when it is gone. */
export function readProcessStacks(pid: number): ProcessStacks | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const close = stat.lastIndexOf(')');
  const command = stat.slice(stat.indexOf('(') + 1, close);
  const ppid = Number(stat.slice(close + 2).split(' ')[1]);
  let tids: number[] = [];
  try {
    tids = fs
      .readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return undefined;
  }
  const threads = tids.map((t) => readThread(pid, t)).filter((t): t is ThreadStack => t !== undefined);
  return { hostPid: pid, ppid, command, threads };
}

/** A readable dump, one block per process, as `paddock debug stacks` prints it. */
export function formatStacks(s: SandboxStacks): string {
  const out: string[] = [`sandbox ${s.sandboxId}`, ''];
  const proc = (title: string, p: ProcessStacks) => {
    out.push(title);
    for (const t of p.threads) {
      out.push(`  thread ${t.tid} (${t.name}) state=${t.state} wchan=${t.wchan || '-'} syscall=${t.syscall || '-'}`);
      for (const f of t.stack) out.push(`    ${f}`);
    }
  };
  proc(`paddock-init pid ${s.init.hostPid}`, s.init);
  if (s.init.table.trim() !== '') out.push('  table:', ...s.init.table.trimEnd().split('\n').map((l) => `    ${l}`));
  for (const c of s.containers) {
    out.push('', `container ${c.containerId}`);
    for (const p of c.processes) proc(` process ${p.hostPid}${p.pid !== undefined ? ` (pid ${p.pid} in the sandbox)` : ''} ${p.kind} ${p.command}`, p);
  }
  return out.join('\n') + '\n';
}
