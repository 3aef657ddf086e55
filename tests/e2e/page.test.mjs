// End-to-end tests of the page (web/, after scripts/build-wasm.sh) in Debian's Chromium through
// playwright-core: a real DRIVE test image dropped on the page, its mask checked against the
// label, no request to any other origin; the same with WebGPU unavailable (CPU fallback).
// Run by scripts/test-browser.sh: `node --test --test-concurrency=1 page.test.mjs`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { serve } from './server.mjs';
import { readFile } from 'node:fs/promises';
import {
  DRIVE_IMAGE, HAVE_DRIVE, HAVE_LUNG, LUNG_LABEL, LUNG_SAMPLE, ROOT, diceAgainst, diceAgainstDecoded, dropFile, launch,
  openPage, readDrive, settle,
} from './browser.mjs';

// The whole DRIVE image runs on the CPU build in a few seconds; on SwiftShader's emulated WebGPU
// it takes minutes (TOOLCHAIN.md), so the WebGPU run of the page gets a longer bound.
const CPU_RUN_MS = 180_000;
const WEBGPU_RUN_MS = 540_000;

let server;
before(async () => { server = await serve(join(ROOT, 'web')); });
after(async () => { await server?.close(); });

if (!HAVE_DRIVE) {
  test('DRIVE data', { skip: `SKIPPED: ${DRIVE_IMAGE} not found (set R2UNET_DATA)` }, () => {});
}
if (!HAVE_LUNG) {
  test('LUNG data', { skip: `SKIPPED: web/samples/${LUNG_SAMPLE} or ${LUNG_LABEL} not found (set R2UNET_DATA, run scripts/build-wasm.sh)` }, () => {});
}

test('the lung sample: a 16-bit CT slice, previewed through the lung window and segmented with the shipped model', { skip: !HAVE_LUNG, timeout: CPU_RUN_MS + 60_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, offsite, problems } = await openPage(browser, server.url);
    await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout: 30_000 });
    assert.ok(await page.evaluate(async () => (await import('./pkg/index.js')).shippedTasks().includes('lung')),
      'the package ships no lung model');
    await page.click(`[data-testid=sample-lung_ID_0151]`);
    const result = await settle(page, CPU_RUN_MS);
    assert.equal(result.state, 'done', `page failed: ${result.error}; ${problems.join(' | ')}`);
    assert.equal(await page.inputValue('[data-testid=task-select]'), 'lung');
    const { dice, pred, gt } = await diceAgainstDecoded(page, await readFile(LUNG_LABEL));
    console.log(`# page, CPU, lung slice ID_0151: ${result.status} Dice ${dice.toFixed(4)} (${pred} vs ${gt} pixels)`);
    assert.ok(dice >= 0.95, `Dice ${dice}`);
    // The preview is windowed (lung fields dark, body grey, no all-black or all-white picture).
    const spread = await page.evaluate(() => {
      const c = document.querySelector('[data-testid=canvas-input]');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const levels = new Set();
      for (let i = 0; i < d.length; i += 4) levels.add(d[i]);
      return { w: c.width, h: c.height, levels: levels.size };
    });
    assert.deepEqual([spread.w, spread.h], [256, 256]);
    assert.ok(spread.levels > 100, `the preview has ${spread.levels} grey levels`);
    // Both lungs measured beside the mask, each of them in pixels.
    const lungs = await measuredRows(page);
    console.log(`# page, lung measurements: right ${lungs.patientRightAreaPx}, left ${lungs.patientLeftAreaPx}`);
    assert.match(lungs.patientRightAreaPx, /^[\d,]+ px$/);
    assert.match(lungs.patientLeftAreaPx, /^[\d,]+ px$/);
    assert.deepEqual(offsite, [], 'requests left the origin');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

/** Records every text the page's download line shows from now on (`window.__downloads`). */
async function recordDownloads(page) {
  await page.evaluate(() => {
    const row = document.querySelector('[data-testid=download-status]');
    const seen = [];
    window.__downloads = seen;
    new MutationObserver(() => { if (!row.hidden) seen.push(row.textContent.trim()); })
      .observe(row, { attributes: true, childList: true, subtree: true, characterData: true });
  });
}

