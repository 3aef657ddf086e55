//! `--dataset folder` of `train` and `eval`: the shared DRIVE, ISIC and LUNG files re-laid as
//! plain `images/` + `masks/` (+ `fov/`) folders of symbolic links score and train exactly as
//! their named readers do; bad folders are refused with every bad file named, or skipped.
use std::path::{Path, PathBuf};
use std::process::Command;

use r2unet::Task;
use r2unet_train::datasets::folder::{FOV_SUFFIXES, MASK_SUFFIXES, SPLIT_TAGS};

use crate::util::*;

/// `dst` (its parent folders created) as a symbolic link to `src`.
fn link(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(std::fs::canonicalize(src).unwrap(), dst).unwrap();
}

/// `r2unet eval --backend flex --json FILE` plus `args`: the JSON report and stdout.
fn eval_json(
    dir: &Path,
    name: &str,
    args: &mut dyn FnMut(&mut Command),
) -> (serde_json::Value, String) {
    let json = dir.join(format!("{name}.json"));
    let mut cmd = bin();
    cmd.args(["eval", "--backend", "flex", "--json"]).arg(&json);
    args(&mut cmd);
    let out = run(&mut cmd);
    assert_ok(&out);
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (report, stdout(&out))
}

/// Two reports give the same figures: everything but the data set's name, the split's name
/// (`validation` of isic2017 is `test` here) and the time.
#[track_caller]
fn assert_same_figures(named: &serde_json::Value, folder: &serde_json::Value) {
    assert_eq!(folder["dataset"], "folder");
    assert!(!named["images"].as_array().unwrap().is_empty());
    let keys: Vec<&String> = named.as_object().unwrap().keys().collect();
    assert_eq!(keys, folder.as_object().unwrap().keys().collect::<Vec<_>>());
    for key in keys {
        if !["dataset", "split", "seconds"].contains(&key.as_str()) {
            assert!(named[key] == folder[key], "{key} differs");
        }
    }
    // The first place they differ, if anywhere, said briefly.
    assert_eq!(named["pooled"], folder["pooled"]);
}

fn folder_args(cmd: &mut Command, root: &Path, task: &str) {
    cmd.args(["--dataset", "folder", "--task", task, "--images"])
        .arg(root.join("images"))
        .arg("--masks")
        .arg(root.join("masks"));
}

/// DRIVE's files under their published names, flat in images/, masks/ and fov/ (training and
/// test side by side, paired as `21_training.tif` + `21_manual1.gif` + `21_training_mask.gif`),
/// with a split file: the shipped model scores the test images exactly as `--dataset drive`
/// does on a DRIVE tree of the same images. The table has no paper row for folder data.
#[test]
fn drive_as_published_scores_as_the_drive_reader() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let dir = tempdir();
    let (tree, flat) = (dir.path().join("DRIVE"), dir.path().join("flat"));
    let mut split = String::from("stem,split\n");
    for (nn, part, tag) in [
        ("01", "test", "test"),
        ("02", "test", "test"),
        ("21", "training", "training"),
    ] {
        let from = drive.join(part);
        let image = format!("{nn}_{tag}.tif");
        let label = format!("{nn}_manual1.gif");
        let fov = format!("{nn}_{tag}_mask.gif");
        for (sub, name) in [("images", &image), ("1st_manual", &label), ("mask", &fov)] {
            link(
                &from.join(sub).join(name),
                &tree.join(part).join(sub).join(name),
            );
        }
        link(
            &from.join("images").join(&image),
            &flat.join("images").join(&image),
        );
        link(
            &from.join("1st_manual").join(&label),
            &flat.join("masks").join(&label),
        );
        link(&from.join("mask").join(&fov), &flat.join("fov").join(&fov));
        let which = if tag == "test" { "test" } else { "train" };
        split += &format!("{nn}_{tag},{which}\n");
    }
    std::fs::write(flat.join("split.csv"), split).unwrap();

    let (named, table) = eval_json(dir.path(), "named", &mut |cmd| {
        cmd.args(["--dataset", "drive", "--data"]).arg(&tree);
    });
    assert!(table.contains("| paper R2U-Net |"), "{table}");
    let (folder, table) = eval_json(dir.path(), "folder", &mut |cmd| {
        folder_args(cmd, &flat, "retina");
        cmd.arg("--fov")
            .arg(flat.join("fov"))
            .arg("--split-file")
            .arg(flat.join("split.csv"));
    });
    assert!(!table.contains("paper"), "{table}");
    assert_eq!(folder["images"].as_array().unwrap().len(), 2);
    assert_same_figures(&named, &folder);
    // Without --fov each photo's field of view is derived, as for STARE: close, not the same.
    let (derived, _) = eval_json(dir.path(), "derived", &mut |cmd| {
        folder_args(cmd, &flat, "retina");
        cmd.arg("--split-file").arg(flat.join("split.csv"));
    });
    let auc = |r: &serde_json::Value| r["pooled"]["auc"].as_f64().unwrap();
    assert!((auc(&derived) - auc(&folder)).abs() < 0.01, "{derived}");
    assert_ne!(derived["pooled"], folder["pooled"]);
}

