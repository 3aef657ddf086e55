//! Inputs shared by the native reference test and the browser tests.
#![allow(dead_code)]

use r2unet::inference::tiling::TilingConfig;
use r2unet_wasm::engine::SegmentOptions;

/// Side of the synthetic fundus image.
pub const SIDE: u32 = 48;

/// The shipped retina weights, told to keep every image at its own scale (`fov_width` 0). The
/// shipped file resamples a photo so that its field of view is 536 px wide (DRIVE's): the
/// synthetic fundus, 48 px across, would be blown up elevenfold and lose its vessels. These
/// tests compare forward passes (native, CPU build, WebGPU build), not scales; the weights are
/// the same f32 values.
pub fn retina_native_scale() -> Vec<u8> {
    use r2unet::weights::{self, Precision};
    let shipped = include_bytes!("../../../../models/retina.bpk");
    let device = r2unet::burn::tensor::Device::flex();
    let (model, mut bundle) = weights::from_bytes(shipped, &device).expect("shipped weights load");
    bundle.preprocess.fov_width = 0;
    weights::to_bytes(&model, &bundle, Precision::F32).expect("weights write")
}
/// Tiling of the reference run: four overlapping 32x32 tiles, blended, one per forward pass
/// (as the JS API runs them), so stitching is compared too.
pub const TILE: usize = 32;
pub const STRIDE: usize = 16;

/// The committed native reference: probabilities (f32 little-endian, row-major 48x48) of the
/// shipped retina model on [`synthetic_fundus_rgba`], written by
/// `R2UNET_BLESS=1 cargo test --release -p r2unet-wasm --test native_reference`.
pub const FIXTURE: &str = "tests/fixtures/retina_synthetic_48.f32";

pub fn options() -> SegmentOptions {
    SegmentOptions {
        threshold: 0.5,
        tiling: TilingConfig::new()
            .with_tile(TILE)
            .with_stride(STRIDE)
            .with_batch(1),
    }
}

/// A small fundus-like RGBA picture: a bright red disc (the field of view) on black, with darker
/// wavy lines standing in for vessels. Integer arithmetic only, so every platform draws the same.
pub fn synthetic_fundus_rgba() -> Vec<u8> {
    let n = SIDE as i32;
    let mut out = Vec::with_capacity((n * n * 4) as usize);
    for y in 0..n {
        for x in 0..n {
            let (dx, dy) = (x - n / 2, y - n / 2);
            let inside = dx * dx + dy * dy <= 22 * 22;
            let px = if inside {
                // Two "vessels": a diagonal band and a vertical band that wiggles.
                let d1 = (x - y + 3).abs();
                let d2 = (x - 30 - (y % 7) / 3).abs();
                let vessel = d1 <= 1 || d2 <= 1;
                let shade = ((x * 7 + y * 3) % 11) as u8;
                if vessel {
                    [110 + shade, 40 + shade, 20]
                } else {
                    [190 + shade, 95 + shade, 45]
                }
            } else {
                [0, 0, 0]
            };
            out.extend([px[0], px[1], px[2], 255]);
        }
    }
    out
}

pub fn decode_f32_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The reference must say something: vessels and background both present inside the disc.
pub fn assert_not_trivial(p: &[f32]) {
    let high = p.iter().filter(|&&v| v >= 0.5).count();
    let low = p.iter().filter(|&&v| v < 0.5).count();
    assert!(
        high >= 20 && low >= 20,
        "degenerate output: {high} pixels >= 0.5, {low} below"
    );
}
