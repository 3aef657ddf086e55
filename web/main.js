// UI for the r2unet page. All model work happens in ./worker.js; this file reads files, draws
// previews and results, and re-renders mask and overlay from the stored probabilities when the
// sliders move (the model is not run again). The worker also measures the mask (the package's
// `measure`), again when the threshold or the scale changes.

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const els = {
  task: /** @type {HTMLSelectElement} */ ($('task')),
  backend: /** @type {HTMLSelectElement} */ ($('backend')),
  flips: /** @type {HTMLInputElement} */ ($('flips')),
  dropZone: $('drop-zone'),
  fileInput: /** @type {HTMLInputElement} */ ($('file-input')),
  weightsInput: /** @type {HTMLInputElement} */ ($('weights-input')),
  status: $('status'),
  progress: /** @type {HTMLProgressElement} */ ($('progress')),
  cancel: /** @type {HTMLButtonElement} */ ($('cancel')),
  downloadRow: $('download-status'),
  downloadText: $('download-text'),
  downloadProgress: /** @type {HTMLProgressElement} */ ($('download-progress')),
  error: $('error'),
  note: $('note'),
  threshold: /** @type {HTMLInputElement} */ ($('threshold')),
  thresholdValue: /** @type {HTMLOutputElement} */ ($('threshold-value')),
  opacity: /** @type {HTMLInputElement} */ ($('opacity')),
  opacityValue: /** @type {HTMLOutputElement} */ ($('opacity-value')),
  download: /** @type {HTMLButtonElement} */ ($('download')),
  canvasInput: /** @type {HTMLCanvasElement} */ ($('canvas-input')),
  canvasProbability: /** @type {HTMLCanvasElement} */ ($('canvas-probability')),
  canvasMask: /** @type {HTMLCanvasElement} */ ($('canvas-mask')),
  canvasOverlay: /** @type {HTMLCanvasElement} */ ($('canvas-overlay')),
  measurements: /** @type {HTMLElement} */ (document.querySelector('[data-testid=measurements]')),
  measurementsTable: /** @type {HTMLTableElement} */ ($('measurements-table')),
  measurementsCaption: $('measurements-caption'),
  measurementsBody: $('measurements-body'),
  measurementNotes: $('measurement-notes'),
  scaleError: $('scale-error'),
  scaleInputs: /** @type {HTMLInputElement[]} */ ([...document.querySelectorAll('input[data-scale]')]),
  downloadMeasurements: /** @type {HTMLButtonElement} */ ($('download-measurements')),
};

const app = {
  worker: null,
  nextId: 1,
  currentId: null,     // id of the request whose answers we still want
  bytes: null,         // ArrayBuffer of the current file (kept: every request sends a copy)
  name: 'image',
  format: null,        // sniffed format name, or null when the wasm side cannot decode it
  bitmap: null,        // ImageBitmap of the input, or null when the browser cannot decode it
  result: null,        // {width, height, probabilities, mask, threshold, backend, timeMs}
  basePixels: null,    // input as RGBA at the result's size, for the overlay
  renderQueued: false,
  lastTask: 'retina',  // task of the request in flight, for status text
  gen: 0,              // bumped by every new file or sample, so a slow older load cannot win
  weights: null,       // {key, bytes: ArrayBuffer, name} of user weights, or null for the shipped ones
  runThreshold: 0.5,   // the threshold the request in flight was sent with
  runScale: '',        // and its scale, as JSON
  fov: null,           // the result's field of view (retina), for measuring again
  measured: null,      // {task, threshold, measurements} shown in the table, or null
  measureId: null,     // id of the 'measure' request whose answer we still want
  pendingThreshold: 0.5, // the threshold of that request's mask
  workerRestarts: 0,   // how many times a dead or stalled worker was replaced
  runGen: 0,           // the image (app.gen) the request in flight belongs to
  watchdog: 0,         // timer that replaces a worker silent for STALL_MS while a request is out
};

// ---------------------------------------------------------------------------------------------
// State, status, errors

function setState(state) {
  document.body.dataset.state = state;
  // Cancel is offered while a file loads, the model loads or runs.
  const busy = state === 'loading-model' || state === 'running';
  els.cancel.hidden = !busy;
  if (!busy) els.cancel.disabled = false;
  if (!busy) hideDownload();
}

function setStatus(text) {
  els.status.textContent = text;
}

/** Megabytes with one decimal. */
const mb = (bytes) => (bytes / 1e6).toFixed(1);

