// Browser benchmark of the page (scripts/bench-browser.sh): in headless Chromium, prints
//   - cold load to first mask: page load, package, weights download, first DRIVE image (auto backend)
//   - per-image time for one DRIVE image on the CPU build (second run, warm)
//   - per-image time on WebGPU: the whole image with R2UNET_BENCH_WEBGPU_FULL=1 (minutes on
//     SwiftShader), else a 128x128 piece and a note
//   - the package sizes (raw and gzip -9)
// Numbers are printed, never asserted.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, relative } from 'node:path';
import { serve } from './server.mjs';
import { HAVE_DRIVE, ROOT, dropFile, launch, openPage, readDrive, settle } from './browser.mjs';

if (!HAVE_DRIVE) {
  console.log('SKIPPED: browser benchmark: no DRIVE data');
  process.exit(0);
}
const { image } = await readDrive();
const server = await serve(join(ROOT, 'web'));
const rows = [];

async function timeDrop(page, name, bytes, type, timeout) {
  const t0 = Date.now();
  await dropFile(page, name, bytes, type);
  const r = await settle(page, timeout);
  if (r.state !== 'done') throw new Error(`${name}: ${r.error}`);
  const inference = Number(/inference (\d+) ms/.exec(r.status)?.[1]);
  return { wall: Date.now() - t0, inference, backend: r.backend };
}

try {
  // CPU: a browser without a WebGPU adapter, so 'auto' runs the CPU build.
  let browser = await launch({ webgpu: false });
  try {
    const t0 = Date.now();
    const { page } = await openPage(browser, server.url);
    const first = await timeDrop(page, '01_test.tif', image, 'image/tiff', 300_000);
    rows.push(['cold load to first mask (CPU build, no WebGPU adapter)', `${Date.now() - t0} ms`, first.backend]);
    const second = await timeDrop(page, '01_test.tif', image, 'image/tiff', 300_000);
    rows.push(['one DRIVE image 565x584, CPU build (warm; Segmenter.segment)', `${second.inference} ms`, second.backend]);
  } finally {
    await browser.close();
  }

  browser = await launch({ webgpu: true });
  try {
    const t0 = Date.now();
    const { page } = await openPage(browser, server.url);
    if (process.env.R2UNET_BENCH_WEBGPU_FULL) {
      const first = await timeDrop(page, '01_test.tif', image, 'image/tiff', 1_200_000);
      rows.push(['cold load to first mask (auto: WebGPU)', `${Date.now() - t0} ms`, first.backend]);
      const second = await timeDrop(page, '01_test.tif', image, 'image/tiff', 1_200_000);
      rows.push(['one DRIVE image 565x584, WebGPU (warm)', `${second.inference} ms`, second.backend]);
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
    }
  } finally {
    await browser.close();
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
console.log(`Chromium ${(await (async () => { const b = await launch({ webgpu: false }); const v = b.version(); await b.close(); return v; })())}, ${new Date().toISOString().slice(0, 10)}`);
console.log('| measure | value | backend |\n|---|---|---|');
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
