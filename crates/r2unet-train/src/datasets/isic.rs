//! ISIC 2017 Part 1 (the resized copy in shared/data): `ISIC-2017_{Training,Validation}_Data/ISIC_N.jpg`
//! with `ISIC-2017_{Training,Validation}_Part1_GroundTruth/ISIC_N_segmentation.png`.
//! Splits: `train` = official training minus a seeded 10 % `holdout` (model selection);
//! `validation` = the 150 official validation images (the reported split: no test masks exist).
//!
//! ISIC 2016 overlap (data set `isic2016`, same folder): the ISIC 2016 Part 1 images that are
//! present in ISIC 2017, listed in `isic2016_overlap_split.csv`. `train` = its training rows minus
//! a seeded 10 % `holdout`; `test` = its test rows. Its 305 test images lie inside ISIC 2017's
//! training folder, so a model for it must never see ISIC 2017 training; its scores are not
//! comparable one-to-one with published ISIC 2016 numbers (subset, 2017 masks, resized images).
use std::path::Path;

use super::{MaskRule, Sample, files_ending, must_exist, seeded_shuffle, stem};
use crate::error::{Result, TrainError, read};

/// Fixed so the hold-outs never change between runs or machines.
const HOLDOUT_SEED: u64 = 2017;
const HOLDOUT_SEED_2016: u64 = 2016;

fn official(root: &Path, part: &str) -> Result<Vec<Sample>> {
    let data = root.join(format!("ISIC-2017_{part}_Data"));
    let truth = root.join(format!("ISIC-2017_{part}_Part1_GroundTruth"));
    files_ending(&data, ".jpg")?
        .into_iter()
        .map(|image| {
            let id = stem(&image);
            let label = must_exist(truth.join(format!("{id}_segmentation.png")), &image)?;
            Ok(Sample {
                id,
                image,
                label,
                fov: None,
                mask_rule: MaskRule::HalfScale,
            })
        })
        .collect()
}

/// Splits `all` into training and a seeded 10 % hold-out, each sorted by ID.
fn hold_out(mut all: Vec<Sample>, seed: u64, holdout: bool) -> Vec<Sample> {
    seeded_shuffle(&mut all, seed);
    let cut = all.len() / 10;
    let mut part = if holdout {
        all[..cut].to_vec()
    } else {
        all[cut..].to_vec()
    };
    part.sort_by(|a, b| a.id.cmp(&b.id));
    part
}

pub(super) fn list(root: &Path, split: &str) -> Result<Vec<Sample>> {
    match split {
        "validation" => official(root, "Validation"),
        _ => Ok(hold_out(
            official(root, "Training")?,
            HOLDOUT_SEED,
            split == "holdout",
        )),
    }
}

pub(super) fn list_2016(root: &Path, split: &str) -> Result<Vec<Sample>> {
    match split {
        "test" => overlap(root, "test"),
        _ => Ok(hold_out(
            overlap(root, "train")?,
            HOLDOUT_SEED_2016,
            split == "holdout",
        )),
    }
}

/// The rows of `isic2016_overlap_split.csv` whose ISIC 2016 split is `which`.
fn overlap(root: &Path, which: &str) -> Result<Vec<Sample>> {
    let csv_path = root.join("isic2016_overlap_split.csv");
    let text = String::from_utf8(read(&csv_path)?)
        .map_err(|_| TrainError::Dataset(format!("{}: not UTF-8", csv_path.display())))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() < 4 {
            return Err(TrainError::Dataset(format!(
                "{}:{}: expected 4 columns",
                csv_path.display(),
                n + 1
            )));
        }
        if cols[0] == which {
            let image = root.join(cols[2]);
            let label = must_exist(root.join(cols[3]), &image)?;
            out.push(Sample {
                id: cols[1].to_string(),
                image,
                label,
                fov: None,
                mask_rule: MaskRule::HalfScale,
            });
        }
    }
    Ok(out)
}
