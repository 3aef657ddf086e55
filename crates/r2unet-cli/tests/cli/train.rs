//! `r2unet train`: runs, resumes, fine-tunes and budgets, on DRIVE and on the LUNG folder as it is.
use std::process::Command;

use crate::util::*;

/// A run folder holds one checkpoint (weights, optimizer state, the record), the best weights,
/// config and log; a second start without `--resume` is refused rather than clobbering it;
/// `--resume` continues the log, also after a SIGKILL while the next checkpoint was being
/// written; `--epochs` cannot shorten what is done.
#[test]
fn a_run_resumes_and_is_never_clobbered() {
    let Some(shared) = tiny_drive_run() else {
        return;
    };
    let drive = needs_data("DRIVE").unwrap();
    assert_eq!(
        files_in(shared),
        [
            "best.bpk",
            "ckpt-0002.bpk",
            "ckpt-0002.optim",
            "config.json",
            "log.csv",
            "state.json"
        ]
    );
    let dir = tempdir();
    let runs = dir.path().join("run");
    copy_run(shared, &runs);

    let out = run(&mut tiny_drive_train(&drive, &runs, "2"));
    assert_err(&out, &["--resume"]);
    // Killed while it writes epoch 3's checkpoint (the first temporary file seen), then resumed.
    let left = kill_at_checkpoint_write(
        tiny_drive_train(&drive, &runs, "3").arg("--resume"),
        &runs,
        3,
    );
    eprintln!("left by the kill: {left:?}");
    let out = run(tiny_drive_train(&drive, &runs, "3").arg("--resume"));
    assert_ok(&out);
    assert!(stderr(&out).contains("resuming"), "{}", stderr(&out));
    assert_eq!(log_epochs(&runs), ["1", "2", "3"]);
    // The first two epochs' lines are the shared run's, unchanged.
    let lines = |p: &std::path::Path| -> Vec<String> {
        let log = std::fs::read_to_string(p.join("log.csv")).unwrap();
        log.lines().take(3).map(str::to_owned).collect()
    };
    assert_eq!(lines(&runs), lines(shared));
    assert_eq!(
        files_in(&runs),
        [
            "best.bpk",
            "ckpt-0003.bpk",
            "ckpt-0003.optim",
            "config.json",
            "log.csv",
            "state.json"
        ]
    );
    let out = run(tiny_drive_train(&drive, &runs, "2").arg("--resume"));
    assert_err(&out, &["already completed 3 epochs"]);
}

