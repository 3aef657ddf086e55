//! The training loop: BCE with logits, Adam, a validation pass each epoch, the best checkpoint
//! kept, and resume from the last completed epoch.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use r2unet::burn::config::Config;
use r2unet::burn::module::Module;
use r2unet::burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use r2unet::burn::tensor::activation::sigmoid;
use r2unet::burn::tensor::{Bytes, Device, Tensor, TensorData};
use r2unet::metrics::Scores;
use r2unet::weights::{self, ModelBundle, Precision};
use r2unet::{ModelConfig, PreprocessConfig, R2UNet, Task};

use serde::{Deserialize, Serialize};

use crate::adam::FusedAdam;
use crate::bce::bce_with_logits;
use crate::checkpoint::{RunDir, State};
use crate::datasets::folder::FolderSpec;
use crate::datasets::{Loaded, Source};
use crate::error::TrainError;
use crate::samples::{self, Examples};

/// Everything that defines a training run; saved as `config.json` in the run folder.
#[derive(Config, Debug)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub preprocess: PreprocessConfig,
    /// Data set name (`drive`, `stare`, `chase`, `isic2017`, `isic2016`, `lung`, or `folder`).
    pub dataset: String,
    /// A named data set's root folder (absolute), so that `--resume` needs no `--data`. `None`
    /// for folder data, and in run folders from before it was recorded (their resume takes
    /// `--data`).
    #[config(default = "None")]
    pub data: Option<String>,
    /// `--dataset folder`: the folders (absolute), the task and how the pairs are split, so
    /// that `--resume` finds the same data (checked against the run's `files.csv`).
    #[config(default = "None")]
    pub folder: Option<FolderSpec>,
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Adam's epsilon (PyTorch's default; burn's is 1e-5).
    #[config(default = 1e-8)]
    pub epsilon: f32,
    #[config(default = 32)]
    pub batch: usize,
    #[config(default = 20)]
    pub epochs: usize,
    #[config(default = 42)]
    pub seed: u64,
    /// Retina: random patches drawn per epoch (the report used 100,000 in all).
    #[config(default = 10000)]
    pub patches: usize,
    /// Retina: patch side.
    #[config(default = 48)]
    pub patch: usize,
    /// Retina: held-out patches for validation, as a fraction of `patches` (the paper: 10 %).
    #[config(default = 0.1)]
    pub val_fraction: f64,
    /// Random flips and right-angle rotations.
    #[config(default = true)]
    pub augment: bool,
    /// Skin and lung: each training image is also zoomed in by a random factor in `[1, zoom]`
    /// (a random crop of `1 / factor` of its side, resized back). 1 = off. Zooming in turns
    /// medium lesions into lesions that fill the frame, the ones a model trained on whole
    /// images misses most (RESULTS.md). An `Option` so that run folders from before it
    /// still resume (`None` = 1).
    #[config(default = "None")]
    pub zoom: Option<f64>,
    /// Cosine decay of the learning rate to `lr * lr_floor` over all epochs.
    #[config(default = 0.05)]
    pub lr_floor: f64,
    /// Weights file the model starts from instead of a random initialisation (same
    /// architecture; e.g. to fine-tune at another input size). Ignored on resume, where the
    /// run's own checkpoint wins.
    #[config(default = "None")]
    pub init: Option<String>,
}

/// One line of `log.csv`. The checkpoint's record (`state.json`) keeps every epoch's, at full
/// precision; `log.csv` is written from them (5 decimals).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// The last step's learning rate.
    #[serde(with = "crate::checkpoint::exact")]
    pub lr: f64,
    #[serde(with = "crate::checkpoint::exact")]
    pub train_loss: f64,
    #[serde(with = "crate::checkpoint::exact")]
    pub val_loss: f64,
    #[serde(with = "crate::checkpoint::exact")]
    pub val_auc: f64,
    #[serde(with = "crate::checkpoint::exact")]
    pub val_f1: f64,
    #[serde(with = "crate::checkpoint::exact")]
    pub seconds: f64,
    #[serde(with = "crate::checkpoint::exact")]
    pub examples_per_s: f64,
    pub best: bool,
}

pub const LOG_HEADER: &str =
    "epoch,lr,train_loss,val_loss,val_auc,val_f1,seconds,examples_per_s,best";

