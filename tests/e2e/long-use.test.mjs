// The browser under long use (issue 18, parts 5 and 6), in Debian's Chromium through
// playwright-core, on the page web/ (after scripts/build-wasm.sh):
//   - 200 `segment` calls on one Segmenter (the CPU build, 1 thread; then 60 on 2 threads), mixed
//     sizes and every 10th input invalid: the wasm memory (the CPU module's `memoryBytes`, the pool
//     workers' `poolMemoryBytes`) and the page's JS heap (after a forced GC, CDP
//     `Runtime.getHeapUsage`) stop growing after the first calls; the figures are printed;
//   - the wasm memory per megapixel of a 4000x4000 synthetic fundus-like image;
//   - a page whose worker dies replaces it, says so, and segments the next image;
//   - a page whose worker hangs (an endless loop: no error event) replaces it once it has sent
//     nothing for the stall limit (`?stall=3` here), says so, and segments the next image;
//   - image A dropped, then B before A's run ends: only B's mask is ever shown;
//   - after a run, nothing of the image is in localStorage, sessionStorage, IndexedDB, the Cache
//     API (only the weights) or the console.
// Run by scripts/test-browser.sh: `node --test --test-concurrency=1 long-use.test.mjs`.
// R2UNET_LONG_CALLS (default 200) sets the number of calls of the first test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from './server.mjs';
import { ROOT, dropFile, openPage, settle } from './browser.mjs';

const CALLS = Number(process.env.R2UNET_LONG_CALLS ?? 200);
const RUN_MS = 180_000;
// The skin model resizes every input to its own size, so a call costs the same at any size (the
// retina model resamples a fundus to DRIVE's scale: seconds a call on one thread).
const TASK = process.env.R2UNET_LONG_TASK ?? 'skin';

let server;
before(async () => { server = await serve(join(ROOT, 'web')); });
after(async () => { await server?.close(); });

/** Chromium without WebGPU (the CPU build), with `performance.memory` precise. */
function launchCpu() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', '--disable-dev-shm-usage', '--enable-precise-memory-info'],
    timeout: 60_000,
  });
}

/**
 * Installs `window.__long` in the page: a Segmenter and helpers that make the inputs in the page
 * (a fundus-like picture: a bright disc on black with dark branching lines) and run one call,
 * returning only small figures (nothing of the result is kept).
 */
async function installHarness(page, threads) {
  await page.evaluate(async ({ threads, task }) => {
    const pkg = await import('./pkg/index.js');
    const seg = await pkg.Segmenter.create({ task, backend: 'cpu', threads });
    const cpu = await import('./pkg/cpu/r2unet_wasm.js');   // the same module instance the package loaded
    /** A fundus-like picture, w x h, as ImageData (seeded, so a size always gives the same picture). */
    const picture = (w, h, seed) => {
      let s = seed >>> 0 || 1;
      const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
      const c = new OffscreenCanvas(w, h);
      const g = c.getContext('2d');
      g.fillStyle = '#000';
      g.fillRect(0, 0, w, h);
      g.fillStyle = '#c0502a';
      g.beginPath();
      g.arc(w / 2, h / 2, Math.min(w, h) * 0.46, 0, 2 * Math.PI);
      g.fill();
      g.strokeStyle = '#5a1a0c';
      for (let k = 0; k < 12; k++) {
        g.lineWidth = 1 + rnd() * Math.max(1, Math.min(w, h) / 120);
        g.beginPath();
        g.moveTo(w / 2, h / 2);
        let x = w / 2, y = h / 2, a = rnd() * 2 * Math.PI;
        for (let j = 0; j < 6; j++) {
          a += (rnd() - 0.5) * 0.8;
          x += Math.cos(a) * Math.min(w, h) / 14;
          y += Math.sin(a) * Math.min(w, h) / 14;
          g.lineTo(x, y);
        }
        g.stroke();
      }
      return { canvas: c, image: g.getImageData(0, 0, w, h) };
    };
    const png = async (canvas) => new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
    window.__long = {
      seg, pkg, picture, png,
      wasm: () => cpu.memoryBytes(),
      pool: () => seg.poolMemoryBytes,
      /** Call i: every 10th (from the 5th) invalid; sizes 48..256 px, sides unequal. */
      async step(i) {
        let input, expect = 'ok';
        if (i % 10 === 5) {
          if ((i / 10) % 2 < 1) {
            input = new Uint8Array(3000 + i).map((_, k) => (k * 7919 + i) & 255);   // junk bytes
          } else {
            const whole = await png(picture(96, 80, i).canvas);                      // a PNG cut short
            input = whole.slice(0, Math.floor(whole.length / 2));
          }
          expect = 'InputError';
        } else {
          const w = 48 + ((i * 37) % 209), h = 48 + ((i * 53) % 209);
          const p = picture(w, h, i + 1);
          input = i % 3 === 0 ? await png(p.canvas) : p.image;                       // PNG bytes or pixels
        }
        const t0 = performance.now();
        let got, size = '';
        try {
          const r = await seg.segment(input);
          got = 'ok';
          size = `${r.width}x${r.height}`;
        } catch (e) {
          got = e?.name ?? String(e);
        }
        return { got, expect, size, ms: performance.now() - t0 };
      },
    };
  }, { threads, task: TASK });
}

