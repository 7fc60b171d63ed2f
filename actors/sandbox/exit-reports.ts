import * as fs from 'node:fs';
import type { AnyActorRef } from 'xstate';
import type { ExitStatus } from '../../machines/types';
import { splitMessages } from '../../protocols/decode';
import { Kind } from '../../protocols/messages';
import type { EngineEvent } from '../engine/api';
import { writeFileAtomic } from '../../base/files';
import type { Runtime } from './runtime';

/**
 * Exit reports for the engine: exits.log is their one source (init appends a record
 * before it publishes or exits), read incrementally from the last byte read; a cursor
 * file records what has been reported so a reattaching supervisor reports only what
 * follows (decisions 0003 and 0017). Processes that died with a killed init are
 * reported once as `lost`.
 */
export interface ExitReportDeps {
  emit(e: EngineEvent): void;
  /** Queues a persist of the sandbox's state (the machine moved). */
  persist(rt: Runtime): void;
  /** Atomic file replacement (native RENAME_EXCHANGE, decision 0004). */
  replaceFile?: (tmp: string, target: string) => void;
  /** The cursor is written before each report (default) or after it (EngineOptions.exitReports). */
  readonly delivery?: 'at-most-once' | 'at-least-once';
}

/**
 * An exit's identity across supervisors: what exits.log says about it (init's reap
 * time is unique to one process's one exit), or for a lost exit the init that died.
 */
export function exitId(sandboxId: string, containerId: string, pid: number, at: bigint | `lost:${number}` | 'answer'): string {
  return `${sandboxId}/${containerId}/${pid}@${String(at)}`;
}

export class ExitReports {
  private readonly afterEmit: boolean;

  constructor(private readonly deps: ExitReportDeps) {
    this.afterEmit = deps.delivery === 'at-least-once';
  }

  /**
   * init is gone and exits.log has nothing for these processes: init was killed (or
   * crashed) before it could reap them, and the kernel killed them with it. Their exit
   * is still reported, once, marked `lost`, so a watcher never waits for it for ever.
   * Once across supervisors too: like every exit report, it is recorded in exits.cursor
   * before it goes out (decision 0017), and a reattaching supervisor that finds the
   * record does not report these processes again (its machines still say `running`
   * when the last one died before it persisted them).
   */
  reportLost(rt: Runtime): void {
    const snap = rt.actor.getSnapshot();
    if (snap.status !== 'active' || rt.observer || rt.lostReported) return;
    const lost: EngineEvent[] = [];
    const initHostPid = Number(snap.context.initHostPid ?? 0);
    for (const [key, ref] of Object.entries(snap.children)) {
      const child = (ref as AnyActorRef).getSnapshot() as { value: unknown; context: { pid?: number; containerId?: string; id?: string } };
      if (child.value !== 'running') continue;
      const exec = key.startsWith('pid-');
      const containerId = exec ? (child.context.containerId as string) : key;
      const pid = child.context.pid ?? 0;
      lost.push({
        type: 'exit',
        sandboxId: rt.id,
        containerId,
        pid,
        kind: exec ? 'exec' : 'container',
        exit: { exitCode: null, signal: null },
        id: exitId(rt.id, containerId, pid, `lost:${initHostPid}`),
        lost: true,
      });
    }
    // init is dead: exits.log cannot grow, and these are the last reports of this sandbox.
    rt.lostReported = true;
    if (lost.length === 0) return;
    if (!this.afterEmit) this.saveCursor(rt);
    for (const e of lost) this.deps.emit(e);
    if (this.afterEmit) this.saveCursor(rt);
  }

