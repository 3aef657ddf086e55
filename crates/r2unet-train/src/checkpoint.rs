//! Checkpoints in a run folder, written so that a kill at any instant (SIGKILL, a full disk, a
//! power cut) leaves either the previous checkpoint or the new one, each whole and on disk.
//!
//! After epoch `E` (best epoch `B`) a run folder holds:
//!
//! | file | what |
//! |---|---|
//! | `state.json` | the commit record: epoch, best score and epoch, seconds, every epoch's log line, and the name, size and SHA-256 of the checkpoint's two files and of `best.bpk` |
//! | `ckpt-000E.bpk` | the model after epoch `E` (weights and batch-norm statistics; a weights file with its own digest) |
//! | `ckpt-000E.optim` | Adam's state after epoch `E` |
//! | `log.csv`, `best.bpk` | derived from `state.json` (and epoch `B`'s weights): rewritten from it after every commit and on resume |
//! | `config.json` (`files.csv`) | the run's settings (and folder data's files) |
//!
//! A commit of epoch `E` ([`RunDir::commit`]): the weights and the optimizer state are each
//! written to a temporary name (`.ckpt-000E.bpk.tmp`), fsynced and renamed to their names, and
//! the folder is fsynced; then `state.json`, naming them, is written to `.state.json.tmp`,
//! fsynced and renamed over the previous one (the commit point) and the folder fsynced. Only
//! then are the derived files rewritten (each through a temporary name, fsynced, renamed) and
//! the previous checkpoint's files removed. A kill before the rename of `state.json` leaves the
//! previous record, whose files are all still there; a kill after it leaves the new one.
//! `best.bpk` is copied from the new weights only after the record naming it as the best is
//! committed, and before the next epoch starts, so the weights it must equal are always on disk
//! when it may be stale. [`RunDir::resume`] reads `state.json`, checks its files' sizes and
//! digests, removes whatever it does not name (leftover `*.tmp` files, an uncommitted later
//! epoch's files, an earlier epoch's files not yet removed) and rewrites `log.csv` and `best.bpk`
//! where they disagree with it. `log.csv` is never appended to, so no epoch appears twice or is
//! missing, whichever instant a run was killed at.
//!
//! Nothing random needs saving: each epoch's training examples (retina patches, flips,
//! rotations, zooms, the order of whole images) are drawn from a generator seeded with
//! [`crate::samples::epoch_seed`]`(seed, epoch)`, the validation patches from the seed alone and
//! the initial weights from the seed, so a resumed run draws exactly what an uninterrupted one
//! would.
//!
//! Run folders from before this layout (`last.bpk`, `last.optim`, a `state.json` without
//! `checkpoint`, `log.csv` appended epoch by epoch) still resume: their `log.csv` lines up to the
//! recorded epoch are taken into the record, and their first commit moves them to this layout
//! (removing `last.bpk` and `last.optim`). Their `best.bpk` is kept as it is.
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::datasets::folder::sha256_hex;
use crate::error::{Result, TrainError, io};
use crate::trainer::{EpochLog, LOG_HEADER};

/// The commit record.
pub const STATE: &str = "state.json";
/// The derived log, one line per committed epoch.
pub const LOG: &str = "log.csv";
/// The derived copy of the best epoch's weights.
pub const BEST: &str = "best.bpk";
/// The old layout's checkpoint files (before [`Checkpoint`]).
const OLD_WEIGHTS: &str = "last.bpk";
const OLD_OPTIM: &str = "last.optim";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// Epochs completed.
    pub epoch: usize,
    /// `-inf` before the first finite score.
    #[serde(with = "exact::score")]
    pub best_score: f64,
    pub best_epoch: usize,
    /// Seconds spent training so far (all sessions).
    #[serde(with = "exact")]
    pub seconds: f64,
    /// The checkpoint's files; `None` in run folders of the old layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Every committed epoch's log line, in order: `log.csv` is made from these.
    #[serde(default)]
    pub log: Vec<EpochLog>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            epoch: 0,
            best_score: f64::NEG_INFINITY,
            best_epoch: 0,
            seconds: 0.0,
            checkpoint: None,
            log: Vec::new(),
        }
    }
}

