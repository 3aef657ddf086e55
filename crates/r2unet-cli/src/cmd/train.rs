//! `r2unet train`.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use r2unet::burn::config::Config;
use r2unet::{ModelConfig, PreprocessConfig, Task};
use r2unet_train::datasets::folder::{
    self, DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION, FolderSet, FolderSpec,
};
use r2unet_train::trainer::{self, TrainConfig};
use r2unet_train::{Dataset, Source};

use crate::args::{DatasetArg, FolderArgs, TrainArgs};
use crate::backend::{self, Workload};
use crate::progress;

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// The folder spec of `--dataset folder`'s flags (paths made absolute, so that a run's
/// config.json names them from anywhere).
pub fn folder_spec(f: &FolderArgs, seed: u64) -> Result<FolderSpec> {
    let (Some(images), Some(masks), Some(task)) = (&f.images, &f.masks, f.task) else {
        anyhow::bail!("--dataset folder needs --images DIR, --masks DIR and --task");
    };
    Ok(FolderSpec {
        images: absolute(images),
        masks: absolute(masks),
        fov: f.fov.as_deref().map(absolute),
        task,
        split_file: f.split_file.as_deref().map(absolute),
        val_fraction: f.val_fraction.unwrap_or(DEFAULT_VAL_FRACTION),
        test_fraction: f.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION),
        seed,
        skip_bad: f.skip_bad,
    })
}

/// Folder flags given with a named data set are refused, not ignored.
pub fn refuse_folder_flags(f: &FolderArgs, dataset: Dataset) -> Result<()> {
    let given: Vec<&str> = [
        ("--images", f.images.is_some()),
        ("--masks", f.masks.is_some()),
        ("--fov", f.fov.is_some()),
        ("--task", f.task.is_some()),
        ("--split-file", f.split_file.is_some()),
        ("--val-fraction", f.val_fraction.is_some()),
        ("--test-fraction", f.test_fraction.is_some()),
        ("--skip-bad", f.skip_bad),
    ]
    .into_iter()
    .filter_map(|(flag, on)| on.then_some(flag))
    .collect();
    if !given.is_empty() {
        anyhow::bail!(
            "{} {} for --dataset folder; {} reads its own layout from --data ROOT",
            given.join(", "),
            if given.len() == 1 { "is" } else { "are" },
            dataset.name()
        );
    }
    Ok(())
}

/// Opens folder data (every file paired and checked), prints its warnings and a summary.
pub fn open_folder(spec: &FolderSpec, preprocess: &PreprocessConfig) -> Result<Source> {
    let set = FolderSet::open(spec, preprocess)?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    let count = |s: &str| set.pairs.iter().filter(|p| p.split == Some(s)).count();
    eprintln!(
        "folder {}: {} pairs ({} train, {} val, {} test{})",
        spec.images.display(),
        set.pairs.len(),
        count("train"),
        count("val"),
        count("test"),
        match &spec.split_file {
            Some(f) => format!("; split file {}", f.display()),
            None => format!(
                "; fractions {} / {}, seed {}",
                spec.val_fraction, spec.test_fraction, spec.seed
            ),
        }
    );
    Ok(Source::Folder(Box::new(set)))
}

/// The data a resumed run trains on: what its config.json records (and `--data`, which may
/// move a named data set); data flags that disagree with the record are refused.
fn resumed_source(a: &TrainArgs, c: &mut TrainConfig) -> Result<Source> {
    if c.dataset == folder::NAME {
        let Some(spec) = c.folder.clone() else {
            anyhow::bail!("config.json names folder data but records no folders");
        };
        match a.dataset {
            None => {}
            Some(DatasetArg::Folder) if a.folder.images.is_none() => {}
            Some(DatasetArg::Folder) => {
                let given = folder_spec(&a.folder, a.seed)?;
                if given != spec {
                    anyhow::bail!(
                        "the folder flags differ from the run's (config.json): it recorded \
                         {spec:?}, given {given:?}; resume with --out alone"
                    );
                }
            }
            Some(DatasetArg::Named(d)) => anyhow::bail!(
                "--dataset {}: the run trains on folder data (resume with --out alone)",
                d.name()
            ),
        }
        return open_folder(&spec, &c.preprocess);
    }
    let dataset = Dataset::parse(&c.dataset)?;
    match a.dataset {
        Some(DatasetArg::Named(d)) if d != dataset => anyhow::bail!(
            "--dataset {}: the run trains on {}",
            d.name(),
            dataset.name()
        ),
        Some(DatasetArg::Folder) => {
            anyhow::bail!("--dataset folder: the run trains on {}", dataset.name())
        }
        _ => refuse_folder_flags(&a.folder, dataset)?,
    }
    let root = match (&a.data, &c.data) {
        (Some(given), _) => absolute(given),
        (None, Some(recorded)) => PathBuf::from(recorded),
        (None, None) => anyhow::bail!(
            "--data ROOT: this run's config.json does not record its data folder (it was \
             started before r2unet recorded it); pass the {} folder",
            dataset.name()
        ),
    };
    c.data = Some(root.display().to_string());
    Ok(Source::Named { dataset, root })
}

