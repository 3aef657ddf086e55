// Browser benchmark of the page (scripts/bench-browser.sh): in headless Chromium, prints
//   - cold load to first mask: page load, package, weights download, first DRIVE image (auto backend)
//   - per-image time for one DRIVE image on the CPU build (second run, warm; the page's default
//     threads)
//   - per-image time on WebGPU: the whole image with R2UNET_BENCH_WEBGPU_FULL=1 (minutes on
//     SwiftShader), else a 128x128 piece and a note
//   - the package sizes (raw and gzip -9)
// and, in the same run and the same Chromium, the same network under onnxruntime-web (the ONNX
// export of bench/torch_r2unet.py, random weights; R2UNET_ONNX, default bench/out/r2unet.onnx)
// on its wasm and WebGPU execution providers, on the same tiles of the same image, with ratios
// ours / ort for time and download size (tests/e2e/ort-page.html is the ort side's page). On the
// CPU both sides run on 1 and on 2 threads (ours: the package's pool of workers, `threads`; ort:
// its wasm threads, `numThreads`), REPS interleaved rounds after a warm-up, medians.
// Everything is served from one local server (the repository root, cross-origin isolated so that
// ort-web's wasm threads work). Numbers are printed, never asserted.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { loadavg } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { serve } from './server.mjs';
import { HAVE_DRIVE, ROOT, dropFile, launch, openPage, readDrive, settle } from './browser.mjs';

if (!HAVE_DRIVE) {
  console.log('SKIPPED: browser benchmark: no DRIVE data');
  process.exit(0);
}
const startedAt = Date.now();
const FULL = Boolean(process.env.R2UNET_BENCH_WEBGPU_FULL);
// R2UNET_BENCH_CPU_ONLY=1: the CPU rows only (no WebGPU section; a shorter run for a quiet window).
const CPU_ONLY = Boolean(process.env.R2UNET_BENCH_CPU_ONLY);
const REPS = Math.max(1, Number(process.env.R2UNET_BENCH_REPS ?? 5));
/** Threads of the threaded CPU rows, both sides. */
const THREADS = 2;
// The shipped weights' storage precision, as scripts/build-wasm.sh recorded it.
const PRECISION = (() => {
  try {
    return /precision: '([a-z0-9]+)'/.exec(readFileSync(join(ROOT, 'pkg/models/index.js'), 'utf8'))?.[1] ?? '?';
  } catch {
    return 'not built';
  }
})();
const ONNX = resolve(process.env.R2UNET_ONNX ?? join(ROOT, 'bench/out/r2unet.onnx'));
const ORT_DIST = join(ROOT, 'tests/e2e/node_modules/onnxruntime-web/dist');
const ORT = (() => {
  if (!existsSync(join(ORT_DIST, 'ort.wasm.min.mjs'))) return { skip: 'onnxruntime-web is not installed (npm ci in tests/e2e)' };
  if (!existsSync(ONNX)) return { skip: `no ONNX model at ${ONNX} (scripts/bench-browser.sh exports it)` };
  if (!ONNX.startsWith(ROOT + sep)) return { skip: `the ONNX model must lie inside the repository (${ONNX})` };
  return { version: JSON.parse(readFileSync(join(ORT_DIST, '../package.json'), 'utf8')).version };
})();
const ONNX_URL = '/' + relative(ROOT, ONNX).split(sep).join('/');

