import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { Subject } from 'rxjs';
import type { EngineEvent } from '../../../actors/engine/api';
import { Supervision, type SupervisedEngine } from '../../../actors/supervision/restart';

describe('supervision state on disk', () => {
  let stateDir: string;
  let dir: string;
  beforeEach(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-supervision-'));
    dir = path.join(stateDir, '.supervision');
    fs.mkdirSync(dir);
  });
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  function supervision(): { s: Supervision; emitted: EngineEvent[] } {
    const engine = { events$: new Subject<EngineEvent>(), list: () => [] } as unknown as SupervisedEngine;
    const emitted: EngineEvent[] = [];
    return { s: new Supervision(engine, stateDir, pino({ level: 'silent' }), (e) => emitted.push(e)), emitted };
  }

  test('the temp file of a writer killed before its rename is removed on load; a live writer\'s is left alone', () => {
    // A pid that has been and gone (its process exited), and one that is alive (our parent).
    const dead = spawnSync('true').pid as number;
    const live = process.ppid;
    const saved = { version: 1, sandboxId: 'sb', bundleDir: '/b', options: {}, policy: {}, snapshot: {} };
    fs.writeFileSync(path.join(dir, 'sb.json'), JSON.stringify(saved));
    fs.writeFileSync(path.join(dir, `sb.json.tmp-${dead}`), '{"version":1,"sandb');
    fs.writeFileSync(path.join(dir, `sb.json.tmp-${process.pid}`), '{');
    fs.writeFileSync(path.join(dir, `other.json.tmp-${live}`), '{');
    const { s, emitted } = supervision();
    s.load();
    expect(fs.readdirSync(dir).sort()).toEqual(['other.json.tmp-' + live, 'sb.json']);
    // Not taken for state, and not reported as unreadable state either.
    expect(emitted).toEqual([]);
    s.close();
  });
});