/// ISIC 2017 files under their published names (`ISIC_N.jpg`, `ISIC_N_segmentation.png`) with
/// a split file that has a header, other columns and a pair in no split: the shipped skin
/// model scores them exactly as `--dataset isic2017` does its validation split.
#[test]
fn isic_with_a_split_file_scores_as_the_isic_reader() {
    let Some(isic) = needs_data("ISIC2017") else {
        return;
    };
    let dir = tempdir();
    let (tree, flat) = (dir.path().join("ISIC2017"), dir.path().join("flat"));
    let mut split = String::from("note,stem,split\n");
    let parts = [
        (
            "Validation",
            "test",
            ["ISIC_0001769", "ISIC_0001852", "ISIC_0001871"].as_slice(),
        ),
        (
            "Training",
            "train",
            ["ISIC_0000000", "ISIC_0000001"].as_slice(),
        ),
        ("Training", "none", ["ISIC_0000002"].as_slice()),
    ];
    for (part, which, ids) in parts {
        for id in ids {
            let image = format!("ISIC-2017_{part}_Data/{id}.jpg");
            let mask = format!("ISIC-2017_{part}_Part1_GroundTruth/{id}_segmentation.png");
            if part == "Validation" {
                link(&isic.join(&image), &tree.join(&image));
                link(&isic.join(&mask), &tree.join(&mask));
            }
            link(&isic.join(&image), &flat.join(format!("images/{id}.jpg")));
            link(
                &isic.join(&mask),
                &flat.join(format!("masks/{id}_segmentation.png")),
            );
            split += &format!("\"from {part}, as is\",{id},{which}\n");
        }
    }
    std::fs::write(flat.join("split.csv"), split).unwrap();
    let (named, _) = eval_json(dir.path(), "named", &mut |cmd| {
        cmd.args(["--dataset", "isic2017", "--data"]).arg(&tree);
    });
    let (folder, _) = eval_json(dir.path(), "folder", &mut |cmd| {
        folder_args(cmd, &flat, "skin");
        cmd.arg("--split-file").arg(flat.join("split.csv"));
    });
    assert_same_figures(&named, &folder);
    // `all` is every pair, the one in no split too.
    let (all, _) = eval_json(dir.path(), "all", &mut |cmd| {
        folder_args(cmd, &flat, "skin");
        cmd.arg("--split-file")
            .arg(flat.join("split.csv"))
            .args(["--split", "all"]);
    });
    assert_eq!(all["images"].as_array().unwrap().len(), 6);
}

/// The LUNG folder's slices re-laid (same names in images/ and masks/): the default split
/// (fractions 0.1 / 0.1, seed 42) is the named `lung` split, so the test slices score the same.
fn lung_flat(dir: &Path, lung: &Path) -> PathBuf {
    let flat = dir.join("flat");
    for entry in std::fs::read_dir(lung.join("2d_images")).unwrap() {
        let name = entry.unwrap().file_name();
        link(
            &lung.join("2d_images").join(&name),
            &flat.join("images").join(&name),
        );
        link(
            &lung.join("2d_masks").join(&name),
            &flat.join("masks").join(&name),
        );
    }
    flat
}

#[test]
fn lung_by_default_fractions_scores_as_the_lung_reader() {
    let Some(lung) = needs_data("LUNG") else {
        return;
    };
    let dir = tempdir();
    let flat = lung_flat(dir.path(), &lung);
    let (named, _) = eval_json(dir.path(), "named", &mut |cmd| {
        cmd.args(["--dataset", "lung", "--data"]).arg(&lung);
    });
    let (folder, _) = eval_json(dir.path(), "folder", &mut |cmd| {
        folder_args(cmd, &flat, "lung")
    });
    assert_eq!(folder["images"].as_array().unwrap().len(), 24);
    assert_same_figures(&named, &folder);
}