const { image } = await readDrive();
// One server for both sides: the repository root (the page under /web/, ort-web's dist under
// /tests/e2e/node_modules/, the ONNX model under /bench/out/), with COOP/COEP on every response.
const server = await serve(ROOT, {
  headers: { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
});
const PAGE = `${server.url}web/`;
const ORT_PAGE = `${server.url}tests/e2e/ort-page.html`;
const rows = [];
const cmp = [];          // [measure, ours, ort, ratio, threads]
const notes = [];
let chromium = '?';

// Tile plan of r2unet-core's inference/tiling.rs with the defaults Segmenter.segment uses on the CPU
// (an image of up to CPU_WHOLE pixels in one pass, else tile 256, stride 192; model multiple 8):
// the same tiles are fed to ort.
const CPU_WHOLE = 450_000;  // crates/r2unet-wasm/src/js.rs: CPU_WHOLE_IMAGE_PIXELS
const roundUp = (v, m) => Math.ceil(v / m) * m;
function starts(len, tile, stride) {
  if (len <= tile) return [0];
  const s = [];
  for (let p = 0; p + tile < len; p += stride) s.push(p);
  if (s[s.length - 1] !== len - tile) s.push(len - tile);
  return s;
}
function tilePlan(height, width, tile = 256, stride = 192, multiple = 8, wholeUpTo = 0) {
  const whole = height * width <= wholeUpTo;
  const t = whole ? roundUp(Math.max(height, width), multiple) : roundUp(tile, multiple);
  const tileH = Math.min(t, roundUp(height, multiple)), tileW = Math.min(t, roundUp(width, multiple));
  const s = whole ? t : Math.min(stride, t);
  const positions = starts(height, tileH, s).flatMap((y) => starts(width, tileW, s).map((x) => [y, x]));
  return { tileH, tileW, positions };
}

const ms = (v) => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'n/a');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : 'n/a');
const min = (xs) => Math.min(...xs);
const loadAverage = () => loadavg()[0];
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const mb = (b) => `${(b / 1e6).toFixed(2)} MB`;
const errText = (e) => String(e?.message ?? e).split('\n')[0].slice(0, 200);

async function timeDrop(page, name, bytes, type, timeout) {
  const t0 = Date.now();
  await dropFile(page, name, bytes, type);
  const r = await settle(page, timeout);
  if (r.state !== 'done') throw new Error(`${name}: ${r.error}`);
  const inference = Number(/inference (\d+) ms/.exec(r.status)?.[1]);
  const threads = await page.evaluate(() => document.body.dataset.threads);
  return { wall: Date.now() - t0, inference, backend: r.backend === 'cpu' ? `cpu, ${threads} thread(s)` : r.backend };
}

/** A neutral same-origin page (ort-page.html) to run either side in, with errors collected. */
async function hostPage(browser) {
  const { page, problems } = await openPage(browser, ORT_PAGE);
  await page.waitForFunction(() => window.ortReady === true, null, { timeout: 60_000 });
  return { page, problems };
}

/** ort side: a fresh page with one ort-web bundle, thread count and execution provider. */
async function ortSession(browser, { bundle, ep, threads }) {
  const { page, problems } = await hostPage(browser);
  const t0 = Date.now();
  const info = await page.evaluate((a) => window.ortSetup(a), { bundle, ep, threads, modelUrl: ONNX_URL });
  return { page, problems, info, readyMs: Date.now() - t0 };
}
const setImage = (page, img) => page.evaluate((a) => window.ortSetImage(a), { b64: Buffer.from(img.data).toString('base64'), width: img.width, height: img.height });
const runTiles = (page, plan, timeout = 1_200_000) => page.evaluate((p) => window.ortTiles(p), plan, { timeout });

/** Paths (no query) of the files the server answered since `from`, under one of `prefixes`. */
function fetched(from, to, prefixes) {
  const paths = server.requests.slice(from, to).map((u) => decodeURIComponent(new URL(u, 'http://x').pathname));
  return [...new Set(paths.filter((p) => prefixes.some((pre) => p.startsWith(pre))))];
}
/** gzip -9 size of the files behind these URL paths. */
function gzSize(paths) {
  let raw = 0, gz = 0, onnxGz = 0;
  const parts = [];
  for (const p of paths) {
    const buf = readFileSync(join(ROOT, p));
    const g = gzipSync(buf, { level: 9 }).length;
    raw += buf.length;
    gz += g;
    const name = p.startsWith(OURS_PREFIX) ? p.slice(OURS_PREFIX.length) : p.split('/').pop();
    parts.push(`${name} ${mb(g)}`);
    if (p.endsWith('.onnx')) onnxGz = g;
  }
  return { raw, gz, parts, onnxGz };
}

const ORT_PREFIXES = ['/tests/e2e/node_modules/onnxruntime-web/dist/', ONNX_URL];
const OURS_PREFIX = '/web/pkg/';
let green = null;        // green channel of 01_test.tif, decoded by our package
let oursCpu = null, oursCpuN = null, ortCpu1 = null, ortCpuN = null, ortWhole = null;
const cpuThreadsN = THREADS;
const downloads = {};