/// `r2unet train`: starts or resumes a run; the device is chosen once the run's shape is known
/// (`--backend auto` times a training step of it).
pub fn run(a: TrainArgs) -> Result<()> {
    let (config, source) = if a.resume {
        let path = a.out.join("config.json");
        let mut c = TrainConfig::load(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot resume: {e}", path.display()))?;
        // The last committed checkpoint (none when the run was killed in its first epoch:
        // it starts again).
        let done = r2unet_train::checkpoint::RunDir::new(&a.out)
            .and_then(|dir| dir.committed())
            .map_err(|e| anyhow::anyhow!("cannot resume: {e}"))?
            .map_or(0, |state| state.epoch);
        if let Some(epochs) = a.epochs {
            if epochs < done {
                anyhow::bail!(
                    "--epochs {epochs}: {} has already completed {done} epochs",
                    a.out.display()
                );
            }
            c.epochs = epochs;
        }
        if done == 0 {
            eprintln!(
                "resuming {}: no epoch was completed, so it starts from epoch 1",
                a.out.display()
            );
        } else {
            eprintln!(
                "resuming {} after epoch {done} of {}",
                a.out.display(),
                c.epochs
            );
        }
        let source = resumed_source(&a, &mut c)?;
        (c, source)
    } else {
        if a.out.join("state.json").exists() {
            anyhow::bail!(
                "{} already holds a run; pass --resume to continue it, or choose another --out",
                a.out.display()
            );
        }
        let Some(dataset) = a.dataset else {
            anyhow::bail!("--dataset is needed to start a run");
        };
        let (task, spec) = match dataset {
            DatasetArg::Named(d) => {
                refuse_folder_flags(&a.folder, d)?;
                (d.task(), None)
            }
            DatasetArg::Folder => {
                let spec = folder_spec(&a.folder, a.seed)?;
                (spec.task, Some(spec))
            }
        };
        if !(1.0..=4.0).contains(&a.zoom) {
            anyhow::bail!("--zoom {}: must be between 1 (off) and 4", a.zoom);
        }
        if a.zoom > 1.0 && task == Task::Retina {
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
        let source = match (dataset, &spec) {
            (DatasetArg::Named(dataset), _) => Source::Named {
                dataset,
                root: absolute(a.data.as_deref().context("--data ROOT is needed")?),
            },
            (DatasetArg::Folder, Some(spec)) => open_folder(spec, &preprocess)?,
            (DatasetArg::Folder, None) => unreachable!("a folder spec is made above"),
        };
        let data = match &source {
            Source::Named { root, .. } => Some(root.display().to_string()),
            Source::Folder(_) => None,
        };
        let config = TrainConfig::new(model, preprocess, source.name().to_string())
            .with_data(data)
            .with_folder(spec)
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
                absolute(p).display().to_string()
            }));
        (config, source)
    };
    // Folder data: the splits training needs must hold pairs, before anything is written.
    if let Source::Folder(set) = &source {
        source.list("train")?;
        match source.selection_split() {
            Some(split) => {
                source.list(split)?;
            }
            None => {
                let val = set.pairs.iter().filter(|p| p.split == Some("val")).count();
                if val > 0 {
                    eprintln!(
                        "note: retina selects on held-out patches of the training images; the \
                         {val} val image(s) are not used in training (score them with eval \
                         --split val)"
                    );
                }
            }
        }
    }
    let side = match config.preprocess.task {
        Task::Retina => config.patch,
        _ => config.preprocess.size,
    };
    let chosen = backend::choose(
        a.backend,
        &Workload::Training {
            model: config.model.clone(),
            batch: config.batch,
            side,
        },
    )?;
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
        &source,
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