/** A download report from the package (via the worker): what loads, how far, in MB. */
function showDownload(msg) {
  if (msg.cached) return;                  // nothing to download (Cache API, or loaded before)
  const what = msg.file === 'wasm' ? 'the WebAssembly module' : `the ${app.lastTask} model's weights`;
  const loaded = Number(msg.loaded);
  const total = msg.total === null || msg.total === undefined ? null : Number(msg.total);
  els.downloadText.textContent = total !== null
    ? `Downloading ${what}: ${mb(loaded)} of ${mb(total)} MB`
    : `Downloading ${what}: ${mb(loaded)} MB`;
  if (total !== null && total > 0) {
    els.downloadProgress.max = total;
    els.downloadProgress.value = Math.min(loaded, total);
  } else {
    els.downloadProgress.removeAttribute('value');   // size unknown: indeterminate
  }
  els.downloadRow.hidden = false;
}

function hideDownload() {
  els.downloadRow.hidden = true;
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = false;
  setStatus('Failed.');
  setProgress(0, 1);
  setState('error');
}

function clearError() {
  els.error.textContent = '';
  els.error.hidden = true;
}

function showNote(text) {
  els.note.textContent = text ?? '';
  els.note.hidden = !text;
}

function setProgress(done, total) {
  if (done === null) {                       // indeterminate
    els.progress.removeAttribute('value');
    els.progress.textContent = '';
    return;
  }
  const max = total > 0 ? total : 1;
  els.progress.max = max;
  els.progress.value = Math.min(done, max);
  els.progress.textContent = `${Math.round((100 * done) / max)}%`;
}

function messageOf(err) {
  if (err instanceof Error) return err.message || String(err);
  return String(err);
}

// ---------------------------------------------------------------------------------------------
// Worker

/**
 * How long (ms) the worker may send nothing at all while a request is out before the page takes
 * it for hung (an endless loop, a wasm call that never returns: no `error` event comes) and
 * replaces it. A run reports every tile (every band on the CPU's pool, every pass with the four
 * flips) and every downloaded chunk, so the limit only has to cover the longest single step of a
 * healthy run. Measured on the 2-core development machine under load 2-5 (web/README.md, "Page
 * parameters"): on the CPU at most 5.4 s (a 4000x4000 PNG: decoding and preprocessing before its
 * first band; a DRIVE image's band 3.5 s); on WebGPU through SwiftShader (a GPU emulated on the
 * CPU, as in the tests) 33-37 s per 256x256 tile. 180 s is 5x that tile and 30x the CPU's step,
 * so a slower machine is not cut off; a hung worker still gets replaced within 3 minutes.
 * `?stall=SECONDS` in the page's URL sets another limit (the tests use a short one).
 */
const STALL_MS = stallLimitMs(180);

/**
 * The stall limit from the URL's `stall` (seconds), else `defaultSeconds`; in ms. A value that is
 * not a number above 0 is ignored, and so is one past setTimeout's range (about 24 days), which
 * would fire at once.
 */
function stallLimitMs(defaultSeconds) {
  const seconds = Number(new URLSearchParams(location.search).get('stall'));
  return 1000 * (seconds > 0 && seconds <= 2e6 ? seconds : defaultSeconds);
}

function getWorker() {
  if (app.worker) return app.worker;
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.addEventListener('message', (event) => {
    onWorkerMessage(event);
    watch();                                         // any message shows it is alive
  });
  // The worker died (an uncaught error, out of memory, a message it could not read): it is
  // replaced by a fresh one at once, the run it had (if any) is dropped, and the page says so.
  const fail = (event) => {
    event.preventDefault?.();
    const detail = event.message ? ` (${event.message})` : '';
    replaceWorker(worker, `The segmentation worker stopped (out of memory?)${detail}; it was restarted.`);
  };
  worker.addEventListener('error', fail);
  worker.addEventListener('messageerror', fail);
  app.worker = worker;
  return worker;
}

/**
 * Terminates `worker` (dead, or hung) and starts a fresh one; the request it had (if any) is
 * dropped, so its answer is never drawn, and the page says `text`.
 */
function replaceWorker(worker, text) {
  if (app.worker !== worker) return;                 // an older worker, already replaced
  worker.terminate();
  app.worker = null;
  clearTimeout(app.watchdog);
  if (app.measureId !== null) {                      // its answer will not come either
    app.measureId = null;
    measurementsFailed(`${text} Change the threshold or the scale to measure again.`);
  }
  app.workerRestarts += 1;
  document.body.dataset.workerRestarts = String(app.workerRestarts);
  try { getWorker(); } catch { /* the next request tries again */ }
  if (app.currentId !== null) {
    app.currentId = null;
    showError(`${text} Drop the image again, or a smaller one.`);
  } else {
    showNote(text);
  }
}

