/**
 * The inspector's figures (issue 15, decision 0042), alone with `bash bench/run.sh inspect [N]`:
 *  a. create + start + wait of /bin/true with an inspector attached (a WebSocket
 *     inspector over `inspect: { url }` that reads everything, and a live view with a
 *     page open) ÷ without, interleaved in the same run, medians;
 *  b. from a container's exit (init's reap time) to the page showing its sandbox
 *     stopped, in chromium, median and p90;
 *  c. N (1000) running sandboxes on one page: the time to draw the first full picture,
 *     and the page's render times and frame intervals while 50 of them are killed at once.
 */
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { createEngine, type Engine } from '../index';

// The page's globals as page.evaluate's functions see them: bench/ is compiled without
// the DOM library, and a lib reference here would retype timers for the whole build.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const MutationObserver: any;
declare const requestAnimationFrame: any;
type HTMLElement = any;

type WriteBundle = (dir: string, args: string[], userns: boolean) => string;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] as number;
};

async function cycle(engine: Engine, id: string, bundle: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await engine.createSandbox(id, bundle, { stdio: 'ignore' });
  await engine.startRoot(id);
  await engine.wait(id, id);
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  await engine.destroy(id);
  return dt;
}

function chromiumPath(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (fs.existsSync(path.join(dir, 'chromium'))) return path.join(dir, 'chromium');
  throw new Error('chromium is not installed (apt-get install --no-install-recommends chromium)');
}