try {
  // ---------------------------------------------------------------------------------------------
  // CPU: a browser without a WebGPU adapter, so 'auto' runs the CPU build.
  let browser = await launch({ webgpu: false });
  chromium = browser.version();
  try {
    const t0 = Date.now();
    const { page } = await openPage(browser, PAGE);
    const first = await timeDrop(page, '01_test.tif', image, 'image/tiff', 300_000);
    rows.push(['cold load to first mask (CPU build, no WebGPU adapter)', `${Date.now() - t0} ms`, first.backend]);
    const second = await timeDrop(page, '01_test.tif', image, 'image/tiff', 300_000);
    rows.push(['one DRIVE image 565x584, CPU build (warm; Segmenter.segment, the page\'s default threads)', `${second.inference} ms`, second.backend]);
    await page.context().close();

    // Ours, called directly (no page UI, no worker): module + weights to ready, then Segmenter.segment
    // with progress times, so the tile passes can be told from decode/preprocessing/blending.
    const ours = await hostPage(browser);
    const oursFrom = server.requests.length;
    const ready = await ours.page.evaluate(async ({ b64, threads }) => {
      const t0 = performance.now();
      const pkg = await import('/web/pkg/index.js');
      await pkg.default();
      window.__seg = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads: 1 });
      const readyMs = performance.now() - t0;
      const t1 = performance.now();
      window.__segN = await pkg.Segmenter.create({ task: 'retina', backend: 'cpu', threads });
      const readyNMs = performance.now() - t1;
      window.__img = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const p = await pkg.decodePreview(window.__img);
      let s = '';
      for (let i = 1; i < p.data.length; i += 4) s += String.fromCharCode(p.data[i]);
      return {
        readyMs, readyNMs, threadsN: window.__segN.threads, note: window.__segN.threadsNote ?? null,
        backend: window.__seg.backend, width: p.width, height: p.height, green: btoa(s),
      };
    }, { b64: image.toString('base64'), threads: THREADS });
    downloads.oursCpu = gzSize(fetched(oursFrom, undefined, [OURS_PREFIX]).filter((p) => !p.includes('/webgpu/')));
    green = { width: ready.width, height: ready.height, data: Buffer.from(ready.green, 'base64') };
    if (ready.threadsN !== THREADS) notes.push(`ours asked for ${THREADS} threads, got ${ready.threadsN}: ${ready.note}`);
    // One call on the 1-thread (`__seg`) or the THREADS-thread Segmenter (`__segN`); memory: the
    // calling thread's wasm memory (the CPU build's one instance in the page) and each pool worker's.
    const segmentOnce = (which = '__seg') => ours.page.evaluate(async (which) => {
      const marks = [];
      const t0 = performance.now();
      let total = 0;
      const seg = window[which];
      const r = await seg.segment(window.__img, { onProgress: (d, t) => { marks.push(performance.now() - t0); total = t; } });
      const ms = performance.now() - t0;
      const gaps = marks.slice(1).map((m, i) => m - marks[i]);
      const perTile = gaps.length ? gaps.reduce((a, b) => a + b, 0) / gaps.length : marks[0];
      const cpu = await import('/web/pkg/cpu/r2unet_wasm.js');
      return {
        ms, timeMs: r.timeMs, timings: r.timings, tiles: total, perTile, width: r.width, height: r.height, backend: r.backend,
        threads: r.threads, memory: cpu.memoryBytes(), pool: seg.poolMemoryBytes,
      };
    }, which);

    let ort1 = null, ortN = null;
    if (!ORT.skip) {
      const ortFrom = server.requests.length;
      for (const [threads, set] of [[1, (v) => { ort1 = v; }], [cpuThreadsN, (v) => { ortN = v; }]]) {
        try {
          const s = await ortSession(browser, { bundle: 'ort.wasm.min.mjs', ep: 'wasm', threads });
          await setImage(s.page, green);
          set(s);
        } catch (e) {
          set({ error: errText(e) });
        }
      }
      downloads.ortCpu = gzSize(fetched(ortFrom, undefined, ORT_PREFIXES));
    }

    // Warm-up (one image each), then REPS rounds in turn, medians: the machine is shared, so
    // interleaving keeps both sides under the same load.
    const plan = tilePlan(green.height, green.width, 256, 192, 8, CPU_WHOLE);
    const live = [ort1, ortN].filter((s) => s && !s.error);
    await segmentOnce('__seg');
    await segmentOnce('__segN');
    for (const s of live) await runTiles(s.page, plan);
    const runs = { ours: [], oursN: [], 1: [], N: [] };
    const loads = [];
    for (let i = 0; i < REPS; i++) {
      loads.push(loadAverage());
      runs.ours.push(await segmentOnce('__seg'));
      runs.oursN.push(await segmentOnce('__segN'));
      if (ort1 && !ort1.error) runs[1].push(await runTiles(ort1.page, plan));
      if (ortN && !ortN.error) runs.N.push(await runTiles(ortN.page, plan));
    }
    loads.push(loadAverage());
    notes.push(`load average (1 min) of the machine at each round of the CPU runs: ${loads.map((l) => l.toFixed(2)).join(', ')}`);
    const summary = (o, readyMs) => ({
      readyMs, backend: o[0].backend, tiles: o[0].tiles, size: `${o[0].width}x${o[0].height}`,
      ms: median(o.map((r) => r.ms)), tilePasses: median(o.map((r) => r.perTile * r.tiles)),
      // The model alone (every tile and the blend), as Segmenter.segment reports it: what ort's
      // session.run calls compute.
      model: median(o.map((r) => r.timings?.modelMs ?? NaN)),
      models: o.map((r) => r.timings?.modelMs ?? NaN),
      stages: o[0].timings, threads: o[0].threads, memory: o.at(-1).memory, pool: o.at(-1).pool,
    });
    oursCpu = summary(runs.ours, ready.readyMs);
    oursCpuN = summary(runs.oursN, ready.readyNMs);
    if (ort1) ortCpu1 = ort1.error ? ort1 : { ...ort1.info, readyMs: ort1.readyMs, ms: median(runs[1].map((r) => r.ms)), all: runs[1].map((r) => r.ms), tiles: plan.positions.length, plan };
    if (ortN) ortCpuN = ortN.error ? ortN : { ...ortN.info, readyMs: ortN.readyMs, ms: median(runs.N.map((r) => r.ms)), all: runs.N.map((r) => r.ms) };
    // For reference: ort on the other plan (256-pixel tiles when the image ran whole, else the
    // whole padded image in one pass): not what our Segmenter computes by default.
    if (ort1 && !ort1.error) {
      try {
        const whole = plan.positions.length === 1 ? tilePlan(green.height, green.width)
          : { tileH: roundUp(green.height, 8), tileW: roundUp(green.width, 8), positions: [[0, 0]] };
        await runTiles(ort1.page, whole);
        const t = [];
        for (let i = 0; i < Math.min(REPS, 2); i++) t.push((await runTiles(ort1.page, whole)).ms);
        ortWhole = { ms: min(t), size: `${whole.positions.length} x ${whole.tileW}x${whole.tileH}` };
      } catch (e) {
        ortWhole = { error: errText(e) };
      }
    }
    for (const s of [ours, ort1, ortN]) {
      if (s?.problems?.length) notes.push(`page problems: ${s.problems.slice(0, 3).join('; ')}`);
    }
  } finally {
    await browser.close();
  }

  // ---------------------------------------------------------------------------------------------
  // WebGPU (SwiftShader).
  browser = CPU_ONLY ? null : await launch({ webgpu: true });
  let oursGpu = null, ortGpu = null;
  if (CPU_ONLY) notes.push('WebGPU section skipped (R2UNET_BENCH_CPU_ONLY)');
  if (browser) try {
    const t0 = Date.now();
    const gpuFrom = server.requests.length;
    const { page } = await openPage(browser, PAGE);
    if (FULL) {
      const first = await timeDrop(page, '01_test.tif', image, 'image/tiff', 1_200_000);
      rows.push(['cold load to first mask (auto: WebGPU)', `${Date.now() - t0} ms`, first.backend]);
      const second = await timeDrop(page, '01_test.tif', image, 'image/tiff', 1_200_000);
      rows.push(['one DRIVE image 565x584, WebGPU (warm)', `${second.inference} ms`, second.backend]);
      oursGpu = { ms: second.inference, backend: second.backend, what: `the whole image (${tilePlan(584, 565).positions.length} tiles 256x256)` };
    } else {
      const piece = await page.evaluate(async (b64) => {
        const pkg = await import('./pkg/index.js');
        const p = await pkg.decodePreview(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
        const full = new OffscreenCanvas(p.width, p.height);
        full.getContext('2d').putImageData(new ImageData(p.data, p.width, p.height), 0, 0);
        const c = new OffscreenCanvas(128, 128);
        c.getContext('2d').drawImage(full, 300, 150, 128, 128, 0, 0, 128, 128);
        const png = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
        let s = '';
        for (const v of png) s += String.fromCharCode(v);
        return btoa(s);
      }, image.toString('base64'));
      const bytes = Buffer.from(piece, 'base64');
      const first = await timeDrop(page, 'piece.png', bytes, 'image/png', 600_000);
      rows.push(['cold load to first mask (auto: WebGPU), 128x128 piece', `${Date.now() - t0} ms`, first.backend]);
      const second = await timeDrop(page, 'piece.png', bytes, 'image/png', 600_000);
      rows.push(['128x128 piece of a DRIVE image, WebGPU (warm)', `${second.inference} ms`, second.backend]);
      rows.push(['(whole image on WebGPU: R2UNET_BENCH_WEBGPU_FULL=1; SwiftShader needs minutes)', '', '']);
      oursGpu = { ms: second.inference, backend: second.backend, what: 'a 128x128 piece (1 tile 128x128)' };
    }
    downloads.oursGpu = gzSize(fetched(gpuFrom, undefined, [OURS_PREFIX]));
    await page.context().close();

    if (!ORT.skip && green) {
      const ortFrom = server.requests.length;
      try {
        const s = await ortSession(browser, { bundle: 'ort.webgpu.min.mjs', ep: 'webgpu', threads: 1 });
        downloads.ortGpu = gzSize(fetched(ortFrom, undefined, ORT_PREFIXES));
        let img = green, plan = tilePlan(green.height, green.width);
        if (!FULL) {
          const data = Buffer.alloc(128 * 128);
          for (let y = 0; y < 128; y++) green.data.copy(data, y * 128, (150 + y) * green.width + 300, (150 + y) * green.width + 428);
          img = { width: 128, height: 128, data };
          plan = tilePlan(128, 128);
        }
        await setImage(s.page, img);
        // Warm-up: one tile of the timed shape (compiles the shaders), then the timed run(s).
        await runTiles(s.page, { ...plan, positions: plan.positions.slice(0, 1) });
        const t = [];
        for (let i = 0; i < (FULL ? 1 : 2); i++) t.push((await runTiles(s.page, plan)).ms);
        ortGpu = { ...s.info, ms: min(t), tiles: plan.positions.length, tile: `${plan.tileW}x${plan.tileH}` };
        if (s.problems.length) notes.push(`ort WebGPU page problems: ${s.problems.slice(0, 3).join('; ')}`);
      } catch (e) {
        ortGpu = { error: errText(e) };
      }
    }
  } finally {
    await browser?.close();
  }

  // ---------------------------------------------------------------------------------------------
  // The comparison table.
  if (ORT.skip) {
    notes.push(`onnxruntime-web comparison skipped: ${ORT.skip}`);
  } else {
    const o = oursCpu, n = oursCpuN, a = ortCpu1, b = ortCpuN;
    const tiles = a?.plan ? `${a.tiles} tiles ${a.plan.tileW}x${a.plan.tileH}` : '';
    const ortThreads = (x, asked) => (x && !x.error ? `${x.threads}${x.isolated ? '' : ' (not isolated!)'}` : String(asked));
    const failedOr = (x) => (x?.error ? `failed: ${x.error}` : ms(x?.ms));
    cmp.push([`CPU, 01_test.tif: the model only, 1 thread each (ours: timings.modelMs of Segmenter.segment, ${o.tiles} pass(es); ort: same ${tiles}, + sigmoid/blend in JS)`,
      ms(o.model), failedOr(a), ratio(o.model, a?.ms), `1 / ${ortThreads(a, 1)}`]);
    cmp.push([`CPU, 01_test.tif: the model only, ${THREADS} threads each (ours: the pool, ${n.tiles} bands with a halo; ort: numThreads ${THREADS})`,
      ms(n.model), failedOr(b), `${ratio(n.model, b?.ms)} (goal <= 0.8: ${n.model / b?.ms <= 0.8 ? 'met' : 'not met'})`, `${n.threads} / ${ortThreads(b, THREADS)}`]);
    cmp.push([`CPU, 1 -> ${THREADS} threads: time on ${THREADS} / time on 1 (the model only)`,
      ratio(n.model, o.model), ratio(b?.ms, a?.ms), '', `speed-up ours ${(o.model / n.model).toFixed(2)}x, ort ${(a?.ms / b?.ms).toFixed(2)}x`]);
    if (o.stages) notes.push(`ours, stages of one warm call on 1 thread (ms): decode ${o.stages.decodeMs.toFixed(0)}, preprocess ${o.stages.preprocessMs.toFixed(0)}, model ${o.stages.modelMs.toFixed(0)}, restore + threshold ${o.stages.finishMs.toFixed(0)}`);
    notes.push(`every round's model time (ms): ours 1 thread ${o.models.map((v) => v.toFixed(0)).join(', ')}; ours ${THREADS} threads ${n.models.map((v) => v.toFixed(0)).join(', ')}; ort 1 thread ${(a?.all ?? []).map((v) => v.toFixed(0)).join(', ')}; ort ${THREADS} threads ${(b?.all ?? []).map((v) => v.toFixed(0)).join(', ')}`);
    notes.push(`ours, WebAssembly memory: the calling thread's module ${mb(o.memory)} after the 1-thread runs (the whole image in one pass; ${mb(n.memory)} after all runs), each pool worker ${n.pool.map(mb).join(', ')} (module, model and one band's pass)`);
    cmp.push(['CPU, per image end to end, 1 thread (ours: Segmenter.segment = decode TIFF + retina preprocessing + tiles + blend + restore; ort: tiles only, no decode/preprocessing)',
      ms(o.ms), ms(a?.ms), ratio(o.ms, a?.ms), `1 / ${ortThreads(a, 1)}`]);
    cmp.push([`CPU, per image end to end, ${THREADS} threads (same)`,
      ms(n.ms), ms(b?.ms), ratio(n.ms, b?.ms), `${n.threads} / ${ortThreads(b, THREADS)}`]);
    cmp.push([`CPU, ort on the other tiling (${ortWhole?.size ?? 'n/a'}; reference only, not what ours ran)`,
      '', ortWhole?.error ? `failed: ${ortWhole.error}` : ms(ortWhole?.ms), '', `- / ${ortThreads(a, 1)}`]);
    cmp.push(['CPU, cold start to ready (ours: import + init + Segmenter.create with weights download; ort: import + InferenceSession.create)',
      ms(o.readyMs), ms(a?.readyMs), ratio(o.readyMs, a?.readyMs), `1 / ${ortThreads(a, 1)}`]);
    cmp.push([`CPU, ready on ${THREADS} threads (ours: a second Segmenter.create with threads ${THREADS}, the module and weights loaded: the pool's start; ort: a session with numThreads ${THREADS})`,
      ms(n.readyMs), ms(b?.readyMs), ratio(n.readyMs, b?.readyMs), `${n.threads} / ${ortThreads(b, THREADS)}`]);
    cmp.push([`WebGPU (SwiftShader), warm: ours page on ${oursGpu?.what}; ort ${ortGpu?.tiles ?? ''} tile(s) ${ortGpu?.tile ?? ''} of the same pixels`,
      `${ms(oursGpu?.ms)} (${oursGpu?.backend})`, ortGpu?.error ? `failed: ${ortGpu.error}` : ms(ortGpu?.ms), ratio(oursGpu?.ms, ortGpu?.ms),
      'GPU work on SwiftShader (CPU) both sides; ort wasm threads 1']);
    const oc = downloads.oursCpu, rc = downloads.ortCpu;
    if (oc && rc) {
      const r = oc.gz / rc.gz;
      cmp.push([`download for the retina task on the CPU, gzip -9 (ours: CPU .wasm + JS glue + ${PRECISION} .bpk; ort: .wasm + .mjs + f32 .onnx)`,
        mb(oc.gz), mb(rc.gz), `${r.toFixed(2)} (goal <= 0.25: ${r <= 0.25 ? 'met' : 'not met'})`, '']);
      notes.push(`ours CPU files (gzip): ${oc.parts.join(', ')}; raw ${mb(oc.raw)}`);
      const poolJs = readFileSync(join(ROOT, 'pkg/pool-worker.js'));
      notes.push(`the threads' own download: pool-worker.js, ${(gzipSync(poolJs, { level: 9 }).length / 1e3).toFixed(1)} kB gzip (${(poolJs.length / 1e3).toFixed(1)} kB raw); the pool workers reuse the CPU build's compiled module and the weights already loaded, so nothing else is fetched`);
      notes.push(`ort CPU files (gzip): ${rc.parts.join(', ')}; raw ${mb(rc.raw)}`);
      if (rc.onnxGz && PRECISION !== 'f32') {
        notes.push(`ort's .onnx holds f32 weights (${mb(rc.onnxGz)} gzip), our .bpk ${PRECISION} ones: the ONNX twin exports f32 as a PyTorch user's would; a quantised .onnx would shrink ort's download too`);
      }
    }
    const og = downloads.oursGpu, rg = downloads.ortGpu;
    if (og && rg) {
      cmp.push(['download for the retina task on WebGPU, gzip -9 (ours: CPU + WebGPU builds + .bpk; ort: WebGPU bundle + .onnx)',
        mb(og.gz), mb(rg.gz), ratio(og.gz, rg.gz), '']);
      notes.push(`ours WebGPU files (gzip): ${og.parts.join(', ')}`);
      notes.push(`ort WebGPU files (gzip): ${rg.parts.join(', ')}`);
    }
    if (ortGpu?.error) notes.push(`ort-web WebGPU EP failed: ${ortGpu.error}`);
  }
} finally {
  await server.close();
}

