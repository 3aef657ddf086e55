//! Peak memory of `r2unet predict` at the pixel limit (issue 18): real images scaled up to
//! 6000 x 6000 (36 megapixels, `image_io::MAX_PIXELS`), each task's shipped model on the CPU, the
//! peak RSS read by GNU time. A measurement, not a check of speed: ignored by default, run with
//! `cargo test --release -p r2unet-cli --test cli peak_memory -- --ignored --nocapture`
//! (`R2UNET_PEAK_SIDE` picks another side). The bound it asserts is RELIABILITY.md's.
use std::path::Path;
use std::process::Command;

use image::imageops::FilterType;

use crate::util::*;

/// RELIABILITY.md's bound on the peak RSS of one image at the limit, per megapixel of input.
const MB_PER_MEGAPIXEL: f64 = 50.0;

fn scaled(src: &Path, side: u32, dst: &Path) {
    let img = image::DynamicImage::ImageRgb8(image::open(src).unwrap().to_rgb8());
    img.resize_exact(side, side, FilterType::Triangle)
        .save(dst)
        .unwrap();
}

/// A signed 16-bit CT slice as the 8-bit picture a viewer shows (lung window, -1000..400 HU),
/// scaled to `side`.
fn windowed(src: &Path, side: u32, dst: &Path) {
    let raw = r2unet::image_io::decode(&std::fs::read(src).unwrap()).unwrap();
    let px = |v: f32| ((v + 1000.0) / 1400.0 * 255.0).clamp(0.0, 255.0) as u8;
    let grey = image::GrayImage::from_fn(raw.width, raw.height, |x, y| {
        image::Luma([px(raw.data[(y * raw.width + x) as usize])])
    });
    image::DynamicImage::ImageLuma8(grey)
        .resize_exact(side, side, FilterType::Triangle)
        .save(dst)
        .unwrap();
}

/// Runs `predict` under GNU time: (wall seconds, peak RSS in MB).
fn peak(task: &str, input: &Path, out: &Path, extra: &[&str]) -> (f64, f64) {
    let started = std::time::Instant::now();
    let result = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_r2unet"))
        .args(["predict", "--task", task, "--backend", "flex", "--out"])
        .arg(out)
        .args(extra)
        .arg(input)
        .output()
        .expect("GNU time at /usr/bin/time");
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{err}");
    let kb: f64 = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .expect("GNU time's report")
        .parse()
        .unwrap();
    (started.elapsed().as_secs_f64(), kb / 1024.0)
}

#[test]
#[ignore = "a measurement (minutes); run with --ignored"]
fn peak_memory_at_the_pixel_limit() {
    let (Some(drive), Some(isic), Some(lung)) = (
        needs_data("DRIVE"),
        needs_data("ISIC2017"),
        needs_data("LUNG"),
    ) else {
        return;
    };
    let side: u32 = std::env::var("R2UNET_PEAK_SIDE")
        .ok()
        .map_or(6000, |s| s.parse().unwrap());
    let mp = f64::from(side) * f64::from(side) / 1e6;
    let dir = tempdir();
    let fundus = dir.path().join("fundus.png");
    let skin = dir.path().join("skin.png");
    let slice = dir.path().join("lung.png");
    scaled(&drive.join("test/images/01_test.tif"), side, &fundus);
    scaled(
        &isic.join("ISIC-2017_Validation_Data/ISIC_0001769.jpg"),
        side,
        &skin,
    );
    // The lung model's other accepted input: an 8-bit greyscale picture already windowed.
    windowed(&lung.join("2d_images/ID_0151_Z_0140.tif"), side, &slice);
    let runs: [(&str, &Path, &[&str]); 4] = [
        ("retina", &fundus, &[]),
        ("retina", &fundus, &["--fov-width", "0"]),
        ("skin", &skin, &[]),
        ("lung", &slice, &[]),
    ];
    println!(
        "| task | flags | wall s | peak RSS MB | MB per megapixel |\n|---|---|---:|---:|---:|"
    );
    let mut worst: f64 = 0.0;
    for (task, input, extra) in runs {
        let (secs, mb) = peak(task, input, &dir.path().join("out"), extra);
        worst = worst.max(mb / mp);
        println!(
            "| {task} ({side} x {side}, {mp:.0} MP) | {} | {secs:.1} | {mb:.0} | {:.1} |",
            extra.join(" "),
            mb / mp
        );
    }
    assert!(
        worst <= MB_PER_MEGAPIXEL,
        "{worst:.1} MB per megapixel, above the bound of {MB_PER_MEGAPIXEL}"
    );
}
