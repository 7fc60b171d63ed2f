/**
 * Under PADDOCK_CI=1 nothing is quietly skipped (issue 19, decision 0033): jest runs a
 * tiny fixture project (test/fixtures/ci-honesty) through the real reporter and needs
 * helper, and the run must fail on a test.skip, a test.todo, a `.only` and an unmet need,
 * and pass the same files by hand, naming what was missing.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { verdict } from '../../helpers/env';

const REPO = path.resolve(__dirname, '../../..');
const FIXTURE = path.join(REPO, 'test/fixtures/ci-honesty');

function jest(file: string, env: Record<string, string>): { status: number | null; out: string } {
  const clean = { ...process.env };
  for (const k of ['PADDOCK_CI', 'PADDOCK_CI_ELSEWHERE', 'PADDOCK_CI_DEFERRED_LOG', 'PADDOCK_NEEDS_UNMET']) delete clean[k];
  const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules/jest/bin/jest.js'), '--config', path.join(FIXTURE, 'jest.config.js'), '--verbose', `${file}\\.fixture\\.ts$`], {
    cwd: FIXTURE,
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 60000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('PADDOCK_CI=1 fails a run that skipped anything', () => {
  test.each(['skip', 'todo', 'only'])('a %s fails under PADDOCK_CI=1 and passes by hand', (file) => {
    const ci = jest(file, { PADDOCK_CI: '1' });
    expect(ci.out).toMatch(/PADDOCK_CI=1: \d+ skipped and \d+ todo tests/);
    expect(ci.status).not.toBe(0);
    const byHand = jest(file, {});
    expect(byHand.out).toMatch(/Tests:.*(skipped|todo)/);
    expect(byHand.status).toBe(0);
  });

  test('a file with nothing skipped passes under PADDOCK_CI=1', () => {
    const ci = jest('clean', { PADDOCK_CI: '1' });
    expect(ci.out).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(ci.status).toBe(0);
  });

  test('an unmet need fails under PADDOCK_CI=1, naming it; by hand it is a skip that names it', () => {
    const ci = jest('needs', { PADDOCK_CI: '1', PADDOCK_NEEDS_UNMET: 'linux-x64,cgroup-v2-only' });
    expect(ci.status).not.toBe(0);
    expect(ci.out).toMatch(/"a test that needs linux-x64" needs linux-x64 \(PADDOCK_NEEDS_UNMET\), and PADDOCK_CI=1 forbids skipping it/);
    expect(ci.out).toMatch(/"a block that needs cgroup v2 alone" needs cgroup-v2-only/);
    expect(ci.out).toMatch(/Tests:\s+2 failed, 1 passed, 3 total/);

    const byHand = jest('needs', { PADDOCK_NEEDS_UNMET: 'linux-x64,cgroup-v2-only' });
    expect(byHand.status).toBe(0);
    expect(byHand.out).toContain('a test that needs linux-x64 [skipped: needs linux-x64 (PADDOCK_NEEDS_UNMET)]');
    expect(byHand.out).toContain('skipping "a block that needs cgroup v2 alone": needs cgroup-v2-only');
    expect(byHand.out).toMatch(/Tests:\s+2 skipped, 1 passed, 3 total/);
  });

  test('a layout need another CI stage covers is deferred to it: recorded, not run, not skipped', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ci-honesty-'));
    try {
      const log = path.join(dir, 'deferred');
      const env = { PADDOCK_CI: '1', PADDOCK_NEEDS_UNMET: 'cgroup-v2-only', PADDOCK_CI_ELSEWHERE: 'cgroup-v2-only', PADDOCK_CI_DEFERRED_LOG: log };
      const ci = jest('needs', env);
      expect(ci.out).toMatch(/Tests:\s+2 passed, 2 total/);
      expect(ci.status).toBe(0);
      expect(fs.readFileSync(log, 'utf8')).toBe('test/fixtures/ci-honesty/needs.fixture.ts\tdescribe\ta block that needs cgroup v2 alone\tcgroup-v2-only (PADDOCK_NEEDS_UNMET)\n');
      // Only layout needs travel: linux-x64 named "elsewhere" still fails here.
      const notLayout = jest('needs', { ...env, PADDOCK_NEEDS_UNMET: 'linux-x64', PADDOCK_CI_ELSEWHERE: 'linux-x64' });
      expect(notLayout.status).not.toBe(0);
      expect(notLayout.out).toMatch(/needs linux-x64 \(PADDOCK_NEEDS_UNMET\), and PADDOCK_CI=1 forbids skipping it/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('verdict', () => {
  const unmet = { PADDOCK_NEEDS_UNMET: 'cgroup-hybrid,linux-x64' };
  test('all needs met: run', () => {
    expect(verdict([], { PADDOCK_CI: '1' })).toEqual({ action: 'run', missing: [] });
  });
  test('by hand: skip, naming each missing need', () => {
    expect(verdict(['cgroup-hybrid', 'linux-x64'], unmet)).toEqual({
      action: 'skip',
      missing: ['cgroup-hybrid (PADDOCK_NEEDS_UNMET)', 'linux-x64 (PADDOCK_NEEDS_UNMET)'],
    });
  });
  test('CI: fail, unless every missing need is a layout need named elsewhere and a ledger is kept', () => {
    const ci = { ...unmet, PADDOCK_CI: '1' };
    expect(verdict(['cgroup-hybrid'], ci).action).toBe('fail');
    expect(verdict(['cgroup-hybrid'], { ...ci, PADDOCK_CI_ELSEWHERE: 'cgroup-hybrid' }).action).toBe('fail');
    expect(verdict(['cgroup-hybrid'], { ...ci, PADDOCK_CI_ELSEWHERE: 'cgroup-hybrid', PADDOCK_CI_DEFERRED_LOG: '/x' }).action).toBe('defer');
    expect(verdict(['cgroup-hybrid', 'linux-x64'], { ...ci, PADDOCK_CI_ELSEWHERE: 'cgroup-hybrid,linux-x64', PADDOCK_CI_DEFERRED_LOG: '/x' }).action).toBe('fail');
    expect(verdict(['cgroup-hybrid'], { ...ci, PADDOCK_CI: '0' }).action).toBe('skip');
  });
});

describe('leak checks', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { newMounts } = require('../../helpers/leaks') as typeof import('../../helpers/leaks');
  test('newMounts counts: a second mount on a point that was mounted once is new', () => {
    expect(newMounts(['/', '/proc', '/tmp/x'], ['/', '/proc', '/tmp/x', '/tmp/x', '/srv/b'])).toEqual(['/tmp/x', '/srv/b']);
    expect(newMounts(['/', '/proc'], ['/'])).toEqual([]);
  });
});