/**
 * (Re)starts the watchdog: called when a request goes out and on every message from the worker.
 * With nothing out, it stops (an idle worker sends nothing, rightly).
 */
function watch() {
  clearTimeout(app.watchdog);
  if (app.currentId === null && app.measureId === null) return;
  const worker = app.worker;
  app.watchdog = setTimeout(() => {
    if (app.currentId === null && app.measureId === null) return;
    replaceWorker(worker, `The segmentation worker stopped answering for ${STALL_MS / 1000} s; it was restarted.`);
  }, STALL_MS);
}

function onWorkerMessage(event) {
  const msg = event.data;
  if (msg && msg.id !== null && msg.id === app.measureId) {   // measured again (threshold, scale)
    app.measureId = null;
    if (msg.type === 'measurements') showMeasurements(msg.measurements, app.pendingThreshold);
    else measurementsFailed(msg.message || 'Something went wrong.');
    return;
  }
  if (!msg || msg.id !== app.currentId) return;        // an answer to a superseded request
  switch (msg.type) {
    case 'status':
      if (msg.state === 'loading-model') {
        setState('loading-model');
        setStatus(`Loading the ${app.lastTask} model…`);
        setProgress(null);
      } else if (msg.state === 'running') {
        hideDownload();                  // the model is ready
        setState('running');
        setStatus('Running the model…');
        setProgress(0, 1);
      }
      break;
    case 'download':
      showDownload(msg);
      break;
    case 'cancelled':
      onCancelled();
      break;
    case 'progress':
      setProgress(msg.done, msg.total);   // the status line (aria-live) is not updated per tile
      break;
    case 'preview':
      onPreview(msg);
      break;
    case 'result':
      app.currentId = null;
      if (app.runGen !== app.gen) break;    // a result for an image no longer shown: never drawn
      onResult(msg);
      break;
    case 'error':
      app.currentId = null;
      showError(msg.message || 'Something went wrong.');
      break;
    default:
      break;
  }
}

/**
 * Forgets the request in flight, and tells the worker to stop it (a newer image or setting
 * replaces it; its answers are ignored from now on).
 */
function dropCurrent() {
  if (app.currentId !== null) app.worker?.postMessage({ type: 'cancel', id: app.currentId });
  app.currentId = null;
}

/** The Cancel button: stops the run (or the download) in flight; the page stays usable. */
function cancelRun() {
  if (app.currentId !== null && app.worker) {
    app.worker.postMessage({ type: 'cancel', id: app.currentId });
    els.cancel.disabled = true;
    setStatus('Cancelling…');          // the worker answers 'cancelled' (or the result, if first)
  } else {
    app.gen++;                         // a file still being read: drop it
    onCancelled();
  }
}

function onCancelled() {
  app.currentId = null;
  setProgress(0, 1);
  setStatus('Cancelled. Drop an image, pick a sample or change a setting to run again.');
  setState('cancelled');
}

// ---------------------------------------------------------------------------------------------
// Input

/** The format name when the wasm side decodes it (by magic bytes), else null. */
function sniff(buffer) {
  const b = new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength));
  const starts = (...sig) => sig.every((v, i) => b[i] === v);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'PNG';
  if (starts(0xff, 0xd8, 0xff)) return 'JPEG';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'TIFF';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'GIF';
  if (starts(0x42, 0x4d)) return 'BMP';
  if (b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x37) return 'PNM';
  return null;
}

async function decodePreview(buffer) {
  try {
    return await createImageBitmap(new Blob([buffer]));
  } catch {
    return null;
  }
}

function drawPlaceholder(canvas, text) {
  canvas.width = 320;
  canvas.height = 200;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#222';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#fff';
  ctx.font = '16px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, canvas.width / 2, canvas.height / 2);
}

function clearCanvas(canvas) {
  canvas.width = 1;
  canvas.height = 1;
  canvas.getContext('2d').clearRect(0, 0, 1, 1);
}

function resetResult() {
  app.result = null;
  app.basePixels = null;
  app.fov = null;
  app.measureId = null;
  clearMeasurements();
  els.download.disabled = true;
  document.body.dataset.backend = '';
  delete document.body.dataset.shownRun;      // which request's result is shown (tests read it)
  delete document.body.dataset.shownImage;
  for (const c of [els.canvasProbability, els.canvasMask, els.canvasOverlay]) clearCanvas(c);
}

