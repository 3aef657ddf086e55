//! CHASE_DB1: flat `Image_NNX.jpg` with `Image_NNX_1stHO.png` (the reference observer). FOV
//! derived from the image. Declared split: the first 20 sorted images (children 1–10) train,
//! the last 8 (children 11–14) test, so both eyes of a child stay together.
use std::path::Path;

use super::{MaskRule, Sample, files_ending, must_exist, stem};
use crate::error::Result;

pub(super) fn list(root: &Path, split: &str) -> Result<Vec<Sample>> {
    let images = files_ending(root, ".jpg")?;
    let mut out = Vec::new();
    for (i, image) in images.into_iter().enumerate() {
        let keep = match split {
            "train" => i < 20,
            "test" => i >= 20,
            _ => true,
        };
        if keep {
            let id = stem(&image);
            let label = must_exist(root.join(format!("{id}_1stHO.png")), &image)?;
            out.push(Sample {
                id,
                image,
                label,
                fov: None,
                mask_rule: MaskRule::HalfScale,
            });
        }
    }
    Ok(out)
}
