//! The browser's threads cut a DRIVE image into horizontal bands with a halo
//! (`inference::split`); here the stitched map of the shipped retina model is compared with the
//! one pass over the whole image on DRIVE test images: the largest probability difference and
//! the Dice of the two masks (threshold 0.5, inside the field of view).
//!
//! `R2UNET_SPLIT_SWEEP=1` prints the table the halo was chosen from (every halo, 2 to 4 bands,
//! `R2UNET_SPLIT_IMAGES` images, default 3) instead of checking [`BAND_HALO`] on one image
//! (2 and 4 bands: Dice >= 0.999, probabilities within 0.1).
mod common;

use std::io::Write;

use r2unet::burn::tensor::Device;
use r2unet::inference::predict::probabilities;
use r2unet::inference::split::{BAND_HALO, probabilities_split};
use r2unet::inference::tiling::TilingConfig;
use r2unet::{image_io, preprocess, weights};

#[test]
fn bands_with_the_halo_agree_with_the_one_pass_on_drive() {
    let Some(dir) = common::drive_test("split_drive") else {
        return;
    };
    let shipped = include_bytes!("../../../models/retina.bpk");
    let device = Device::flex();
    let (model, bundle) = weights::from_bytes(shipped, &device).expect("shipped weights load");
    // The browser CPU path's plan: the whole image as one pass.
    let tiling = TilingConfig::new().with_batch(1).with_whole_up_to(450_000);
    let sweep = std::env::var_os("R2UNET_SPLIT_SWEEP").is_some();
    let images: usize = std::env::var("R2UNET_SPLIT_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if sweep { 3 } else { 1 });
    let cases: Vec<(usize, usize)> = if sweep {
        [0, 8, 16, 24, 32, 48, 64]
            .into_iter()
            .flat_map(|halo| [2, 3, 4].map(|parts| (halo, parts)))
            .collect()
    } else {
        vec![(BAND_HALO, 2), (BAND_HALO, 4)]
    };
    let mut worst = vec![(0.0f32, 1.0f64); cases.len()];
    for n in 1..=images {
        let path = dir.join(format!("images/{n:02}_test.tif"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let image = image_io::decode(&bytes).expect("a DRIVE image decodes");
        let prepared = preprocess::prepare(&bundle.preprocess, &image, None).expect("prepares");
        let one = probabilities(&model, &device, &prepared, &tiling, |_, _| {}).unwrap();
        for (k, &(halo, parts)) in cases.iter().enumerate() {
            let cut =
                probabilities_split(&model, &device, &prepared, &tiling, parts, halo).unwrap();
            let (max, dice) = common::compare(&cut, &one, &prepared.fov);
            worst[k] = (worst[k].0.max(max), worst[k].1.min(dice));
        }
    }
    let mut report = format!(
        "bands against the one pass, {images} DRIVE test image(s) ({}x{} after preprocessing)\n\
         | halo | bands | max abs prob diff | min Dice of masks |\n|---:|---:|---:|---:|\n",
        565, 584
    );
    for (&(halo, parts), &(max, dice)) in cases.iter().zip(&worst) {
        report += &format!("| {halo} | {parts} | {max:.4} | {dice:.5} |\n");
    }
    let _ = writeln!(std::io::stderr(), "{report}");
    if !sweep {
        for (&(halo, parts), &(_, dice)) in cases.iter().zip(&worst) {
            assert!(
                dice >= 0.99,
                "halo {halo}, {parts} bands: Dice {dice}\n{report}"
            );
        }
    }
}