  /**
   * Delivers the records appended to exits.log since the last read. The log only grows
   * (init appends whole records), so each call reads just the new bytes; a record cut
   * short by a concurrent append is read again next time.
   */
  readLog(rt: Runtime, upTo = Infinity, silent = false): void {
    let buf: Buffer;
    const start = rt.exitsRead;
    try {
      const fd = fs.openSync(rt.paths.exitsLog, 'r');
      try {
        const size = Math.min(fs.fstatSync(fd).size, upTo);
        if (size <= start) return;
        buf = Buffer.alloc(size - start);
        fs.readSync(fd, buf, 0, buf.length, start);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return;
    }
    const { messages, ends } = splitMessages(buf);
    messages.forEach((m, i) => {
      rt.exitsRead = start + (ends[i] as number);
      if (m.type !== 'EV_EXITED') return;
      if (m.kind === Kind.CONTAINER) rt.containerExits.set(m.cid, m);
      const exit = toExit(m.exitCode, m.signal, m.timeNs);
      this.deliver(rt, m.cid, m.pid, m.kind === Kind.EXEC ? 'exec' : 'container', exit, m.timeNs, silent);
    });
  }

  /**
   * Records that exits.log up to `rt.exitsRead` has been reported, before the report
   * goes out: a supervisor killed in between loses at most that one report rather than
   * repeating every earlier one after its reattach (decision 0017).
   */
  private saveCursor(rt: Runtime): void {
    if (rt.observer || !fs.existsSync(rt.paths.dir)) return;
    try {
      const text = rt.lostReported ? `${rt.exitsRead} lost` : String(rt.exitsRead);
      writeFileAtomic(rt.paths.exitsCursor, text, 0o600, false, this.deps.replaceFile);
    } catch (e) {
      rt.log.warn({ err: e, step: 'exits.cursor' }, 'could not record reported exits');
    }
  }

  /**
   * What the last supervisor recorded as reported: the prefix of exits.log (bytes) and
   * whether the processes lost with init were reported (`<bytes> lost`). Sets
   * `rt.lostReported` and returns the prefix.
   */
  loadCursor(rt: Runtime): number {
    let text: string;
    try {
      text = fs.readFileSync(rt.paths.exitsCursor, 'utf8');
    } catch {
      return 0;
    }
    const [bytes, flag] = text.trim().split(' ');
    if (flag === 'lost') rt.lostReported = true;
    const n = Number(bytes);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  }

  /**
   * Exactly once per exit: exits.log is the one source (the event channel only says
   * "read it"), keyed by reap time; `silent` replays records a previous supervisor
   * already reported, to bring the machines up to date without reporting them again.
   */
  deliver(
    rt: Runtime,
    containerId: string,
    pid: number,
    kind: 'container' | 'exec',
    exit: ExitStatus,
    timeNs?: bigint,
    silent = false,
  ): void {
    const key = `${containerId}:${pid}:${timeNs ?? 'q'}`;
    if (timeNs === undefined) {
      // A status from a WAIT query. init recorded it in exits.log before it answered, so
      // it is reported from there (keyed by reap time, cursor saved) and the answer only
      // if the log had nothing for that process. Reported from the answer first, the
      // record read later would be a second report of the same exit.
      this.readLog(rt);
      for (const k of rt.seenExits) if (k.startsWith(`${containerId}:${pid}:`)) return;
    }
    if (rt.seenExits.has(key)) return;
    rt.seenExits.add(key);
    if (rt.actor.getSnapshot().status !== 'active') return;
    const recorded = timeNs !== undefined && !silent;
    if (recorded && !this.afterEmit) this.saveCursor(rt);
    // The exit is the fact; the state changes it causes are reported after it.
    if (!silent) this.deps.emit({ type: 'exit', sandboxId: rt.id, containerId, pid, kind, exit, id: exitId(rt.id, containerId, pid, timeNs ?? 'answer') });
    if (recorded && this.afterEmit) this.saveCursor(rt);
    rt.actor.send({ type: 'process.exited', containerId, pid, kind, exit });
    if (kind === 'exec') rt.execs.get(pid)?.done.resolve();
    else rt.containers.get(containerId)?.done.resolve();
    this.deps.persist(rt);
  }
}

/** An exit record's status as the API reports it: exactly one of exitCode/signal. */
export function toExit(exitCode: number | undefined, signal: number | undefined, timeNs?: bigint): ExitStatus {
  const sig = signal ?? 0;
  return {
    exitCode: sig > 0 ? null : (exitCode ?? null),
    signal: sig > 0 ? sig : null,
    ...(timeNs !== undefined ? { at: new Date(Number(timeNs / 1_000_000n)).toISOString() } : {}),
  };
}
