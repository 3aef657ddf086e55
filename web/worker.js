// Module worker: every model operation runs here so the page stays responsive.
//
// Protocol (see README.md):
//   in:  {type:'segment', id, task, backend, bytes: ArrayBuffer, threshold,
//         wantPreview?: boolean, weights?: ArrayBuffer, weightsKey?: string, scale?: MeasureScale}
//        (optional instead of bytes: image: {width, height, data: ArrayBuffer of RGBA8}, for
//         formats only the browser can decode, e.g. WebP)
//        {type:'cancel', id}     aborts that request, queued or running (through its AbortSignal)
//        {type:'measure', id, task, width, height, mask: Uint8Array, fov?: Uint8Array,
//         scale?: MeasureScale}  measures a mask again (another threshold or scale), no model
//   out: {type:'status',   id, state: 'loading-model' | 'running'}
//        {type:'download', id, file: 'wasm' | 'weights', loaded, total, cached}  (bytes; total may be null)
//        {type:'preview',  id, width, height, data: Uint8ClampedArray}   (RGBA; when wantPreview)
//        {type:'progress', id, done, total}
//        {type:'result',   id, width, height, probabilities: Float32Array, mask: Uint8Array,
//                          backend, timeMs, fallbackReason, measurements,
//                          fov: Uint8Array | null}                     (buffers transferred)
//        {type:'measurements', id, measurements}  (the answer to 'measure'; or 'error' with its id)
//        {type:'cancelled', id}                 (after a 'cancel': the request stopped)
//        {type:'error',    id, name, message}   (name: the package's error name, e.g. 'InputError')
// Every segment request measures its mask (segment's `measure: true`, at the request's scale).
// 'measure' requests are answered at once, outside the queue of segment requests.
// Requests are handled one at a time, in order. A request that is still queued when a newer one
// arrives is answered with an error saying it was superseded, without running the model.
// Any exception becomes an 'error' message; the worker stays alive for the next request.
// On the CPU the package runs each image on its pool of workers (nested in this one: the default
// thread count, the cores up to 4); a result says how many ran it (`threads`) and, when fewer
// workers than asked could start, why (`threadsNote`).

const PKG_URL = './pkg/index.js';

/** @type {Promise<typeof import('./pkg/index.js')> | null} resolves once the package's init() has run */
let pkgPromise = null;
/** @type {Map<string, Promise<import('./pkg/index.js').Segmenter>>} `${task}|${backend}|${weightsKey}` */
const segmenters = new Map();
let queue = Promise.resolve();  // serialises requests: one model runs at a time
/** @type {unknown} id of the newest segment request received */
let latestId = null;
/** @type {Map<unknown, AbortController>} one per request not yet answered, by id */
const controllers = new Map();

/** @param {unknown} err */
function messageOf(err) {
  if (err instanceof Error) return err.message || String(err);
  if (typeof err === 'string') return err;
  const message = /** @type {{ message?: unknown } | null} */ (err)?.message;
  if (typeof message === 'string') return message;
  try { return JSON.stringify(err); } catch { return String(err); }
}

/**
 * An Error whose message is `prefix` followed by the cause's message, keeping the cause's `name`
 * (the package's error names: InputError, WeightsError, ConfigError, BackendError).
 * @param {string} prefix
 * @param {unknown} err
 */
function wrap(prefix, err) {
  const e = new Error(`${prefix}${messageOf(err)}`, { cause: err });
  e.name = /** @type {{ name?: string } | null} */ (err)?.name ?? 'Error';
  return e;
}

/** The package's JS (each request loads its CPU build through `pkg.default`, with progress). */
function loadPackage() {
  if (!pkgPromise) {
    pkgPromise = import(PKG_URL).catch((err) => {
      pkgPromise = null;    // let a later request retry (e.g. after the package is deployed)
      throw wrap('Could not load the package (build it with scripts/build-wasm.sh): ', err);
    });
  }
  return pkgPromise;
}

