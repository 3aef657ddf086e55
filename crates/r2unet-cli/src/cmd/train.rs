//! `r2unet train`.
use anyhow::{Context, Result};
use r2unet::burn::config::Config;
use r2unet::{ModelConfig, PreprocessConfig};
use r2unet_train::trainer::{self, TrainConfig};

use crate::args::TrainArgs;
use crate::backend::Chosen;
use crate::progress;

/// `chosen`: the device, resolved by `main` before any thread starts (see
/// [`crate::backend::make_default`]).
pub fn run(a: TrainArgs, chosen: Chosen) -> Result<()> {
    let config = if a.resume {
        let path = a.out.join("config.json");
        let mut c = TrainConfig::load(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot resume: {e}", path.display()))?;
        if let Some(epochs) = a.epochs {
            let done = r2unet_train::checkpoint::RunDir::new(&a.out)
                .and_then(|dir| dir.read_state())
                .map_err(|e| anyhow::anyhow!("cannot resume: {e}"))?
                .epoch;
            if epochs < done {
                anyhow::bail!(
                    "--epochs {epochs}: {} has already completed {done} epochs",
                    a.out.display()
                );
            }
            c.epochs = epochs;
        }
        c
    } else {
        if a.out.join("state.json").exists() {
            anyhow::bail!(
                "{} already holds a run; pass --resume to continue it, or choose another --out",
                a.out.display()
            );
        }
        let dataset = a.dataset;
        let task = dataset.task();
        if !(1.0..=4.0).contains(&a.zoom) {
            anyhow::bail!("--zoom {}: must be between 1 (off) and 4", a.zoom);
        }
        if a.zoom > 1.0 && task == r2unet::Task::Retina {
            anyhow::bail!("--zoom is for whole-image tasks (skin, lung); retina trains on patches");
        }
        let model = ModelConfig::for_architecture(&a.arch)?
            .with_widths(a.widths.clone())
            .with_t(a.t)
            .with_in_channels(task.channels());
        model.validate()?;
        let mut preprocess = PreprocessConfig::for_task(task).with_fov_width(a.fov_width);
        if let Some(size) = a.size {
            preprocess = preprocess.with_size(size);
        }
        TrainConfig::new(model, preprocess, dataset.name().to_string())
            .with_lr(a.lr)
            .with_batch(a.batch)
            .with_epochs(a.epochs.unwrap_or(20))
            .with_seed(a.seed)
            .with_patches(a.patches)
            .with_patch(a.patch)
            .with_augment(!a.no_augment)
            .with_zoom((a.zoom > 1.0).then_some(a.zoom))
            .with_init(a.init.as_ref().map(|p| {
                // Absolute, so that config.json still names the file from another directory.
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            }))
    };
    eprintln!(
        "training {} ({} parameters) on {} for {} epochs; Adam lr {} eps {}; run folder {}",
        config.model.architecture(),
        config.model.trainable_params(),
        config.dataset,
        config.epochs,
        config.lr,
        config.epsilon,
        a.out.display()
    );
    let mut bars = progress::TrainBars::default();
    let state = trainer::train(
        &config,
        &a.data,
        &a.out,
        &chosen.device,
        a.resume,
        &mut bars,
    )
    .with_context(|| format!("training into {}", a.out.display()))?;
    eprintln!(
        "done: {} epochs, best epoch {} (score {:.4}); weights in {}",
        state.epoch,
        state.best_epoch,
        state.best_score,
        a.out.join("best.bpk").display()
    );
    Ok(())
}
