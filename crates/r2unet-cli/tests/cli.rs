//! End-to-end tests of the `r2unet` binary on real data (skipped with a message when
//! `../shared/data` is absent).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_r2unet"))
}

fn data() -> Option<PathBuf> {
    let root = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if root.join("DRIVE").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "SKIPPED: real data not found at {} (set R2UNET_DATA)",
            root.display()
        );
        None
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("binary runs");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Trains a tiny model for 2 epochs, resumes it to 3, evaluates it, exports it, predicts with
/// it. One test so the (slow) training runs once.
#[test]
fn train_resume_eval_export_predict_on_drive() {
    let Some(root) = data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("run");
    let train = |epochs: &str, resume: bool| {
        let mut c = bin();
        c.args([
            "train",
            "--dataset",
            "drive",
            "--backend",
            "flex",
            "--widths",
            "8,16,32",
            "--patches",
            "1024",
        ])
        .args(["--batch", "32", "--epochs", epochs, "--data"])
        .arg(root.join("DRIVE"))
        .arg("--out")
        .arg(&runs);
        if resume {
            c.arg("--resume");
        }
        run(&mut c)
    };
    let out = train("2", false);
    assert!(out.status.success());
    for f in [
        "best.bpk",
        "last.bpk",
        "last.optim",
        "state.json",
        "config.json",
        "log.csv",
    ] {
        assert!(runs.join(f).is_file(), "{f} missing");
    }
    // A second start without --resume must not clobber the run.
    let out = train("2", false);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--resume"));
    let out = train("3", true);
    assert!(out.status.success());
    let log = std::fs::read_to_string(runs.join("log.csv")).unwrap();
    let epochs: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "2", "3"], "{log}");
    // --epochs may shorten a resumed schedule, but not below what is done.
    let out = train("2", true);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already completed 3 epochs"),
        "{}",
        stderr(&out)
    );

    let weights = runs.join("best.bpk");
    let json = dir.path().join("eval.json");
    let roc = dir.path().join("roc.png");
    let out = run(bin()
        .args(["eval", "--dataset", "drive", "--backend", "flex", "--data"])
        .arg(root.join("DRIVE"))
        .arg("--weights")
        .arg(&weights)
        .arg("--json")
        .arg(&json)
        .arg("--roc")
        .arg(&roc));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| ours |") && stdout.contains("| paper R2U-Net |"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["dataset"], "drive");
    assert_eq!(report["split"], "test");
    assert_eq!(report["images"].as_array().unwrap().len(), 20);
    let auc = report["pooled"]["auc"].as_f64().unwrap();
    // Three epochs of 1024 patches teach a tiny model something, far from the paper.
    assert!(auc > 0.6, "pooled AUC {auc}");
    assert!(image::open(&roc).is_ok());

    let f16 = dir.path().join("small.f16.bpk");
    let out = run(bin()
        .args(["export", "--f16", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&f16));
    assert!(out.status.success());
    let (a, b) = (
        std::fs::metadata(&weights).unwrap().len(),
        std::fs::metadata(&f16).unwrap().len(),
    );
    assert!(b < a, "f16 {b} not smaller than f32 {a}");
    let int8 = dir.path().join("small.int8.bpk");
    let out = run(bin()
        .args(["export", "--int8", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&int8));
    assert!(out.status.success());
    let c = std::fs::metadata(&int8).unwrap().len();
    assert!(c < b, "int8 {c} not smaller than f16 {b}");
    let out = run(bin().arg("info").arg(&int8));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("precision:    int8"),
        "{out:?}"
    );

    let pred = dir.path().join("pred");
    let input = root.join("DRIVE/test/images/01_test.tif");
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--overlay",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&int8)
        .arg("--out")
        .arg(&pred)
        .arg(&input));
    assert!(out.status.success());
    for suffix in ["prob", "mask", "overlay"] {
        let img = image::open(pred.join(format!("01_test.{suffix}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (565, 584), "{suffix}");
    }
}

/// `--init`: a run that starts from the shipped DRIVE model validates like it after a few
/// patches at a tiny learning rate (a random start does not: AUC near 0.5-0.8); weights of
/// another architecture are refused with the file named, before any checkpoint is written.
#[test]
fn train_from_initial_weights() {
    let Some(root) = data() else { return };
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/retina.bpk");
    let dir = tempfile::tempdir().unwrap();
    let train = |out: &Path, widths: &str| {
        run(bin()
            .args([
                "train",
                "--dataset",
                "drive",
                "--backend",
                "flex",
                "--widths",
                widths,
            ])
            .args([
                "--patches",
                "320",
                "--batch",
                "32",
                "--epochs",
                "1",
                "--lr",
                "1e-5",
                "--data",
            ])
            .arg(root.join("DRIVE"))
            .arg("--out")
            .arg(out)
            .arg("--init")
            .arg(&shipped))
    };
    let runs = dir.path().join("run");
    let out = train(&runs, "16,32,64,128");
    assert!(out.status.success());
    let log = std::fs::read_to_string(runs.join("log.csv")).unwrap();
    let auc: f64 = log
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        auc > 0.95,
        "validation AUC {auc} after starting from the shipped model"
    );
    let config = std::fs::read_to_string(runs.join("config.json")).unwrap();
    assert!(config.contains("retina.bpk"), "{config}");

    let other = dir.path().join("other");
    let out = train(&other, "8,16,32");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("retina.bpk") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!other.join("best.bpk").exists() && !other.join("last.bpk").exists());
}

