// Shared helpers for the Playwright tests: Debian's Chromium with the flags of TOOLCHAIN.md, real
// DRIVE files from the data folder, dropping a file on the page, Dice against the label.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DATA = process.env.R2UNET_DATA ?? join(ROOT, '../shared/data');
export const DRIVE_IMAGE = join(DATA, 'DRIVE/test/images/01_test.tif');
export const DRIVE_LABEL = join(DATA, 'DRIVE/test/1st_manual/01_manual1.gif');
export const HAVE_DRIVE = existsSync(DRIVE_IMAGE) && existsSync(DRIVE_LABEL);
// The page's lung sample (web/samples/, copied by scripts/build-wasm.sh) and its mask.
export const LUNG_SAMPLE = 'lung_ID_0151_Z_0140.tif';
export const LUNG_LABEL = join(DATA, 'LUNG/2d_masks/ID_0151_Z_0140.tif');
export const HAVE_LUNG = existsSync(join(ROOT, 'web/samples', LUNG_SAMPLE)) && existsSync(LUNG_LABEL);

const FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

/** Chromium with WebGPU (SwiftShader) or without any WebGPU adapter. */
export async function launch({ webgpu }) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: webgpu ? [...FLAGS, '--enable-unsafe-webgpu'] : FLAGS,
    timeout: 60_000,
  });
}

/**
 * A page that records what matters: requests to any other origin, page errors, console errors
 * (from the page and its workers).
 */
export async function openPage(browser, url) {
  const context = await browser.newContext({ acceptDownloads: true });
  const origin = new URL(url).origin;
  const offsite = [];
  const problems = [];
  context.on('request', (r) => {
    const u = r.url();
    if (u.startsWith('data:') || u.startsWith('blob:')) return;
    if (new URL(u).origin !== origin) offsite.push(u);
  });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') problems.push(`worker console: ${m.text()}`); }));
  await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  return { context, page, offsite, problems };
}

/** Drops a file on the drop zone, as a person dragging it from their desktop would. */
export async function dropFile(page, name, bytes, type = '') {
  const dataTransfer = await page.evaluateHandle(({ name, b64, type }) => {
    const bin = atob(b64);
    const arr = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i);
    const dt = new DataTransfer();
    dt.items.add(new File([arr], name, { type }));
    return dt;
  }, { name, b64: Buffer.from(bytes).toString('base64'), type });
  await page.dispatchEvent('[data-testid=drop-zone]', 'drop', { dataTransfer });
}

/** Waits until the page is done or failed; returns the state, the status and the error text. */
export async function settle(page, timeout) {
  await page.waitForFunction(() => {
    const s = document.body.dataset.state;
    return s === 'done' || s === 'error';
  }, null, { timeout, polling: 250 });
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    backend: document.body.dataset.backend,
    status: document.querySelector('[data-testid=status]').textContent,
    error: document.querySelector('[data-testid=error]').textContent,
  }));
}

/** Dice of the page's mask canvas against a label image (decoded by the browser: GIF). */
export async function diceAgainst(page, labelBytes) {
  return page.evaluate(async (b64) => {
    const bin = atob(b64);
    const arr = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i);
    const label = await createImageBitmap(new Blob([arr]));
    const canvas = document.querySelector('[data-testid=canvas-mask]');
    if (canvas.width !== label.width || canvas.height !== label.height) {
      throw new Error(`mask is ${canvas.width}x${canvas.height}, label ${label.width}x${label.height}`);
    }
    const mask = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const oc = new OffscreenCanvas(label.width, label.height);
    const ctx = oc.getContext('2d');
    ctx.drawImage(label, 0, 0);
    const truth = ctx.getImageData(0, 0, label.width, label.height).data;
    let tp = 0, pred = 0, gt = 0;
    for (let i = 0; i < mask.length; i += 4) {
      const m = mask[i] > 127, t = truth[i] > 127;
      tp += m && t; pred += m; gt += t;
    }
    return { dice: (2 * tp) / (pred + gt), pred, gt };
  }, Buffer.from(labelBytes).toString('base64'));
}

/**
 * Dice of the page's mask canvas against a label the browser cannot decode (TIFF): the package's
 * own decoder reads it, as the page does for its previews.
 */
export async function diceAgainstDecoded(page, labelBytes) {
  return page.evaluate(async (b64) => {
    const bin = atob(b64);
    const arr = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i);
    const label = await (await import('./pkg/index.js')).decodePreview(arr);
    const canvas = document.querySelector('[data-testid=canvas-mask]');
    if (canvas.width !== label.width || canvas.height !== label.height) {
      throw new Error(`mask is ${canvas.width}x${canvas.height}, label ${label.width}x${label.height}`);
    }
    const mask = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let tp = 0, pred = 0, gt = 0;
    for (let i = 0; i < mask.length; i += 4) {
      const m = mask[i] > 127, t = label.data[i] > 127;
      tp += m && t; pred += m; gt += t;
    }
    return { dice: (2 * tp) / (pred + gt), pred, gt };
  }, Buffer.from(labelBytes).toString('base64'));
}

export const readDrive = async () => ({ image: await readFile(DRIVE_IMAGE), label: await readFile(DRIVE_LABEL) });
