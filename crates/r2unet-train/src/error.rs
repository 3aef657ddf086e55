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
    /// A write failed because the disk (or the user's quota) is full. Checkpoints are written
    /// beside the previous one and committed by a rename, so the last complete checkpoint is
    /// still there and resumable.
    #[error(
        "{path}: the disk is full ({error}); the run folder's last complete checkpoint is kept: \
         free some space, then continue with --resume"
    )]
    DiskFull {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// `error` on `path` as a [`TrainError`]: [`TrainError::DiskFull`] when the disk or the quota
/// is full (ENOSPC, EDQUOT), [`TrainError::Io`] otherwise.
pub fn io(path: &std::path::Path, error: std::io::Error) -> TrainError {
    use std::io::ErrorKind;
    let path = path.to_owned();
    match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => TrainError::DiskFull { path, error },
        _ => TrainError::Io { path, error },
    }
}

/// Reads a file, naming it on failure.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| io(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// ENOSPC and EDQUOT say the disk is full and name the file; other errors stay plain.
    #[test]
    fn a_full_disk_is_named_as_such() {
        let path = Path::new("runs/x/ckpt-0003.optim");
        for code in [28, 122] {
            let e = io(path, std::io::Error::from_raw_os_error(code)).to_string();
            assert!(
                e.starts_with("runs/x/ckpt-0003.optim: the disk is full"),
                "{e}"
            );
            assert!(e.contains("--resume"), "{e}");
        }
        let e = io(path, std::io::Error::from_raw_os_error(13)).to_string();
        assert!(!e.contains("disk is full"), "{e}");
        // The real thing: /dev/full answers every write with ENOSPC.
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
            let error = f
                .write_all(&[0; 4096])
                .and_then(|_| f.sync_all())
                .unwrap_err();
            let e = io(Path::new("/dev/full"), error).to_string();
            assert!(e.contains("the disk is full"), "{e}");
        }
    }
}