/**
 * After a first load recorded by `recordDownloads`: the page said what loaded, in MB, while it
 * loaded (the CPU build, then the weights, from the package's `onProgress`), and hid the line
 * when the model was ready.
 */
async function checkDownloads(page, what) {
  const downloads = await page.evaluate(() => window.__downloads);
  const last = (re) => downloads.filter((t) => re.test(t)).at(-1);
  console.log(`# ${what}, first load: ${downloads.length} download texts, the last ones: ` +
    `"${last(/WebAssembly/)}", "${last(/weights/)}"`);
  assert.match(last(/WebAssembly/) ?? '', /^Downloading the WebAssembly module: \d+\.\d( of \d+\.\d)? MB$/);
  assert.match(last(/weights/) ?? '', /^Downloading the retina model's weights: 1\.1 of 1\.1 MB$/);
  assert.equal(await page.isHidden('[data-testid=download-status]'), true, 'the download line stays after loading');
}

/**
 * Cancel during a four-flip run of the image shown (whose mask has `pred` pixels), pressed as
 * soon as the page says it runs (the worker sees it after the preprocessing, before the first of
 * the four passes): the page says so, the button goes, and the next run (the flips unticked)
 * works and gives the same mask as before.
 */
async function cancelFourFlipRun(page, label, pred, what) {
  const pressed = page.evaluate(() => new Promise((resolve) => {
    const watch = new MutationObserver(() => {
      if (document.body.dataset.state !== 'running') return;
      watch.disconnect();
      const button = document.querySelector('[data-testid=cancel]');
      const visible = !button.hidden && button.getBoundingClientRect().width > 0;
      button.click();
      resolve({ visible, at: performance.now() });
    });
    watch.observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
  }));
  await page.check('[data-testid=flips]');
  const { visible, at } = await pressed;
  assert.ok(visible, 'no Cancel button while running');
  await page.waitForFunction(() => ['cancelled', 'done', 'error'].includes(document.body.dataset.state), null,
    { timeout: CPU_RUN_MS, polling: 50 });
  let result = await page.evaluate(() => ({
    state: document.body.dataset.state, status: document.querySelector('[data-testid=status]').textContent,
  }));
  const took = await page.evaluate((t) => performance.now() - t, at);
  console.log(`# ${what}: Cancel during the four-flip run: "${result.status}" within ${took.toFixed(0)} ms`);
  assert.equal(result.state, 'cancelled', result.status);
  assert.match(result.status, /cancelled/i);
  assert.equal(await page.isHidden('[data-testid=cancel]'), true);
  await page.uncheck('[data-testid=flips]');
  result = await settle(page, CPU_RUN_MS);
  assert.equal(result.state, 'done', `the run after the cancel failed: ${result.error}`);
  assert.equal((await diceAgainst(page, label)).pred, pred, 'the run after the cancel differs');
}

/** The measurements table, once measured: its values by JSON field (`data-key`). */
async function measuredRows(page) {
  await page.waitForFunction(() => ['done', 'error'].includes(
    document.querySelector('[data-testid=measurements]').dataset.state), null, { timeout: 30_000 });
  return page.evaluate(() => {
    const panel = document.querySelector('[data-testid=measurements]');
    if (panel.dataset.state !== 'done') throw new Error(`measurements: ${document.querySelector('[data-testid=scale-error]').textContent}`);
    return Object.fromEntries([...panel.querySelectorAll('tr[data-key]')]
      .map((tr) => [tr.dataset.key, tr.querySelector('td').textContent]));
  });
}

test('the page loads, labels its controls and sets a CSP that blocks other origins', { timeout: 120_000 }, async () => {
  const browser = await launch({ webgpu: true });
  try {
    const { page, offsite, problems } = await openPage(browser, server.url);
    await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout: 30_000 });
    // Every form control has a label (keyboard and screen-reader use).
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button, [role=button]')]
      .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
      .map((el) => el.id || el.outerHTML.slice(0, 60)));
    assert.deepEqual(unlabelled, []);
    // The drop zone is reachable with the keyboard.
    assert.equal(await page.getAttribute('[data-testid=drop-zone]', 'tabindex'), '0');
    // The page's own CSP refuses a request to another origin before it is sent.
    const verdict = await page.evaluate(() => new Promise((resolve) => {
      document.addEventListener('securitypolicyviolation', (e) => resolve(`blocked by ${e.effectiveDirective}`), { once: true });
      fetch('http://192.0.2.1/probe').then(() => resolve('fetched'), () => {});
      setTimeout(() => resolve('no verdict'), 10_000);
    }));
    assert.equal(verdict, 'blocked by connect-src');
    assert.deepEqual(offsite.filter((u) => !u.startsWith('http://192.0.2.1/')), []);
    assert.deepEqual(problems.filter((p) => !/192\.0\.2\.1|Content Security Policy/.test(p)), []);
  } finally {
    await browser.close();
  }
});