/** Takes a new image (bytes of an encoded file) and runs the model on it. */
async function loadImage(buffer, name, gen = ++app.gen) {
  if (gen !== app.gen) return;
  dropCurrent();                        // stop the previous image's run; ignore its answers
  setState('loading-model');            // busy from here on, so tests never see a stale 'done'
  clearError();
  showNote('');
  resetResult();
  if (app.bitmap) { app.bitmap.close(); app.bitmap = null; }
  app.bytes = null;
  app.name = name || 'image';

  if (!buffer || buffer.byteLength === 0) {
    clearCanvas(els.canvasInput);
    showError(`Could not read this file: ${app.name} is empty (0 bytes).`);
    return;
  }
  const format = sniff(buffer);
  const bitmap = await decodePreview(buffer);
  if (gen !== app.gen) { bitmap?.close(); return; }
  if (!format && !bitmap) {
    clearCanvas(els.canvasInput);
    showError(`Could not read this file: ${app.name} is not a PNG, JPEG, TIFF, BMP, GIF or PPM/PGM image.`);
    return;
  }
  app.bytes = buffer;
  app.format = format;
  app.bitmap = bitmap;

  if (bitmap) {
    els.canvasInput.width = bitmap.width;
    els.canvasInput.height = bitmap.height;
    els.canvasInput.getContext('2d').drawImage(bitmap, 0, 0);
  } else {
    // The browser cannot show it (TIFF, some 16-bit files): the worker decodes a preview.
    drawPlaceholder(els.canvasInput, `Decoding ${format ?? 'this'} file…`);
  }
  run();
}

async function loadFile(file) {
  if (!file) return;
  const gen = ++app.gen;
  dropCurrent();
  setState('loading-model');
  setStatus(`Reading ${file.name}…`);
  let buffer;
  try {
    buffer = await file.arrayBuffer();
  } catch (err) {
    if (gen !== app.gen) return;
    clearError();
    showError(`Could not read this file: ${file.name}: ${messageOf(err)}`);
    return;
  }
  await loadImage(buffer, file.name, gen);
}

async function loadSample(name, task) {
  if (task && [...els.task.options].some((o) => o.value === task)) els.task.value = task;
  const gen = ++app.gen;
  dropCurrent();
  setState('loading-model');
  clearError();
  setStatus(`Loading the sample ${name}…`);
  let buffer;
  try {
    const response = await fetch(`./samples/${encodeURIComponent(name)}`);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    buffer = await response.arrayBuffer();
  } catch (err) {
    if (gen !== app.gen) return;
    showError(`Could not load the sample ${name}: ${messageOf(err)}`);
    return;
  }
  await loadImage(buffer, name, gen);
}