/// A run folder written before checkpoints were one committed set (`last.bpk`, `last.optim`,
/// a `state.json` with no file list, an appended `log.csv`) still resumes, and leaves the new
/// layout behind.
#[test]
fn an_old_layout_run_folder_resumes() {
    let Some(shared) = tiny_drive_run() else {
        return;
    };
    let drive = needs_data("DRIVE").unwrap();
    let dir = tempdir();
    let runs = dir.path().join("run");
    copy_run(shared, &runs);
    std::fs::rename(runs.join("ckpt-0002.bpk"), runs.join("last.bpk")).unwrap();
    std::fs::rename(runs.join("ckpt-0002.optim"), runs.join("last.optim")).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("state.json")).unwrap()).unwrap();
    let old = serde_json::json!({
        "epoch": state["epoch"],
        "best_score": state["best_score"],
        "best_epoch": state["best_epoch"],
        "seconds": state["seconds"],
    });
    std::fs::write(runs.join("state.json"), old.to_string()).unwrap();
    let out = run(tiny_drive_train(&drive, &runs, "3").arg("--resume"));
    assert_ok(&out);
    assert!(
        stderr(&out).contains("after epoch 2 of 3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(log_epochs(&runs), ["1", "2", "3"]);
    assert!(!runs.join("last.bpk").exists() && runs.join("ckpt-0003.optim").is_file());
}

/// A full disk (a 1.4 MB tmpfs as `--out`: room for one checkpoint of the tiny model, not for
/// two): the error names the file and says the disk is full, no temporary file is left, and the
/// last complete checkpoint resumes elsewhere. Needs the right to mount (root); else SKIPPED.
#[test]
fn a_full_disk_is_named_and_the_last_checkpoint_kept() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let dir = tempdir();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "1400k") else {
        return;
    };
    let runs = disk.0.join("run");
    let train = |out: &std::path::Path, resume: bool| {
        let mut cmd = bin();
        cmd.args(["train", "--dataset", "drive", "--backend", "flex"])
            .args(["--widths", "8,16,32", "--patches", "64", "--batch", "32"])
            .args(["--epochs", "2", "--data"])
            .arg(&drive)
            .arg("--out")
            .arg(out);
        if resume {
            cmd.arg("--resume");
        }
        run(&mut cmd)
    };
    let out = train(&runs, false);
    assert_err(
        &out,
        &["the disk is full", runs.to_str().unwrap(), "--resume"],
    );
    assert!(stderr(&out).contains("epoch   1"), "{}", stderr(&out));
    assert_eq!(
        files_in(&runs),
        [
            "best.bpk",
            "ckpt-0001.bpk",
            "ckpt-0001.optim",
            "config.json",
            "log.csv",
            "state.json"
        ]
    );
    let moved = dir.path().join("moved");
    copy_run(&runs, &moved);
    drop(disk);
    assert_ok(&train(&moved, true));
    assert_eq!(log_epochs(&moved), ["1", "2"]);
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self(at.to_owned())),
            other => {
                use std::io::Write;
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: the full-disk test: cannot mount a tmpfs ({why})"
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The names in a folder, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The epoch column of a run's log.csv.
fn log_epochs(run_dir: &std::path::Path) -> Vec<String> {
    let log = std::fs::read_to_string(run_dir.join("log.csv")).unwrap();
    log.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect()
}

/// Starts `cmd` (a training into `run_dir`), waits for a temporary file of epoch `epoch`'s
/// checkpoint to appear, SIGKILLs it at once and returns what the folder then held (the
/// temporary files and uncommitted checkpoint files a kill mid-write leaves, or, when the kill
/// landed just after the commit, stale derived files). Panics when the run ends first.
fn kill_at_checkpoint_write(
    cmd: &mut Command,
    run_dir: &std::path::Path,
    epoch: usize,
) -> Vec<String> {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!(".ckpt-{epoch:04}.");
    let started = std::time::Instant::now();
    loop {
        let writing = std::fs::read_dir(run_dir).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        });
        if writing {
            child.kill().unwrap();
            child.wait().unwrap();
            return files_in(run_dir);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before epoch {epoch}'s checkpoint was seen");
        }
        assert!(started.elapsed().as_secs() < 300, "no checkpoint in 300 s");
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}

/// `--init`: a run that starts from the shipped DRIVE model validates like it after a few
/// patches at a tiny learning rate (a random start does not: AUC near 0.5-0.8); weights of
/// another architecture are refused with the file named, before any checkpoint is written.
#[test]
fn a_run_starts_from_initial_weights() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let shipped = shipped("retina.bpk");
    let dir = tempdir();
    let train = |out: &std::path::Path, widths: &str| {
        run(bin()
            .args(["train", "--dataset", "drive", "--backend", "flex"])
            .args(["--widths", widths, "--patches", "320", "--batch", "32"])
            .args(["--epochs", "1", "--lr", "1e-5", "--data"])
            .arg(&drive)
            .arg("--out")
            .arg(out)
            .arg("--init")
            .arg(&shipped))
    };
    let runs = dir.path().join("run");
    assert_ok(&train(&runs, "16,32,64,128"));
    let log = std::fs::read_to_string(runs.join("log.csv")).unwrap();
    let auc = first_epoch_val_auc(&log);
    assert!(
        auc > 0.95,
        "validation AUC {auc} after starting from the shipped model"
    );
    let config = std::fs::read_to_string(runs.join("config.json")).unwrap();
    assert!(config.contains("retina.bpk"), "{config}");

    let other = dir.path().join("other");
    assert_err(&train(&other, "8,16,32"), &["retina.bpk"]);
    assert!(!other.join("best.bpk").exists() && !other.join("last.bpk").exists());
}

