// r2unet-wasm: R2U-Net segmentation in the browser (entry point; hand-written, not generated).
//
// The package holds two builds of the Rust crate crates/r2unet-wasm, made by scripts/build-wasm.sh:
//   cpu/     burn-flex with wasm SIMD: small, loaded first and always available
//   webgpu/  WebGPU (plus flex): much larger, downloaded only when a WebGPU adapter exists
// and the shipped weights under models/, one file per task, downloaded only for the task asked for
// and kept in the Cache API. This file picks the build, fetches weights and falls back from WebGPU
// to the CPU ('auto') when WebGPU is missing, fails to start or fails during a run.

import { MODELS } from './models/index.js';

export const TASKS = Object.freeze(['retina', 'skin', 'lung']);
const BACKENDS = ['auto', 'webgpu', 'cpu'];
const CACHE_NAME = 'r2unet-wasm-models-v1';
const CREATE = Symbol('Segmenter.create');

const locations = { cpu: undefined, webgpu: undefined };
const modules = { cpu: null, webgpu: null };   // Promise<module> once requested

function loadModule(kind) {
  if (!modules[kind]) {
    modules[kind] = (async () => {
      const m = kind === 'cpu'
        ? await import('./cpu/r2unet_wasm.js')
        : await import('./webgpu/r2unet_wasm.js');
      await m.default(locations[kind] ? { module_or_path: locations[kind] } : undefined);
      return m;
    })();
    modules[kind].catch(() => { modules[kind] = null; });   // a later call may retry
  }
  return modules[kind];
}

/**
 * Loads the CPU build (small) so the first `Segmenter.create` is quicker. Optional: `create`
 * loads what it needs. `options.cpuWasm` / `options.webgpuWasm` override where the .wasm files
 * are fetched from (URL or string), for hosts that move assets.
 */
export default async function init(options = {}) {
  if (options && typeof options === 'object') {
    if (options.cpuWasm) locations.cpu = options.cpuWasm;
    if (options.webgpuWasm) locations.webgpu = options.webgpuWasm;
  }
  await loadModule('cpu');
}

/** Tasks with weights shipped in this package (others need `weights` passed to create). */
export function shippedTasks() {
  return Object.keys(MODELS);
}

/** Decodes an image file for display: `{width, height, data}` (RGBA), e.g. for TIFF or 16-bit CT. */
export async function decodePreview(bytes) {
  const m = await loadModule('cpu');
  return m.decodePreview(toBytes(bytes, 'decodePreview'));
}

function toBytes(value, where) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw namedError('ConfigError', `${where}: expected a Uint8Array or ArrayBuffer`);
}