// WebGPU through SwiftShader runs about 40 s per 256x256 tile here (9 tiles for a DRIVE image), so
// by default the WebGPU page run takes a real 128x128 piece of the DRIVE image (cut and encoded as
// PNG in the browser) and checks that its mask equals the CPU build's on the same piece; the
// whole-image Dice is checked on the CPU below. R2UNET_E2E_WEBGPU_FULL=1 drops the whole image on
// WebGPU instead and checks its Dice against the label (about 6 minutes).
const WEBGPU_FULL = Boolean(process.env.R2UNET_E2E_WEBGPU_FULL);

test(WEBGPU_FULL
  ? 'a dropped DRIVE image is segmented on WebGPU (auto) and matches its label'
  : 'a dropped piece of a DRIVE image is segmented on WebGPU (auto) as on the CPU', { skip: !HAVE_DRIVE, timeout: WEBGPU_RUN_MS + 120_000 }, async () => {
  const { image, label } = await readDrive();
  const browser = await launch({ webgpu: true });
  try {
    const { page, offsite, problems } = await openPage(browser, server.url);
    assert.equal(await page.inputValue('[data-testid=backend-select]'), 'auto');
    if (WEBGPU_FULL) {
      await dropFile(page, '01_test.tif', image, 'image/tiff');
      const result = await settle(page, WEBGPU_RUN_MS);
      assert.equal(result.state, 'done', `page failed: ${result.error}; ${problems.join(' | ')}`);
      assert.equal(result.backend, 'webgpu', result.status);
      const { dice } = await diceAgainst(page, label);
      console.log(`# page, WebGPU, whole image: ${result.status} Dice ${dice.toFixed(4)}`);
      assert.ok(dice >= 0.70, `Dice ${dice}`);
    } else {
      console.log('# page, WebGPU: a 128x128 piece of 01_test.tif (R2UNET_E2E_WEBGPU_FULL=1 for the whole image)');
      // The piece, cut in the browser with the package's own decoder, and the CPU build's mask of it.
      const piece = await page.evaluate(async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const pkg = await import('./pkg/index.js');
        const p = await pkg.decodePreview(bytes);
        const full = new OffscreenCanvas(p.width, p.height);
        full.getContext('2d').putImageData(new ImageData(p.data, p.width, p.height), 0, 0);
        const c = new OffscreenCanvas(128, 128);
        c.getContext('2d').drawImage(full, 300, 150, 128, 128, 0, 0, 128, 128);
        const png = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
        const cpu = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu' });
        const r = await cpu.segment(png);
        cpu.free();
        let s = '';
        for (const v of png) s += String.fromCharCode(v);
        return { png: btoa(s), mask: Array.from(r.mask) };
      }, image.toString('base64'));
      await dropFile(page, '01_test_piece.png', Buffer.from(piece.png, 'base64'), 'image/png');
      const result = await settle(page, WEBGPU_RUN_MS);
      assert.equal(result.state, 'done', `page failed: ${result.error}; ${problems.join(' | ')}`);
      assert.equal(result.backend, 'webgpu', result.status);
      const onGpu = await page.evaluate(() => {
        const c = document.querySelector('[data-testid=canvas-mask]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return Array.from({ length: d.length / 4 }, (_, i) => d[i * 4]);
      });
      assert.equal(onGpu.length, piece.mask.length);
      let tp = 0, a = 0, b = 0;
      onGpu.forEach((v, i) => { const g = v > 127, c = piece.mask[i] === 255; tp += g && c; a += g; b += c; });
      const agreement = (2 * tp) / (a + b);
      console.log(`# page, WebGPU: ${result.status} mask vs the CPU build's: Dice ${agreement.toFixed(4)} (${a} vs ${b} pixels)`);
      assert.ok(b > 100, `the CPU mask of the piece is nearly empty (${b} pixels)`);
      assert.ok(agreement >= 0.99, `WebGPU and CPU masks differ: Dice ${agreement}`);
      // Measured on WebGPU's mask as on the CPU's: every mask pixel counted.
      const gpuRows = await measuredRows(page);
      assert.equal(gpuRows.vesselPixels.split(' ')[0], a.toLocaleString('en'), JSON.stringify(gpuRows));
    }
    assert.deepEqual(offsite, [], 'requests left the origin');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('without WebGPU the page falls back to the CPU, and the controls work without re-running', { skip: !HAVE_DRIVE, timeout: CPU_RUN_MS * 3 + 120_000 }, async () => {
  const { image, label } = await readDrive();
  const browser = await launch({ webgpu: false });
  try {
    const { page, offsite, problems } = await openPage(browser, server.url);
    assert.equal(await page.evaluate(async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter())), false,
      'this browser should have no WebGPU adapter');

    // A file that is not an image: a clear message, and the page keeps working.
    await dropFile(page, 'notes.txt', Buffer.from('not an image at all'), 'text/plain');
    let result = await settle(page, 30_000);
    assert.equal(result.state, 'error');
    assert.match(result.error, /Could not read this file/);

    // The first image downloads the CPU build and the weights: the download line (below).
    await recordDownloads(page);
    await dropFile(page, '01_test.tif', image, 'image/tiff');
    result = await settle(page, CPU_RUN_MS);
    assert.equal(result.state, 'done', `page failed: ${result.error}; ${problems.join(' | ')}`);
    assert.equal(result.backend, 'cpu', result.status);
    await checkDownloads(page, 'page');
    // The package in the page itself: a .wasm download aborted from onProgress rejects with an
    // AbortError, the next create downloads it again, and the weights now come from the Cache API.
    const own = await page.evaluate(async () => {
      const pkg = await import('./pkg/index.js');
      const c = new AbortController();
      let aborted = null;
      await pkg.Segmenter.create({
        task: 'retina', backend: 'cpu', signal: c.signal,
        onProgress: (p) => { if (p.file === 'wasm' && p.loaded > 0) c.abort(); },
      }).then(() => {}, (e) => { aborted = `${e.name}: ${e.message}`; });
      const seen = [];
      const seg = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', onProgress: (p) => seen.push(p) });
      seg.free();
      return { aborted, seen };
    });
    assert.match(own.aborted ?? 'not aborted', /^AbortError: /);
    const wasmLast = own.seen.filter((p) => p.file === 'wasm').at(-1);
    assert.ok(wasmLast && !wasmLast.cached && wasmLast.loaded > 1e6 && wasmLast.loaded === wasmLast.total, JSON.stringify(wasmLast));
    assert.deepEqual(own.seen.filter((p) => p.file === 'weights').map((p) => [p.cached, p.loaded === p.total]), [[true, true]]);
    const { dice, pred } = await diceAgainst(page, label);
    console.log(`# page, CPU: ${result.status} Dice ${dice.toFixed(4)}`);
    assert.ok(dice >= 0.70, `Dice ${dice}`);
    assert.ok((await page.textContent('[data-testid=status]')).includes('backend cpu'));

    // The measurements beside the mask: the vessel area in % of the field of view; the JSON
    // download holds the same numbers, and counts every pixel of the mask (none lies outside the
    // field of view, where the probabilities are 0).
    const shown = await measuredRows(page);
    const [jsonDownload] = await Promise.all([
      page.waitForEvent('download', { timeout: 30_000 }),
      page.click('[data-testid=download-measurements]'),
    ]);
    assert.equal(jsonDownload.suggestedFilename(), '01_test_measurements.json');
    const measured = JSON.parse(await readFile(await jsonDownload.path(), 'utf8'));
    console.log(`# page, CPU: measurements: ${shown.vesselAreaFraction}, ${shown.vesselPixels}, fractal dimension ${shown.fractalDimension}`);
    assert.deepEqual([measured.image, measured.threshold, measured.task], ['01_test.tif', 0.5, 'retina']);
    assert.ok(measured.vesselAreaFraction > 0.06 && measured.vesselAreaFraction < 0.2, String(measured.vesselAreaFraction));
    assert.equal(shown.vesselAreaFraction, `${(100 * measured.vesselAreaFraction).toFixed(2)} % of the field of view`);
    assert.equal(shown.vesselPixels, `${measured.vesselPixels.toLocaleString('en')} of ${measured.fovPixels.toLocaleString('en')} px`);
    assert.equal(shown.fractalDimension, measured.fractalDimension.toFixed(3));
    assert.equal(measured.vesselPixels, pred);
    assert.equal(measured.umPerPixel, null);

    // The threshold slider re-renders the mask from the stored probabilities: fewer pixels at
    // 0.9, and no new run (the state stays 'done', the worker gets no request).
    const before = server.requests.length;
    await page.fill('[data-testid=threshold]', '0.9');
    await page.dispatchEvent('[data-testid=threshold]', 'change');
    const higher = await diceAgainst(page, label);
    assert.ok(higher.pred < pred, `mask pixels at 0.9: ${higher.pred}, at 0.5: ${pred}`);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done');
    assert.equal(server.requests.length, before);
    // The measurements follow the threshold, and a scale (the camera's 45 degrees) adds
    // micrometres, measured again without a run.
    await page.waitForFunction(() => document.querySelector('[data-testid=measurements]').dataset.threshold === '0.90');
    assert.equal((await measuredRows(page)).vesselPixels.split(' ')[0], higher.pred.toLocaleString('en'));
    await page.fill('[data-testid=scale-fov-angle]', '45');
    await page.dispatchEvent('[data-testid=scale-fov-angle]', 'change');
    await page.waitForFunction(() => /µm per pixel/.test(document.querySelector('[data-testid=measurements-table]').textContent));
    const scaled = await measuredRows(page);
    console.log(`# page, CPU: at 45 degrees: ${scaled.umPerPixel}; median width ${scaled.calibreMedianPx}`);
    assert.match(scaled.umPerPixel, /^2\d\.\d\d µm per pixel \(from the field-of-view angle\)$/);
    assert.match(scaled.calibreMedianPx, /^\d+\.\d µm \(\d+\.\d\d px\)$/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'done');
    assert.equal(server.requests.length, before);
    await page.fill('[data-testid=scale-fov-angle]', '');
    await page.dispatchEvent('[data-testid=scale-fov-angle]', 'change');
    // The overlay follows the opacity slider.
    const overlayAt = async (a) => {
      await page.fill('[data-testid=opacity]', String(a));
      await page.dispatchEvent('[data-testid=opacity]', 'change');
      return page.evaluate(() => {
        const c = document.querySelector('[data-testid=canvas-overlay]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let red = 0;
        for (let i = 0; i < d.length; i += 4) red += d[i] - d[i + 1];
        return red;
      });
    };
    assert.ok(await overlayAt(1) > await overlayAt(0.1));

    // The mask downloads as a PNG of the image's size.
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 30_000 }),
      page.click('[data-testid=download-mask]'),
    ]);
    assert.match(download.suggestedFilename(), /^01_test_mask\.png$/);
    const png = await (await import('node:fs/promises')).readFile(await download.path());
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    assert.equal(png.readUInt32BE(16), 565);
    assert.equal(png.readUInt32BE(20), 584);

    // Back at the first run's threshold. (Cancel on this page: the threads test, below.)
    await page.fill('[data-testid=threshold]', '0.5');
    await page.dispatchEvent('[data-testid=threshold]', 'change');

    // "Refine" re-runs the model with the four flips averaged (at the threshold the slider shows).
    await page.check('[data-testid=flips]');
    await page.waitForFunction(() => document.body.dataset.state === 'error'
      || document.querySelector('[data-testid=status]').textContent.includes('four flips averaged'),
    null, { timeout: CPU_RUN_MS, polling: 250 });
    result = await settle(page, 1_000);
    assert.equal(result.state, 'done', `refined run failed: ${result.error}`);
    const refined = await diceAgainst(page, label);
    console.log(`# page, CPU, four flips: ${result.status} Dice ${refined.dice.toFixed(4)}`);
    assert.ok(refined.dice >= 0.70, `Dice ${refined.dice}`);
    assert.notEqual(refined.pred, pred, 'the refined mask is the plain one');
    await page.uncheck('[data-testid=flips]');
    await page.waitForFunction(() => document.body.dataset.state === 'done'
      && !document.querySelector('[data-testid=status]').textContent.includes('four flips'),
    null, { timeout: CPU_RUN_MS, polling: 250 });

    assert.deepEqual(offsite, [], 'requests left the origin');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

// Threads on the CPU, on the page as scripts/serve.sh serves it (not cross-origin isolated) and
// on the same page cross-origin isolated (COOP same-origin and COEP require-corp on every file, as
// a host may send them for other code): the pool needs no isolation, and isolation does not stop
// it (every file is the page's own origin, so none needs a Cross-Origin-Resource-Policy). In each,
// on a fresh profile: the first load's download line, the page's thread count, Cancel during a
// run, and the package in the page on 1 and 2 threads with an abort mid-run.
const ISOLATION_HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
for (const isolated of [false, true]) {
  const mode = isolated ? 'cross-origin isolated' : 'plain';
  test(`threads on the CPU, ${mode} page: the first load shows its downloads, the page runs on the pool (workers nested in its worker), Cancel stops a run, and 2 threads give 1 thread's mask; an abort mid-run leaves the Segmenter usable`, { skip: !HAVE_DRIVE, timeout: CPU_RUN_MS * 3 }, async () => {
    const { image, label } = await readDrive();
    const site = isolated ? await serve(join(ROOT, 'web'), { headers: ISOLATION_HEADERS }) : server;
    const browser = await launch({ webgpu: false });
    try {
      const { page, offsite, problems } = await openPage(browser, site.url);
      const { crossOriginIsolated, cores } = await page.evaluate(() => ({ crossOriginIsolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency }));
      assert.equal(crossOriginIsolated, isolated, `self.crossOriginIsolated on the ${mode} page`);
      // The page: the first load's downloads, then the package's default thread count (the cores,
      // at most 4), shown beside the backend.
      await recordDownloads(page);
      await dropFile(page, '01_test.tif', image, 'image/tiff');
      const result = await settle(page, CPU_RUN_MS);
      assert.equal(result.state, 'done', `page failed: ${result.error}; ${problems.join(' | ')}`);
      assert.equal(result.backend, 'cpu', result.status);
      await checkDownloads(page, `${mode} page`);
      const want = Math.min(4, cores);
      const threads = await page.evaluate(() => Number(document.body.dataset.threads));
      console.log(`# ${mode} page, CPU on ${cores} cores: ${result.status}`);
      assert.equal(threads, want);
      assert.ok(result.status.includes(`backend cpu (${want} thread${want === 1 ? '' : 's'})`), result.status);
      const { dice, pred } = await diceAgainst(page, label);
      assert.ok(dice >= 0.70, `Dice ${dice}`);
      await cancelFourFlipRun(page, label, pred, `${mode} page, CPU`);

      // The package in the page: 2 threads against 1 on the same image, then an abort during a
      // threaded run, then a run that gives the same mask again.
      const r = await page.evaluate(async (b64) => {
        const pkg = await import('./pkg/index.js');
        const img = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const one = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads: 1 });
        const two = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads: 2 });
        const a = await one.segment(img);
        const progress = [];
        const b = await two.segment(img, { onProgress: (d, t) => progress.push([d, t]) });
        let max = 0, both = 0, ones = 0;
        for (let i = 0; i < a.mask.length; i++) {
          max = Math.max(max, Math.abs(a.probabilities[i] - b.probabilities[i]));
          const p = a.mask[i] > 0, q = b.mask[i] > 0;
          both += p && q; ones += p + q;
        }
        // Aborted 200 ms into a threaded four-flip run (8 pieces): the pool worker's piece stops at
        // once (the worker is terminated and replaced), the calling thread's after its piece (here
        // the page's own thread: the timer fires when that piece is done).
        const c = new AbortController();
        setTimeout(() => c.abort(), 200);
        const t0 = performance.now();
        const aborted = await two.segment(img, { signal: c.signal, flips: true })
          .then(() => 'not aborted', (e) => `${e.name}: ${e.message}`);
        const abortMs = performance.now() - t0;
        const again = await two.segment(img);
        const same = again.mask.every((v, i) => v === b.mask[i]);
        const out = {
          threads: [one.threads, two.threads], ran: [a.threads, b.threads, again.threads], progress, max,
          dice: (2 * both) / ones, aborted, abortMs, same, memory: two.poolMemoryBytes,
          ms: [a.timings.modelMs, b.timings.modelMs, again.timings.modelMs],
        };
        one.free();
        two.free();
        return out;
      }, image.toString('base64'));
      console.log(`# package in the ${mode} page, DRIVE 01: 1 vs 2 threads: Dice of the masks ${r.dice.toFixed(5)}, ` +
        `max abs probability difference ${r.max.toFixed(4)}; model ${r.ms.map((v) => v.toFixed(0)).join(' / ')} ms ` +
        `(1 thread / 2 threads / 2 threads after the abort); pool worker memory ${r.memory.map((v) => (v / 1e6).toFixed(1)).join(', ')} MB; ` +
        `abort: "${r.aborted}" after ${r.abortMs.toFixed(0)} ms`);
      assert.deepEqual(r.threads, [1, 2]);
      assert.deepEqual(r.ran, [1, 2, 2]);
      assert.deepEqual(r.progress, [[1, 2], [2, 2]]);
      assert.ok(r.dice >= 0.999, `Dice ${r.dice}`);
      assert.ok(r.max <= 0.1, `max abs difference ${r.max}`);
      assert.match(r.aborted, /^AbortError: segment\(\) was aborted/);
      assert.ok(r.same, 'the run after the abort gives another mask');

      assert.deepEqual(offsite, [], 'requests left the origin');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      if (isolated) await site.close();
    }
  });
}