/// Column `i` of every epoch row of a log.csv.
fn log_column(log: &str, i: usize) -> Vec<String> {
    log.lines()
        .skip(1)
        .map(|l| l.split(',').nth(i).unwrap().to_string())
        .collect()
}

/// The tiny lung run of `util::tiny_lung_run` on the re-laid folder: the same split and order by
/// construction, so epoch 1 validates to the same figures; files.csv lists every pair with its
/// split and SHA-256 digests; `--resume` needs only `--out`, and refuses a folder whose files
/// changed.
#[test]
fn a_tiny_folder_run_trains_as_the_lung_run_and_resumes() {
    let Some(named_run) = tiny_lung_run() else {
        return;
    };
    let lung = needs_data("LUNG").unwrap();
    let dir = tempdir();
    let flat = lung_flat(dir.path(), &lung);
    let runs = dir.path().join("run");
    let mut cmd = bin();
    cmd.args(["train", "--backend", "flex"])
        .args(["--widths", "8,16", "--size", "64", "--batch", "16"])
        .args(["--epochs", "1", "--out"])
        .arg(&runs);
    folder_args(&mut cmd, &flat, "lung");
    let out = run(&mut cmd);
    assert_ok(&out);
    assert!(stderr(&out).contains("240 pairs (192 train, 24 val, 24 test"));
    let (named_log, log) = (
        std::fs::read_to_string(named_run.join("log.csv")).unwrap(),
        std::fs::read_to_string(runs.join("log.csv")).unwrap(),
    );
    // train_loss, val_loss, val_auc: the same split, order and (seeded) initial weights, so the
    // same run, up to the last digits that flex's parallel sums leave to thread timing (two
    // runs of one command differ as much; F1 at 0.5 is left out, a tiny model's probabilities
    // sit near the threshold). Another split or order moves them by 1e-2 and more.
    for col in [2, 3, 4] {
        let value = |log: &str| log_column(log, col)[0].parse::<f64>().unwrap();
        let (a, b) = (value(&log), value(&named_log));
        assert!(
            (a - b).abs() < 2e-3,
            "column {col}: {a} vs {b}\n{log}\n{named_log}"
        );
    }

    let files = std::fs::read_to_string(runs.join("files.csv")).unwrap();
    let rows: Vec<Vec<&str>> = files
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 240);
    for split in ["train", "val", "test"] {
        let n = rows.iter().filter(|r| r[0] == split).count();
        assert_eq!(n, if split == "train" { 192 } else { 24 }, "{split}");
    }
    assert!(
        rows.iter()
            .any(|r| r[0] == "test" && r[1] == "ID_0151_Z_0140")
    );
    let row = &rows[0];
    let sha = Command::new("sha256sum").arg(row[2]).output();
    if let Ok(sha) = sha
        && sha.status.success()
    {
        assert!(
            String::from_utf8_lossy(&sha.stdout).starts_with(row[5]),
            "{row:?}"
        );
    }
    assert!(
        row[5].len() == 64 && row[6].len() == 64 && row[7].is_empty(),
        "{row:?}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["dataset"], "folder");
    assert_eq!(config["folder"]["task"], "lung");

    let resume = |epochs: &str| {
        run(bin()
            .args([
                "train",
                "--backend",
                "flex",
                "--resume",
                "--epochs",
                epochs,
                "--out",
            ])
            .arg(&runs))
    };
    assert_ok(&resume("2"));
    let log = std::fs::read_to_string(runs.join("log.csv")).unwrap();
    assert_eq!(log_column(&log, 0), ["1", "2"], "{log}");
    // Another slice's mask in place of one: the resume names the pair that changed.
    let changed = flat.join("masks").join(row[1].to_string() + ".tif");
    std::fs::remove_file(&changed).unwrap();
    link(
        &lung.join("2d_masks").join(rows[1][1].to_string() + ".tif"),
        &changed,
    );
    assert_err(&resume("3"), &["changed", row[1]]);
}

