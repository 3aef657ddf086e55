//! Odd images through `r2unet predict` with each shipped model: tiny, one pixel thin, uniform,
//! with alpha, palette and 16-bit. Each gets the result RELIABILITY.md documents: a mask of the
//! input's own size, or an error naming the file and the problem; never a panic.
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};

use crate::util::*;

/// A fundus-like test card: a bright disc on black with dark lines, so the retina model's FOV
/// detection and vessels have something to find at any size.
fn fundus(w: u32, h: u32) -> RgbImage {
    let (cx, cy, r) = (w as f32 / 2.0, h as f32 / 2.0, w.min(h) as f32 * 0.45);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        if dx * dx + dy * dy > r * r {
            Rgb([0, 0, 0])
        } else if (x / 7 + y / 11) % 9 == 0 {
            Rgb([90, 30, 10])
        } else {
            Rgb([200, 90, 40])
        }
    })
}

/// What an odd input must give.
#[derive(Debug)]
enum Expect {
    /// A mask of the input's size.
    Mask,
    /// Exit status 2 with an error naming the file and containing this text.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    file: PathBuf,
    size: (u32, u32),
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut save = |name: &'static str, img: DynamicImage, ext: &str| {
        let file = dir.join(format!("{name}.{ext}"));
        img.save(&file).unwrap();
        out.push(Case {
            name,
            size: (img.width(), img.height()),
            file,
        });
    };
    save("1x1", DynamicImage::ImageRgb8(fundus(1, 1)), "png");
    save("15x15", DynamicImage::ImageRgb8(fundus(15, 15)), "png");
    save("1x300", DynamicImage::ImageRgb8(fundus(1, 300)), "png");
    save("300x1", DynamicImage::ImageRgb8(fundus(300, 1)), "png");
    save(
        "black",
        DynamicImage::ImageRgb8(RgbImage::new(256, 256)),
        "png",
    );
    let white = RgbImage::from_pixel(256, 256, Rgb([255, 255, 255]));
    save("white", DynamicImage::ImageRgb8(white), "png");
    let rgba: RgbaImage = ImageBuffer::from_fn(256, 256, |x, y| {
        let p = fundus(256, 256).get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], if x < 128 { 255 } else { 0 }])
    });
    save("rgba", DynamicImage::ImageRgba8(rgba), "png");
    // GIF is always a palette image.
    save("palette", DynamicImage::ImageRgb8(fundus(256, 256)), "gif");
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(256, 256, |x, y| Luma([((x * 200 + y * 50) % 65536) as u16]));
    save("gray16", DynamicImage::ImageLuma16(gray16), "png");
    let rgb16 = DynamicImage::ImageRgb8(fundus(256, 256)).to_rgb16();
    save("rgb16", DynamicImage::ImageRgb16(rgb16), "png");
    let gray8 = GrayImage::from_fn(256, 256, |x, _| Luma([x as u8]));
    save("gray8", DynamicImage::ImageLuma8(gray8), "png");
    out
}

/// The documented result of each case for each task (RELIABILITY.md, "Odd images").
fn expected(task: &str, case: &str) -> Expect {
    use Expect::*;
    match (task, case) {
        (_, "1x1" | "15x15" | "1x300" | "300x1") => Refused("at least 16x16"),
        ("lung", "gray16" | "rgb16") => Refused("unsigned 16-bit"),
        ("lung", "black" | "white") => Refused("only 1 grey level"),
        ("lung", "gray8") => Mask,
        ("lung", _) => Refused("colour"),
        _ => Mask,
    }
}

/// What the run gave: "mask, N % foreground", or the first error line.
fn outcome(out: &std::process::Output, mask: &Path) -> String {
    let err = stderr(out);
    if let Some(line) = err.lines().find(|l| l.starts_with("error:")) {
        return format!("exit {:?}: {line}", out.status.code());
    }
    if err.contains("panicked") {
        return format!("panic: {err}");
    }
    let mask = image::open(mask).unwrap().to_luma8();
    let share = mask.pixels().filter(|p| p.0[0] > 0).count() as f64 / mask.len() as f64;
    format!(
        "mask {}x{}, {:.1} % foreground",
        mask.width(),
        mask.height(),
        share * 100.0
    )
}

#[test]
fn odd_images_get_their_documented_result() {
    let dir = tempdir();
    let all = cases(dir.path());
    let (mut report, mut wrong) = (Vec::new(), Vec::new());
    for task in ["retina", "skin", "lung"] {
        for case in &all {
            let out_dir = dir.path().join(format!("out-{task}"));
            let out = run(bin()
                .args(["predict", "--task", task, "--backend", "flex", "--out"])
                .arg(&out_dir)
                .arg(&case.file));
            let got = outcome(&out, &out_dir.join(format!("{}.mask.png", case.name)));
            let file = case.file.file_name().unwrap().to_str().unwrap();
            let (w, h) = case.size;
            let ok = match expected(task, case.name) {
                Expect::Mask => out.status.success() && got.starts_with(&format!("mask {w}x{h}")),
                Expect::Refused(why) => {
                    out.status.code() == Some(2) && got.contains(file) && got.contains(why)
                }
            };
            let line = format!("{task:6} {:8} {got}", case.name);
            if !ok {
                wrong.push(format!("{line} (expected {:?})", expected(task, case.name)));
            }
            report.push(line);
        }
    }
    println!("{}", report.join("\n"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