/** Sends the current image to the worker with the current task and backend. */
function run() {
  if (!app.bytes) return;
  dropCurrent();
  clearError();
  resetResult();
  const id = app.nextId++;
  const task = els.task.value;
  const backend = els.backend.value;
  const threshold = Number(els.threshold.value);
  const flips = els.flips.checked;
  showScaleFields();                    // a sample may have changed the task
  const scale = readScale();
  const msg = { type: 'segment', id, task, backend, threshold, flips, wantPreview: !app.bitmap, scale };
  app.runThreshold = threshold;
  app.runScale = JSON.stringify(scale ?? {});
  if (app.weights) {
    msg.weights = app.weights.bytes.slice(0);   // a copy: kept here for later runs
    msg.weightsKey = app.weights.key;
  }
  let transfer;
  if (app.format || !app.bitmap) {
    msg.bytes = app.bytes.slice(0);     // a copy: the original stays here for re-runs
    transfer = [msg.bytes];
    if (msg.weights) transfer.push(msg.weights);
  } else {
    // A format only the browser decodes (e.g. WebP): send the decoded RGBA pixels instead.
    const { width, height } = app.bitmap;
    const ctx = new OffscreenCanvas(width, height).getContext('2d');
    ctx.drawImage(app.bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, width, height).data.buffer;
    msg.image = { width, height, data };
    transfer = [data];
    if (msg.weights) transfer.push(msg.weights);
  }
  app.currentId = id;
  app.runGen = app.gen;                 // the image this request belongs to
  document.body.dataset.runId = String(id);
  app.lastTask = task;
  setState('loading-model');
  setStatus(`Loading the ${task} model…`);
  setProgress(null);
  try {
    getWorker().postMessage(msg, transfer);
  } catch (err) {
    app.currentId = null;
    showError(`Could not start the background worker: ${messageOf(err)}`);
  }
  watch();
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** An RGBA preview the worker decoded (formats the browser cannot show, e.g. TIFF). */
async function onPreview(msg) {
  const gen = app.gen;
  const image = new ImageData(new Uint8ClampedArray(msg.data.buffer ?? msg.data), msg.width, msg.height);
  const bitmap = await createImageBitmap(image);
  if (gen !== app.gen) { bitmap.close(); return; }
  if (app.bitmap) app.bitmap.close();
  app.bitmap = bitmap;
  els.canvasInput.width = image.width;
  els.canvasInput.height = image.height;
  els.canvasInput.getContext('2d').putImageData(image, 0, 0);
  if (app.result) {                      // the result came first: redraw the overlay on the picture
    app.basePixels = basePixels(app.result.width, app.result.height);
    renderMaskAndOverlay();
  }
}

function onResult(msg) {
  const { width, height, probabilities, mask, backend, timeMs } = msg;
  app.result = {
    width, height, probabilities, mask, backend, timeMs,
    threshold: app.runThreshold,      // the mask's: the slider may have moved since
  };
  app.fov = msg.fov ?? null;
  app.basePixels = basePixels(width, height);
  const bm = app.bitmap;
  if (bm && (bm.width !== width || bm.height !== height)) {
    showNote(`The preview is ${bm.width}×${bm.height} but the model saw ${width}×${height}; ` +
      'the overlay scales the preview to fit.');
  }
  renderProbability();
  renderMaskAndOverlay();
  els.download.disabled = false;
  setProgress(1, 1);
  const ms = Number.isFinite(timeMs) ? Math.round(timeMs) : '?';
  const refined = msg.flips ? ', four flips averaged' : '';
  // The CPU's thread count beside the backend (the package's pool of workers).
  const threads = backend === 'cpu' && Number(msg.threads) > 0 ? ` (${msg.threads} thread${msg.threads === 1 ? '' : 's'})` : '';
  setStatus(`Done: backend ${backend}${threads}${refined}, inference ${ms} ms, ${width}×${height} pixels.`);
  if (msg.fallbackReason && els.backend.value === 'auto') {
    showNote(`Running on the CPU: ${msg.fallbackReason}.`);
  }
  if (msg.threadsNote) showNote(`${els.note.hidden ? '' : `${els.note.textContent} `}Fewer threads: ${msg.threadsNote}.`);
  if (msg.measurements) showMeasurements(msg.measurements, app.runThreshold);
  // The slider or the scale moved while the model ran: measure the mask shown.
  if (Number(els.threshold.value) !== app.runThreshold || JSON.stringify(readScale() ?? {}) !== app.runScale) {
    remeasure();
  }
  document.body.dataset.shownRun = String(msg.id);
  document.body.dataset.shownImage = app.name;
  document.body.dataset.backend = backend;   // set before 'done' so waiters see both
  document.body.dataset.threads = String(msg.threads ?? 1);
  setState('done');
}

/** The input as RGBA at the result's size (black when the browser cannot decode it). */
function basePixels(width, height) {
  const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, width, height);
  if (app.bitmap) ctx.drawImage(app.bitmap, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

function putPixels(canvas, image) {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d').putImageData(image, 0, 0);
}

function renderProbability() {
  const { width, height, probabilities: p } = app.result;
  const image = new ImageData(width, height);
  const d = image.data;
  for (let i = 0, j = 0; i < p.length; i++, j += 4) {
    const v = p[i] * 255 + 0.5;               // Uint8ClampedArray clamps (NaN becomes 0)
    d[j] = v; d[j + 1] = v; d[j + 2] = v; d[j + 3] = 255;
  }
  putPixels(els.canvasProbability, image);
}

/** The 0/255 mask at threshold t: the worker's when t is the one it used, else p >= t. */
function maskAt(t) {
  const r = app.result;
  if (t === r.threshold) return r.mask;
  const m = new Uint8Array(r.probabilities.length);
  const p = r.probabilities;
  for (let i = 0; i < p.length; i++) m[i] = p[i] >= t ? 255 : 0;
  return m;
}

function renderMaskAndOverlay() {
  const r = app.result;
  if (!r) return;
  const t = Number(els.threshold.value);
  const a = Number(els.opacity.value);
  const m = maskAt(t);
  const { width, height } = r;

  const maskImage = new ImageData(width, height);
  const md = maskImage.data;
  const overlay = new ImageData(width, height);
  const od = overlay.data;
  const base = app.basePixels.data;
  const keep = 1 - a;
  const red = 255 * a;
  for (let i = 0, j = 0; i < m.length; i++, j += 4) {
    const on = m[i] !== 0;
    const v = on ? 255 : 0;
    md[j] = v; md[j + 1] = v; md[j + 2] = v; md[j + 3] = 255;
    if (on) {
      od[j] = base[j] * keep + red;
      od[j + 1] = base[j + 1] * keep;
      od[j + 2] = base[j + 2] * keep;
    } else {
      od[j] = base[j]; od[j + 1] = base[j + 1]; od[j + 2] = base[j + 2];
    }
    od[j + 3] = 255;
  }
  putPixels(els.canvasMask, maskImage);
  putPixels(els.canvasOverlay, overlay);
}

function queueRender() {
  if (app.renderQueued) return;
  app.renderQueued = true;
  requestAnimationFrame(() => {
    app.renderQueued = false;
    renderMaskAndOverlay();
  });
}

function downloadMask() {
  if (!app.result) return;
  els.canvasMask.toBlob((blob) => {
    if (!blob) {
      showError('Could not encode the mask as PNG.');
      return;
    }
    save(blob, `${app.name.replace(/\.[^.]*$/, '') || 'image'}_mask.png`);
  }, 'image/png');
}

// ---------------------------------------------------------------------------------------------
// Measurements

/**
 * The scale the user gave (`MeasureScale`), or undefined for none. A field that is not a number
 * within its bounds (min exclusive, max inclusive) is marked and left out.
 * @returns {import('./pkg/index.js').MeasureScale | undefined}
 */
function readScale() {
  /** @type {Record<string, number>} */
  const scale = {};
  const bad = [];
  for (const input of els.scaleInputs) {
    const text = input.value.trim();
    const v = Number(text);
    const shown = !(/** @type {HTMLElement | null} */ (input.closest('[data-tasks]'))?.hidden);  // not another task's
    const ok = !shown || text === '' || (Number.isFinite(v) && v > Number(input.min) && v <= Number(input.max));
    input.setAttribute('aria-invalid', String(!ok));
    if (!ok) bad.push(`${input.labels?.[0]?.textContent ?? input.id}: must be a number above 0 and at most ${input.max}`);
    if (ok && shown && text !== '') scale[input.dataset.scale] = v;
  }
  els.scaleError.textContent = bad.join('\n');
  els.scaleError.hidden = bad.length === 0;
  return Object.keys(scale).length ? scale : undefined;
}

/** Shows the scale fields of the chosen task only. */
function showScaleFields() {
  for (const field of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-tasks]'))) {
    field.hidden = !field.dataset.tasks.split(' ').includes(els.task.value);
  }
}

/** Measures the mask shown again (a new threshold or scale), in the worker: no model run. */
function remeasure() {
  const r = app.result;
  if (!r) return;
  const threshold = Number(els.threshold.value);
  const id = app.nextId++;
  app.measureId = id;
  app.pendingThreshold = threshold;
  els.measurements.dataset.state = 'pending';
  const mask = maskAt(threshold);
  try {
    getWorker().postMessage({
      type: 'measure', id, task: app.lastTask, width: r.width, height: r.height, mask, fov: app.fov, scale: readScale(),
    });
  } catch (err) {
    app.measureId = null;
    measurementsFailed(`Could not measure: ${messageOf(err)}`);
  }
  watch();
}

function clearMeasurements() {
  app.measured = null;
  els.measurements.dataset.state = 'none';
  els.measurementsTable.hidden = true;
  els.measurementsBody.replaceChildren();
  els.measurementNotes.replaceChildren();
  els.measurementNotes.hidden = true;
  els.downloadMeasurements.disabled = true;
}

function measurementsFailed(message) {
  els.measurements.dataset.state = 'error';
  els.scaleError.textContent = message;
  els.scaleError.hidden = false;
}

/** A number for the table: grouped thousands, `digits` decimals; '–' for null (undefined here). */
function num(x, digits = 0) {
  if (x === null || x === undefined) return '–';
  return Number(x).toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A length: micrometres (millimetres from 1000 µm on) with the pixels, or pixels alone. */
function length(px, um, digits = 1) {
  if (px === null || px === undefined) return '–';
  if (um === null || um === undefined) return `${num(px, digits)} px`;
  const physical = um >= 1000 ? `${num(um / 1000, 2)} mm` : `${num(um, 1)} µm`;
  return `${physical} (${num(px, digits)} px)`;
}

/** An area: mm² with the pixels, or pixels alone. */
function area(px, mm2) {
  if (px === null || px === undefined) return '–';
  return mm2 === null || mm2 === undefined ? `${num(px)} px` : `${num(mm2, 2)} mm² (${num(px)} px)`;
}

/**
 * The table's rows for one task's measurements: [JSON field, measure, value with its unit].
 * @param {import('./pkg/index.js').Measurements} m
 * @returns {[string, string, string][]}
 */
function measurementRows(m) {
  switch (m.task) {
    case 'retina': {
      const scale = m.umPerPixel === null ? 'none given (pixels)'
        : `${num(m.umPerPixel, 2)} µm per pixel (${m.scaleSource === 'fovAngle' ? 'from the field-of-view angle' : 'the pixel size given'})`;
      return [
        ['vesselAreaFraction', 'Vessel area', m.vesselAreaFraction === null ? '–'
          : `${(100 * m.vesselAreaFraction).toFixed(2)} % of the field of view`],
        ['vesselPixels', 'Vessel pixels', `${num(m.vesselPixels)} of ${num(m.fovPixels)} px`],
        ['skeletonLengthPx', 'Vessel length (centre lines)', length(m.skeletonLengthPx, m.skeletonLengthUm, 0)],
        ['calibreMeanPx', 'Vessel width, mean', length(m.calibreMeanPx, m.calibreMeanUm, 2)],
        ['calibreMedianPx', 'Vessel width, median', length(m.calibreMedianPx, m.calibreMedianUm, 2)],
        ['calibreP10Px', 'Vessel width, 10th percentile', length(m.calibreP10Px, m.calibreP10Um, 2)],
        ['calibreP90Px', 'Vessel width, 90th percentile', length(m.calibreP90Px, m.calibreP90Um, 2)],
        ['tortuosityMean', 'Tortuosity (arc / chord, 1 = straight)',
          m.tortuosityMean === null ? '–' : `${num(m.tortuosityMean, 3)} over ${num(m.tortuositySegments)} segments`],
        ['segments', 'Segments, branch points, end points', `${num(m.segments)}, ${num(m.branchPoints)}, ${num(m.endPoints)}`],
        ['fractalDimension', 'Fractal dimension (box counting)', num(m.fractalDimension, 3)],
        ['umPerPixel', 'Scale', scale],
      ];
    }
    case 'skin': {
      const areaUm2 = m.areaUm2 === null ? null : m.areaUm2 / 1e6;
      return [
        ['areaPx', 'Lesion area', area(m.areaPx, areaUm2)],
        ['perimeterPx', 'Perimeter', length(m.perimeterPx, m.perimeterUm)],
        ['maxDiameterPx', 'Largest diameter', length(m.maxDiameterPx, m.maxDiameterUm)],
        ['asymmetryMajorAxis', 'Asymmetry across the major, minor axis (0 = symmetric, up to 2)',
          `${num(m.asymmetryMajorAxis, 3)}, ${num(m.asymmetryMinorAxis, 3)}`],
        ['compactness', 'Compactness (1 = disc)', num(m.compactness, 3)],
        ['components', 'Pieces', `${num(m.components)} (the largest ${num(m.largestComponentPx)} px)`],
        ['umPerPixel', 'Scale', m.umPerPixel === null ? 'none given (pixels)' : `${num(m.umPerPixel, 2)} µm per pixel`],
      ];
    }
    case 'lung':
      return [
        ['areaPx', 'Lung area (all pieces)', area(m.areaPx, m.areaMm2)],
        ['patientRightAreaPx', "Patient's right lung (the image's left)", area(m.patientRightAreaPx, m.patientRightAreaMm2)],
        ['patientLeftAreaPx', "Patient's left lung (the image's right)", area(m.patientLeftAreaPx, m.patientLeftAreaMm2)],
        ['components', 'Pieces', num(m.components)],
        ['mmPerPixel', 'Scale', m.mmPerPixel === null ? 'none given (pixels)' : `${num(m.mmPerPixel, 3)} mm per pixel`],
      ];
    default:
      return [];
  }
}

/**
 * Shows a mask's measurements in the table.
 * @param {import('./pkg/index.js').Measurements} m
 * @param {number} threshold the mask's
 */
function showMeasurements(m, threshold) {
  if (!app.result || !m) return;
  app.measured = { threshold, measurements: m };
  const rows = measurementRows(m).map(([key, label, value]) => {
    const tr = document.createElement('tr');
    tr.dataset.key = key;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = label;
    const td = document.createElement('td');
    td.textContent = value;
    tr.append(th, td);
    return tr;
  });
  els.measurementsBody.replaceChildren(...rows);
  els.measurementsCaption.textContent = `${m.task[0].toUpperCase()}${m.task.slice(1)} mask at threshold ${threshold.toFixed(2)}`;
  els.measurementNotes.replaceChildren(...m.notes.map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
  els.measurementNotes.hidden = m.notes.length === 0;
  els.measurementsTable.hidden = false;
  els.downloadMeasurements.disabled = false;
  els.measurements.dataset.threshold = threshold.toFixed(2);
  els.measurements.dataset.state = 'done';
}

/** Saves a file the page made. */
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The measurements as JSON: the image's name and the threshold, then the package's object. */
function downloadMeasurements() {
  if (!app.measured) return;
  const { threshold, measurements } = app.measured;
  const text = `${JSON.stringify({ image: app.name, threshold, ...measurements }, null, 2)}\n`;
  save(new Blob([text], { type: 'application/json' }),
    `${app.name.replace(/\.[^.]*$/, '') || 'image'}_measurements.json`);
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  els.fileInput.addEventListener('change', () => loadFile(els.fileInput.files?.[0]));

  const dz = els.dropZone;
  dz.addEventListener('click', () => els.fileInput.click());
  dz.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ' || e.key === 'Spacebar') {
      e.preventDefault();
      els.fileInput.click();
    }
  });
  dz.addEventListener('dragenter', (e) => { e.preventDefault(); dz.classList.add('dragover'); });
  dz.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    dz.classList.add('dragover');
  });
  dz.addEventListener('dragleave', () => dz.classList.remove('dragover'));
  dz.addEventListener('drop', (e) => {
    e.preventDefault();
    dz.classList.remove('dragover');
    const file = e.dataTransfer?.files?.[0];
    if (file) loadFile(file);
    else showError('Could not read this file: nothing that looks like a file was dropped.');
  });
  // A file dropped beside the drop zone must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  document.addEventListener('paste', (e) => {
    const file = e.clipboardData?.files?.[0];
    if (file) { e.preventDefault(); loadFile(file); }
  });

  for (const button of document.querySelectorAll(/** @type {'button'} */ ('button.sample'))) {
    button.addEventListener('click', () => loadSample(button.dataset.sample, button.dataset.task));
  }

  // A new task, backend or flips setting re-runs the model on the current image.
  els.task.addEventListener('change', run);
  els.backend.addEventListener('change', run);
  els.flips.addEventListener('change', run);

  // 'input' (dragging) re-renders once per frame; 'change' (release, or a scripted value) at once.
  for (const [slider, output] of [[els.threshold, els.thresholdValue], [els.opacity, els.opacityValue]]) {
    slider.addEventListener('input', () => {
      output.textContent = Number(slider.value).toFixed(2);
      queueRender();
    });
    slider.addEventListener('change', () => {
      output.textContent = Number(slider.value).toFixed(2);
      renderMaskAndOverlay();
      if (slider === els.threshold) remeasure();
    });
  }
  // A new scale measures the mask again (the model is not run again).
  for (const input of els.scaleInputs) input.addEventListener('change', remeasure);
  els.task.addEventListener('change', showScaleFields);
  showScaleFields();
  els.downloadMeasurements.addEventListener('click', downloadMeasurements);
  els.thresholdValue.textContent = Number(els.threshold.value).toFixed(2);
  els.opacityValue.textContent = Number(els.opacity.value).toFixed(2);

  els.download.addEventListener('click', downloadMask);
  els.cancel.addEventListener('click', cancelRun);
}

