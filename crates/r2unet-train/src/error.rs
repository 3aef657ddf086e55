//! Errors of the native side: each names the file or folder it is about.
use std::path::PathBuf;

use thiserror::Error;

pub type Result<T> = std::result::Result<T, TrainError>;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Image {
        path: PathBuf,
        source: r2unet::Error,
    },
    #[error("{0}")]
    Dataset(String),
    #[error(transparent)]
    Core(#[from] r2unet::Error),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

/// Reads a file, naming it on failure.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_owned(),
        source,
    })
}