/// The shipped retina model on a real DRIVE test image: the mask must match the label.
#[test]
fn shipped_retina_model_segments_a_drive_image() {
    let Some(root) = data() else { return };
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/retina.bpk");
    assert!(
        shipped.is_file(),
        "the retina model must ship at {}",
        shipped.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let input = root.join("DRIVE/test/images/03_test.tif");
    let out = run(bin()
        .args(["predict", "--task", "retina", "--backend", "flex", "--out"])
        .arg(dir.path())
        .arg(&input));
    assert!(out.status.success());
    let dice = dice(
        &dir.path().join("03_test.mask.png"),
        &root.join("DRIVE/test/1st_manual/03_manual1.gif"),
    );
    assert!(dice > 0.7, "Dice {dice}");
}

/// Dice of `mask.png` against a label image, both thresholded at 127.
fn dice(mask: &Path, label: &Path) -> f64 {
    let mask = image::open(mask).unwrap().to_luma8();
    let label = image::open(label).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), label.dimensions());
    let (mut inter, mut sum) = (0u64, 0u64);
    for (m, l) in mask.pixels().zip(label.pixels()) {
        let (m, l) = (m.0[0] > 127, l.0[0] > 127);
        inter += u64::from(m && l);
        sum += u64::from(m) + u64::from(l);
    }
    2.0 * inter as f64 / sum as f64
}