// Where the pool's workers cannot start, the Segmenter runs on one thread and says why; nothing
// fails: a page whose CSP forbids workers, and a cross-origin isolated page whose host sends the
// isolation headers with everything but pool-worker.js (a worker's script needs the page's COEP).
const NO_POOL = [
  { why: "worker-src 'none'", headers: { 'content-security-policy': "worker-src 'none'" }, isolated: false, note: /could not start \(the worker script could not load \(a Content-Security-Policy/ },
  { why: 'pool-worker.js without COEP', headers: (path) => (path.endsWith('/pool-worker.js') ? {} : ISOLATION_HEADERS), isolated: true, note: /could not start .*Cross-Origin-Embedder-Policy: require-corp/ },
];
test('threads on the CPU: where workers cannot start (a CSP forbidding them; an isolated page\'s pool-worker.js without COEP) the Segmenter runs on one thread and says why', { timeout: 120_000 }, async () => {
  const browser = await launch({ webgpu: false });
  try {
    for (const { why, headers, isolated, note } of NO_POOL) {
      const site = await serve(join(ROOT, 'web'), { headers });
      try {
        const { page, offsite } = await openPage(browser, site.url);
        const lone = await page.evaluate(async () => {
          const pkg = await import('./pkg/index.js');
          const seg = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads: 2 });
          const data = new Uint8ClampedArray(64 * 64 * 4).fill(200);
          const res = await seg.segment({ width: 64, height: 64, data });
          const out = { isolated: self.crossOriginIsolated, threads: seg.threads, note: seg.threadsNote ?? null, ran: res.threads, width: res.width };
          seg.free();
          return out;
        });
        console.log(`# page with ${why}: ${lone.threads} thread; note: ${lone.note}`);
        assert.deepEqual([lone.isolated, lone.threads, lone.ran, lone.width], [isolated, 1, 1, 64]);
        assert.match(lone.note ?? '', note);
        assert.deepEqual(offsite, [], 'requests left the origin');
      } finally {
        await site.close();
      }
    }
  } finally {
    await browser.close();
  }
});