/**
 * One Segmenter per (task, backend, weights). Without user weights the package downloads the
 * task's shipped model itself (lazily, only this task's, kept in the Cache API).
 * @param {import('./pkg/index.js').Task} task
 * @param {import('./pkg/index.js').BackendChoice} backend
 * @param {{ key: string, bytes: ArrayBuffer } | null} weights
 * @param {{ onProgress: import('./pkg/index.js').DownloadProgressCallback, signal: AbortSignal }} watch
 *   download progress and the request's signal
 *   (a cancelled start is forgotten: the next request starts again)
 */
function segmenterFor(task, backend, weights, watch) {
  const key = `${task}|${backend}|${weights ? weights.key : 'shipped'}`;
  let p = segmenters.get(key);
  if (!p) {
    p = (async () => {
      const pkg = await loadPackage();
      try {
        return await pkg.Segmenter.create({
          task, backend, weights: weights ? new Uint8Array(weights.bytes) : undefined, ...watch,
        });
      } catch (err) {
        if (err?.name === 'AbortError') throw err;
        throw wrap(`Could not start the ${task} model on the ${backend} backend: `, err);
      }
    })();
    segmenters.set(key, p);
    const mine = p;
    p.catch(() => { if (segmenters.get(key) === mine) segmenters.delete(key); });
  }
  return p;
}

function evict(key, seg) {
  segmenters.delete(key);
  try { seg.free(); } catch { /* ignore */ }
}

/** Errors from decoding the input read better as "Could not read this file". */
function segmentError(err) {
  if (err?.name === 'InputError') return wrap('Could not read this file: ', err);
  return wrap('Segmentation failed: ', err);
}

/** A typed array that owns its whole buffer (so it can be transferred), copying when needed. */
function owned(arr, Type) {
  if (!(arr instanceof Type)) arr = Type.from(arr ?? []);
  const whole = arr.byteOffset === 0 && arr.byteLength === arr.buffer.byteLength;
  const shared = typeof SharedArrayBuffer !== 'undefined' && arr.buffer instanceof SharedArrayBuffer;
  return whole && !shared ? arr : arr.slice();
}

/**
 * @param {any} msg
 * @param {AbortSignal} signal aborted by a 'cancel' message for this request
 */