/// A run folder from before config.json recorded `data` resumes with `--data`; without it, the
/// error says to pass it; after one resume the folder is recorded.
#[test]
fn an_old_run_folder_still_resumes() {
    let Some(shared) = tiny_lung_run() else {
        return;
    };
    let lung = needs_data("LUNG").unwrap();
    let dir = tempdir();
    let runs = dir.path().join("run");
    copy_run(shared, &runs);
    let path = runs.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let o = config.as_object_mut().unwrap();
    o.remove("data");
    o.remove("folder");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let resume = || {
        let mut cmd = bin();
        cmd.args([
            "train",
            "--backend",
            "flex",
            "--resume",
            "--epochs",
            "2",
            "--out",
        ])
        .arg(&runs);
        cmd
    };
    assert_err(&run(&mut resume()), &["--data"]);
    let out = run(resume().args(["--dataset", "lung", "--data"]).arg(&lung));
    assert_ok(&out);
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(config.contains("\"data\""), "{config}");
}

/// A textured 32x32 picture.
fn picture(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([
            (x * 7 + y * seed) as u8,
            (y * 5 + seed) as u8,
            ((x ^ y) * 3) as u8,
        ])
    })
}

/// A 0/255 mask, the left quarter foreground.
fn quarter(w: u32) -> image::GrayImage {
    image::GrayImage::from_fn(w, 32, |x, _| image::Luma([if x < 8 { 255 } else { 0 }]))
}

/// Six good skin pairs and one file of each kind of problem.
fn bad_folder(root: &Path) {
    for sub in ["images", "masks"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for i in 0..6 {
        picture(i)
            .save(root.join(format!("images/ok{i}.png")))
            .unwrap();
        quarter(32)
            .save(root.join(format!("masks/ok{i}_mask.png")))
            .unwrap();
    }
    picture(7).save(root.join("images/lonely.png")).unwrap();
    quarter(32)
        .save(root.join("masks/orphan_mask.png"))
        .unwrap();
    picture(8).save(root.join("images/cut.png")).unwrap();
    let bytes = std::fs::read(root.join("images/cut.png")).unwrap();
    std::fs::write(root.join("images/cut.png"), &bytes[..bytes.len() / 3]).unwrap();
    quarter(32).save(root.join("masks/cut_mask.png")).unwrap();
    picture(9).save(root.join("images/narrow.png")).unwrap();
    quarter(24)
        .save(root.join("masks/narrow_mask.png"))
        .unwrap();
}

const BAD: [&str; 4] = [
    "lonely.png",
    "orphan_mask.png",
    "cut.png",
    "narrow_mask.png",
];

fn tiny_train(root: &Path, out: &Path) -> Command {
    let mut cmd = bin();
    cmd.args([
        "train",
        "--backend",
        "flex",
        "--widths",
        "4,8",
        "--size",
        "32",
    ])
    .args(["--batch", "4", "--epochs", "1"])
    .args(["--val-fraction", "0.2", "--test-fraction", "0.2", "--out"])
    .arg(out);
    folder_args(&mut cmd, root, "skin");
    cmd
}

/// Every bad file is named in one error (exit status 2) before anything is written; `eval`
/// says the same.
#[test]
fn bad_files_are_listed_in_one_error_before_training() {
    let dir = tempdir();
    let root = dir.path().join("data");
    bad_folder(&root);
    let out = dir.path().join("run");
    let result = run(&mut tiny_train(&root, &out));
    assert_err(&result, &BAD);
    assert!(stderr(&result).contains("24x32"), "{}", stderr(&result));
    assert!(
        stderr(&result).contains("--skip-bad"),
        "{}",
        stderr(&result)
    );
    assert!(!out.join("config.json").exists());
    let model = dir.path().join("skin.bpk");
    untrained_model(&model, Task::Skin);
    let mut cmd = bin();
    cmd.args(["eval", "--backend", "flex", "--weights"])
        .arg(&model);
    folder_args(&mut cmd, &root, "skin");
    assert_err(&run(&mut cmd), &BAD);
}

/// `--skip-bad`: the bad files become warnings (never an `error:`), the rest trains, and
/// files.csv lists the six good pairs.
#[test]
fn skip_bad_warns_and_trains_on_the_rest() {
    let dir = tempdir();
    let root = dir.path().join("data");
    bad_folder(&root);
    let out = dir.path().join("run");
    let result = run(tiny_train(&root, &out).arg("--skip-bad"));
    assert_ok(&result);
    let err = stderr(&result);
    for name in BAD {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning:") && l.contains(name)),
            "{name}: {err}"
        );
    }
    let files = std::fs::read_to_string(out.join("files.csv")).unwrap();
    assert_eq!(files.lines().count(), 7, "{files}");
    assert!(out.join("best.bpk").is_file());
}

