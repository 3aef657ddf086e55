//! DRIVE: `training/{images,1st_manual,mask}` (21–40) and `test/{images,1st_manual,mask}` (01–20).
use std::path::Path;

use super::{MaskRule, Sample, files_ending, must_exist};
use crate::error::Result;

pub(super) fn list(root: &Path, split: &str) -> Result<Vec<Sample>> {
    let parts: &[(&str, &str)] = match split {
        "train" => &[("training", "training")],
        "test" => &[("test", "test")],
        _ => &[("training", "training"), ("test", "test")],
    };
    let mut out = Vec::new();
    for (folder, tag) in parts {
        let dir = root.join(folder);
        for image in files_ending(&dir.join("images"), &format!("_{tag}.tif"))? {
            let name = image
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let nn = name.split('_').next().unwrap_or_default().to_string();
            let label = must_exist(
                dir.join("1st_manual").join(format!("{nn}_manual1.gif")),
                &image,
            )?;
            let fov = must_exist(
                dir.join("mask").join(format!("{nn}_{tag}_mask.gif")),
                &image,
            )?;
            out.push(Sample {
                id: format!("{nn}_{tag}"),
                image,
                label,
                fov: Some(fov),
                mask_rule: MaskRule::HalfScale,
            });
        }
    }
    Ok(out)
}
