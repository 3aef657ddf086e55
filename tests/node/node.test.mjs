// The packed package installed into a plain Node project (no bundler, no browser), as
// `npm install r2unet-wasm` in a script or a server: the shipped retina model segments a real
// DRIVE image on the CPU build; load progress, cancellation, the queue of calls and free(); the
// lung model's measurements of a CT slice.
// scripts/test-browser.sh installs the tarball into a temporary folder, copies this file there
// and runs it with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import init, { ERROR_NAMES, Segmenter, decodePreview, measure, shippedTasks } from 'r2unet-wasm';

const DATA = process.env.R2UNET_DATA ?? '';
const IMAGE = join(DATA, 'DRIVE/test/images/01_test.tif');
const LABEL = join(DATA, 'DRIVE/test/1st_manual/01_manual1.gif');
const HAVE_DRIVE = existsSync(IMAGE) && existsSync(LABEL);
const skip = HAVE_DRIVE ? false : `SKIPPED: ${IMAGE} not found (set R2UNET_DATA)`;
const LUNG = join(DATA, 'LUNG/2d_images/ID_0151_Z_0140.tif');

/** @type {Segmenter | null} the first test's, reused by the second */
let shared = null;

test('plain Node: the shipped retina model segments a DRIVE image on the CPU', { skip, timeout: 300_000 }, async () => {
  // Each file is read from the package's folder and reported once: the CPU build by init, the
  // weights by create (whose build is already loaded: cached).
  const loads = [];
  await init({ onProgress: (p) => loads.push(p) });
  assert.equal(loads.length, 1, JSON.stringify(loads));
  assert.equal(loads[0].file, 'wasm');
  assert.ok(loads[0].loaded > 1e6 && loads[0].loaded === loads[0].total && !loads[0].cached, JSON.stringify(loads));
  assert.deepEqual(shippedTasks(), ['retina', 'skin', 'lung']);
  loads.length = 0;
  const seg = await Segmenter.create({ task: 'retina', onProgress: (p) => loads.push(p) });
  assert.deepEqual(loads.map((p) => [p.file, p.cached]), [['wasm', true], ['weights', false]], JSON.stringify(loads));
  assert.ok(loads[1].loaded > 1e5 && loads[1].loaded === loads[1].total, JSON.stringify(loads));
  console.log(`# plain Node, loads reported: ${loads.map((p) => `${p.file} ${p.loaded} B${p.cached ? ' (cached)' : ''}`).join(', ')}`);
  // No WebGPU in Node: 'auto' runs on the CPU build and says why.
  assert.equal(seg.backend, 'cpu');
  assert.match(seg.fallbackReason ?? '', /WebGPU/i);
  shared = seg;
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
});

/** @param {unknown} e @param {RegExp} message */
const isAbort = (e, message) => {
  const err = /** @type {Error} */ (e);
  assert.equal(err.name, 'AbortError', String(err));
  assert.ok(err instanceof Error, 'an AbortError is an Error');
  assert.match(err.message, message);
  return true;
};

test('plain Node: abort, the queue of calls on one Segmenter, and free()', { skip, timeout: 120_000 }, async () => {
  assert.ok(ERROR_NAMES.includes('AbortError'));
  const seg = shared ?? await Segmenter.create({ task: 'retina' });
  const image = await readFile(IMAGE);
  const tiled = { tile: 256 };   // nine tiles, one forward pass each

  // An abort from the progress callback after the first tile: no second tile, an AbortError.
  let c = new AbortController();
  const seen = [];
  let t0 = performance.now();
  await assert.rejects(seg.segment(image, {
    ...tiled, signal: c.signal, onProgress: (done, total) => { seen.push([done, total]); if (done === 1) c.abort(); },
  }), (e) => isAbort(e, /after 1 of 9 tiles/));
  assert.deepEqual(seen, [[1, 9]]);
  console.log(`# plain Node: aborted after the first of 9 tiles in ${(performance.now() - t0).toFixed(0)} ms`);
  // An already-aborted signal rejects at once; so does create with one.
  await assert.rejects(seg.segment(image, { signal: c.signal }), (e) => isAbort(e, /before it started/));
  await assert.rejects(Segmenter.create({ task: 'retina', signal: c.signal }), (e) => isAbort(e, /create was aborted/));
  await assert.rejects(seg.segment(image, { signal: /** @type {any} */ ('stop') }), (e) => e.name === 'ConfigError');

  // An abort from a timer, another task, reaches a running pass (four flips per tile).
  c = new AbortController();
  let tiles = 0;
  setTimeout(() => c.abort(), 100);
  t0 = performance.now();
  await assert.rejects(seg.segment(image, { ...tiled, flips: true, signal: c.signal, onProgress: (done) => { tiles = done; } }),
    (e) => isAbort(e, /segment\(\) was aborted/));
  const ms = performance.now() - t0;
  console.log(`# plain Node: a timer's abort stopped a four-flip run after ${tiles} of 9 tiles, ${ms.toFixed(0)} ms`);
  assert.ok(tiles < 9, `all ${tiles} tiles ran`);

  // The queue: calls on one Segmenter run one after another, in order; one aborted while it
  // waits rejects at once, without waiting for the call before it.
  const crop = await decodePreview(image);    // RGBA of the whole photo; a 128x128 piece of it:
  const piece = { width: 128, height: 128, data: new Uint8ClampedArray(128 * 128 * 4) };
  for (let y = 0; y < 128; y++) piece.data.set(crop.data.subarray(((150 + y) * crop.width + 300) * 4, ((150 + y) * crop.width + 428) * 4), y * 128 * 4);
  const order = [];
  c = new AbortController();
  const first = seg.segment(piece, { flips: true }).then((r) => { order.push('first'); return r; });
  const waiting = seg.segment(piece, { signal: c.signal }).catch((e) => { order.push('aborted'); throw e; });
  const third = seg.segment(piece).then((r) => { order.push('third'); return r; });
  c.abort();
  await assert.rejects(waiting, (e) => isAbort(e, /waited for an earlier call/));
  const [r1, r3] = await Promise.all([first, third]);
  assert.deepEqual(order, ['aborted', 'first', 'third']);
  assert.deepEqual([r1.width, r3.width], [128, 128]);

  // free(): the calls made before it still run (the queued one included), later ones get a
  // ConfigError, and the model is released after them.
  const running = seg.segment(piece);
  const queued = seg.segment(piece);
  seg.free();
  await assert.rejects(seg.segment(piece), (e) => e.name === 'ConfigError' && /freed/.test(e.message));
  assert.throws(() => seg.backend, (e) => e.name === 'ConfigError');
  assert.deepEqual([(await running).width, (await queued).width], [128, 128]);
  await assert.rejects(seg.segment(piece), (e) => e.name === 'ConfigError' && /freed/.test(e.message));
  seg.free();                                    // twice is harmless
});