#[test]
fn empty_folders_and_folders_without_pairs_are_named() {
    let dir = tempdir();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("masks")).unwrap();
    let train = |out: &str| run(&mut tiny_train(&root, &dir.path().join(out)));
    assert_err(&train("a"), &["--images", "no image files"]);
    picture(1).save(root.join("images/a.png")).unwrap();
    quarter(32).save(root.join("masks/b.png")).unwrap();
    assert_err(&train("b"), &["a.png", "b.png"]);
    let out = run(tiny_train(&root, &dir.path().join("c")).arg("--skip-bad"));
    assert_err(&out, &["no usable image/mask pairs"]);
}

/// Masks as 0/1, 0/255, red on black and a palette GIF are all read as their foreground: the
/// truth share that eval reports is a quarter for each.
#[test]
fn masks_of_any_kind_are_read_as_their_foreground() {
    let dir = tempdir();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("masks")).unwrap();
    let on = |x: u32| x < 8;
    for (i, name) in ["zero_one.png", "byte.png", "red.png", "palette.gif"]
        .into_iter()
        .enumerate()
    {
        let stem = name.split('.').next().unwrap();
        picture(i as u32)
            .save(root.join(format!("images/{stem}.png")))
            .unwrap();
        let path = root.join("masks").join(name.replace('.', "_label."));
        match stem {
            "zero_one" => {
                image::GrayImage::from_fn(32, 32, |x, _| image::Luma([u8::from(on(x))])).save(path)
            }
            "byte" => quarter(32).save(path),
            _ => image::RgbImage::from_fn(32, 32, |x, _| {
                image::Rgb(if on(x) { [170, 20, 30] } else { [0, 0, 0] })
            })
            .save(path),
        }
        .unwrap();
    }
    let model = dir.path().join("skin.bpk");
    untrained_model(&model, Task::Skin);
    let (report, _) = eval_json(dir.path(), "masks", &mut |cmd| {
        folder_args(cmd, &root, "skin");
        cmd.arg("--weights").arg(&model).args(["--split", "all"]);
    });
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    for im in images {
        assert_eq!(im["truth_fraction"].as_f64(), Some(0.25), "{im}");
    }
}

#[test]
fn split_file_errors_name_the_file_and_line() {
    let dir = tempdir();
    let root = dir.path().join("data");
    bad_folder(&root);
    let split = dir.path().join("split.csv");
    std::fs::write(&split, "stem,split\nok0,train\nok1,holdout\nnobody,test\n").unwrap();
    let model = dir.path().join("skin.bpk");
    untrained_model(&model, Task::Skin);
    let mut cmd = bin();
    cmd.args(["eval", "--backend", "flex", "--skip-bad", "--weights"])
        .arg(&model)
        .arg("--split-file")
        .arg(&split);
    folder_args(&mut cmd, &root, "skin");
    assert_err(
        &run(&mut cmd),
        &[
            "split.csv:3: unknown split 'holdout'",
            "split.csv:4: no image with the stem 'nobody'",
        ],
    );
}

/// clap says which flags each kind of data set needs, and `--help` documents every suffix the
/// pairing strips.
#[test]
fn the_flags_each_dataset_needs_are_named() {
    for cmd in ["train", "eval"] {
        // train also needs --out; eval has none.
        let with = |args: &[&str]| {
            let mut c = bin();
            c.args([cmd, "--backend", "flex"]).args(args);
            if cmd == "train" {
                c.args(["--out", "x"]);
            }
            run(&mut c)
        };
        assert_err(
            &with(&["--dataset", "folder"]),
            &["--images", "--masks", "--task"],
        );
        for d in r2unet_train::Dataset::ALL {
            assert_err(&with(&["--dataset", d.name()]), &["--data"]);
        }
        let out = with(&["--dataset", "drive", "--data", "d", "--images", "i"]);
        assert_err(&out, &["--data", "--images"]);
        let out = with(&["--dataset", "drive", "--data", "d", "--task", "skin"]);
        assert_err(&out, &["--task", "--dataset folder"]);
        let help = stdout(&run(bin().args([cmd, "--help"])));
        for word in MASK_SUFFIXES.iter().chain(&FOV_SUFFIXES).chain(&SPLIT_TAGS) {
            assert!(help.contains(word), "{word} not in {cmd} --help:\n{help}");
        }
        assert!(help.contains("Your own data (--dataset folder)"), "{help}");
    }
}