/// A photo from another camera at another scale (CHASE_DB1, 999x960, field of view about 900
/// pixels wide): the shipped DRIVE model resamples it to DRIVE's field-of-view width (536, kept
/// in the weights file) and finds the vessels; at the photo's native scale it misses most of
/// them. `--fov-width 0` asks for the native scale, so the two runs differ only in that.
#[test]
fn shipped_retina_model_rescales_a_photo_from_another_camera() {
    let Some(root) = data() else { return };
    let input = root.join("CHASE_DB1/Image_11L.jpg");
    let label = root.join("CHASE_DB1/Image_11L_1stHO.png");
    let mut scores = Vec::new();
    for extra in [&[][..], &["--fov-width", "0"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let out = run(bin()
            .args(["predict", "--task", "retina", "--backend", "flex", "--out"])
            .arg(dir.path())
            .args(extra)
            .arg(&input));
        assert!(out.status.success());
        scores.push(dice(&dir.path().join("Image_11L.mask.png"), &label));
    }
    let (shipped, native) = (scores[0], scores[1]);
    assert!(
        shipped > 0.7,
        "Dice {shipped} with the shipped field-of-view width"
    );
    assert!(
        shipped > native + 0.15,
        "shipped {shipped} vs native scale {native}"
    );
}

#[test]
fn bad_inputs_fail_with_the_file_named_and_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.bpk");
    // Corrupt weights: exit 2, file named.
    std::fs::write(&weights, b"not weights at all").unwrap();
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&weights)
        .arg("--out")
        .arg(dir.path().join("o"))
        .arg("x.png"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("w.bpk") && stderr(&out).contains("burnpack"),
        "{}",
        stderr(&out)
    );
    // Empty weights.
    std::fs::write(&weights, b"").unwrap();
    let out = run(bin().args(["info"]).arg(&weights));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty"));

    // A valid model, then inputs that are truncated, not images, 1x1 and missing.
    let model_path = dir.path().join("tiny.bpk");
    {
        use r2unet::burn::tensor::Device;
        let config = r2unet::ModelConfig::new().with_widths(vec![4, 8]);
        let model = config.init(&Device::flex());
        let bundle = r2unet::ModelBundle {
            model: config,
            preprocess: r2unet::PreprocessConfig::for_task(r2unet::Task::Retina),
            info: Default::default(),
        };
        let bytes =
            r2unet::weights::to_bytes(&model, &bundle, r2unet::weights::Precision::F32).unwrap();
        std::fs::write(&model_path, &bytes).unwrap();
        // The same file claiming to be a skin model is refused for the retina task.
        let out = run(bin()
            .args([
                "predict",
                "--task",
                "skin",
                "--backend",
                "flex",
                "--weights",
            ])
            .arg(&model_path)
            .arg("--out")
            .arg(dir.path())
            .arg("x.png"));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("retina model"), "{}", stderr(&out));
        // Truncated weights.
        let cut = dir.path().join("cut.bpk");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let out = run(bin().args(["info"]).arg(&cut));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("cut.bpk"));
    }
    let good = dir.path().join("good.png");
    image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, 40])
    })
    .save(&good)
    .unwrap();
    let png = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.png");
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello").unwrap();
    let tiny = dir.path().join("tiny.png");
    image::RgbImage::new(1, 1).save(&tiny).unwrap();
    let out_dir = dir.path().join("out");
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&model_path)
        .arg("--out")
        .arg(&out_dir)
        .args([
            &good,
            &truncated,
            &text,
            &tiny,
            &dir.path().join("missing.png"),
        ]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for name in ["truncated.png", "notes.png", "tiny.png", "missing.png"] {
        assert!(err.contains(name), "{name} not named in: {err}");
    }
    assert!(err.contains("at least"), "{err}");
    // The good input is written; the bad ones leave nothing, not even partial files.
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["good.mask.png", "good.prob.png"]);

    // eval on an empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("test/images")).unwrap();
    let out = run(bin()
        .args([
            "eval",
            "--dataset",
            "drive",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&model_path)
        .arg("--data")
        .arg(&empty));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no drive images"), "{}", stderr(&out));
}

/// `scripts/train-budget.sh`: the run it leaves is one whole schedule sized to the deadline (the
/// provisional --epochs replaced, the learning rate down to its floor in the last epoch), not a
/// run cut off mid-schedule, also when it fine-tunes from `--init` weights.
#[test]
fn train_budget_sizes_the_schedule_to_the_deadline() {
    let Some(root) = data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("run");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/train-budget.sh");
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
        .arg(root.join("DRIVE"));
    };
    // The deadline is sized from one timed epoch: a fixed one fits a single epoch on a loaded
    // machine, and the script then (rightly) leaves the provisional schedule alone.
    let started = std::time::Instant::now();
    let mut probe = bin();
    probe
        .args(["train", "--epochs", "1", "--out"])
        .arg(dir.path().join("probe"));
    args(&mut probe);
    assert!(run(&mut probe).status.success());
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

/// `--fov-width` is checked before any image is read: retina models only, and a sane width.
#[test]
fn fov_width_is_refused_for_skin_models_and_silly_widths() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([120, 80, 60]))
        .save(&png)
        .unwrap();
    for (task, width, message) in [
        ("skin", "500", "--fov-width is for retina models"),
        ("retina", "20", "must be 0 (native size) or 64 to 8192"),
    ] {
        let out = run(bin()
            .args([
                "predict",
                "--task",
                task,
                "--backend",
                "flex",
                "--fov-width",
                width,
            ])
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg(&png));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    assert!(!dir.path().join("out/x.mask.png").exists());
}
