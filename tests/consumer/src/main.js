// What a web developer writes after `npm install r2unet-wasm` (the package README's example),
// type-checked against the package's generated index.d.ts (`tsc -p tests/consumer`, strict).
import init, { Segmenter, shippedTasks } from 'r2unet-wasm';

/** @type {any} */ (window).r2unet = {
  shippedTasks,
  /**
   * Segments the bytes of an image file with the shipped retina model.
   * @param {Uint8Array} bytes
   * @param {import('r2unet-wasm').BackendChoice} [backend]
   */
  async segment(bytes, backend = 'auto') {
    await init();
    const seg = await Segmenter.create({ task: 'retina', backend });
    try {
      const r = await seg.segment(bytes, { threshold: 0.5, onProgress: (done, total) => {
        const out = document.getElementById('out');
        if (out) out.textContent = `tile ${done} of ${total}`;
      } });
      return { backend: seg.backend, width: r.width, height: r.height, mask: Array.from(r.mask), timeMs: r.timeMs };
    } finally {
      seg.free();
    }
  },
};
document.body.dataset.ready = 'yes';
