//! What every command's tests share: running the binary, temporary folders, the data folder, the
//! checks on a failure, and one tiny DRIVE model trained once per test run.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `r2unet` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_r2unet"))
}

/// Runs a command to its end, echoing its output (shown when a test fails).
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    eprintln!(
        "--- {:?}\n--- stdout\n{}\n--- stderr\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command succeeded and printed no error.
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(out)
    );
    assert!(!stderr(out).contains("error:"), "{}", stderr(out));
}

/// The command failed as a user error does: exit status 2, an `error:` line naming every one of
/// `names` (the files at fault), and no panic.
#[track_caller]
pub fn assert_err(out: &Output, names: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for name in names {
        assert!(err.contains(name), "'{name}' not named in: {err}");
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A shipped model, `models/NAME`.
pub fn shipped(name: &str) -> PathBuf {
    let path = repo().join("models").join(name);
    assert!(path.is_file(), "{} must ship", path.display());
    path
}

/// The data set `set` (e.g. `DRIVE`) under `$R2UNET_DATA` or `../shared/data`, or `None` after a
/// `SKIPPED:` line. The line goes straight to the process's stderr, past the test harness's
/// capture, so `scripts/test.sh` sees it and lists it; `R2UNET_REQUIRE_DATA=1` makes a missing
/// set a failure instead.
pub fn needs_data(set: &str) -> Option<PathBuf> {
    let root = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let dir = root.join(set);
    if dir.is_dir() {
        return Some(dir);
    }
    let what = std::thread::current()
        .name()
        .unwrap_or("a CLI test")
        .to_owned();
    let line = format!(
        "SKIPPED: {what}: {} not found (set R2UNET_DATA)",
        dir.display()
    );
    assert!(
        std::env::var_os("R2UNET_REQUIRE_DATA").is_none_or(|v| v != "1"),
        "{line}, and R2UNET_REQUIRE_DATA=1"
    );
    let _ = writeln!(std::io::stderr(), "{line}");
    None
}

/// Dice of a mask image against a label image, both thresholded at 127.
pub fn dice(mask: &Path, label: &Path) -> f64 {
    let mask = image::open(mask).unwrap().to_luma8();
    let label = image::open(label).unwrap().to_luma8();
    dice_of(&mask, &label)
}

pub fn dice_of(mask: &image::GrayImage, label: &image::GrayImage) -> f64 {
    assert_eq!(mask.dimensions(), label.dimensions());
    let (mut inter, mut sum) = (0u64, 0u64);
    for (m, l) in mask.pixels().zip(label.pixels()) {
        let (m, l) = (m.0[0] > 127, l.0[0] > 127);
        inter += u64::from(m && l);
        sum += u64::from(m) + u64::from(l);
    }
    2.0 * inter as f64 / sum as f64
}

/// A tiny retina model (widths 8-16-32) trained for 2 epochs of 1024 DRIVE patches: the run
/// folder, made once per test run and shared by the tests of train, eval, export and predict.
/// Tests that change a run copy it first ([`copy_run`]).
pub fn tiny_drive_run() -> Option<&'static Path> {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let drive = needs_data("DRIVE")?;
    let (_, run_dir) = RUN.get_or_init(|| {
        // Under the target folder, so that it goes with `cargo clean` (a static is never dropped).
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let run_dir = dir.path().join("run");
        let out = run(&mut tiny_drive_train(&drive, &run_dir, "2"));
        assert_ok(&out);
        (dir, run_dir)
    });
    Some(run_dir)
}

/// `r2unet train` of [`tiny_drive_run`]'s model for `epochs`, into `out`.
pub fn tiny_drive_train(drive: &Path, out: &Path, epochs: &str) -> Command {
    let mut cmd = bin();
    cmd.args(["train", "--dataset", "drive", "--backend", "flex"])
        .args(["--widths", "8,16,32", "--patches", "1024", "--batch", "32"])
        .args(["--epochs", epochs, "--data"])
        .arg(drive)
        .arg("--out")
        .arg(out);
    cmd
}

/// A copy of a run folder, to resume or change without touching the shared one.
pub fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A tiny lung model (widths 8-16, 64x64 input) trained for one epoch on the shared LUNG folder as
/// it is (Kaggle layout, signed 16-bit TIFF): made once per test run, like [`tiny_drive_run`].
pub fn tiny_lung_run() -> Option<&'static Path> {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let lung = needs_data("LUNG")?;
    let (_, run_dir) = RUN.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let run_dir = dir.path().join("run");
        let out = run(bin()
            .args(["train", "--dataset", "lung", "--backend", "flex"])
            .args(["--widths", "8,16", "--size", "64", "--batch", "16"])
            .args(["--epochs", "1", "--data"])
            .arg(&lung)
            .arg("--out")
            .arg(&run_dir));
        assert_ok(&out);
        (dir, run_dir)
    });
    Some(run_dir)
}

/// An untrained model file for `task` (widths 4-8), written to `path`: for the tests of bad
/// input, which need valid weights but no data.
pub fn untrained_model(path: &Path, task: r2unet::Task) -> Vec<u8> {
    use r2unet::burn::tensor::Device;
    let config = r2unet::ModelConfig::new()
        .with_widths(vec![4, 8])
        .with_in_channels(task.channels());
    let model = config.init(&Device::flex());
    let bundle = r2unet::ModelBundle {
        model: config,
        preprocess: r2unet::PreprocessConfig::for_task(task),
        info: Default::default(),
    };
    let bytes = r2unet::weights::to_bytes(&model, &bundle, r2unet::weights::Precision::F32)
        .expect("an untrained model serialises");
    std::fs::write(path, &bytes).unwrap();
    bytes
}
