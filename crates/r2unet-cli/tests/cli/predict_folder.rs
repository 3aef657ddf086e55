//! `r2unet predict` on folders (walked, `--glob`, non-images listed) and `--measure`: the
//! measurements of real masks written as CSV and JSON, one row per image.
use std::path::Path;

use crate::util::*;

fn json_rows(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("measurements.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn csv_lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("measurements.csv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A folder of mixed files, with subfolders: every image is segmented under its own path, the
/// rest is listed as skipped (a warning, not an error), and each mask is measured.
#[test]
fn a_folder_is_segmented_and_measured_image_by_image() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let dir = tempdir();
    let input = dir.path().join("photos");
    std::fs::create_dir_all(input.join("left")).unwrap();
    std::fs::create_dir_all(input.join("right")).unwrap();
    let image = |n: &str| drive.join(format!("test/images/{n}_test.tif"));
    std::os::unix::fs::symlink(image("01"), input.join("left/eye.tif")).unwrap();
    std::os::unix::fs::symlink(image("02"), input.join("right/eye.tif")).unwrap();
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    let out = dir.path().join("out");
    let result = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--backend",
            "flex",
            "--measure",
        ])
        .args(["--fov-angle", "45", "--out"])
        .arg(&out)
        .arg(&input));
    assert_ok(&result);
    let err = stderr(&result);
    assert!(
        err.contains("warning: skipped 1 files not images") && err.contains("notes.txt"),
        "{err}"
    );
    for side in ["left", "right"] {
        let mask = image::open(out.join(format!("{side}/eye.mask.png"))).unwrap();
        assert_eq!((mask.width(), mask.height()), (565, 584));
    }
    let lines = csv_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("image,"), "{}", lines[0]);
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["task"], "retina");
        let density = row["vesselAreaFraction"].as_f64().unwrap();
        // The shipped model's masks: DRIVE's manual labels cover about 12 % of the FOV.
        assert!((0.06..0.2).contains(&density), "vessel density {density}");
        // DRIVE's 45-degree FOV is about 540 pixels wide: about 24 um per pixel.
        let scale = row["umPerPixel"].as_f64().unwrap();
        assert!((20.0..30.0).contains(&scale), "um per pixel {scale}");
        assert!(row["image"].as_str().unwrap().ends_with("eye.tif"));
    }
}

/// `--glob` picks files by their path below the folder: two test images of DRIVE's own layout,
/// not its labels or FOV masks.
#[test]
fn a_glob_picks_files_below_a_folder() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let dir = tempdir();
    let result = run(bin()
        .args(["predict", "--task", "retina", "--backend", "flex"])
        .args(["--glob", "images/0[12]_test.tif", "--out"])
        .arg(dir.path())
        .arg(drive.join("test")));
    assert_ok(&result);
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "01_test.mask.png",
            "01_test.prob.png",
            "02_test.mask.png",
            "02_test.prob.png"
        ]
    );
    assert!(stderr(&result).contains("not matching --glob"));
}

/// Lung areas in mm^2 from the pixel spacing; the two lungs found and split by side.
#[test]
fn lung_areas_follow_the_pixel_spacing() {
    let Some(lung) = needs_data("LUNG") else {
        return;
    };
    let dir = tempdir();
    let result = run(bin()
        .args([
            "predict",
            "--task",
            "lung",
            "--backend",
            "flex",
            "--measure",
        ])
        .args(["--pixel-spacing-mm", "0.7", "--out"])
        .arg(dir.path())
        .arg(lung.join("2d_images/ID_0151_Z_0140.tif")));
    assert_ok(&result);
    let rows = json_rows(dir.path());
    let row = &rows[0];
    assert_eq!(row["task"], "lung");
    let px = row["areaPx"].as_f64().unwrap();
    let mm2 = row["areaMm2"].as_f64().unwrap();
    assert!(px > 1000.0, "lung area {px} px");
    assert!(
        (mm2 - px * 0.49).abs() < 1e-6 * px,
        "{mm2} mm^2 for {px} px"
    );
    let (right, left) = (
        row["patientRightAreaPx"].as_f64().unwrap(),
        row["patientLeftAreaPx"].as_f64().unwrap(),
    );
    assert!(
        right > 0.2 * px && left > 0.2 * px,
        "right {right}, left {left}"
    );
}

/// Bad scales and inputs: named, exit status 2, nothing measured for a failed image.
#[test]
fn bad_scales_and_clashing_inputs_are_refused() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    let dir = tempdir();
    let image = drive.join("test/images/01_test.tif");
    let out = run(bin()
        .args(["predict", "--task", "retina", "--measure"])
        .args(["--pixel-size-um=-3", "--out"])
        .arg(dir.path())
        .arg(&image));
    assert_err(&out, &["--pixel-size-um"]);
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--pixel-size-um",
            "10",
            "--out",
        ])
        .arg(dir.path())
        .arg(&image));
    assert_eq!(
        out.status.code(),
        Some(2),
        "--pixel-size-um needs --measure"
    );
    let copy = dir.path().join("01_test.png");
    std::fs::copy(&image, &copy).unwrap();
    let out = run(bin()
        .args(["predict", "--task", "retina", "--out"])
        .arg(dir.path().join("o"))
        .arg(&image)
        .arg(&copy));
    assert_err(&out, &["01_test.tif", "01_test.png"]);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(bin()
        .args(["predict", "--task", "retina", "--out"])
        .arg(dir.path().join("o"))
        .arg(&empty));
    assert_err(&out, &["empty", "no image files"]);
}
