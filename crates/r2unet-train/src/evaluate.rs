//! Scoring a model on a data set split: whole images by tiled inference, metrics at a
//! threshold over FOV pixels, per image and pooled over the split (the paper's protocol).
use std::path::Path;
use std::time::Instant;

use r2unet::R2UNet;
use r2unet::burn::tensor::Device;
use r2unet::metrics::{Metrics, Scores, roc_curve};
use r2unet::predict;
use r2unet::tiling::TilingConfig;
use r2unet::weights::ModelBundle;
use serde::Serialize;

use crate::datasets::Dataset;
use crate::error::{Result, TrainError};

#[derive(Clone, Debug, Serialize)]
pub struct ImageResult {
    pub id: String,
    #[serde(flatten)]
    pub metrics: Metrics,
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
    /// ROC points (false-positive rate, true-positive rate), thinned to at most 500.
    pub roc: Vec<(f64, f64)>,
    pub seconds: f64,
}

/// Scores `model` on `split` of `dataset` under `root`. `progress(done, total)` per image.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    dataset: Dataset,
    root: &Path,
    split: &str,
    model: &R2UNet,
    bundle: &ModelBundle,
    device: &Device,
    tiling: &TilingConfig,
    threshold: f32,
    mut progress: impl FnMut(usize, usize),
) -> Result<Report> {
    if bundle.preprocess.task != dataset.task() {
        return Err(TrainError::Dataset(format!(
            "the weights are a {} model; {} needs a {} model",
            bundle.preprocess.task.name(),
            dataset.name(),
            dataset.task().name()
        )));
    }
    let started = Instant::now();
    let samples = dataset.list(root, split)?;
    let mut pooled = Scores::default();
    let mut images = Vec::with_capacity(samples.len());
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
        images.push(ImageResult {
            id: loaded.id.clone(),
            metrics: scores.metrics(threshold),
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
        dataset: dataset.name().into(),
        split: split.into(),
        architecture: bundle.model.architecture().to_string(),
        parameters: bundle.model.trainable_params(),
        threshold,
        pooled: pooled.metrics(threshold),
        images,
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