impl EpochLog {
    /// Its `log.csv` line (without the newline).
    pub fn csv(&self) -> String {
        format!(
            "{},{:.3e},{:.5},{:.5},{:.5},{:.5},{:.1},{:.1},{}",
            self.epoch,
            self.lr,
            self.train_loss,
            self.val_loss,
            self.val_auc,
            self.val_f1,
            self.seconds,
            self.examples_per_s,
            self.best
        )
    }

    /// A `log.csv` line back (run folders of the old layout keep their log there only).
    pub fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.trim().split(',').collect();
        let [
            epoch,
            lr,
            train_loss,
            val_loss,
            val_auc,
            val_f1,
            seconds,
            examples_per_s,
            best,
        ] = f[..]
        else {
            return None;
        };
        let num = |v: &str| v.parse::<f64>().ok();
        Some(Self {
            epoch: epoch.parse().ok()?,
            lr: num(lr)?,
            train_loss: num(train_loss)?,
            val_loss: num(val_loss)?,
            val_auc: num(val_auc)?,
            val_f1: num(val_f1)?,
            seconds: num(seconds)?,
            examples_per_s: num(examples_per_s)?,
            best: best.parse().ok()?,
        })
    }
}

/// What the caller (the CLI's progress bars) hears about.
pub trait Observer {
    fn loading(&mut self, _what: &str, _done: usize, _total: usize) {}
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _examples: usize) {}
    fn batch(&mut self, _examples_done: usize, _loss: f64) {}
    fn epoch_end(&mut self, _log: &EpochLog) {}
}

/// Loads and preprocesses every sample of a split.
pub fn load_split(
    source: &Source,
    split: &str,
    preprocess: &PreprocessConfig,
    observer: &mut dyn Observer,
) -> crate::Result<Vec<Loaded>> {
    let samples = source.list(split)?;
    let mut out = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        out.push(s.load(preprocess)?);
        observer.loading(split, i + 1, samples.len());
    }
    Ok(out)
}

fn batch_tensors(
    examples: &Examples,
    range: std::ops::Range<usize>,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let n = range.len();
    let (x, y) = examples.slice(range);
    let (c, s) = (examples.channels, examples.side);
    (
        Tensor::from_data(TensorData::new(x.to_vec(), [n, c, s, s]), device),
        Tensor::from_data(TensorData::new(y.to_vec(), [n, 1, s, s]), device),
    )
}

/// Loss, AUC and F1 of `model` over `examples` (validation).
fn validate(
    model: &R2UNet,
    examples: &Examples,
    batch: usize,
    device: &Device,
) -> crate::Result<(f64, f64, f64)> {
    let mut scores = Scores::default();
    let (mut loss_sum, mut n) = (0.0, 0);
    let mut start = 0;
    while start < examples.len() {
        let end = (start + batch).min(examples.len());
        let (x, y) = batch_tensors(examples, start..end, device);
        let logits = model.forward(x);
        let loss: f32 = bce_with_logits(logits.clone(), y).into_scalar();
        loss_sum += loss as f64 * (end - start) as f64;
        n += end - start;
        let probs = sigmoid(logits)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(TrainError::ReadBack)?;
        let (_, labels) = examples.slice(start..end);
        let truth: Vec<bool> = labels.iter().map(|&v| v > 0.5).collect();
        scores.extend(&probs, &truth, &vec![true; truth.len()]);
        start = end;
    }
    let m = scores.metrics(0.5);
    Ok((loss_sum / n.max(1) as f64, m.auc, m.f1))
}

fn bundle(config: &TrainConfig, state: &State) -> ModelBundle {
    let mut info = BTreeMap::new();
    info.insert("dataset".into(), config.dataset.clone());
    info.insert("epochs".into(), state.epoch.to_string());
    info.insert("best_epoch".into(), state.best_epoch.to_string());
    info.insert("train_seconds".into(), format!("{:.0}", state.seconds));
    info.insert("seed".into(), config.seed.to_string());
    info.insert("patches_per_epoch".into(), config.patches.to_string());
    ModelBundle {
        model: config.model.clone(),
        preprocess: config.preprocess.clone(),
        info,
    }
}

