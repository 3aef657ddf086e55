// What a web developer writes after `npm install r2unet-wasm` (the package README's example),
// type-checked against the package's generated index.d.ts (`tsc -p tests/consumer`, strict).
import init, { Segmenter, shippedTasks } from 'r2unet-wasm';

/**
 * Every field of the retina measurements as the package's types declare them: tsc refuses a
 * missing or an extra key here, and the test compares these with the object the wasm gives.
 * @type {Record<keyof import('r2unet-wasm').RetinaMeasurements, true>}
 */
const RETINA_FIELDS = {
  task: true, fovPixels: true, vesselPixels: true, vesselAreaFraction: true, skeletonLengthPx: true,
  calibreMeanPx: true, calibreMedianPx: true, calibreP10Px: true, calibreP90Px: true,
  tortuosityMean: true, tortuositySegments: true, segments: true, branchPoints: true, endPoints: true,
  fractalDimension: true, umPerPixel: true, scaleSource: true, skeletonLengthUm: true,
  calibreMeanUm: true, calibreMedianUm: true, calibreP10Um: true, calibreP90Um: true, notes: true,
};

/** @type {any} */ (window).r2unet = {
  shippedTasks,
  /**
   * Segments the bytes of an image file with the shipped retina model.
   * @param {Uint8Array} bytes
   * @param {import('r2unet-wasm').BackendChoice} [backend]
   */
  async segment(bytes, backend = 'auto') {
    await init();
    // Two threads on the CPU: the package's pool worker (pool-worker.js) as Vite bundled it.
    const seg = await Segmenter.create({ task: 'retina', backend, threads: 2 });
    try {
      const r = await seg.segment(bytes, { threshold: 0.5, measure: true, scale: { fovAngleDeg: 45 }, onProgress: (done, total) => {
        const out = document.getElementById('out');
        if (out) out.textContent = `tile ${done} of ${total}`;
      } });
      const m = r.measurements;
      /** @type {number | null} */
      let vesselAreaFraction = null;
      /** @type {string | null} */
      let scaleSource = null;
      // Narrowed on `task`: only the retina measurements have these fields.
      if (m?.task === 'retina') {
        vesselAreaFraction = m.vesselAreaFraction;
        scaleSource = m.scaleSource;
      }
      return {
        backend: seg.backend, width: r.width, height: r.height, mask: Array.from(r.mask), timeMs: r.timeMs,
        threads: r.threads, threadsNote: seg.threadsNote ?? null,
        vesselAreaFraction, scaleSource, fields: m ? Object.keys(m) : [], declared: Object.keys(RETINA_FIELDS),
      };
    } finally {
      seg.free();
    }
  },
};
document.body.dataset.ready = 'yes';
