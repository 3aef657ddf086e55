// The packed package installed into a plain Node project (no bundler, no browser), as
// `npm install r2unet-wasm` in a script or a server: the shipped retina model segments a real
// DRIVE image on the CPU build. scripts/test-browser.sh installs the tarball into a temporary
// folder, copies this file there and runs it with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import init, { Segmenter, decodePreview, shippedTasks } from 'r2unet-wasm';

const DATA = process.env.R2UNET_DATA ?? '';
const IMAGE = join(DATA, 'DRIVE/test/images/01_test.tif');
const LABEL = join(DATA, 'DRIVE/test/1st_manual/01_manual1.gif');
const HAVE_DRIVE = existsSync(IMAGE) && existsSync(LABEL);

test('plain Node: the shipped retina model segments a DRIVE image on the CPU', {
  skip: HAVE_DRIVE ? false : `SKIPPED: ${IMAGE} not found (set R2UNET_DATA)`,
  timeout: 300_000,
}, async () => {
  await init();
  assert.deepEqual(shippedTasks(), ['retina', 'skin', 'lung']);
  const seg = await Segmenter.create({ task: 'retina' });
  // No WebGPU in Node: 'auto' runs on the CPU build and says why.
  assert.equal(seg.backend, 'cpu');
  assert.match(seg.fallbackReason ?? '', /WebGPU/i);
  try {
    const r = await seg.segment(await readFile(IMAGE));
    assert.deepEqual([r.width, r.height], [565, 584]);
    const label = await decodePreview(await readFile(LABEL));
    let tp = 0, pred = 0, truth = 0;
    for (let i = 0; i < r.mask.length; i++) {
      const m = r.mask[i] > 127, t = label.data[4 * i] > 127;
      tp += Number(m && t); pred += Number(m); truth += Number(t);
    }
    const dice = (2 * tp) / (pred + truth);
    console.log(`# plain Node, CPU: DRIVE 01_test Dice ${dice.toFixed(4)} in ${r.timeMs.toFixed(0)} ms`);
    assert.ok(dice >= 0.7, `Dice ${dice}`);
    // Bad input is a named error, and the Segmenter keeps working.
    await assert.rejects(seg.segment(new Uint8Array([1, 2, 3])), (e) => e.name === 'InputError');
    await assert.rejects(seg.segment(await readFile(IMAGE), { treshold: 0.5 }), (e) => e.name === 'ConfigError');
    const again = await seg.segment(await readFile(IMAGE), { threshold: 0.9 });
    assert.ok(again.mask.reduce((a, v) => a + (v > 0 ? 1 : 0), 0) < pred);
  } finally {
    seg.free();
  }
});