/// Trains into `run` (a folder) on `source`, which must be the data `config` names. With
/// `resume`, continues from the run's last committed checkpoint (`crate::checkpoint`; from
/// the start when it has none). After every epoch the weights, the optimizer state and the
/// record (`state.json`) are committed together. Folder data: the run's `files.csv` lists every
/// pair with its split and digests; a resume checks the folder against it.
pub fn train(
    config: &TrainConfig,
    source: &Source,
    run: &Path,
    device: &Device,
    resume: bool,
    observer: &mut dyn Observer,
) -> crate::Result<State> {
    config.model.validate()?;
    config.preprocess.validate()?;
    if config.model.in_channels != config.preprocess.task.channels() {
        return Err(TrainError::ChannelMismatch {
            model: config.model.in_channels,
            task: config.preprocess.task.name(),
            images: config.preprocess.task.channels(),
        });
    }
    if source.name() != config.dataset || source.task() != config.preprocess.task {
        return Err(TrainError::Dataset(format!(
            "the run trains a {} model on {}; the data given is {} ({})",
            config.preprocess.task.name(),
            config.dataset,
            source.name(),
            source.task().name()
        )));
    }
    let dir = RunDir::new(run)?;
    let train_device = device.clone().autodiff();
    let eval_device = device.clone().without_autodiff();

    // The random initial weights follow the run's seed, so that one seed gives one run.
    train_device.seed(config.seed);
    let mut model = config.model.init(&train_device);
    let mut optim: ModuleOptimizer = FusedAdam::new(config.epsilon).init();
    // A run killed before its first commit has nothing to resume: it starts again, from
    // `--init` too, as the uninterrupted run did.
    let restored = if resume { dir.resume()? } else { None };
    let mut state = State::default();
    if let Some(restored) = restored {
        let at = |name: &str| dir.path(name);
        let names = match &restored.state.checkpoint {
            Some(c) => (c.weights.name.clone(), c.optim.name.clone()),
            None => ("last.bpk".to_owned(), "last.optim".to_owned()),
        };
        weights::load_into(&mut model, &restored.weights).map_err(|e| TrainError::Checkpoint {
            path: at(&names.0),
            message: e.to_string(),
        })?;
        let record =
            OptimizerRecord::from_bytes(Bytes::from_bytes_vec(restored.optim)).map_err(|e| {
                TrainError::Checkpoint {
                    path: at(&names.1),
                    message: format!("{e:?}"),
                }
            })?;
        optim = optim.load_record(record);
        state = restored.state;
    } else if let Some(init) = &config.init {
        let path = Path::new(init);
        let bytes = crate::error::read(path)?;
        let fail = |message: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        // Compare the architectures first: burn's own mismatch report lists every tensor.
        let describe = |m: &ModelConfig| {
            format!(
                "{} (widths {:?}, t = {}, {} input channel(s))",
                m.architecture(),
                m.widths,
                m.t,
                m.in_channels
            )
        };
        let stored = weights::read_bundle(&bytes).map_err(|e| fail(e.to_string()))?;
        if describe(&stored.model) != describe(&config.model) {
            return Err(fail(format!(
                "cannot start from these weights: they hold {}, this run trains {}",
                describe(&stored.model),
                describe(&config.model)
            )));
        }
        weights::load_into(&mut model, &bytes)
            .map_err(|e| fail(format!("cannot start from these weights: {e}")))?;
    }
    if let Source::Folder(set) = source {
        let path = dir.path("files.csv");
        if resume && path.is_file() {
            let stored = String::from_utf8_lossy(&crate::error::read(&path)?).into_owned();
            set.check_unchanged(&stored, &path)?;
        } else {
            dir.write("files.csv", set.files_csv().as_bytes())?;
        }
    }
    dir.write("config.json", config.to_string().as_bytes())?;

    let train_images = load_split(source, "train", &config.preprocess, observer)?;
    let retina = config.preprocess.task == Task::Retina;
    if retina
        && !train_images.iter().any(|im| {
            let p = &im.prepared;
            p.width >= config.patch && p.height >= config.patch && p.fov.iter().any(|&v| v)
        })
    {
        return Err(TrainError::Dataset(format!(
            "no training image is at least {0}x{0} pixels with a field of view, so no              {0}x{0} patch can be drawn; lower --patch",
            config.patch
        )));
    }
    let val = match source.selection_split() {
        Some(split) if !retina => {
            let images = load_split(source, split, &config.preprocess, observer)?;
            samples::whole_images(&images, 0, false)
        }
        // Retina: a fixed set of held-out patches, as the paper (10 % for validation).
        _ => {
            let n = ((config.patches as f64 * config.val_fraction) as usize).max(config.batch);
            samples::patches(&train_images, n, config.patch, config.seed ^ 0x5EED, false)
        }
    };

    let steps_per_epoch = |n: usize| n.div_ceil(config.batch);
    while state.epoch < config.epochs {
        let epoch = state.epoch + 1;
        let seed = samples::epoch_seed(config.seed, epoch);
        let examples = if retina {
            samples::patches(
                &train_images,
                config.patches,
                config.patch,
                seed,
                config.augment,
            )
        } else {
            samples::whole_images_zoomed(
                &train_images,
                seed,
                config.augment,
                config.zoom.map(|max| samples::Zoom {
                    max,
                    task: config.preprocess.task,
                }),
            )
        };
        observer.epoch_start(epoch, config.epochs, examples.len());
        let started = Instant::now();
        let total_steps = (steps_per_epoch(examples.len()) * config.epochs) as f64;
        let (mut loss_sum, mut seen, mut step) =
            (0.0, 0usize, steps_per_epoch(examples.len()) * (epoch - 1));
        let mut lr = config.lr;
        let mut start = 0;
        while start < examples.len() {
            let end = (start + config.batch).min(examples.len());
            // Cosine decay from --lr to lr_floor * --lr over the whole schedule, computed from the
            // global step rather than with burn's CosineAnnealingLrScheduler: that one is built
            // with a fixed iteration count and keeps its own step counter, while a resumed run
            // may change --epochs (scripts/train-budget.sh does, to end on a deadline), which
            // here just changes `total_steps` from the next epoch on, with nothing to save.
            let progress = step as f64 / total_steps;
            let floor = config.lr * config.lr_floor;
            lr =
                floor + (config.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            let (x, y) = batch_tensors(&examples, start..end, &train_device);
            let loss = bce_with_logits(model.forward(x), y);
            let loss_value: f32 = loss.clone().into_scalar();
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    loss: loss_value,
                    epoch,
                    lr,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            loss_sum += loss_value as f64 * (end - start) as f64;
            seen += end - start;
            step += 1;
            observer.batch(seen, loss_sum / seen as f64);
            start = end;
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let inference = model.valid();
        let (val_loss, val_auc, val_f1) = validate(&inference, &val, config.batch, &eval_device)?;
        // Retina selects on AUC (the paper's headline); skin and lung on Dice.
        let score = if retina { val_auc } else { val_f1 };
        let best = score > state.best_score;
        state.epoch = epoch;
        state.seconds += started.elapsed().as_secs_f64();
        if best {
            state.best_score = score;
            state.best_epoch = epoch;
        }
        let log = EpochLog {
            epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss,
            val_auc,
            val_f1,
            seconds: train_seconds,
            examples_per_s: seen as f64 / train_seconds.max(1e-9),
            best,
        };
        state.log.push(log.clone());
        let info = bundle(config, &state);
        let bytes = weights::to_bytes(&inference, &info, Precision::F32)?;
        let record = optim
            .to_record()
            .into_bytes()
            .map_err(|e| TrainError::Checkpoint {
                path: dir.path("ckpt-*.optim"),
                message: format!("{e:?}"),
            })?;
        // Weights, optimizer state and the record together, or not at all (checkpoint.rs).
        dir.commit(&mut state, &bytes, &record)?;
        observer.epoch_end(&log);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2unet::burn::tensor::Distribution;

    /// A few Adam steps on one batch must lower the loss (the gradient flows through every
    /// unit kind and the optimiser updates the weights).
    #[test]
    fn a_few_training_steps_lower_the_loss() {
        let device = Device::flex().autodiff();
        for arch in r2unet::model::ARCHITECTURES {
            let config = ModelConfig::for_architecture(arch)
                .unwrap()
                .with_widths(vec![8, 16]);
            let mut model = config.init(&device);
            let mut optim: ModuleOptimizer = FusedAdam::new(1e-8).init();
            let x = Tensor::<4>::random([8, 1, 16, 16], Distribution::Normal(0.0, 1.0), &device);
            // Target: where the input is bright — learnable by a 1x1 path, so loss must drop.
            let y = x.clone().greater_elem(0.5).float();
            let mut losses = Vec::new();
            for _ in 0..15 {
                let loss = bce_with_logits(model.forward(x.clone()), y.clone());
                losses.push(loss.clone().into_scalar::<f32>());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(3e-3, model, grads);
            }
            let (first, last) = (losses[0], *losses.last().unwrap());
            assert!(
                last < first * 0.8,
                "{arch}: loss {first} -> {last} ({losses:?})"
            );
        }
    }
}
