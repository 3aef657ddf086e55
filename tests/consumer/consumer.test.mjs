// The packed package (npm pack pkg/) installed into this Vite app, built, served and run in
// Chromium: the shipped retina model segments a real DRIVE image. scripts/test-browser.sh packs
// and installs the tarball before this runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from '../e2e/server.mjs';
import { DRIVE_IMAGE, HAVE_DRIVE, ROOT, launch, openPage, readDrive } from '../e2e/browser.mjs';

const DIST = join(ROOT, 'tests/consumer/dist');
let server;
before(async () => {
  assert.ok(existsSync(join(DIST, 'index.html')), 'run `npm run build` in tests/consumer first');
  server = await serve(DIST);
});
after(async () => { await server?.close(); });

test('the Vite app built against the packed package segments a DRIVE image', { skip: HAVE_DRIVE ? false : `SKIPPED: ${DRIVE_IMAGE} not found`, timeout: 300_000 }, async () => {
  const { image, label } = await readDrive();
  const browser = await launch({ webgpu: false });
  try {
    const { page, offsite, problems } = await openPage(browser, server.url);
    await page.waitForFunction(() => document.body.dataset.ready === 'yes', null, { timeout: 30_000 });
    assert.ok((await page.evaluate(() => window.r2unet.shippedTasks())).includes('retina'));
    const r = await page.evaluate(async (b64) => {
      const bin = atob(b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return window.r2unet.segment(bytes, 'auto');
    }, image.toString('base64'));
    assert.equal(r.backend, 'cpu');
    assert.deepEqual([r.width, r.height], [565, 584]);
    // The pool worker, bundled by Vite from the package's new Worker(new URL(...)), ran a band.
    assert.equal(r.threads, 2, `threads: ${r.threads} (${r.threadsNote})`);
    const truth = await page.evaluate(async (b64) => {
      const bin = atob(b64);
      const arr = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i);
      const bm = await createImageBitmap(new Blob([arr]));
      const ctx = new OffscreenCanvas(bm.width, bm.height).getContext('2d');
      ctx.drawImage(bm, 0, 0);
      const d = ctx.getImageData(0, 0, bm.width, bm.height).data;
      const out = [];
      for (let i = 0; i < d.length; i += 4) out.push(d[i] > 127 ? 1 : 0);
      return out;
    }, label.toString('base64'));
    let tp = 0, pred = 0, gt = 0;
    r.mask.forEach((m, i) => { const p = m === 255; tp += p && truth[i]; pred += p; gt += truth[i]; });
    const dice = (2 * tp) / (pred + gt);
    console.log(`# consumer app: ${r.backend}, ${Math.round(r.timeMs)} ms, Dice ${dice.toFixed(4)}`);
    assert.ok(dice >= 0.70, `Dice ${dice}`);
    // measure: true gives the retina measurements with exactly the fields the types declare.
    console.log(`# consumer app: vessel area ${(100 * (r.vesselAreaFraction ?? NaN)).toFixed(2)} %, scale from ${r.scaleSource}`);
    assert.deepEqual([...r.fields].sort(), [...r.declared].sort());
    assert.ok(r.vesselAreaFraction > 0.06 && r.vesselAreaFraction < 0.2, String(r.vesselAreaFraction));
    assert.equal(r.scaleSource, 'fovAngle');
    // The wasm and the weights came from the app's own build output.
    assert.ok(server.requests.some((u) => /\.wasm$/.test(u)), server.requests.join(' '));
    assert.ok(server.requests.some((u) => /retina.*\.bpk/.test(u)), server.requests.join(' '));
    assert.deepEqual(offsite, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
