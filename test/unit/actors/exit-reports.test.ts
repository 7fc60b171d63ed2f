import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EngineEvent } from '../../../actors/engine/api';
import { ExitReports } from '../../../actors/sandbox/exit-reports';
import { SandboxPaths } from '../../../actors/sandbox/state-store';
import { encode } from '../../../protocols/encode';
import { Kind } from '../../../protocols/messages';
import type { Runtime } from '../../../actors/sandbox/runtime';

/**
 * Each exit reported once (decision 0017), checked on ExitReports alone: a Runtime
 * made of a real sandbox folder and a stand-in for the sandbox actor, whose snapshot
 * shows one container `running` (as a persisted snapshot does when its supervisor died).
 */
describe('exit reports', () => {
  let root: string;
  let paths: SandboxPaths;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-exits-'));
    paths = new SandboxPaths(root, 'sb');
    fs.mkdirSync(paths.dir);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** A runtime as a (re)attaching engine builds it: nothing read, nothing seen. */
  function runtime(): { rt: Runtime; sent: unknown[] } {
    const sent: unknown[] = [];
    const container = { getSnapshot: () => ({ value: 'running', context: { pid: 15 } }) };
    const actor = { getSnapshot: () => ({ status: 'active', context: { initHostPid: 777 }, children: { sb: container } }), send: (e: unknown) => sent.push(e) };
    const log = { warn: () => undefined, debug: () => undefined };
    const rt = {
      id: 'sb',
      paths,
      log,
      containers: new Map(),
      execs: new Map(),
      seenExits: new Set<string>(),
      exitsRead: 0,
      containerExits: new Map(),
      actor,
    } as unknown as Runtime;
    return { rt, sent };
  }

  function reporter(delivery?: 'at-most-once' | 'at-least-once', onEmit?: (e: EngineEvent) => void): { reports: ExitReports; events: EngineEvent[] } {
    const events: EngineEvent[] = [];
    const emit = (e: EngineEvent) => {
      events.push(e);
      onEmit?.(e);
    };
    return { reports: new ExitReports({ emit, persist: () => undefined, ...(delivery ? { delivery } : {}) }), events };
  }
  const cursorNow = () => (fs.existsSync(paths.exitsCursor) ? fs.readFileSync(paths.exitsCursor, 'utf8') : 'none');

  const exited = (code: number, timeNs: bigint) =>
    encode({ type: 'EV_EXITED', cid: 'sb', pid: 15, hostPid: 4242, kind: Kind.CONTAINER, exitCode: code, signal: 0, timeNs });

  test('processes lost with init are reported once, also by a supervisor that reattaches after the report', () => {
    const first = reporter();
    const a = runtime();
    first.reports.reportLost(a.rt);
    first.reports.reportLost(a.rt);
    expect(first.events).toEqual([expect.objectContaining({ type: 'exit', containerId: 'sb', pid: 15, lost: true })]);

    // The supervisor was killed before it persisted the machine: the next one finds the
    // container still `running` and init dead, and must not report it again.
    const second = reporter();
    const b = runtime();
    b.rt.exitsRead = second.reports.loadCursor(b.rt);
    second.reports.reportLost(b.rt);
    expect(second.events).toEqual([]);
  });

  test('the cursor keeps its place in exits.log next to the lost mark; a cursor of bytes only still loads', () => {
    const rec = exited(1, 1_000_000n);
    fs.writeFileSync(paths.exitsLog, rec);
    const { reports, events } = reporter();
    const { rt } = runtime();
    reports.readLog(rt);
    expect(fs.readFileSync(paths.exitsCursor, 'utf8')).toBe(String(rec.length));
    reports.reportLost(rt);
    expect(events).toHaveLength(2);
    expect(fs.readFileSync(paths.exitsCursor, 'utf8')).toBe(`${rec.length} lost`);
    const again = runtime();
    expect(reports.loadCursor(again.rt)).toBe(rec.length);
    expect(again.rt.lostReported).toBe(true);
    fs.writeFileSync(paths.exitsCursor, String(rec.length));
    const old = runtime();
    expect(reports.loadCursor(old.rt)).toBe(rec.length);
    expect(old.rt.lostReported).toBeUndefined();
  });

  test('an exit a WAIT answer brings is reported once, whether its exits.log record is read before or after', () => {
    fs.writeFileSync(paths.exitsLog, exited(3, 2_000_000n));
    const { reports, events } = reporter();
    const { rt } = runtime();
    // The WAIT answer arrives before the event that would make the engine read the log.
    reports.deliver(rt, 'sb', 15, 'container', { exitCode: 3, signal: null });
    reports.readLog(rt);
    expect(events).toEqual([expect.objectContaining({ type: 'exit', containerId: 'sb', pid: 15, exit: expect.objectContaining({ exitCode: 3 }) })]);
    // Reported from the log: with its reap time, and the cursor covers it.
    expect((events[0] as { exit: { at?: string } }).exit.at).toBeDefined();
    expect(Number(fs.readFileSync(paths.exitsCursor, 'utf8'))).toBe(fs.statSync(paths.exitsLog).size);
  });

  test('each exit carries an id made of what exits.log says (reap time) or, when lost, of the init that died', () => {
    fs.writeFileSync(paths.exitsLog, exited(4, 5_000_123n));
    const { reports, events } = reporter();
    const { rt } = runtime();
    reports.readLog(rt);
    reports.reportLost(rt);
    expect(events.map((e) => (e as { id: string }).id)).toEqual(['sb/sb/15@5000123', 'sb/sb/15@lost:777']);
  });

  test('at-most-once (default): the cursor covers an exit before it goes out, so a death at the emission loses it', () => {
    const rec = exited(1, 7_000_000n);
    fs.writeFileSync(paths.exitsLog, rec);
    const seen: string[] = [];
    const { reports } = reporter(undefined, () => seen.push(cursorNow()));
    reports.readLog(runtime().rt);
    expect(seen).toEqual([String(rec.length)]);
  });

  test('at-least-once: the cursor moves after the emission; a supervisor that dies in it has the next one repeat the exit, same id', () => {
    const rec = exited(1, 7_000_000n);
    fs.writeFileSync(paths.exitsLog, rec);
    const seen: string[] = [];
    // The consumer's handler runs, then the process dies before emit returns.
    const first = reporter('at-least-once', () => {
      seen.push(cursorNow());
      throw new Error('SIGKILL');
    });
    expect(() => first.reports.readLog(runtime().rt)).toThrow('SIGKILL');
    expect(seen).toEqual(['none']);
    expect(cursorNow()).toBe('none');

    const second = reporter('at-least-once');
    const b = runtime();
    b.rt.exitsRead = second.reports.loadCursor(b.rt);
    second.reports.readLog(b.rt);
    expect(second.events).toEqual([expect.objectContaining({ id: (first.events[0] as { id: string }).id, exit: expect.objectContaining({ exitCode: 1 }) })]);
    expect(cursorNow()).toBe(String(rec.length));
    // Reported and recorded: a third supervisor has nothing to say.
    const third = reporter('at-least-once');
    const c = runtime();
    c.rt.exitsRead = third.reports.loadCursor(c.rt);
    third.reports.readLog(c.rt);
    expect(third.events).toEqual([]);
  });

  test('at-least-once: lost exits are recorded after they go out, and repeated with the same ids by a supervisor that reattaches in between', () => {
    const first = reporter('at-least-once', () => {
      throw new Error('SIGKILL');
    });
    expect(() => first.reports.reportLost(runtime().rt)).toThrow('SIGKILL');
    const second = reporter('at-least-once');
    const b = runtime();
    b.rt.exitsRead = second.reports.loadCursor(b.rt);
    second.reports.reportLost(b.rt);
    expect(second.events).toEqual([expect.objectContaining({ id: 'sb/sb/15@lost:777', lost: true })]);
    expect(cursorNow()).toBe('0 lost');
  });
});