async function handleSegment(msg, signal) {
  const { id } = msg;
  const post = (m, transfer) => self.postMessage({ ...m, id }, transfer ?? []);

  if (id !== latestId) {
    post({ type: 'error', message: 'Superseded by a newer request.' });
    return;
  }
  const pkg = await loadPackage();
  /** @type {import('./pkg/index.js').DownloadProgressCallback} */
  const onProgress = (p) => post({ type: 'download', file: p.file, loaded: p.loaded, total: p.total, cached: p.cached });
  const task = /** @type {import('./pkg/index.js').Task} */ (String(msg.task));
  const backend = /** @type {import('./pkg/index.js').BackendChoice} */ (String(msg.backend ?? 'auto'));
  if (!pkg.TASKS.includes(task)) throw new Error(`Unknown task "${task}" (expected ${pkg.TASKS.join(', ')}).`);
  if (!pkg.BACKENDS.includes(backend)) throw new Error(`Unknown backend "${backend}" (expected ${pkg.BACKENDS.join(', ')}).`);
  let threshold = Number(msg.threshold ?? 0.5);
  if (!Number.isFinite(threshold)) threshold = 0.5;
  threshold = Math.min(1, Math.max(0, threshold));

  let input;
  if (msg.image) {
    const { width, height, data } = msg.image;
    input = new ImageData(new Uint8ClampedArray(data), width, height);
  } else if (msg.bytes) {
    input = new Uint8Array(msg.bytes);
    if (input.length === 0) throw new Error('Could not read this file: it is empty (0 bytes).');
  } else {
    throw new Error('No image in the request.');
  }

  post({ type: 'status', state: 'loading-model' });
  try {
    await pkg.default({ onProgress, signal });  // the CPU build (once): decodePreview needs it
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw wrap('Could not load the WebAssembly module (build it with scripts/build-wasm.sh): ', err);
  }
  if (msg.wantPreview && msg.bytes) {
    // The browser cannot show this format (TIFF, 16-bit): the wasm side decodes it for display.
    try {
      const p = await pkg.decodePreview(msg.bytes);
      const data = p.data;
      post({ type: 'preview', width: p.width, height: p.height, data }, [data.buffer]);
    } catch (err) {
      throw segmentError(err);
    }
  }
  const weights = msg.weights ? { key: String(msg.weightsKey), bytes: msg.weights } : null;
  const seg = await segmenterFor(task, backend, weights, { onProgress, signal });
  const key = `${task}|${backend}|${weights ? weights.key : 'shipped'}`;

  post({ type: 'status', state: 'running' });
  let r;
  try {
    r = await seg.segment(input, {
      threshold,
      flips: Boolean(msg.flips),
      onProgress: (done, total) => post({ type: 'progress', done: Number(done), total: Number(total) }),
      signal,
      measure: true,
      scale: msg.scale ?? undefined,
    });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    // A backend failure (e.g. a lost GPU device) may leave this Segmenter unusable: drop it so the
    // next request builds a fresh one. Other errors (bad input) leave it cached and usable.
    if (err?.name === 'BackendError') evict(key, seg);
    throw segmentError(err);
  }

  const width = Number(r.width);
  const height = Number(r.height);
  const probabilities = owned(r.probabilities, Float32Array);
  const mask = owned(r.mask, Uint8Array);
  const timeMs = Number(r.timeMs);
  const usedBackend = String(r.backend ?? seg.backend ?? backend);
  const fallbackReason = seg.fallbackReason ?? null;
  const threads = Number(r.threads ?? 1);
  const threadsNote = seg.threadsNote ?? null;
  const n = width * height;
  if (!(n > 0) || probabilities.length !== n || mask.length !== n) {
    throw new Error(`Segmentation failed: the result is malformed (${width}x${height}, ` +
      `${probabilities.length} probabilities, ${mask.length} mask values).`);
  }
  const fov = r.fov ? owned(r.fov, Uint8Array) : null;
  post({ type: 'result', width, height, probabilities, mask, backend: usedBackend, timeMs, fallbackReason, threads, threadsNote,
    flips: Boolean(msg.flips), measurements: r.measurements ?? null, fov },
    fov ? [probabilities.buffer, mask.buffer, fov.buffer] : [probabilities.buffer, mask.buffer]);
}

/**
 * Measures a mask again (the page's threshold or scale changed): no model, some tens of milliseconds.
 * @param {any} msg
 */
async function handleMeasure(msg) {
  const pkg = await loadPackage();
  const { width, height, mask, fov } = msg;
  const measurements = await pkg.measure(msg.task, { width, height, mask, fov: fov ?? undefined }, msg.scale ?? undefined);
  self.postMessage({ type: 'measurements', id: msg.id, measurements });
}

self.addEventListener('message', (event) => {
  const msg = event.data;
  if (msg?.type === 'cancel') {
    controllers.get(msg.id)?.abort();   // an answered request has none: nothing to do
    return;
  }
  if (msg?.type === 'measure') {
    handleMeasure(msg).catch((err) => {
      self.postMessage({ type: 'error', id: msg.id, name: err?.name ?? 'Error', message: messageOf(err) || 'Unknown error.' });
    });
    return;
  }
  if (!msg || msg.type !== 'segment') {
    self.postMessage({ type: 'error', id: msg?.id ?? null, message: `Unknown request type "${msg?.type}".` });
    return;
  }
  latestId = msg.id;
  const controller = new AbortController();
  controllers.set(msg.id, controller);
  const { signal } = controller;
  queue = queue
    .then(() => {
      if (signal.aborted) throw new DOMException('cancelled while queued', 'AbortError');
      return handleSegment(msg, signal);
    })
    .catch((err) => {
      if (err?.name === 'AbortError' && signal.aborted) {
        self.postMessage({ type: 'cancelled', id: msg.id });
      } else {
        self.postMessage({ type: 'error', id: msg.id, name: err?.name ?? 'Error', message: messageOf(err) || 'Unknown error.' });
      }
    })
    .finally(() => controllers.delete(msg.id));
});

// An unexpected rejection anywhere must not take the worker down silently.
self.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  self.postMessage({ type: 'error', id: latestId, message: messageOf(event.reason) });
});
