//! The browser's threads cut a one-pass image into horizontal bands with a halo
//! (`inference::split`). The halo was measured on the retina model (`split_drive`); the skin and
//! lung models look at a whole lesion or lung, so a band that sees only part of the picture can
//! change their masks more. Here the shipped skin and lung models' stitched maps are compared with
//! the one pass on real images: the first ISIC 2017 validation images (128x128 after
//! preprocessing) and the first LUNG test slices (256x256): the largest probability difference
//! and the lowest Dice of the masks at 0.5.
//!
//! `R2UNET_SPLIT_SWEEP=1` prints the table the halo was chosen from (halos 0 to 80, or
//! `R2UNET_SPLIT_HALOS=48,64`; exactly 2 to 4 bands whatever the rule says;
//! `R2UNET_SPLIT_IMAGES` images per set, default 10) instead of checking, on 2 images per set,
//! that [`Split::for_model`] keeps the shipped inputs in one band for 4 workers and that 2 bands
//! with the skin and lung halo (`band_halo`) stay within Dice 0.999 and 0.05 of the one pass.
mod common;

use std::io::Write;
use std::path::PathBuf;

use r2unet::ModelBundle;
use r2unet::R2UNet;
use r2unet::burn::tensor::Device;
use r2unet::inference::predict::probabilities;
use r2unet::inference::split::{Split, band_halo, probabilities_bands, probabilities_split};
use r2unet::inference::tiling::TilingConfig;
use r2unet::{image_io, preprocess, weights};

/// The first 10 of the 24 LUNG test slices (`r2unet-train`'s seeded split; `results/lung-test.json`).
const LUNG_TEST: [&str; 10] = [
    "ID_0002_Z_0162",
    "ID_0003_Z_0132",
    "ID_0028_Z_0125",
    "ID_0029_Z_0059",
    "ID_0074_Z_0066",
    "ID_0075_Z_0061",
    "ID_0088_Z_0100",
    "ID_0096_Z_0216",
    "ID_0104_Z_0101",
    "ID_0127_Z_0064",
];

fn images(task: &str, dir: &std::path::Path, n: usize) -> Vec<PathBuf> {
    if task == "lung" {
        return LUNG_TEST
            .iter()
            .take(n)
            .map(|id| dir.join(format!("2d_images/{id}.tif")))
            .collect();
    }
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir.join("ISIC-2017_Validation_Data"))
        .expect("the ISIC 2017 validation folder reads")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    all.sort();
    all.truncate(n);
    all
}

struct Set {
    task: &'static str,
    model: R2UNet,
    bundle: ModelBundle,
    paths: Vec<PathBuf>,
}

fn set(task: &'static str, shipped: &[u8], sub: &str, n: usize, device: &Device) -> Option<Set> {
    let dir = common::data_dir(&format!("split_skin_lung ({task})"), sub)?;
    let (model, bundle) = weights::from_bytes(shipped, device).expect("shipped weights load");
    Some(Set {
        task,
        model,
        bundle,
        paths: images(task, &dir, n),
    })
}

/// The browser CPU path's plan: the whole image as one pass.
fn tiling() -> TilingConfig {
    TilingConfig::new().with_batch(1).with_whole_up_to(450_000)
}

fn prepare(set: &Set, path: &std::path::Path) -> preprocess::Prepared {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image = image_io::decode(&bytes).expect("decodes");
    preprocess::prepare(&set.bundle.preprocess, &image, None).expect("prepares")
}

fn sweep(set: &Set, device: &Device) -> String {
    let tiling = tiling();
    let halos: Vec<usize> = std::env::var("R2UNET_SPLIT_HALOS")
        .ok()
        .map(|v| v.split(',').filter_map(|h| h.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 16, 32, 48, 64, 80]);
    let cases: Vec<(usize, usize)> = halos
        .into_iter()
        .flat_map(|halo| [2, 3, 4].map(|n| (halo, n)))
        .collect();
    let mut worst = vec![(0.0f32, 1.0f64); cases.len()];
    let mut size = (0, 0);
    for path in &set.paths {
        let prepared = prepare(set, path);
        size = (prepared.width, prepared.height);
        let one = probabilities(&set.model, device, &prepared, &tiling, |_, _| {}).unwrap();
        for (k, &(halo, n)) in cases.iter().enumerate() {
            let cut = probabilities_bands(&set.model, device, &prepared, &tiling, n, halo)
                .unwrap()
                .expect("one pass");
            let (max, dice) = common::compare(&cut, &one, &prepared.fov);
            worst[k] = (worst[k].0.max(max), worst[k].1.min(dice));
        }
    }
    let mut report = format!(
        "{}: exactly n bands against the one pass, {} image(s) ({}x{} after preprocessing)\n\
         | halo | bands | own rows | max abs prob diff | min Dice of masks |\n|---:|---:|---:|---:|---:|\n",
        set.task,
        set.paths.len(),
        size.0,
        size.1
    );
    for (&(halo, n), &(max, dice)) in cases.iter().zip(&worst) {
        report += &format!("| {halo} | {n} | {} | {max:.4} | {dice:.5} |\n", size.1 / n);
    }
    report
}

#[test]
fn bands_on_skin_and_lung_agree_with_the_one_pass() {
    let is_sweep = std::env::var_os("R2UNET_SPLIT_SWEEP").is_some();
    let n: usize = std::env::var("R2UNET_SPLIT_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if is_sweep { 10 } else { 2 });
    let device = Device::flex();
    let sets = [
        set(
            "skin",
            include_bytes!("../../../models/skin.bpk"),
            "ISIC2017",
            n,
            &device,
        ),
        set(
            "lung",
            include_bytes!("../../../models/lung.bpk"),
            "LUNG",
            n,
            &device,
        ),
    ];
    for set in sets.iter().flatten() {
        if is_sweep {
            let _ = writeln!(std::io::stderr(), "{}", sweep(set, &device));
            continue;
        }
        let tiling = tiling();
        let task = set.bundle.preprocess.task;
        let halo = band_halo(task);
        for path in &set.paths {
            let prepared = prepare(set, path);
            let one = probabilities(&set.model, &device, &prepared, &tiling, |_, _| {}).unwrap();
            // What the browser's 4 threads get: one band, the one pass.
            let split = Split::for_model(&set.model, task, &prepared, &tiling, 4).unwrap();
            assert_eq!(
                split.regions(),
                1,
                "{}: {} bands",
                set.task,
                split.regions()
            );
            let cut =
                probabilities_split(&set.model, &device, &prepared, &tiling, 4, halo).unwrap();
            let (max, dice) = common::compare(&cut, &one, &prepared.fov);
            assert!(
                max <= 1e-4 && dice == 1.0,
                "{}: one band is not the one pass: max abs diff {max}, Dice {dice}",
                set.task
            );
            // The halo itself, on 2 bands the rule would not cut (lung's 128-row bands see 208
            // rows; skin's 64-row bands see all 128, the one pass again).
            let two = probabilities_bands(&set.model, &device, &prepared, &tiling, 2, halo)
                .unwrap()
                .expect("one pass");
            let (max, dice) = common::compare(&two, &one, &prepared.fov);
            let _ = writeln!(
                std::io::stderr(),
                "{} {}: 2 bands, halo {halo}: max abs diff {max:.4}, Dice {dice:.5}",
                set.task,
                path.display()
            );
            assert!(
                dice >= 0.999 && max <= 0.05,
                "{} {}: 2 bands, halo {halo}: max abs diff {max}, Dice {dice}",
                set.task,
                path.display()
            );
        }
    }
}
