/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { createEngine, type Engine, type InspectorServer } from '../../index';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { describeIf, onPath, quietLogger, testStateDir } from '../helpers/env';

/*
 * The live view in a real browser: Debian's chromium, driven by puppeteer-core (the
 * system browser; nothing is downloaded). Sandboxes are shown in their states, one
 * killed from the page turns stopped with its signal, a restart shows its backoff
 * counting down, and a screenshot is kept under test-output/.
 */

const OUT = process.env.PADDOCK_TEST_OUTPUT ?? path.resolve(__dirname, '../../test-output');

describeIf(['root', 'busybox', 'chromium'])('the live view in chromium', () => {
  let engine: Engine;
  let server: InspectorServer;
  let browser: Browser | undefined;
  let page: Page;
  let stateDir: string;
  let profile: string;
  const bundles: TestBundle[] = [];

  beforeEach(async () => {
    stateDir = testStateDir('live');
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-chromium-'));
    engine = await createEngine({ stateDir, logger: quietLogger() });
    server = await engine.serveInspector({ actions: true });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const puppeteer = require('puppeteer-core') as typeof import('puppeteer-core');
    browser = await puppeteer.launch({
      executablePath: onPath('chromium') as string,
      userDataDir: profile,
      // As root chromium refuses its own sandbox; this page is ours and served on loopback.
      args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--no-first-run'],
      timeout: 30_000,
    });
    page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => process.stderr.write(`console: ${m.text()}\n`));
    page.on('pageerror', (m) => process.stderr.write(`pageerror: ${String(m)}\n`));
    await page.setViewport({ width: 1400, height: 820 });
  });

  afterEach(async () => {
    await browser?.close().catch(() => undefined);
    browser = undefined;
    for (const s of engine.list()) await engine.destroy(s.id).catch(() => undefined);
    await engine.close();
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(profile, { recursive: true, force: true });
  });

  function bundle(args: string[]): string {
    const b = makeBundle({ args });
    bundles.push(b);
    return b.dir;
  }

  /** The state a sandbox's row shows, once it shows `state` (and `exit`, when given). */
  async function rowShows(name: string, state: string, exit?: string): Promise<void> {
    await page.waitForFunction(
      (n, s, x) => {
        const row = document.querySelector(`.row[data-machine="sandbox"][data-name="${n}"]`) as HTMLElement | null;
        return row !== null && row.dataset.state === s && (x === null || row.dataset.exit === x);
      },
      {},
      name,
      state,
      exit ?? null,
    );
  }

  test('sandboxes in their states; one killed from the page turns stopped with SIGKILL; a restart counts down its backoff', async () => {
    for (const id of ['web1', 'web2', 'web3']) {
      await engine.createSandbox(id, bundle(['sleep', '60']), { stdio: 'ignore' });
      if (id !== 'web3') await engine.startRoot(id);
    }
    const exec = await engine.execute('web1', 'web1', { args: ['sleep', '60'], stdio: 'ignore' });

    await page.goto(server.url);
    await rowShows('web1', 'running');
    await rowShows('web2', 'running');
    await rowShows('web3', 'created');
    // The container and its exec'd process sit under their sandbox.
    await page.waitForFunction(
      (pid) => document.querySelector(`.row[data-machine="process"][data-name="pid-${pid}"]`)?.closest('.node')?.parentElement?.closest('.node')?.querySelector('.row')?.getAttribute('data-machine') === 'container',
      {},
      exec.pid,
    );
    expect(await page.$eval('#mode', (e) => e.textContent)).toBe('actions on');

    // Kill web2 from its row: it turns stopped, killed by SIGKILL.
    // A DOM click: rows move while the tree fills in, and a click at coordinates could land on another.
    await page.$eval('.row[data-machine="sandbox"][data-name="web2"] button[data-action="kill"]', (b) => (b as HTMLButtonElement).click());
    await rowShows('web2', 'stopped', 'killed by SIGKILL');
    expect(await engine.wait('web2', 'web2', { timeoutMs: 5_000 })).toMatchObject({ signal: 9 });
    await page.waitForFunction(() => [...document.querySelectorAll('#timeline li[data-kind="exit"]')].some((li) => /web2 killed by SIGKILL/.test(li.textContent ?? '')));

    // A restart: exit 3, then a 3 s backoff that the page counts down.
    await engine.createSandbox('job1', bundle(['sh', '-c', 'exit 3']), {
      stdio: 'ignore',
      restart: { policy: 'on-failure', maxRestarts: 2, periodMs: 60_000, backoff: { initialMs: 3_000, maxMs: 3_000, factor: 2, jitter: 0 } },
    });
    await engine.startRoot('job1');
    const first = await page.waitForFunction(() => {
      const c = [...document.querySelectorAll('.row[data-machine="restart"] .countdown')].map((e) => e.textContent ?? '').find((t) => /^restart in \d/.test(t));
      return c ?? false;
    });
    const shown = Number(/restart in ([\d.]+) s/.exec(String(await first.jsonValue()))?.[1]);
    expect(shown).toBeGreaterThan(0);
    expect(shown).toBeLessThanOrEqual(3);
    // It counts down (a later reading is smaller), and the timeline has the schedule.
    await page.waitForFunction(
      (was) => {
        const t = [...document.querySelectorAll('.row[data-machine="restart"] .countdown')].map((e) => e.textContent ?? '').find((x) => /^restart in/.test(x));
        const m = t ? /restart in ([\d.]+) s/.exec(t) : null;
        return m !== null && Number(m[1]) < was - 0.3;
      },
      {},
      shown,
    );
    await page.waitForSelector('#timeline li[data-kind="restart.scheduled"]');
    expect(await page.$eval('#timeline li[data-kind="restart.scheduled"]', (e) => e.textContent)).toMatch(/restart #1 of job1 after exit 3, backoff 3000 ms/);

    // web1's statechart is drawn from the sandbox machine, with `running` lit.
    await page.$eval('.row[data-machine="sandbox"][data-name="web1"]', (r) => (r as HTMLElement).click());
    await page.waitForSelector('#chart svg g.st.current[data-state="running"]');
    const states = await page.$$eval('#chart svg g.st', (gs) => gs.map((g) => g.getAttribute('data-state')));
    expect(states).toEqual(expect.arrayContaining(['creating', 'created', 'running', 'paused', 'stopped', 'destroyed']));

    fs.mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'inspect-live-view.png') });
    expect(fs.statSync(path.join(OUT, 'inspect-live-view.png')).size).toBeGreaterThan(10_000);
  });

  test('a read-only view shows no actions, and a wrong token gets no page', async () => {
    const ro = await engine.serveInspector();
    try {
      await engine.createSandbox('ro1', bundle(['sleep', '60']), { stdio: 'ignore' });
      await engine.startRoot('ro1');
      await page.goto(ro.url);
      await rowShows('ro1', 'running');
      expect(await page.$eval('#mode', (e) => e.textContent)).toBe('read-only');
      expect(await page.$$('button[data-action]')).toHaveLength(0);
      const denied = await page.goto(ro.url.replace(/token=.*/, 'token=wrong-token-0123456789'));
      expect(denied?.status()).toBe(403);
      expect(await denied?.text()).toMatch(/wrong or missing token/);
    } finally {
      await ro.close();
    }
  });
});