test('plain Node: measure: true on a CT slice gives both lungs', { skip: existsSync(LUNG) ? false : `SKIPPED: ${LUNG} not found (set R2UNET_DATA)`, timeout: 120_000 }, async () => {
  const seg = await Segmenter.create({ task: 'lung' });
  const slice = await readFile(LUNG);
  const r = await seg.segment(slice, { measure: true, scale: { pixelSpacingMm: 0.7 } });
  const m = r.measurements;
  assert.equal(m?.task, 'lung', JSON.stringify(m));
  if (m?.task !== 'lung') return;
  console.log(`# plain Node, lung ID_0151: ${m.components} pieces, right ${m.patientRightAreaPx} px, left ${m.patientLeftAreaPx} px, ` +
    `${m.areaMm2?.toFixed(0)} mm², measured in ${r.timings.measureMs.toFixed(1)} ms`);
  const inMask = r.mask.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
  assert.equal(m.areaPx, inMask);
  assert.ok(m.patientRightAreaPx !== null && m.patientLeftAreaPx !== null, 'two lungs');
  assert.ok(m.patientRightAreaPx > 0.1 * inMask && m.patientLeftAreaPx > 0.1 * inMask, JSON.stringify(m));
  assert.ok(m.patientRightAreaPx + m.patientLeftAreaPx <= m.areaPx);
  assert.ok(Math.abs((m.areaMm2 ?? 0) - 0.49 * m.areaPx) < 1e-6 * m.areaPx);
  assert.equal(r.fov, undefined, 'a field of view is the retina task\'s');
  // The export measures the same mask to the same object; without `measure`, nothing.
  assert.deepEqual(await measure('lung', r, { pixelSpacingMm: 0.7 }), m);
  const plain = await seg.segment(slice);
  assert.equal(plain.measurements, undefined);
  assert.equal(plain.timings.measureMs, 0);
  // A bad scale is refused by name, before the model runs.
  await assert.rejects(seg.segment(slice, { measure: true, scale: { pixelSpacingMm: 0 } }),
    (e) => e.name === 'ConfigError' && /scale\.pixelSpacingMm/.test(e.message));
  seg.free();
});

test('plain Node: threads: 2 (a pool of worker_threads) gives threads: 1\'s Dice', { skip, timeout: 120_000 }, async () => {
  const image = await readFile(IMAGE);
  const label = await decodePreview(await readFile(LABEL));
  const diceOf = (/** @type {Uint8Array} */ mask) => {
    let tp = 0, pred = 0, truth = 0;
    for (let i = 0; i < mask.length; i++) {
      const m = mask[i] > 127, t = label.data[4 * i] > 127;
      tp += Number(m && t); pred += Number(m); truth += Number(t);
    }
    return (2 * tp) / (pred + truth);
  };
  const one = await Segmenter.create({ task: 'retina', threads: 1 });
  const two = await Segmenter.create({ task: 'retina', threads: 2 });
  assert.deepEqual([one.threads, two.threads], [1, 2], two.threadsNote);
  const a = await one.segment(image);
  const progress = [];
  const b = await two.segment(image, { onProgress: (done, total) => progress.push([done, total]) });
  assert.deepEqual([a.threads, b.threads], [1, 2]);
  assert.deepEqual(progress, [[1, 2], [2, 2]], 'one report per band');
  let max = 0;
  for (let i = 0; i < a.probabilities.length; i++) max = Math.max(max, Math.abs(a.probabilities[i] - b.probabilities[i]));
  const [d1, d2] = [diceOf(a.mask), diceOf(b.mask)];
  console.log(`# plain Node, DRIVE 01: Dice ${d1.toFixed(4)} on 1 thread (model ${a.timings.modelMs.toFixed(0)} ms), ` +
    `${d2.toFixed(4)} on 2 (${b.timings.modelMs.toFixed(0)} ms); max abs probability difference ${max.toFixed(4)}; ` +
    `pool worker memory ${two.poolMemoryBytes.map((v) => (v / 1e6).toFixed(1)).join(', ')} MB`);
  assert.ok(Math.abs(d1 - d2) <= 0.005, `Dice ${d1} on 1 thread, ${d2} on 2`);
  await assert.rejects(Segmenter.create({ task: 'retina', threads: 0 }), (e) => e.name === 'ConfigError' && /threads/.test(e.message));
  one.free();
  two.free();
  assert.throws(() => two.threads, (e) => e.name === 'ConfigError');
});