function namedError(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

async function shippedWeights(task) {
  const entry = MODELS[task];
  if (!entry) {
    throw namedError('WeightsError',
      `no model ships for task "${task}" yet; pass your own weights: ` +
      `Segmenter.create({ task: '${task}', weights: Uint8Array }) (a .bpk file exported by \`r2unet export\`)`);
  }
  // The content hash in the query keys the cache, so new weights under the same name are fetched.
  const url = entry.sha256 ? `${entry.url.href}?v=${entry.sha256.slice(0, 16)}` : entry.url.href;
  let cache = null;
  try {
    if (globalThis.caches) cache = await globalThis.caches.open(CACHE_NAME);
  } catch {
    cache = null;   // no Cache API (insecure context, private mode): plain fetch
  }
  let response = cache ? await cache.match(url) : undefined;
  if (!response) {
    try {
      response = await fetch(url);
    } catch (err) {
      throw namedError('WeightsError', `could not download the ${task} model (${url}): ${err?.message ?? err}`);
    }
    if (!response.ok) {
      throw namedError('WeightsError', `could not download the ${task} model (${url}): HTTP ${response.status}`);
    }
    if (cache) {
      try { await cache.put(url, response.clone()); } catch { /* quota: keep going uncached */ }
    }
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (entry.bytes && bytes.length !== entry.bytes) {
    if (cache) { try { await cache.delete(url); } catch { /* ignore */ } }
    throw namedError('WeightsError',
      `the ${task} model download is ${bytes.length} bytes, expected ${entry.bytes}; try again`);
  }
  return bytes;
}

async function hasWebGpuAdapter() {
  try {
    return Boolean(globalThis.navigator?.gpu && await globalThis.navigator.gpu.requestAdapter());
  } catch {
    return false;
  }
}

/** Errors that are the device's fault (so 'auto' retries on the CPU), not the input's. */
function isBackendFailure(err) {
  const name = err?.name;
  return !(name === 'InputError' || name === 'WeightsError' || name === 'ConfigError');
}

function messageOf(err) {
  return err?.message ?? String(err);
}

/** A model loaded on one backend. */
export class Segmenter {
  #raw;
  #weights;        // kept while 'auto' runs on WebGPU, for a fallback to the CPU build
  #fallbackReason;
  #busy = Promise.resolve();

  /** Not for direct use: `await Segmenter.create({ task, backend, weights })`. */
  constructor(token, raw, weights, fallbackReason) {
    if (token !== CREATE) throw new TypeError('use `await Segmenter.create({ task, backend, weights })`');
    this.#raw = raw;
    this.#weights = weights;
    this.#fallbackReason = fallbackReason;
  }

  /**
   * `options`: `{ task?: 'retina'|'skin'|'lung', backend?: 'auto'|'webgpu'|'cpu', weights?: Uint8Array }`.
   * Without `weights`, the task's shipped model is downloaded (once; cached).
   */
  static async create(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw namedError('ConfigError', 'Segmenter.create takes an options object: { task, backend, weights }');
    }
    const backend = options.backend ?? 'auto';
    if (!BACKENDS.includes(backend)) {
      throw namedError('ConfigError', `unknown backend "${backend}"; expected 'auto', 'webgpu' or 'cpu'`);
    }
    const task = options.task;
    if (task !== undefined && !TASKS.includes(task)) {
      throw namedError('ConfigError', `unknown task "${task}"; expected 'retina', 'skin' or 'lung'`);
    }
    let weights;
    if (options.weights !== undefined && options.weights !== null) {
      weights = toBytes(options.weights, 'Segmenter.create: weights');
    } else if (task === undefined) {
      throw namedError('ConfigError', 'Segmenter.create needs a task (for the shipped weights) or weights');
    } else {
      weights = await shippedWeights(task);
    }

    let raw = null;
    let fallbackReason;
    if (backend === 'cpu') {
      raw = await (await loadModule('cpu')).Segmenter.create({ task, backend: 'cpu', weights });
    } else {
      const adapter = await hasWebGpuAdapter();
      if (!adapter) {
        if (backend === 'webgpu') {
          throw namedError('BackendError', 'WebGPU is not available here (no navigator.gpu or no adapter); use backend \'auto\' or \'cpu\'');
        }
        fallbackReason = 'no WebGPU adapter';
      } else {
        try {
          raw = await (await loadModule('webgpu')).Segmenter.create({ task, backend: 'webgpu', weights });
        } catch (err) {
          if (backend === 'webgpu' || !isBackendFailure(err)) throw err;
          fallbackReason = `WebGPU failed to start: ${messageOf(err)}`;
          raw = null;
        }
      }
      if (!raw) raw = await (await loadModule('cpu')).Segmenter.create({ task, backend: 'cpu', weights });
    }

    const keep = backend === 'auto' && raw.backend === 'webgpu' ? weights : null;
    return new Segmenter(CREATE, raw, keep, fallbackReason);
  }

  #live() {
    if (!this.#raw) throw namedError('ConfigError', 'this Segmenter was freed');
    return this.#raw;
  }

  /** `'webgpu'` or `'cpu'`. */
  get backend() { return this.#live().backend; }

  /** The task the weights were trained for. */
  get task() { return this.#live().task; }

  /** Why 'auto' runs on the CPU, or undefined. */
  get fallbackReason() { return this.#fallbackReason ?? this.#live().fallbackReason; }

  /** Provenance of the weights (dataset, epochs, metrics, architecture). */
  get info() { return this.#live().info; }

  /**
   * Segments one image: an ImageData, `{width, height, data}` (RGBA bytes), or the bytes of a PNG,
   * JPEG, TIFF, BMP, GIF or PPM file. `options`: `{ threshold = 0.5, onProgress(done, total),
   * tile, stride }`. Calls on one Segmenter run one after another.
   */
  segment(input, options = {}) {
    const run = this.#busy.then(() => this.#segment(input, options));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #segment(input, options) {
    const raw = this.#live();
    try {
      return await raw.segment(input, options);
    } catch (err) {
      if (!this.#weights || raw.backend !== 'webgpu' || !isBackendFailure(err)) throw err;
      // 'auto' on WebGPU failed mid-run: continue on the CPU build from now on.
      const cpu = await (await loadModule('cpu')).Segmenter.create({ backend: 'cpu', weights: this.#weights });
      this.#fallbackReason = `WebGPU failed during a run: ${messageOf(err)}`;
      this.#weights = null;
      this.#raw = cpu;
      try { raw.free(); } catch { /* a trapped module may refuse */ }
      return cpu.segment(input, options);
    }
  }

  /** Releases the model's memory. The Segmenter cannot be used afterwards. */
  free() {
    const raw = this.#raw;
    this.#raw = null;
    this.#weights = null;
    if (raw) raw.free();
  }
}