/// `scripts/train-budget.sh`: the run it leaves is one whole schedule sized to the deadline (the
/// provisional --epochs replaced, the learning rate down to its floor in the last epoch), not a
/// run cut off mid-schedule, also when it fine-tunes from `--init` weights.
#[test]
fn train_budget_sizes_the_schedule_to_the_deadline() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let dir = tempdir();
    let runs = dir.path().join("run");
    let script = repo().join("scripts/train-budget.sh");
    let args = |cmd: &mut Command| {
        cmd.args([
            "--dataset",
            "drive",
            "--backend",
            "flex",
            "--widths",
            "8,16,32",
        ])
        .args(["--patches", "512", "--batch", "32", "--data"])
        .arg(&drive);
    };
    // The deadline is sized from one timed epoch: a fixed one fits a single epoch on a loaded
    // machine, and the script then (rightly) leaves the provisional schedule alone.
    let started = std::time::Instant::now();
    let mut probe = bin();
    probe
        .args(["train", "--epochs", "1", "--out"])
        .arg(dir.path().join("probe"));
    args(&mut probe);
    assert_ok(&run(&mut probe));
    let epoch_s = started.elapsed().as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut budget = Command::new("bash");
    budget
        .arg(script)
        .arg((now + 40 + 10 * epoch_s).to_string())
        .arg(&runs)
        .env("R2UNET", env!("CARGO_BIN_EXE_r2unet"));
    args(&mut budget);
    // A fine-tune: --init seeds the first start only (the resume must not pass it on).
    budget
        .arg("--init")
        .arg(dir.path().join("probe").join("best.bpk"));
    let out = run(&mut budget);
    let log = std::fs::read_to_string(runs.join("train.out")).unwrap_or_default();
    assert!(out.status.success(), "{log}");
    assert!(log.contains("train-budget:"), "{log}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("config.json")).unwrap()).unwrap();
    let epochs = config["epochs"].as_u64().unwrap() as usize;
    // The resumed run keeps the record of what it was seeded from.
    assert!(
        config["init"]
            .as_str()
            .is_some_and(|p| p.ends_with("best.bpk")),
        "{config}"
    );
    let lines = std::fs::read_to_string(runs.join("log.csv")).unwrap();
    let rows: Vec<Vec<&str>> = lines
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(
        (2..1000).contains(&epochs),
        "schedule not re-sized: {epochs}\n{log}"
    );
    assert_eq!(rows.len(), epochs, "{lines}");
    let last_lr: f64 = rows.last().unwrap()[1].parse().unwrap();
    let floor = config["lr"].as_f64().unwrap() * config["lr_floor"].as_f64().unwrap();
    // The last step's rate is a hair above the floor; a cut-off schedule would be near --lr.
    assert!(
        last_lr >= floor && last_lr < 1.1 * floor,
        "{last_lr} vs {floor}\n{lines}"
    );
}

/// The LUNG folder as it is (Kaggle layout, signed 16-bit Deflate TIFF with the horizontal
/// predictor): one tiny epoch trains, on the documented 80/10/10 split (192 / 24 / 24 slices).
#[test]
fn lung_trains_on_the_kaggle_folder_as_it_is() {
    let Some(run_dir) = tiny_lung_run() else {
        return;
    };
    let log = std::fs::read_to_string(run_dir.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    let val_auc = first_epoch_val_auc(&log);
    assert!(
        // One tiny epoch learns little (0.47 was seen on a cold run): the test is that the
        // folder trains and validates, not how well.
        (0.0..=1.0).contains(&val_auc),
        "validation AUC {val_auc}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["dataset"], "lung", "{config}");
    assert!(run_dir.join("best.bpk").is_file());
}

/// Epoch 1's validation AUC from a run's log.csv (column 5).
fn first_epoch_val_auc(log: &str) -> f64 {
    let row = log.lines().nth(1).expect("log.csv has an epoch row");
    row.split(',')
        .nth(4)
        .and_then(|v| v.parse().ok())
        .expect("a val_auc column")
}
