//! The raw module's side of the package's threads: `pkg/index.js` keeps a pool of workers, each
//! with its own instance of the CPU build and its own copy of the model, and runs one image as
//! pieces (`r2unet::inference::split`: bands of a one-pass image, else its tiles) spread over the
//! calling thread and the pool. The image logic is all here; the JS only moves `Float32Array`s.
//!
//! `seg.split(input, options, parts)` decodes, preprocesses and cuts the image into pieces
//! ([`SegmentPieces`]); `seg.forwardPiece(input, shape, flip)` runs one piece on any Segmenter
//! with the same weights (the pool's); `pieces.set(i, output)` hands each output back; and
//! `seg.finishPieces(pieces)` puts them together and resolves to what `segment` gives.
use js_sys::{Array, Float32Array, Object, Reflect};
use r2unet::inference::split::Piece;
use r2unet::measure::MeasureOptions;
use wasm_bindgen::prelude::*;

use super::{Segmenter, config_error, now_ms, read_input, set, to_js};
use crate::engine;

/// One image cut into pieces (made by `Segmenter.split`).
#[wasm_bindgen]
pub struct SegmentPieces {
    pieces: engine::Pieces,
    threshold: f32,
    /// With `measure: true`: the scale to measure the mask at.
    measure: Option<MeasureOptions>,
    /// When `split` was called, and the decoding's and the whole split's end (`now_ms`).
    started: f64,
    decode_ms: f64,
    split_done: f64,
}

#[wasm_bindgen]
impl SegmentPieces {
    /// Pieces in all (regions times the four flips with `flips`).
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> u32 {
        self.pieces.len() as u32
    }

    /// Bands or tiles the image was cut into.
    #[wasm_bindgen(getter)]
    pub fn regions(&self) -> u32 {
        self.pieces.regions() as u32
    }

    /// Whether the image was cut into bands (a one-pass image) rather than its tiles.
    #[wasm_bindgen(getter)]
    pub fn bands(&self) -> bool {
        self.pieces.is_bands()
    }

    /// Piece `i`: `{ input: Float32Array, shape: [n, channels, rows, width], flip }` (a new
    /// buffer of its own, transferable to a worker).
    pub fn piece(&self, i: u32) -> Result<JsValue, JsValue> {
        let (piece, input) = self.pieces.piece(i as usize).map_err(to_js)?;
        let out = Object::new();
        set(&out, "input", Float32Array::from(&input[..]));
        let shape: Array = piece
            .shape
            .iter()
            .map(|&d| JsValue::from(d as u32))
            .collect();
        set(&out, "shape", shape);
        set(&out, "flip", piece.flip as u32);
        Ok(out.into())
    }

    /// Piece `i`'s output, as `forwardPiece` gave it.
    pub fn set(&mut self, i: u32, output: Vec<f32>) -> Result<(), JsValue> {
        self.pieces.set(i as usize, output).map_err(to_js)
    }
}

#[wasm_bindgen]
impl Segmenter {
    /// Decodes and preprocesses `input` as `segment` does (the same options; `onProgress` and
    /// `signal` are the caller's to honour) and cuts its forward passes into pieces for `parts`
    /// workers: bands of an image the plan runs in one pass (at most `parts`, each owning at
    /// least twice the model's halo: 64 rows for retina, 160 for skin and lung, so that their
    /// shipped 128- and 256-row inputs stay one piece), else one piece per tile; four per region
    /// with `flips`.
    pub fn split(
        &self,
        input: JsValue,
        options: JsValue,
        parts: u32,
    ) -> Result<SegmentPieces, JsValue> {
        let started = now_ms();
        let run = self.run_options(options)?;
        if let Some(signal) = &run.signal
            && signal.aborted()
        {
            return Err(signal.error("segment() was aborted before it started"));
        }
        let image = read_input(&input)?;
        let decode_ms = now_ms() - started;
        let pieces = engine::split(
            &self.engine,
            &self.bundle,
            image,
            &run.options,
            parts as usize,
            now_ms,
        )
        .map_err(to_js)?;
        Ok(SegmentPieces {
            pieces,
            threshold: run.options.threshold,
            measure: run.measure,
            started,
            decode_ms,
            split_done: now_ms(),
        })
    }

    /// One piece through this Segmenter's model: sigmoid probabilities `[1, 1, rows, width]`
    /// as a new `Float32Array`. `shape` and `flip` as `piece(i)` gave them.
    #[wasm_bindgen(js_name = forwardPiece)]
    pub async fn forward_piece(
        &self,
        input: Vec<f32>,
        shape: Vec<u32>,
        flip: u32,
    ) -> Result<Float32Array, JsValue> {
        let [n, c, h, w] = shape[..] else {
            return Err(config_error(format!(
                "forwardPiece: a shape is [n, channels, rows, width], got {shape:?}"
            )));
        };
        let piece = Piece {
            shape: [n, c, h, w].map(|d| d as usize),
            flip: flip as usize,
        };
        let out = engine::forward_piece(&self.engine, input, piece)
            .await
            .map_err(to_js)?;
        Ok(Float32Array::from(&out[..]))
    }

    /// Puts every piece's output together, restores the input's size and thresholds: resolves to
    /// what `segment` gives (`timings.modelMs` from the end of `split` to this call). Takes the
    /// pieces (they cannot be used afterwards).
    #[wasm_bindgen(js_name = finishPieces)]
    pub fn finish_pieces(&self, pieces: SegmentPieces) -> Result<JsValue, JsValue> {
        let model_ms = now_ms() - pieces.split_done;
        let seg = pieces.pieces.finish(model_ms, now_ms).map_err(to_js)?;
        self.result(
            &seg,
            pieces.threshold,
            pieces.measure.as_ref(),
            pieces.started,
            pieces.decode_ms,
        )
    }
}

/// This instance's compiled `WebAssembly.Module`: the package posts it to its pool workers, which
/// instantiate it instead of downloading and compiling the build again.
#[wasm_bindgen(js_name = compiledModule)]
pub fn wasm_module() -> JsValue {
    wasm_bindgen::module()
}

/// Bytes of this instance's linear memory (it grows and never shrinks: the most one forward
/// pass has needed, plus the model).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    let memory = wasm_bindgen::memory();
    Reflect::get(&memory, &"buffer".into())
        .ok()
        .and_then(|b| Reflect::get(&b, &"byteLength".into()).ok())
        .and_then(|n| n.as_f64())
        .unwrap_or(0.0)
}
