// @ts-check
// r2unet-wasm: one worker of a Segmenter's pool (its threads on the CPU; started by index.js, in
// browsers as a module Worker and in Node.js as a worker_threads Worker). It holds its own
// instance of the CPU build, made from the WebAssembly.Module that index.js compiled (no second
// download or compile), and its own copy of the model, and runs the pieces of an image that it is
// sent: the image logic (cutting, stitching, restoring) is the Rust side's, here buffers move.
//
// in:  { type: 'start', module: WebAssembly.Module, weights: Uint8Array }
//      { type: 'piece', id, input: Float32Array, shape: number[], flip: number }  (input transferred)
// out: { type: 'ready', memoryBytes }
//      { type: 'done', id, output: Float32Array, ms, memoryBytes }                 (output transferred)
//      { type: 'error', id, name, message }           (id null: the start failed)

// A static import, so that bundlers (Vite) put the CPU build's glue into the worker's bundle.
// @ts-ignore: built by scripts/build-wasm.sh
import init, { Segmenter, memoryBytes } from './cpu/r2unet_wasm.js';

/**
 * @typedef {object} Port
 * @property {(message: unknown, transfer?: Transferable[]) => void} postMessage
 */

/** @type {{ forwardPiece(input: Float32Array, shape: number[], flip: number): Promise<Float32Array> } | null} */
let segmenter = null;

/**
 * @param {Port} port
 * @param {any} msg
 */
async function handle(port, msg) {
  if (msg?.type === 'start') {
    try {
      await init({ module_or_path: msg.module });
      segmenter = await Segmenter.create({ backend: 'cpu', weights: msg.weights });
      port.postMessage({ type: 'ready', memoryBytes: memoryBytes() });
    } catch (err) {
      port.postMessage({ type: 'error', id: null, name: nameOf(err), message: messageOf(err) });
    }
    return;
  }
  if (msg?.type === 'piece') {
    try {
      if (!segmenter) throw new Error('this pool worker has not started');
      const t0 = performance.now();
      const output = await segmenter.forwardPiece(msg.input, msg.shape, msg.flip);
      port.postMessage({ type: 'done', id: msg.id, output, ms: performance.now() - t0, memoryBytes: memoryBytes() },
        [output.buffer]);
    } catch (err) {
      port.postMessage({ type: 'error', id: msg.id, name: nameOf(err), message: messageOf(err) });
    }
  }
}

/** @param {unknown} err */
function nameOf(err) {
  return /** @type {{ name?: string } | null} */ (err)?.name ?? 'Error';
}

/** @param {unknown} err */
function messageOf(err) {
  return /** @type {{ message?: string } | null} */ (err)?.message ?? String(err);
}

// Browsers: the worker's global scope. Node.js: worker_threads' parentPort (imported by a name
// built at run time, so that bundlers for the browser leave it alone).
const scope = /** @type {any} */ (globalThis);
if (typeof scope.WorkerGlobalScope !== 'undefined' && scope instanceof scope.WorkerGlobalScope) {
  scope.addEventListener('message', (/** @type {MessageEvent} */ e) => { handle(scope, e.data); });
} else {
  (async () => {
    const { parentPort } = await import(/* @vite-ignore */ ['node:worker', 'threads'].join('_'));
    parentPort.on('message', (/** @type {unknown} */ msg) => { handle(parentPort, msg); });
  })();
}