export async function inspectSection(work: string, writeBundle: WriteBundle, runs: number, count: number, log: (s: string) => void): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const trueBundle = writeBundle(path.join(work, 'bundle-insp-true'), ['/bin/true'], false);
  const sleepBundle = writeBundle(path.join(work, 'bundle-insp-sleep'), ['sleep', '600'], false);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { WebSocketServer } = require('ws') as typeof import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  let received = 0;
  wss.on('connection', (ws) => ws.on('message', () => received++));
  const quiet = pino({ level: 'warn' });
  const plain = await createEngine({ stateDir: path.join(work, 'insp-plain'), logger: quiet });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  // Only an XState inspector over { url }: what the engine pays for being inspected.
  const inspected = await createEngine({ stateDir: path.join(work, 'insp-url'), logger: quiet, inspect: { url } });
  // The same and a live view with a page open in chromium (on the same cores).
  const watched = await createEngine({ stateDir: path.join(work, 'insp-watched'), logger: quiet, inspect: { url } });
  const server = await watched.serveInspector();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const puppeteer = require('puppeteer-core') as typeof import('puppeteer-core');
  const profile = fs.mkdtempSync(path.join(work, 'chromium-'));
  const browser = await puppeteer.launch({ executablePath: chromiumPath(), userDataDir: profile, args: ['--no-sandbox', '--headless=new', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    await page.goto(server.url);
    // ---- a. overhead ---------------------------------------------------------------
    const contenders: Array<[string, Engine]> = [
      ['without', plain],
      ['inspector', inspected],
      ['inspector + live page', watched],
    ];
    const t: Record<string, number[]> = Object.fromEntries(contenders.map(([k]) => [k, []]));
    let n = 0;
    for (let i = 0; i < 3 + runs; i++) {
      // Each round runs each once, the order rotating.
      for (let k = 0; k < contenders.length; k++) {
        const [name, engine] = contenders[(i + k) % contenders.length] as [string, Engine];
        const d = await cycle(engine, `ov${n++}`, trueBundle);
        if (i >= 3) t[name]!.push(d);
      }
    }
    const withoutMs = quantile(t.without!, 0.5);
    const inspMs = quantile(t.inspector!, 0.5);
    const pageMs = quantile(t['inspector + live page']!, 0.5);
    out.overhead = { runs, withoutMedianMs: withoutMs, inspectorMedianMs: inspMs, ratio: inspMs / withoutMs, withLivePageMedianMs: pageMs, ratioWithLivePage: pageMs / withoutMs, inspectionMessagesReceived: received };
    log(`a. create+start+wait of /bin/true (medians of ${runs}, interleaved): without ${withoutMs.toFixed(2)} ms; with an inspector over { url } ${inspMs.toFixed(2)} ms, ratio ${(inspMs / withoutMs).toFixed(3)}; and a live page open in chromium ${pageMs.toFixed(2)} ms, ratio ${(pageMs / withoutMs).toFixed(3)}`);

    // ---- b. exit -> page shows stopped ---------------------------------------------
    await page.evaluate(() => {
      const w = window as unknown as { __stoppedAt: Record<string, number> };
      w.__stoppedAt = {};
      new MutationObserver((records: Array<{ target: HTMLElement }>) => {
        for (const r of records) {
          const el = r.target as HTMLElement;
          if (el.dataset?.machine === 'sandbox' && el.dataset.state === 'stopped' && el.dataset.name && w.__stoppedAt[el.dataset.name] === undefined) w.__stoppedAt[el.dataset.name] = Date.now();
        }
      }).observe(document.body, { attributes: true, subtree: true, attributeFilter: ['data-state'] });
    });
    const lat: number[] = [];
    for (let i = 0; i < runs; i++) {
      const id = `lat${i}`;
      await watched.createSandbox(id, sleepBundle, { stdio: 'ignore' });
      await watched.startRoot(id);
      await page.waitForFunction((x) => document.querySelector(`.row[data-machine="sandbox"][data-name="${x}"]`)?.getAttribute('data-state') === 'running', { timeout: 10_000 }, id);
      await watched.signal(id, id, 'SIGKILL');
      const exit = await watched.wait(id, id);
      await page.waitForFunction((x) => (window as unknown as { __stoppedAt: Record<string, number> }).__stoppedAt[x] !== undefined, { timeout: 10_000 }, id);
      const seen = await page.evaluate((x) => (window as unknown as { __stoppedAt: Record<string, number> }).__stoppedAt[x] as number, id);
      lat.push(seen - Date.parse(exit.at as string));
      await watched.destroy(id);
    }
    out.exitToPage = { runs, medianMs: quantile(lat, 0.5), p90Ms: quantile(lat, 0.9), maxMs: Math.max(...lat) };
    log(`b. container exit (init's reap time) -> page shows stopped: median ${quantile(lat, 0.5)} ms, p90 ${quantile(lat, 0.9)} ms, max ${Math.max(...lat)} ms (${runs} kills; ms clock of the exit record)`);

    // ---- c. N sandboxes on one page -------------------------------------------------
    const ids: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const id = `many${i}`;
      await watched.createSandbox(id, sleepBundle, { stdio: 'ignore' });
      await watched.startRoot(id);
      ids.push(id);
    }
    log(`c. ${count} sandboxes started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const fresh = await browser.newPage();
    await fresh.setViewport({ width: 1400, height: 900 });
    const l0 = Date.now();
    await fresh.goto(server.url);
    await fresh.waitForFunction((c) => document.querySelectorAll('.row[data-machine="sandbox"][data-state="running"]').length >= c, { timeout: 120_000, polling: 100 }, count);
    const firstPictureMs = Date.now() - l0;
    // Frame intervals while 50 are killed at once.
    await fresh.evaluate(() => {
      const w = window as unknown as { __frames: number[]; __paddock: { renders: number[] } };
      w.__frames = [];
      w.__paddock.renders.length = 0;
      let last = performance.now();
      const loop = (now: number) => {
        w.__frames.push(now - last);
        last = now;
        if (w.__frames.length < 600) requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
    });
    const victims = ids.slice(0, 50);
    await Promise.all(victims.map((id) => watched.signal(id, id, 'SIGKILL')));
    await fresh.waitForFunction((c) => document.querySelectorAll('.row[data-machine="sandbox"][data-state="stopped"]').length >= c, { timeout: 60_000, polling: 100 }, victims.length);
    const { frames, renders } = await fresh.evaluate(() => {
      const w = window as unknown as { __frames: number[]; __paddock: { renders: number[] } };
      return { frames: w.__frames.slice(1), renders: [...w.__paddock.renders] };
    });
    out.many = {
      sandboxes: count,
      firstPictureMs,
      renderMs: { median: quantile(renders, 0.5), p90: quantile(renders, 0.9), max: Math.max(...renders), frames: renders.length },
      frameIntervalMs: { median: quantile(frames, 0.5), p90: quantile(frames, 0.9), max: Math.max(...frames) },
    };
    log(`c. ${count} sandboxes on one page: first full picture ${firstPictureMs} ms; while 50 are killed at once, render ${quantile(renders, 0.5).toFixed(1)} ms median / ${Math.max(...renders).toFixed(1)} ms max per update, frame interval ${quantile(frames, 0.5).toFixed(1)} ms median / ${quantile(frames, 0.9).toFixed(1)} p90 / ${Math.max(...frames).toFixed(1)} max`);
    await fresh.close();
    for (const id of ids) await watched.destroy(id).catch(() => undefined);
  } finally {
    await browser.close().catch(() => undefined);
    for (const s of watched.list()) await watched.destroy(s.id).catch(() => undefined);
    await watched.close();
    await inspected.close();
    await plain.close();
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return out;
}
