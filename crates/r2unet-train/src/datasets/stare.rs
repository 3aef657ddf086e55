//! STARE: `images/imNNNN.png`, `labels-ah/imNNNN.ah.png` (Hoover, the reference). The FOV is
//! derived from the image, as for any fundus photo (the unofficial masks are not used).
//! Declared split: the first 10 sorted IDs train, the last 10 test.
use std::path::Path;

use super::{MaskRule, Sample, files_ending, must_exist, stem};
use crate::error::Result;

pub(super) fn list(root: &Path, split: &str) -> Result<Vec<Sample>> {
    let images = files_ending(&root.join("images"), ".png")?;
    let n = images.len();
    let mut out = Vec::new();
    for (i, image) in images.into_iter().enumerate() {
        let keep = match split {
            "train" => i < n / 2,
            "test" => i >= n / 2,
            _ => true,
        };
        if keep {
            let id = stem(&image);
            let label = must_exist(root.join("labels-ah").join(format!("{id}.ah.png")), &image)?;
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
