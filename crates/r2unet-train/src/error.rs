//! Errors of the native side: each names the file or folder it is about.
use std::path::PathBuf;

use thiserror::Error;

pub type Result<T> = std::result::Result<T, TrainError>;

/// The causes of `Io` and `Image` are part of their messages and not `source()`s, so that a
/// caller printing the whole chain (`{:#}`) does not print them twice.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Image { path: PathBuf, error: r2unet::Error },
    /// A data set folder that is missing, empty or not in its publisher's layout.
    #[error("{0}")]
    Dataset(String),
    #[error(transparent)]
    Core(#[from] r2unet::Error),
    /// Weights trained for one task, asked to score a data set of another.
    #[error("the weights are a {weights} model; {dataset} needs a {wanted} model")]
    TaskMismatch {
        weights: &'static str,
        dataset: &'static str,
        wanted: &'static str,
    },
    /// A model whose input channels are not what the task's images give.
    #[error("model takes {model} channels but {task} images give {images}")]
    ChannelMismatch {
        model: usize,
        task: &'static str,
        images: usize,
    },
    /// Training diverged: the loss is NaN or infinite.
    #[error("loss became {loss} at epoch {epoch}; lower --lr (now {lr:.1e})")]
    Diverged { loss: f32, epoch: usize, lr: f64 },
    /// Probabilities could not be read back from the device.
    #[error("reading the validation probabilities back from the device failed")]
    ReadBack(#[source] r2unet::burn::tensor::DataError),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

/// Reads a file, naming it on failure.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| TrainError::Io {
        path: path.to_owned(),
        error,
    })
}
