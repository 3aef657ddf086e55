//! Lung CT slices in the Kaggle "Finding and Measuring Lungs in CT Data" layout:
//! `2d_images/ID_XXXX_Z_YYYY.tif` (signed 16-bit, Hounsfield units) with masks of the same name in
//! `2d_masks/` (lung = 255). Split 80/10/10 after a shuffle with a fixed seed.
use std::path::Path;

use super::{MaskRule, Sample, files_ending, must_exist, seeded_shuffle, stem};
use crate::error::Result;

const SPLIT_SEED: u64 = 42;

pub(super) fn list(root: &Path, split: &str) -> Result<Vec<Sample>> {
    let mut all: Vec<Sample> = files_ending(&root.join("2d_images"), ".tif")?
        .into_iter()
        .map(|image| {
            let name = image.file_name().unwrap_or_default().to_owned();
            let label = must_exist(root.join("2d_masks").join(&name), &image)?;
            Ok(Sample {
                id: stem(&image),
                image,
                label,
                fov: None,
                mask_rule: MaskRule::HalfScale,
            })
        })
        .collect::<Result<_>>()?;
    seeded_shuffle(&mut all, SPLIT_SEED);
    let n = all.len();
    let (a, b) = (n * 8 / 10, n * 9 / 10);
    let mut part = match split {
        "train" => all[..a].to_vec(),
        "val" => all[a..b].to_vec(),
        "test" => all[b..].to_vec(),
        _ => all,
    };
    part.sort_by(|x, y| x.id.cmp(&y.id));
    Ok(part)
}
