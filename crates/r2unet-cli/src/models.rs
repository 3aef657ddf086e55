//! The shipped models: built into the binary, so that `r2unet` works from any folder after
//! `cargo install` (and a moved or deleted checkout); `$R2UNET_MODELS/<task>.bpk` overrides them,
//! and `--weights FILE` any of them.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use r2unet::burn::tensor::Device;
use r2unet::weights::{self, ModelBundle};
use r2unet::{R2UNet, Task};

/// `models/<task>.bpk` as they were when this binary was built (f32, about 4 MB each).
const BUILT_IN: [(Task, &[u8]); 3] = [
    (Task::Retina, include_bytes!("../../../models/retina.bpk")),
    (Task::Skin, include_bytes!("../../../models/skin.bpk")),
    (Task::Lung, include_bytes!("../../../models/lung.bpk")),
];

/// Loads `--weights`, or the shipped model for `task` when none is given. Also returns where the
/// weights came from, for messages.
pub fn load(
    weights: Option<&PathBuf>,
    task: Task,
    device: &Device,
) -> Result<(R2UNet, ModelBundle, String)> {
    let override_dir = std::env::var_os("R2UNET_MODELS").map(PathBuf::from);
    let (bytes, source) = match (weights, override_dir) {
        (Some(path), _) => (read(path)?, path.display().to_string()),
        (None, Some(dir)) => {
            let path = dir.join(format!("{}.bpk", task.name()));
            (read(&path)?, path.display().to_string())
        }
        (None, None) => {
            let bytes = BUILT_IN
                .iter()
                .find(|(t, _)| *t == task)
                .map(|(_, b)| b.to_vec())
                .expect("every task has a built-in model");
            (bytes, format!("the built-in {} model", task.name()))
        }
    };
    let (model, bundle) = weights::from_bytes(&bytes, device).with_context(|| source.clone())?;
    if bundle.preprocess.task != task {
        anyhow::bail!(
            "{source}: this is a {} model, not a {} model",
            bundle.preprocess.task.name(),
            task.name()
        );
    }
    Ok((model, bundle, source))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| path.display().to_string())
}