/// The record's numbers, written as strings (Rust's shortest representation that reads back
/// to the same bits, `NaN` and `-inf` included): serde_json's default number parser may round
/// the last bit, and a resumed run must read back exactly the best score (which decides the
/// next best epoch) and the log lines that were written. Numbers, and `null` (NaN; the
/// score's -inf), are read too: run folders of the old layout wrote those.
pub mod exact {
    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(Exact(f64::NAN))
    }

    /// The best score: `null` is `-inf`.
    pub mod score {
        pub use super::serialize;
        use serde::Deserializer;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            d.deserialize_any(super::Exact(f64::NEG_INFINITY))
        }
    }

    /// Reads a string, a number or `null` (the value it carries).
    struct Exact(f64);

    impl Visitor<'_> for Exact {
        type Value = f64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number, or a number in a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.parse()
                .map_err(|_| E::custom(format!("not a number: {v:?}")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(self.0)
        }

        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(self.0)
        }
    }
}

/// The files of one committed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub weights: FileRecord,
    pub optim: FileRecord,
    /// SHA-256 of what `best.bpk` must hold (the best epoch's weights file); `None` for a run
    /// that moved from the old layout and has not had a best epoch since.
    pub best_sha256: Option<String>,
}

/// A file of the checkpoint, as it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Its name in the run folder.
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A committed checkpoint, read back and checked.
pub struct Restored {
    pub state: State,
    pub weights: Vec<u8>,
    pub optim: Vec<u8>,
}

pub struct RunDir {
    pub root: PathBuf,
    /// Tests: the step of a commit after which it stops as if killed (`None`: never).
    #[cfg(test)]
    crash_after: std::cell::Cell<Option<usize>>,
}

/// What a test's simulated kill unwinds with.
#[cfg(test)]
struct SimulatedKill;

