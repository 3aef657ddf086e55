//! Scoring a model on a data set split: whole images by tiled inference, metrics at a
//! threshold over FOV pixels, per image and pooled over the split (the paper's protocol).
use std::time::Instant;

use r2unet::R2UNet;
use r2unet::burn::tensor::Device;
use r2unet::inference::predict;
use r2unet::inference::tiling::TilingConfig;
use r2unet::metrics::{Confusion, Metrics, Scores, roc_curve};
use r2unet::weights::ModelBundle;
use serde::Serialize;

use crate::datasets::{Dataset, Source};
use crate::error::{Result, TrainError};

#[derive(Clone, Debug, Serialize)]
pub struct ImageResult {
    pub id: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Share of the scored pixels that are foreground in the ground truth (lesion or vessel).
    pub truth_fraction: f64,
}

/// Adds two confusion matrices (images pooled).
fn pooled(a: Confusion, b: Confusion) -> Confusion {
    Confusion {
        tp: a.tp + b.tp,
        fp: a.fp + b.fp,
        tn: a.tn + b.tn,
        fn_: a.fn_ + b.fn_,
    }
}

/// The images whose ground-truth foreground covers `[from, to)` of the image, scored together:
/// where a model fails (small lesions, or lesions that fill the frame) shows here and is
/// averaged away in the pooled row.
#[derive(Clone, Debug, Serialize)]
pub struct SizeBin {
    pub from: f64,
    pub to: f64,
    pub images: usize,
    /// Share of all foreground pixels of the split that lie in these images.
    pub foreground_share: f64,
    pub dice: f64,
    pub se: f64,
    pub mean_image_dice: f64,
}

/// Bins of foreground share used by [`Report::by_size`].
pub const SIZE_BINS: [(f64, f64); 4] = [(0.0, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01)];

/// `images`: each image's confusion matrix at the threshold and its truth fraction.
fn by_size(images: &[(Confusion, f64)]) -> Vec<SizeBin> {
    let total: u64 = images.iter().map(|(c, _)| c.tp + c.fn_).sum();
    SIZE_BINS
        .iter()
        .map(|&(from, to)| {
            let inside: Vec<Confusion> = images
                .iter()
                .filter(|(_, f)| *f >= from && *f < to)
                .map(|(c, _)| *c)
                .collect();
            let c = inside.iter().copied().fold(Confusion::default(), pooled);
            SizeBin {
                from,
                to: to.min(1.0),
                images: inside.len(),
                foreground_share: (c.tp + c.fn_) as f64 / total.max(1) as f64,
                dice: c.f1(),
                se: c.sensitivity(),
                mean_image_dice: inside.iter().map(Confusion::f1).sum::<f64>()
                    / inside.len().max(1) as f64,
            }
        })
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub dataset: String,
    pub split: String,
    /// The scored model's architecture name and trainable parameter count, so a row of a
    /// comparison table carries them from the same run.
    pub architecture: String,
    pub parameters: usize,
    pub threshold: f32,
    pub pooled: Metrics,
    pub images: Vec<ImageResult>,
    /// Dice and sensitivity by the ground truth's foreground share of each image.
    pub by_size: Vec<SizeBin>,
    /// ROC points (false-positive rate, true-positive rate), thinned to at most 500.
    pub roc: Vec<(f64, f64)>,
    pub seconds: f64,
}