/** The page's JS heap after a full GC (CDP), in bytes. */
async function heapAfterGc(cdp) {
  await cdp.send('HeapProfiler.collectGarbage');
  return (await cdp.send('Runtime.getHeapUsage')).usedSize;
}

const MB = (b) => (b / 1e6).toFixed(1);
const maxOf = (xs) => Math.max(...xs);

/**
 * `calls` calls on one Segmenter with `threads`; wasm memory and JS heap recorded after each.
 * Returns the per-call figures.
 */
async function longRun(browser, threads, calls) {
  const { page, offsite, problems, context } = await openPage(browser, server.url);
  const cdp = await context.newCDPSession(page);
  await installHarness(page, threads);
  const rows = [];
  const t0 = Date.now();
  for (let i = 0; i < calls; i++) {
    const r = await page.evaluate((i) => window.__long.step(i), i);
    assert.equal(r.got, r.expect, `call ${i}: ${JSON.stringify(r)}`);
    const heap = await heapAfterGc(cdp);
    const m = await page.evaluate(() => ({ wasm: window.__long.wasm(), pool: window.__long.pool() }));
    rows.push({ i, ...r, heap, wasm: m.wasm, pool: m.pool.reduce((a, b) => a + b, 0) });
  }
  const seconds = (Date.now() - t0) / 1000;
  return { page, offsite, problems, rows, seconds };
}

/**
 * The bound: after the warm-up (calls 10..49), the last quarter of the calls holds no more than
 * the warm-up's maximum plus `slack` bytes.
 */
function checkBound(rows, key, slack, label) {
  const warm = rows.filter((r) => r.i >= 10 && r.i < 50).map((r) => r[key]);
  const late = rows.filter((r) => r.i >= Math.floor(rows.length * 0.75)).map((r) => r[key]);
  const first = rows[0][key];
  console.log(`# ${label}: after call 1 ${MB(first)} MB, max over calls 10-49 ${MB(maxOf(warm))} MB, ` +
    `max over calls ${Math.floor(rows.length * 0.75)}-${rows.length - 1} ${MB(maxOf(late))} MB, last ${MB(rows.at(-1)[key])} MB ` +
    `(bound: warm-up max + ${MB(slack)} MB)`);
  assert.ok(maxOf(late) <= maxOf(warm) + slack, `${label} grew: ${maxOf(late)} > ${maxOf(warm)} + ${slack}`);
}