fn is_tmp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// `ckpt-NNNN.bpk` / `ckpt-NNNN.optim`: a checkpoint file, committed or not.
fn is_checkpoint_file(name: &str) -> bool {
    name.strip_prefix("ckpt-")
        .and_then(|r| r.strip_suffix(".bpk").or_else(|| r.strip_suffix(".optim")))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl RunDir {
    pub fn new(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|error| io(root, error))?;
        Ok(Self {
            root: root.to_owned(),
            #[cfg(test)]
            crash_after: Default::default(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A step of a commit is done. Tests: when asked to, stop here as if killed, by unwinding
    /// (no cleanup runs, as none would after a SIGKILL; `resume_unwind` prints nothing).
    fn reached(&self) {
        #[cfg(test)]
        if let Some(n) = self.crash_after.get() {
            if n == 0 {
                self.crash_after.set(None);
                std::panic::resume_unwind(Box::new(SimulatedKill));
            }
            self.crash_after.set(Some(n - 1));
        }
    }

    /// Flushes the folder's entries (new names, renames, removals) to disk.
    fn sync_dir(&self) -> Result<()> {
        std::fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(|error| io(&self.root, error))?;
        self.reached();
        Ok(())
    }

    /// Writes `name` through `.name.tmp`, fsynced, then renamed: the name holds either its old
    /// bytes or all of the new ones. The rename is on disk only after [`Self::sync_dir`]. On an
    /// error the temporary file is removed (a full disk gets its space back) and `name` is
    /// as it was.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<FileRecord> {
        let (tmp, dst) = (self.path(&format!(".{name}.tmp")), self.path(name));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            })
            .map_err(|error| io(&tmp, error))
            .map(|()| self.reached())
            .and_then(|()| std::fs::rename(&tmp, &dst).map_err(|error| io(&dst, error)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.reached();
        Ok(FileRecord {
            name: name.to_owned(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        })
    }

    /// Writes `name` atomically and durably (temporary name, fsync, rename, fsync of the folder).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put(name, bytes)?;
        self.sync_dir()
    }

    /// The committed record, or `None` when no epoch was ever committed here.
    pub fn committed(&self) -> Result<Option<State>> {
        let path = self.path(STATE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(&path, error)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TrainError::Checkpoint {
                path,
                message: e.to_string(),
            })
    }

    /// The committed record; an error when there is none.
    pub fn read_state(&self) -> Result<State> {
        self.committed()?.ok_or_else(|| TrainError::Checkpoint {
            path: self.path(STATE),
            message: "no checkpoint: the run has not completed an epoch".into(),
        })
    }

    /// Reads a file of the record and checks it is what was committed.
    fn read_checked(&self, record: &FileRecord) -> Result<Vec<u8>> {
        let path = self.path(&record.name);
        let bytes = crate::error::read(&path)?;
        if bytes.len() as u64 != record.bytes || sha256_hex(&bytes) != record.sha256 {
            return Err(TrainError::Checkpoint {
                path,
                message: format!(
                    "{} bytes that do not match the SHA-256 {} recorded in {STATE} ({} bytes); \
                     the file was changed after its epoch was committed",
                    bytes.len(),
                    record.sha256,
                    record.bytes
                ),
            });
        }
        Ok(bytes)
    }

    /// The last committed checkpoint, read and checked, with the folder tidied to it (files it
    /// does not name removed, `log.csv` and `best.bpk` rewritten where they disagree with it);
    /// `None` when no epoch was ever committed (a run killed in its first epoch starts again).
    pub fn resume(&self) -> Result<Option<Restored>> {
        let Some(mut state) = self.committed()? else {
            self.tidy(None)?;
            return Ok(None);
        };
        let (weights, optim) = match &state.checkpoint {
            Some(c) => (self.read_checked(&c.weights)?, self.read_checked(&c.optim)?),
            None => {
                // The old layout: its log.csv was appended after its state.json, so it holds
                // the recorded epochs, or one fewer after a kill between the two.
                let path = self.path(LOG);
                if path.is_file() {
                    let text = String::from_utf8_lossy(&crate::error::read(&path)?).into_owned();
                    for line in text.lines().skip(1) {
                        if let Some(log) = EpochLog::parse(line)
                            && log.epoch == state.log.len() + 1
                            && log.epoch <= state.epoch
                        {
                            state.log.push(log);
                        }
                    }
                }
                (
                    crate::error::read(&self.path(OLD_WEIGHTS))?,
                    crate::error::read(&self.path(OLD_OPTIM))?,
                )
            }
        };
        self.tidy(Some(&state))?;
        if state.checkpoint.is_some() {
            self.derive(&state, &weights, false)?;
        }
        Ok(Some(Restored {
            state,
            weights,
            optim,
        }))
    }

    /// Commits epoch `state.epoch`: `weights` and `optim` are its files, `state.log` must end
    /// with its line, and `state.best_epoch == state.epoch` when it is the best so far. Returns
    /// when the checkpoint is on disk, the derived files agree with it and the previous
    /// checkpoint is gone. An error before the commit point leaves `state` and the folder's
    /// checkpoint as they were (this epoch's files are removed); one after it (the folder's
    /// sync, the derived files, removing old files) leaves the new checkpoint committed, and
    /// `state` says so.
    pub fn commit(&self, state: &mut State, weights: &[u8], optim: &[u8]) -> Result<()> {
        let stem = format!("ckpt-{:04}", state.epoch);
        let new_files = [format!("{stem}.bpk"), format!("{stem}.optim")];
        let staged = (|| -> Result<State> {
            let weights_file = self.put(&new_files[0], weights)?;
            let optim_file = self.put(&new_files[1], optim)?;
            self.sync_dir()?;
            let previous_best = state
                .checkpoint
                .as_ref()
                .and_then(|c| c.best_sha256.clone());
            let mut next = state.clone();
            next.checkpoint = Some(Checkpoint {
                best_sha256: if state.best_epoch == state.epoch {
                    Some(weights_file.sha256.clone())
                } else {
                    previous_best
                },
                weights: weights_file,
                optim: optim_file,
            });
            // The commit point: the rename of state.json inside.
            self.put(
                STATE,
                &serde_json::to_vec_pretty(&next).expect("the state serialises"),
            )?;
            Ok(next)
        })();
        match staged {
            Ok(next) => *state = next,
            Err(e) => {
                for name in &new_files {
                    let _ = std::fs::remove_file(self.path(name));
                }
                return Err(e);
            }
        }
        self.sync_dir()?;
        self.derive(state, weights, true)?;
        self.tidy(Some(state))
    }

    /// Rewrites `log.csv` from the record when it differs, and `best.bpk` from `weights` (the
    /// record's latest) when the latest epoch is the best and `best.bpk` is not it (`fresh`:
    /// the commit just made it the best, no need to read the old copy first).
    fn derive(&self, state: &State, weights: &[u8], fresh: bool) -> Result<()> {
        let mut log = format!("{LOG_HEADER}\n");
        for line in &state.log {
            log.push_str(&line.csv());
            log.push('\n');
        }
        if std::fs::read(self.path(LOG)).ok().as_deref() != Some(log.as_bytes()) {
            self.write(LOG, log.as_bytes())?;
        }
        let Some(want) = state
            .checkpoint
            .as_ref()
            .and_then(|c| c.best_sha256.as_ref())
        else {
            return Ok(());
        };
        if state.best_epoch == state.epoch
            && (fresh
                || std::fs::read(self.path(BEST))
                    .map(|b| sha256_hex(&b))
                    .ok()
                    .as_ref()
                    != Some(want))
        {
            self.write(BEST, weights)?;
        }
        Ok(())
    }

    /// Removes what `state` does not name: temporary files, checkpoint files of other epochs,
    /// and the old layout's files once the new layout holds the checkpoint.
    fn tidy(&self, state: Option<&State>) -> Result<()> {
        let keep: Vec<&str> = state
            .and_then(|s| s.checkpoint.as_ref())
            .map(|c| vec![c.weights.name.as_str(), c.optim.name.as_str()])
            .unwrap_or_default();
        let new_layout = state.is_some_and(|s| s.checkpoint.is_some());
        let entries = std::fs::read_dir(&self.root).map_err(|error| io(&self.root, error))?;
        let mut removed = false;
        for entry in entries {
            let entry = entry.map_err(|error| io(&self.root, error))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = is_tmp(&name)
                || (is_checkpoint_file(&name) && !keep.contains(&name.as_str()))
                || (new_layout && (name == OLD_WEIGHTS || name == OLD_OPTIM));
            if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::remove_file(entry.path()).map_err(|error| io(&entry.path(), error))?;
                removed = true;
                self.reached();
            }
        }
        if removed {
            self.sync_dir()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(epoch: usize, best: bool) -> EpochLog {
        EpochLog {
            epoch,
            lr: 1e-3 / epoch as f64,
            train_loss: 1.0 / epoch as f64,
            val_loss: 0.5,
            val_auc: 0.5 + epoch as f64 / 100.0,
            val_f1: 0.25,
            seconds: 1.5,
            examples_per_s: 100.0,
            best,
        }
    }

    /// Stand-ins for epoch `e`'s files (the trainer's are a weights file and Adam's record).
    fn files(e: usize) -> (Vec<u8>, Vec<u8>) {
        (vec![e as u8; 1000 + e], vec![100 + e as u8; 2000 + e])
    }

    /// Runs epochs up to `to` on `state`; epochs in `best` are best ones.
    fn run_to(dir: &RunDir, state: &mut State, to: usize, best: &[usize]) {
        while state.epoch < to {
            let epoch = state.epoch + 1;
            commit_epoch(dir, state, epoch, best).unwrap();
        }
    }

    fn commit_epoch(dir: &RunDir, state: &mut State, epoch: usize, best: &[usize]) -> Result<()> {
        state.epoch = epoch;
        let is_best = best.contains(&epoch);
        if is_best {
            state.best_epoch = epoch;
            state.best_score = epoch as f64;
        }
        state.log.push(line(epoch, is_best));
        let (w, o) = files(epoch);
        dir.commit(state, &w, &o)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The folder agrees with a committed epoch `epoch` (best epoch `best`): the record and its
    /// two files, log.csv with epochs 1..=epoch once each, best.bpk equal to the best epoch's
    /// weights, nothing else of the checkpoint's.
    #[track_caller]
    fn check(dir: &Path, restored: &Restored, epoch: usize, best: usize) {
        assert_eq!(restored.state.epoch, epoch);
        assert_eq!(restored.state.best_epoch, best);
        assert_eq!(
            (restored.weights.clone(), restored.optim.clone()),
            files(epoch)
        );
        let log = std::fs::read_to_string(dir.join(LOG)).unwrap();
        let epochs: Vec<String> = log
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect();
        let want: Vec<String> = (1..=epoch).map(|e| e.to_string()).collect();
        assert_eq!(epochs, want, "{log}");
        assert_eq!(std::fs::read(dir.join(BEST)).unwrap(), files(best).0);
        let stem = format!("ckpt-{epoch:04}");
        assert_eq!(
            names(dir),
            [
                BEST.to_owned(),
                format!("{stem}.bpk"),
                format!("{stem}.optim"),
                LOG.to_owned(),
                STATE.to_owned()
            ],
        );
    }

    /// A kill after every step of a commit (each file written, fsynced, renamed; the folder
    /// synced; the record committed; the derived files rewritten; each old file removed), with
    /// the new epoch the best and not: the folder resumes at the previous epoch or the new one,
    /// whole, with leftover `*.tmp` files and uncommitted checkpoint files ignored and removed,
    /// and the next commit goes on from there.
    #[test]
    fn a_kill_at_any_step_of_a_commit_leaves_one_whole_checkpoint() {
        for new_is_best in [false, true] {
            let best: &[usize] = if new_is_best { &[1, 3] } else { &[1] };
            let mut steps_seen = 0;
            for crash in 0.. {
                let tmp = tempfile::tempdir().unwrap();
                let dir = RunDir::new(tmp.path()).unwrap();
                let mut state = State::default();
                run_to(&dir, &mut state, 2, best);
                dir.crash_after.set(Some(crash));
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    commit_epoch(&dir, &mut state, 3, best)
                }));
                match result {
                    Ok(done) => {
                        done.unwrap();
                        steps_seen = crash;
                        break;
                    }
                    Err(payload) => assert!(payload.is::<SimulatedKill>()),
                }
                dir.crash_after.set(None);
                let on_disk = names(tmp.path());
                let resumed = RunDir::new(tmp.path()).unwrap().resume().unwrap().unwrap();
                let epoch = resumed.state.epoch;
                assert!(epoch == 2 || epoch == 3, "step {crash}: epoch {epoch}");
                let best_epoch = if epoch == 3 && new_is_best { 3 } else { 1 };
                check(tmp.path(), &resumed, epoch, best_epoch);
                eprintln!("kill after step {crash}: {on_disk:?} -> epoch {epoch}");
                // And on it goes to the end.
                let mut state = resumed.state;
                run_to(&dir, &mut state, 4, best);
                let resumed = dir.resume().unwrap().unwrap();
                check(tmp.path(), &resumed, 4, *best.last().unwrap());
            }
            assert!(steps_seen >= 10, "only {steps_seen} steps");
        }
    }

    /// A folder with no committed epoch (killed in its first) resumes from nothing, its
    /// leftovers removed.
    #[test]
    fn a_run_without_a_committed_epoch_starts_again() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(".ckpt-0001.bpk.tmp"), b"half").unwrap();
        std::fs::write(tmp.path().join("ckpt-0001.bpk"), b"whole").unwrap();
        std::fs::write(tmp.path().join("config.json"), b"{}").unwrap();
        let dir = RunDir::new(tmp.path()).unwrap();
        assert!(dir.resume().unwrap().is_none());
        assert_eq!(names(tmp.path()), ["config.json"]);
    }

    /// A checkpoint file changed after its commit is refused, named.
    #[test]
    fn a_changed_checkpoint_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path()).unwrap();
        let mut state = State::default();
        run_to(&dir, &mut state, 2, &[1]);
        std::fs::write(tmp.path().join("ckpt-0002.optim"), b"other").unwrap();
        let e = dir.resume().err().unwrap().to_string();
        assert!(
            e.contains("ckpt-0002.optim") && e.contains("SHA-256"),
            "{e}"
        );
    }

    /// A run folder of the old layout (last.bpk, last.optim, a state.json without files, an
    /// appended log.csv, here one line short after a kill between the two) resumes, and its
    /// first commit moves it to the new layout with the old log lines kept.
    #[test]
    fn an_old_layout_run_folder_resumes() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        let (w, o) = files(3);
        std::fs::write(p.join(OLD_WEIGHTS), &w).unwrap();
        std::fs::write(p.join(OLD_OPTIM), &o).unwrap();
        std::fs::write(p.join(BEST), files(1).0).unwrap();
        std::fs::write(
            p.join(STATE),
            r#"{ "epoch": 3, "best_score": 0.61, "best_epoch": 1, "seconds": 9.5 }"#,
        )
        .unwrap();
        let old_log = format!(
            "{LOG_HEADER}\n{}\n{}\n",
            line(1, true).csv(),
            line(2, false).csv()
        );
        std::fs::write(p.join(LOG), &old_log).unwrap();
        let dir = RunDir::new(p).unwrap();
        let resumed = dir.resume().unwrap().unwrap();
        assert_eq!((resumed.weights, resumed.optim), (w, o));
        assert_eq!(resumed.state.epoch, 3);
        assert_eq!(resumed.state.log.len(), 2);
        assert_eq!(resumed.state.log[1].csv(), line(2, false).csv());
        assert_eq!(std::fs::read_to_string(p.join(LOG)).unwrap(), old_log);
        let mut state = resumed.state;
        commit_epoch(&dir, &mut state, 4, &[1]).unwrap();
        assert_eq!(
            names(p),
            [BEST, "ckpt-0004.bpk", "ckpt-0004.optim", LOG, STATE]
        );
        let log = std::fs::read_to_string(p.join(LOG)).unwrap();
        assert_eq!(log, format!("{old_log}{}\n", line(4, false).csv()));
        // best.bpk is the old run's, untouched until a new best.
        assert_eq!(std::fs::read(p.join(BEST)).unwrap(), files(1).0);
        commit_epoch(&dir, &mut state, 5, &[5]).unwrap();
        assert_eq!(std::fs::read(p.join(BEST)).unwrap(), files(5).0);
        let resumed = dir.resume().unwrap().unwrap();
        assert_eq!(
            resumed.state.checkpoint.unwrap().weights.name,
            "ckpt-0005.bpk"
        );
    }

    /// The record's numbers read back bit for bit (serde_json's own parsing of numbers may
    /// not: 0.0009959363091525599 came back as 0.00099593630915256 in a run), a score that is
    /// not finite (no best yet; an AUC over one class) included; the old layout's numbers and
    /// nulls are read.
    #[test]
    fn the_record_reads_back_bit_for_bit() {
        let mut state = State {
            seconds: 0.1 + 0.2,
            ..State::default()
        };
        let mut x = 0.0009959363091525599f64;
        for e in 1..200 {
            x = (x * 1.37 + 1e-7).fract();
            state.log.push(EpochLog {
                lr: x,
                train_loss: x * 3.3,
                val_auc: if e == 7 { f64::NAN } else { x / 7.0 },
                ..line(e, false)
            });
        }
        let json = serde_json::to_string(&state).unwrap();
        let back: State = serde_json::from_str(&json).unwrap();
        let plain = state
            .log
            .iter()
            .filter(|l| {
                let text = serde_json::to_string(&l.train_loss).unwrap();
                serde_json::from_str::<f64>(&text).unwrap().to_bits() != l.train_loss.to_bits()
            })
            .count();
        eprintln!(
            "{plain} of {} numbers do not read back as plain JSON numbers",
            state.log.len()
        );
        assert_eq!(back.best_score, f64::NEG_INFINITY);
        assert_eq!(back.seconds.to_bits(), state.seconds.to_bits());
        for (a, b) in state.log.iter().zip(&back.log) {
            for (u, v) in [
                (a.lr, b.lr),
                (a.train_loss, b.train_loss),
                (a.val_auc, b.val_auc),
            ] {
                assert!(
                    u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()),
                    "{u} {v}"
                );
            }
        }
        let old: State = serde_json::from_str(
            r#"{"epoch": 1, "best_score": null, "best_epoch": 0, "seconds": 2}"#,
        )
        .unwrap();
        assert_eq!((old.best_score, old.seconds), (f64::NEG_INFINITY, 2.0));
    }
}