/// Scores `model` on `split` of `source`. `progress(done, total)` per image.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    source: &Source,
    split: &str,
    model: &R2UNet,
    bundle: &ModelBundle,
    device: &Device,
    tiling: &TilingConfig,
    threshold: f32,
    mut progress: impl FnMut(usize, usize),
) -> Result<Report> {
    if bundle.preprocess.task != source.task() {
        return Err(TrainError::TaskMismatch {
            weights: bundle.preprocess.task.name(),
            dataset: source.name(),
            wanted: source.task().name(),
        });
    }
    let started = Instant::now();
    let samples = source.list(split)?;
    let mut pooled = Scores::default();
    let mut images = Vec::with_capacity(samples.len());
    let mut counts = Vec::with_capacity(samples.len());
    for (i, sample) in samples.iter().enumerate() {
        let loaded = sample.load(&bundle.preprocess)?;
        let probs = predict::probabilities(model, device, &loaded.prepared, tiling, |_, _| {})
            .map_err(|error| TrainError::Image {
                path: sample.image.clone(),
                error,
            })?;
        let probs = loaded.prepared.restore(&probs);
        let fov = &loaded.prepared.source_fov;
        let mut scores = Scores::default();
        scores.extend(&probs, &loaded.label, fov);
        let c = Confusion::from_scores(&scores.probs, &scores.truth, threshold);
        let truth_fraction = (c.tp + c.fn_) as f64 / (c.tp + c.fp + c.fn_ + c.tn).max(1) as f64;
        counts.push((c, truth_fraction));
        images.push(ImageResult {
            id: loaded.id.clone(),
            metrics: scores.metrics(threshold),
            truth_fraction,
        });
        pooled.extend(&probs, &loaded.label, fov);
        progress(i + 1, samples.len());
    }
    let curve = roc_curve(&pooled.probs, &pooled.truth);
    let step = (curve.len() / 500).max(1);
    let mut roc: Vec<(f64, f64)> = curve.iter().step_by(step).copied().collect();
    if roc.last() != curve.last() {
        roc.push(*curve.last().expect("curve has (0,0) at least"));
    }
    Ok(Report {
        dataset: source.name().into(),
        split: split.into(),
        architecture: bundle.model.architecture().to_string(),
        parameters: bundle.model.trainable_params(),
        threshold,
        pooled: pooled.metrics(threshold),
        images,
        by_size: by_size(&counts),
        roc,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The paper's R2U-Net figures (Alom et al. 2019) as quoted in this project's issues, for the
/// table beside ours: `(acc, se, sp, f1, auc)`. Only figures checked against the paper's tables
/// are filled in; `None` prints as "n/a" rather than a number we are not sure of.
pub fn paper_r2unet(dataset: Dataset) -> [Option<f64>; 5] {
    match dataset {
        Dataset::Drive => [Some(0.9556), None, None, Some(0.8171), Some(0.9784)],
        Dataset::Stare => [Some(0.9712), None, None, Some(0.8475), Some(0.9914)],
        Dataset::Chase => [Some(0.9634), None, None, Some(0.7928), Some(0.9815)],
        Dataset::Isic2017 => [None, None, None, Some(0.8920), Some(0.9419)],
        Dataset::Isic2016 | Dataset::Lung => [None; 5],
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn size_bins_score_small_and_large_lesions_apart() {
        // A small lesion found whole (5 of 100 pixels), a large one found half (40 of 80).
        let (probs, truth): (Vec<f32>, Vec<bool>) = (0..100)
            .map(|i| (if i < 5 { 0.9 } else { 0.1 }, i < 5))
            .unzip();
        let small = Confusion::from_scores(&probs, &truth, 0.5);
        let (probs, truth): (Vec<f32>, Vec<bool>) = (0..100)
            .map(|i| (if i < 40 { 0.9 } else { 0.1 }, i < 80))
            .unzip();
        let large = Confusion::from_scores(&probs, &truth, 0.5);
        assert_eq!((large.tp, large.fp, large.fn_, large.tn), (40, 0, 40, 20));
        let bins = by_size(&[(small, 0.05), (large, 0.8)]);
        assert_eq!(bins.len(), SIZE_BINS.len());
        assert_eq!((bins[0].images, bins[0].dice, bins[0].se), (1, 1.0, 1.0));
        assert_eq!((bins[1].images, bins[2].images), (0, 0));
        let last = &bins[3];
        assert_eq!(last.images, 1);
        assert!((last.se - 0.5).abs() < 1e-12 && (last.dice - 80.0 / 120.0).abs() < 1e-12);
        assert!((last.foreground_share - 80.0 / 85.0).abs() < 1e-12);
        assert!((bins[0].foreground_share - 5.0 / 85.0).abs() < 1e-12);
    }
}
