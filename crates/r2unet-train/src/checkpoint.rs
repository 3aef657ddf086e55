//! Checkpoints in a run folder: `last.bpk` + `last.optim` + `state.json` after every epoch
//! (written to temporary names and renamed, so a kill never leaves a half-written checkpoint
//! looking complete), `best.bpk` when validation improves, `log.csv` one line per epoch.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Epochs completed.
    pub epoch: usize,
    pub best_score: f64,
    pub best_epoch: usize,
    /// Seconds spent training so far (all sessions).
    pub seconds: f64,
}

pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|error| TrainError::Io {
            path: root.to_owned(),
            error,
        })?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `name` atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let (tmp, dst) = (self.path(&format!(".{name}.tmp")), self.path(name));
        std::fs::write(&tmp, bytes).map_err(|error| TrainError::Io {
            path: tmp.clone(),
            error,
        })?;
        std::fs::rename(&tmp, &dst).map_err(|error| TrainError::Io { path: dst, error })
    }

    pub fn read_state(&self) -> Result<State> {
        let path = self.path("state.json");
        let bytes = crate::error::read(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::Checkpoint {
            path,
            message: e.to_string(),
        })
    }

    pub fn append_log(&self, header: &str, line: &str) -> Result<()> {
        use std::io::Write;
        let path = self.path("log.csv");
        let fresh = !path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| TrainError::Io {
                path: path.clone(),
                error,
            })?;
        let text = if fresh {
            format!("{header}\n{line}\n")
        } else {
            format!("{line}\n")
        };
        f.write_all(text.as_bytes())
            .map_err(|error| TrainError::Io { path, error })
    }
}
