//! The shipped models: `models/<task>.bpk` in the repository (or `$R2UNET_MODELS/<task>.bpk`).
use std::path::PathBuf;

use anyhow::{Context, Result};
use r2unet::burn::tensor::Device;
use r2unet::weights::{self, ModelBundle};
use r2unet::{R2UNet, Task};

pub fn shipped_path(task: Task) -> PathBuf {
    let dir = std::env::var_os("R2UNET_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")));
    dir.join(format!("{}.bpk", task.name()))
}

/// Loads `--weights`, or the shipped model for `task` when none is given.
pub fn load(
    weights: Option<&PathBuf>,
    task: Task,
    device: &Device,
) -> Result<(R2UNet, ModelBundle, PathBuf)> {
    let path = match weights {
        Some(p) => p.clone(),
        None => {
            let p = shipped_path(task);
            if !p.is_file() {
                anyhow::bail!(
                    "no shipped {} model at {} (no such model ships yet; pass --weights)",
                    task.name(),
                    p.display()
                );
            }
            p
        }
    };
    let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
    let (model, bundle) =
        weights::from_bytes(&bytes, device).with_context(|| format!("{}", path.display()))?;
    if bundle.preprocess.task != task {
        anyhow::bail!(
            "{}: this is a {} model, not a {} model",
            path.display(),
            bundle.preprocess.task.name(),
            task.name()
        );
    }
    Ok((model, bundle, path))
}
