//! `r2unet-wasm`: R2U-Net segmentation in the browser.
//!
//! wasm-bindgen glue only: the decoding, the task's preprocessing, the model, the tiled forward
//! pass and the restoring to the input's size are `r2unet-core`'s, exactly as natively. This
//! crate adds JS types, the backend choice (WebGPU with async init and read-back, or burn-flex
//! on the CPU) and errors as JS `Error`s.
//!
//! Features: `flex` (CPU, default), `simd` (flex's SIMD gemm; build with
//! `RUSTFLAGS="-C target-feature=+simd128"`), `webgpu`. The npm package (`pkg/`) ships two builds
//! of this crate, a small CPU one and a WebGPU one, behind a hand-written `index.js` that picks
//! one (`scripts/build-wasm.sh`).
//!
//! The JS class here is the raw module's; the package's `Segmenter` wraps it and adds the
//! shipped-weights download, the Cache API and the fallback from the WebGPU module to the CPU one.

pub mod engine;
#[cfg(target_family = "wasm")]
mod js;

#[cfg(target_family = "wasm")]
pub use js::*;