const pkg = join(ROOT, 'pkg');
const files = ['cpu/r2unet_wasm_bg.wasm', 'webgpu/r2unet_wasm_bg.wasm',
  ...readdirSync(join(pkg, 'models')).filter((f) => f.endsWith('.bpk')).map((f) => `models/${f}`)];
for (const f of files) {
  const path = join(pkg, f);
  try {
    const raw = statSync(path).size;
    const gz = gzipSync(readFileSync(path), { level: 9 }).length;
    rows.push([`size ${relative(ROOT, path)}`, `${(raw / 1e6).toFixed(2)} MB raw, ${(gz / 1e6).toFixed(2)} MB gzip`, '']);
  } catch {
    rows.push([`size ${f}`, 'not built', '']);
  }
}
console.log(`Chromium ${chromium}, ${new Date().toISOString().slice(0, 10)}`);
console.log('| measure | value | backend |\n|---|---|---|');
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);

if (cmp.length || notes.length) {
  console.log(`\n### r2unet vs onnxruntime-web ${ORT.version ?? ''} (same run, same Chromium, one local server)\n`);
  if (cmp.length) {
    console.log([
      `- ort side: ${relative(ROOT, ONNX)}, the PyTorch twin (bench/torch_r2unet.py, same R2U-Net 16-32-64-128, t = 2) exported to ONNX with **random weights: speed only**, no masks compared.`,
      `- ours: r2unet-wasm CPU build (burn-flex + wasm SIMD128) on 1 thread and on ${THREADS} (the package's pool: ${THREADS - 1} worker(s) with their own instance of the same build, no cross-origin isolation needed), and the WebGPU build; the shipped retina model (${PRECISION} weights file, computed in f32).`,
      `- what each side computes on 01_test.tif (${oursCpu?.size}): our Segmenter's default CPU plan on the preprocessed image (one pass when it has at most ${CPU_WHOLE} pixels, else tile 256, stride 192; here ${oursCpu?.tiles} tile(s), Gaussian blend); ort runs the same ${ortCpu1?.tiles ?? 'n/a'} tile(s) ${ortCpu1?.plan ? `${ortCpu1.plan.tileW}x${ortCpu1.plan.tileH}` : ''} (green channel / 255, one session.run each, sigmoid and Gaussian blend in JS).`,
      `- ort threads: ort.env.wasm.numThreads as shown; the pages are cross-origin isolated (COOP/COEP): ${ortCpu1?.isolated ?? '?'}. Medians of ${REPS} interleaved rounds after one warm-up each; the machine is shared, compare ratios.`,
    ].join('\n'));
    console.log('\n| measure | r2unet | onnxruntime-web | ours / ort | threads (ours / ort) |\n|---|---|---|---|---|');
    for (const r of cmp) console.log(`| ${r.join(' | ')} |`);
  }
  for (const n of notes) console.log(`- ${n}`);
}
console.log(`\n(bench run: ${((Date.now() - startedAt) / 1000).toFixed(0)} s)`);