test(`long use: ${CALLS} segment calls on one Segmenter (CPU, 1 thread), mixed sizes, every 10th invalid: wasm memory and JS heap stay bounded; two calls at once and a call after free() are defined`, { timeout: 600_000 }, async () => {
  const browser = await launchCpu();
  try {
    const { page, offsite, problems, rows, seconds } = await longRun(browser, 1, CALLS);
    const ok = rows.filter((r) => r.got === 'ok');
    console.log(`# long use, 1 thread: ${rows.length} calls (${ok.length} segmented, ${rows.length - ok.length} refused ` +
      `with InputError) in ${seconds.toFixed(1)} s; model calls ${Math.min(...ok.map((r) => r.ms)).toFixed(0)}..` +
      `${maxOf(ok.map((r) => r.ms)).toFixed(0)} ms`);
    checkBound(rows, 'wasm', 1e6, 'wasm memory (CPU module), 1 thread');
    checkBound(rows, 'heap', 2e6, 'JS heap after GC, 1 thread');
    // Two calls at once on one Segmenter: both answered, in order, each with its own image's size;
    // then free(): the queued call still settles, later calls reject with a ConfigError.
    const r = await page.evaluate(async () => {
      const { seg, picture } = window.__long;
      const a = seg.segment(picture(64, 96, 1).image);
      const b = seg.segment(picture(112, 72, 2).image);
      const [ra, rb] = await Promise.all([a, b]);
      const c = seg.segment(picture(80, 80, 3).image);
      seg.free();
      const rc = await c.then((x) => `${x.width}x${x.height}`, (e) => e.name);
      const after = await seg.segment(picture(80, 80, 3).image).then(() => 'ok', (e) => `${e.name}: ${e.message}`);
      return { a: `${ra.width}x${ra.height}`, b: `${rb.width}x${rb.height}`, c: rc, after };
    });
    console.log(`# two calls at once: ${r.a}, ${r.b}; queued before free(): ${r.c}; after free(): ${r.after}`);
    assert.deepEqual([r.a, r.b, r.c], ['64x96', '112x72', '80x80']);
    assert.match(r.after, /^ConfigError: .*freed/);
    assert.deepEqual(offsite, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('long use on 2 threads: 60 calls, the pool workers\' wasm memory and the JS heap stay bounded', { timeout: 300_000 }, async () => {
  const browser = await launchCpu();
  try {
    const { offsite, problems, rows, seconds } = await longRun(browser, 2, 60);
    console.log(`# long use, 2 threads: ${rows.length} calls in ${seconds.toFixed(1)} s`);
    checkBound(rows, 'wasm', 1e6, 'wasm memory (CPU module), 2 threads');
    checkBound(rows, 'pool', 1e6, 'wasm memory (pool worker), 2 threads');
    checkBound(rows, 'heap', 2e6, 'JS heap after GC, 2 threads');
    assert.deepEqual(offsite, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

/** A fundus-like PNG of w x h made in the page (the harness's picture), as bytes. */
async function makePng(page, w, h, seed) {
  const b64 = await page.evaluate(async ([w, h, seed]) => {
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext('2d');
    g.fillStyle = '#000'; g.fillRect(0, 0, w, h);
    g.fillStyle = '#c0502a'; g.beginPath(); g.arc(w / 2, h / 2, Math.min(w, h) * 0.46, 0, 2 * Math.PI); g.fill();
    g.strokeStyle = '#5a1a0c'; g.lineWidth = 3;
    for (let k = 0; k < 8; k++) {
      g.beginPath(); g.moveTo(w / 2, h / 2);
      const a = seed + k * 0.8;
      g.lineTo(w / 2 + Math.cos(a) * w * 0.4, h / 2 + Math.sin(a) * h * 0.4); g.stroke();
    }
    const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (const v of bytes) s += String.fromCharCode(v);
    return btoa(s);
  }, [w, h, seed]);
  return Buffer.from(b64, 'base64');
}

test('a worker that dies is replaced: the page says what happened and segments the next image', { timeout: RUN_MS * 2 }, async () => {
  const browser = await launchCpu();
  try {
    const { page, offsite } = await openPage(browser, server.url);
    const workers = [];
    page.on('worker', (w) => { if (/\/worker\.js$/.test(w.url())) workers.push(w); });
    const png = await makePng(page, 160, 128, 1);
    await dropFile(page, 'a.png', png, 'image/png');
    await page.waitForFunction(() => ['running', 'loading-model'].includes(document.body.dataset.state));
    await page.waitForFunction(() => true);
    while (workers.length === 0) await new Promise((ok) => setTimeout(ok, 50));
    // Kill it: an uncaught error in the worker (what an out-of-memory trap looks like to the page).
    await workers[0].evaluate(() => { setTimeout(() => { throw new Error('test: the worker dies'); }, 0); }).catch(() => {});
    let result = await settle(page, RUN_MS);
    console.log(`# dying worker: state ${result.state}: "${result.error}"`);
    assert.equal(result.state, 'error');
    assert.match(result.error, /The segmentation worker stopped \(out of memory\?\).*it was restarted/);
    assert.equal(await page.evaluate(() => document.body.dataset.workerRestarts), '1');
    await dropFile(page, 'b.png', await makePng(page, 128, 160, 2), 'image/png');
    result = await settle(page, RUN_MS);
    assert.equal(result.state, 'done', `after the restart: ${result.error}`);
    assert.equal(await page.evaluate(() => document.body.dataset.shownImage), 'b.png');
    assert.deepEqual(offsite, []);
  } finally {
    await browser.close();
  }
});

test('a worker that hangs is replaced after the stall limit: the page says what happened and segments the next image', { timeout: RUN_MS * 2 }, async () => {
  // 3 s: the skin model on these small pictures sends a message well within a second, even cold
  // (the page's default, 180 s, is for the longest step of a healthy run; web/main.js).
  const STALL_S = 3;
  const browser = await launchCpu();
  try {
    const { page, offsite, problems } = await openPage(browser, `${server.url}?stall=${STALL_S}`);
    const workers = [];
    page.on('worker', (w) => { if (/\/worker\.js$/.test(w.url())) workers.push(w); });
    await page.selectOption('[data-testid=task-select]', 'skin');
    await dropFile(page, 'a.png', await makePng(page, 160, 128, 1), 'image/png');
    let result = await settle(page, RUN_MS);
    assert.equal(result.state, 'done', `a healthy run under the short limit: ${result.error}`);
    assert.equal(await page.evaluate(() => document.body.dataset.workerRestarts), undefined);
    assert.equal(workers.length, 1);
    // Hang it: the evaluation returns at once, then the worker's thread loops forever, so it
    // answers nothing, fires no error, and never takes the next request.
    const hung = workers[0];
    const closed = new Promise((ok) => hung.once('close', ok));
    await hung.evaluate(() => { setTimeout(() => { for (;;) { /* hang */ } }, 0); });
    const t0 = Date.now();
    await dropFile(page, 'b.png', await makePng(page, 128, 160, 2), 'image/png');
    result = await settle(page, RUN_MS);
    const took = (Date.now() - t0) / 1000;
    console.log(`# hung worker (stall limit ${STALL_S} s): state ${result.state} after ${took.toFixed(1)} s: "${result.error}"`);
    assert.equal(result.state, 'error');
    assert.match(result.error, new RegExp(`The segmentation worker stopped answering for ${STALL_S} s; it was restarted\\. Drop the image again`));
    assert.ok(took >= STALL_S - 0.5 && took <= STALL_S + 10, `replaced after ${took} s`);
    assert.equal(await page.evaluate(() => document.body.dataset.workerRestarts), '1');
    assert.equal(await page.evaluate(() => document.body.dataset.shownImage), undefined);
    await Promise.race([closed, new Promise((_, no) => setTimeout(() => no(new Error('the hung worker was not terminated')), 10_000))]);
    // The next image runs on the new worker, and its mask is the package's own for it.
    const c = await makePng(page, 144, 120, 3);
    await dropFile(page, 'c.png', c, 'image/png');
    result = await settle(page, RUN_MS);
    assert.equal(result.state, 'done', `after the restart: ${result.error}`);
    assert.equal(await page.evaluate(() => document.body.dataset.shownImage), 'c.png');
    assert.equal(workers.length, 2);
    const check = await page.evaluate(async (b64) => {
      const pkg = await import('./pkg/index.js');
      const seg = await pkg.Segmenter.create({ task: 'skin', backend: 'cpu' });   // the page's threads
      const r = await seg.segment(Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)));
      seg.free();
      const canvas = document.querySelector('[data-testid=canvas-mask]');
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let tp = 0, n = 0;
      for (let i = 0; i < r.mask.length; i++) { const p = d[i * 4] > 127, q = r.mask[i] > 0; tp += p && q; n += p + q; }
      return { size: `${canvas.width}x${canvas.height}`, own: `${r.width}x${r.height}`, dice: n ? (2 * tp) / n : 1 };
    }, c.toString('base64'));
    console.log(`# after the hung worker: c.png ${check.size}, Dice against its own mask ${check.dice.toFixed(4)}; restarts 1`);
    assert.equal(check.size, check.own);
    assert.ok(check.dice >= 0.99, `Dice ${check.dice}`);
    assert.equal(await page.evaluate(() => document.body.dataset.workerRestarts), '1');
    assert.deepEqual(offsite, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('image A, then image B before A\'s run ends: only B\'s mask is ever shown, and it is B\'s own', { timeout: RUN_MS * 2 }, async () => {
  const browser = await launchCpu();
  try {
    const { page, offsite, problems } = await openPage(browser, server.url);
    const a = await makePng(page, 200, 150, 1);
    const b = await makePng(page, 120, 176, 5);
    await page.evaluate(() => {
      window.__shown = [];
      new MutationObserver(() => {
        const s = document.body.dataset.shownImage;
        if (s && window.__shown.at(-1) !== s) window.__shown.push(s);
      }).observe(document.body, { attributes: true, attributeFilter: ['data-shown-image'] });
    });
    await dropFile(page, 'a.png', a, 'image/png');
    await page.waitForFunction(() => document.body.dataset.state === 'running', null, { polling: 20 });
    await dropFile(page, 'b.png', b, 'image/png');
    const result = await settle(page, RUN_MS);
    assert.equal(result.state, 'done', result.error);
    // B's own mask, from the package in the page, against the mask canvas.
    const check = await page.evaluate(async (b64) => {
      const pkg = await import('./pkg/index.js');
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const seg = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads: 1 });
      const r = await seg.segment(bytes);
      seg.free();
      const c = document.querySelector('[data-testid=canvas-mask]');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let tp = 0, n = 0;
      for (let i = 0; i < r.mask.length; i++) { const p = d[i * 4] > 127, q = r.mask[i] > 0; tp += p && q; n += p + q; }
      return { size: `${c.width}x${c.height}`, own: `${r.width}x${r.height}`, dice: n ? (2 * tp) / n : 1, pixels: n, shown: window.__shown };
    }, b.toString('base64'));
    console.log(`# A then B: shown ${JSON.stringify(check.shown)}, mask ${check.size}, Dice against B's own mask ${check.dice.toFixed(4)}`);
    assert.deepEqual(check.shown, ['b.png']);
    assert.equal(check.size, check.own);
    assert.ok(check.dice >= 0.99, `Dice ${check.dice}`);
    assert.deepEqual(offsite, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('after a run nothing of the image is stored or logged: no Web Storage, no IndexedDB, only the weights in the Cache API, no pixels in the console', { timeout: RUN_MS * 2 }, async () => {
  const browser = await launchCpu();
  try {
    const { page, context, offsite, problems } = await openPage(browser, server.url);
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('worker', (w) => w.on('console', (m) => logs.push(m.text())));
    await dropFile(page, 'c.png', await makePng(page, 144, 144, 3), 'image/png');
    const result = await settle(page, RUN_MS);
    assert.equal(result.state, 'done', result.error);
    const stored = await page.evaluate(async () => {
      const cached = [];
      for (const name of await caches.keys()) {
        for (const req of await (await caches.open(name)).keys()) cached.push(`${name}: ${new URL(req.url).pathname}`);
      }
      return { local: localStorage.length, session: sessionStorage.length, idb: (await indexedDB.databases()).map((d) => d.name), cached };
    });
    console.log(`# storage after a run: localStorage ${stored.local}, sessionStorage ${stored.session}, IndexedDB ${JSON.stringify(stored.idb)}, ` +
      `Cache API ${JSON.stringify(stored.cached)}; console: ${logs.length} lines`);
    assert.equal(stored.local, 0);
    assert.equal(stored.session, 0);
    assert.deepEqual(stored.idb, []);
    assert.ok(stored.cached.length > 0 && stored.cached.every((u) => /\.bpk$/.test(u)), JSON.stringify(stored.cached));
    const pixelish = logs.filter((t) => /data:|(\d+\s*,\s*){32}/.test(t) || t.length > 2000);
    assert.deepEqual(pixelish, []);
    assert.deepEqual(offsite, []);
    assert.deepEqual(problems, []);
    void context;
  } finally {
    await browser.close();
  }
});

test('a 4000x4000 fundus-like image on the CPU build (1 thread): wasm memory per megapixel', { timeout: 400_000 }, async () => {
  const browser = await launchCpu();
  try {
    const { page, problems } = await openPage(browser, server.url);
    const r = await page.evaluate(async () => {
      const pkg = await import('./pkg/index.js');
      const cpu = await import('./pkg/cpu/r2unet_wasm.js');
      const seg = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads: 1 });
      const before = cpu.memoryBytes();
      const side = 4000;
      const c = new OffscreenCanvas(side, side);
      const g = c.getContext('2d');
      g.fillStyle = '#000'; g.fillRect(0, 0, side, side);
      g.fillStyle = '#c0502a'; g.beginPath(); g.arc(side / 2, side / 2, side * 0.46, 0, 2 * Math.PI); g.fill();
      g.strokeStyle = '#5a1a0c'; g.lineWidth = 20;
      for (let k = 0; k < 10; k++) {
        g.beginPath(); g.moveTo(side / 2, side / 2);
        g.lineTo(side / 2 + Math.cos(k * 0.63) * side * 0.4, side / 2 + Math.sin(k * 0.63) * side * 0.4); g.stroke();
      }
      const image = g.getImageData(0, 0, side, side);
      const t0 = performance.now();
      const res = await seg.segment(image);
      const ms = performance.now() - t0;
      const after = cpu.memoryBytes();
      seg.free();
      return { before, after, ms, size: `${res.width}x${res.height}`, mp: (side * side) / 1e6 };
    });
    const perMp = r.after / r.mp;
    console.log(`# 4000x4000 (16 MP), retina, CPU build, 1 thread: wasm memory ${MB(r.before)} MB before, ${MB(r.after)} MB after ` +
      `(wasm memory only grows: the peak), ${MB(perMp)} MB per megapixel of input (${MB((r.after - r.before) / r.mp)} MB/MP above the ` +
      `model's), ${(r.ms / 1000).toFixed(1)} s, mask ${r.size}`);
    assert.equal(r.size, '4000x4000');
    assert.ok(perMp <= 50e6, `${MB(perMp)} MB per megapixel`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
