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
    #[error("{0}")]
    Dataset(String),
    #[error(transparent)]
    Core(#[from] r2unet::Error),
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
