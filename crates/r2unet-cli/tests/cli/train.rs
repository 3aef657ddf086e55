//! `r2unet train`: runs, resumes, fine-tunes and budgets, on DRIVE and on the LUNG folder as it is.
use std::process::Command;

use crate::util::*;

/// A run folder holds every checkpoint file; a second start without `--resume` is refused rather
/// than clobbering it; `--resume` continues the log; `--epochs` cannot shorten what is done.
#[test]
fn a_run_resumes_and_is_never_clobbered() {
    let Some(shared) = tiny_drive_run() else {
        return;
    };
    let drive = needs_data("DRIVE").unwrap();
    for f in [
        "best.bpk",
        "last.bpk",
        "last.optim",
        "state.json",
        "config.json",
        "log.csv",
    ] {
        assert!(shared.join(f).is_file(), "{f} missing");
    }
    let dir = tempdir();
    let runs = dir.path().join("run");
    copy_run(shared, &runs);

    let out = run(&mut tiny_drive_train(&drive, &runs, "2"));
    assert_err(&out, &["--resume"]);
    let out = run(tiny_drive_train(&drive, &runs, "3").arg("--resume"));
    assert_ok(&out);
    let log = std::fs::read_to_string(runs.join("log.csv")).unwrap();
    let epochs: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "2", "3"], "{log}");
    let out = run(tiny_drive_train(&drive, &runs, "2").arg("--resume"));
    assert_err(&out, &["already completed 3 epochs"]);
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
