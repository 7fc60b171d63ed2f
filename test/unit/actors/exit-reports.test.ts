import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EngineEvent } from '../../../actors/api';
import { ExitReports } from '../../../actors/exit-reports';
import type { Runtime } from '../../../actors/launcher';
import { SandboxPaths } from '../../../actors/state-store';
import { encode } from '../../../protocols/encode';
import { Kind } from '../../../protocols/messages';

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
    const actor = { getSnapshot: () => ({ status: 'active', children: { sb: container } }), send: (e: unknown) => sent.push(e) };
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

  function reporter(): { reports: ExitReports; events: EngineEvent[] } {
    const events: EngineEvent[] = [];
    return { reports: new ExitReports({ emit: (e) => events.push(e), persist: () => undefined }), events };
  }

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
});