/** Marks tasks without shipped weights in the task selector (the package knows which ship). */
async function markShippedTasks() {
  /** @type {Set<string>} */
  let shipped;
  try {
    shipped = new Set((await import('./pkg/index.js')).shippedTasks());
  } catch {
    showError('The WebAssembly package is missing: build it with scripts/build-wasm.sh.');
    return;
  }
  for (const option of els.task.options) {
    if (!shipped.has(option.value)) {
      option.textContent += ' (no model ships yet: load your own weights)';
      option.dataset.shipped = 'false';
    }
  }
}

async function loadWeights(file) {
  if (!file) {
    app.weights = null;
    showNote('');
    run();
    return;
  }
  try {
    const bytes = await file.arrayBuffer();
    if (bytes.byteLength === 0) throw new Error('the file is empty (0 bytes)');
    app.weights = { key: `${file.name}|${file.size}|${file.lastModified}`, bytes, name: file.name };
    showNote(`Using your weights ${file.name} for the chosen task.`);
    run();
  } catch (err) {
    app.weights = null;
    showError(`Could not read the weights file ${file.name}: ${messageOf(err)}`);
  }
}

wire();
els.weightsInput?.addEventListener('change', () => loadWeights(els.weightsInput.files?.[0]));
markShippedTasks();
setState('idle');
