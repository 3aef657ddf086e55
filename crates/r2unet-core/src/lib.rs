//! R2U-Net (Alom et al., J. Med. Imag. 6(1) 014006, 2019) and its family for medical image segmentation.
//!
//! One path for every image, shared by training, evaluation, the CLI and the browser:
//! bytes → [`image_io::decode`] → [`preprocess::prepare`] → [`inference::tiling`] → [`model`]
//! (on burn-flex through this crate's CPU kernels, [`ops`]) → stitched probabilities
//! ([`inference::predict`]) → mask → [`measure`] (vessel, lesion and lung measurements).
//! Nothing in this crate touches files, threads or a terminal, so it builds for
//! `wasm32-unknown-unknown` as it is.
//!
//! Features: `flex` (burn-flex CPU backend, default), `wgpu` (native GPU), `webgpu` (browser GPU),
//! `autodiff` (training), `native` (SIMD and rayon threads in burn-flex; not for wasm),
//! `simd` (SIMD only, for wasm with `+simd128`).

pub mod error;
pub mod image_io;
pub mod inference;
pub mod measure;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod preprocess;
pub mod quantize;
pub mod weights;

pub use error::{Error, Result};
pub use model::{ModelConfig, R2UNet, UnitKind};
pub use preprocess::{PreprocessConfig, Task};
pub use weights::ModelBundle;

/// Re-export of the burn version this crate is built against, so that dependants use the same one.
pub use burn;
