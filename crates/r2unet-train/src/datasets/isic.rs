//! ISIC 2017 Part 1 (the resized copy in shared/data): `ISIC-2017_{Training,Validation}_Data/ISIC_N.jpg`
//! with `ISIC-2017_{Training,Validation}_Part1_GroundTruth/ISIC_N_segmentation.png`.
//! Splits: `train` = official training minus a seeded 10 % `holdout` (model selection);
//! `validation` = the 150 official validation images (the reported split: no test masks exist);
//! `isic2016-train` / `isic2016-test` = the ISIC 2016 overlap subset listed in
//! `isic2016_overlap_split.csv` (not comparable one-to-one with published ISIC 2016 numbers).
use std::path::Path;

use super::{files_ending, must_exist, seeded_shuffle, stem, Sample};
use crate::error::{read, Result, TrainError};

/// Fixed so the hold-out never changes between runs or machines.
const HOLDOUT_SEED: u64 = 2017;

fn official(root: &Path, part: &str) -> Result<Vec<Sample>> {
    let data = root.join(format!("ISIC-2017_{part}_Data"));
    let truth = root.join(format!("ISIC-2017_{part}_Part1_GroundTruth"));
    files_ending(&data, ".jpg")?
        .into_iter()
        .map(|image| {
            let id = stem(&image);
            let label = must_exist(truth.join(format!("{id}_segmentation.png")), &image)?;
            Ok(Sample { id, image, label, fov: None })
        })
        .collect()
}

pub(super) fn list(root: &Path, split: &str) -> Result<Vec<Sample>> {
    match split {
        "validation" => official(root, "Validation"),
        "train" | "holdout" => {
            let mut all = official(root, "Training")?;
            seeded_shuffle(&mut all, HOLDOUT_SEED);
            let cut = all.len() / 10;
            let mut part = if split == "holdout" { all[..cut].to_vec() } else { all[cut..].to_vec() };
            part.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(part)
        }
        _ => {
            let which = split.trim_start_matches("isic2016-");
            let csv_path = root.join("isic2016_overlap_split.csv");
            let text = String::from_utf8(read(&csv_path)?)
                .map_err(|_| TrainError::Dataset(format!("{}: not UTF-8", csv_path.display())))?;
            let mut out = Vec::new();
            for (n, line) in text.lines().enumerate().skip(1) {
                let cols: Vec<&str> = line.split(',').map(str::trim).collect();
                if cols.len() < 4 {
                    return Err(TrainError::Dataset(format!("{}:{}: expected 4 columns", csv_path.display(), n + 1)));
                }
                if cols[0] == which {
                    let image = root.join(cols[2]);
                    let label = must_exist(root.join(cols[3]), &image)?;
                    out.push(Sample { id: cols[1].to_string(), image, label, fov: None });
                }
            }
            Ok(out)
        }
    }
}
