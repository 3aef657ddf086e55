//! `r2unet eval`: the table beside the paper's, the JSON report and the ROC curve.
use r2unet::Task;

use crate::util::*;

#[test]
fn eval_prints_the_table_and_writes_json_and_roc() {
    let Some(run_dir) = tiny_drive_run() else {
        return;
    };
    let drive = needs_data("DRIVE").unwrap();
    let dir = tempdir();
    let (json, roc) = (dir.path().join("eval.json"), dir.path().join("roc.png"));
    let out = run(bin()
        .args(["eval", "--dataset", "drive", "--backend", "flex", "--data"])
        .arg(&drive)
        .arg("--weights")
        .arg(run_dir.join("best.bpk"))
        .arg("--json")
        .arg(&json)
        .arg("--roc")
        .arg(&roc));
    assert_ok(&out);
    let table = stdout(&out);
    assert!(
        table.contains("| ours |") && table.contains("| paper R2U-Net |"),
        "{table}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["dataset"], "drive");
    assert_eq!(report["split"], "test");
    assert_eq!(report["images"].as_array().unwrap().len(), 20);
    let auc = report["pooled"]["auc"].as_f64().unwrap();
    // Two epochs of 1024 patches teach a tiny model something, far from the paper.
    assert!(auc > 0.6, "pooled AUC {auc}");
    assert!(image::open(&roc).is_ok());
}

/// The lung test split is the documented one: 24 of the 240 slices, scored on every pixel.
#[test]
fn lung_eval_scores_the_24_test_slices() {
    let Some(run_dir) = tiny_lung_run() else {
        return;
    };
    let lung = needs_data("LUNG").unwrap();
    let dir = tempdir();
    let json = dir.path().join("lung.json");
    let out = run(bin()
        .args(["eval", "--dataset", "lung", "--backend", "flex", "--data"])
        .arg(&lung)
        .arg("--weights")
        .arg(run_dir.join("best.bpk"))
        .arg("--json")
        .arg(&json));
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["dataset"], "lung");
    assert_eq!(report["split"], "test");
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 24);
    // One of the slices the seeded split puts in the test set (the page's sample).
    assert!(
        images
            .iter()
            .any(|i| i.to_string().contains("ID_0151_Z_0140")),
        "{images:?}"
    );
    // One tiny epoch says little; the shipped model's figures are RESULTS.md's.
    for metric in ["acc", "auc", "f1"] {
        let value = report["pooled"][metric].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&value), "pooled {metric} {value}");
    }
}

#[test]
fn eval_on_an_empty_folder_says_so() {
    let dir = tempdir();
    let model = dir.path().join("tiny.bpk");
    untrained_model(&model, Task::Retina);
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
        .arg(&model)
        .arg("--data")
        .arg(&empty));
    assert_err(&out, &["no drive images"]);
}
