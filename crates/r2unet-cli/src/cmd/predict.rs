//! `r2unet predict`.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::{GrayImage, RgbImage};
use r2unet::image_io::{self, RawImage};
use r2unet::inference::predict;
use r2unet::preprocess;

use crate::args::PredictArgs;
use crate::{backend, models};

/// Writes `img` to `path` through a temporary name, so a failure never leaves a partial file
/// under the final name.
fn save_atomic(path: &Path, save: impl FnOnce(&Path) -> image::ImageResult<()>) -> Result<()> {
    let tmp = path.with_extension("partial.png");
    save(&tmp).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())
}

/// The input as 8-bit RGB for the overlay (16-bit and signed images stretched to 0..255).
fn display_rgb(img: &RawImage) -> RgbImage {
    let (lo, hi) = img
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = match img.kind {
        image_io::SampleKind::U8 => (0.0, 255.0),
        _ => (lo, hi.max(lo + 1e-6)),
    };
    let px = |v: f32| (((v - lo) / (hi - lo)) * 255.0).clamp(0.0, 255.0) as u8;
    RgbImage::from_fn(img.width, img.height, |x, y| {
        let i = (y * img.width + x) as usize * img.channels;
        if img.channels == 1 {
            let g = px(img.data[i]);
            image::Rgb([g, g, g])
        } else {
            image::Rgb([px(img.data[i]), px(img.data[i + 1]), px(img.data[i + 2])])
        }
    })
}

fn one(
    input: &Path,
    out: &Path,
    a: &PredictArgs,
    ctx: &(
        r2unet::R2UNet,
        r2unet::ModelBundle,
        r2unet::burn::tensor::Device,
    ),
) -> Result<Vec<PathBuf>> {
    let (model, bundle, device) = ctx;
    let bytes = std::fs::read(input).with_context(|| input.display().to_string())?;
    let img = image_io::decode(&bytes).with_context(|| input.display().to_string())?;
    let prepared = preprocess::prepare(&bundle.preprocess, &img, None)
        .with_context(|| input.display().to_string())?;
    let probs = predict::probabilities(model, device, &prepared, &a.tiling.config()?, |_, _| {})
        .with_context(|| input.display().to_string())?;
    let probs = prepared.restore(&probs);
    let mask = predict::mask(&probs, a.threshold);
    let stem = input
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("image");
    let (w, h) = (img.width, img.height);
    let prob_img = GrayImage::from_raw(
        w,
        h,
        probs.iter().map(|p| (p * 255.0).round() as u8).collect(),
    )
    .expect("size matches");
    let mask_img = GrayImage::from_raw(w, h, mask.clone()).expect("size matches");
    let mut written = Vec::new();
    let prob_path = out.join(format!("{stem}.prob.png"));
    save_atomic(&prob_path, |p| {
        prob_img.save_with_format(p, image::ImageFormat::Png)
    })?;
    written.push(prob_path);
    let mask_path = out.join(format!("{stem}.mask.png"));
    save_atomic(&mask_path, |p| {
        mask_img.save_with_format(p, image::ImageFormat::Png)
    })?;
    written.push(mask_path);
    if a.overlay {
        let mut rgb = display_rgb(&img);
        for (px, &m) in rgb.pixels_mut().zip(&mask) {
            if m > 0 {
                px.0 = [((px.0[0] as u16 + 255) / 2) as u8, px.0[1] / 2, px.0[2] / 2];
            }
        }
        let path = out.join(format!("{stem}.overlay.png"));
        save_atomic(&path, |p| rgb.save_with_format(p, image::ImageFormat::Png))?;
        written.push(path);
    }
    Ok(written)
}

pub fn run(a: PredictArgs) -> Result<()> {
    let task = a.task;
    a.tiling.config()?;
    if !(0.0..=1.0).contains(&a.threshold) {
        anyhow::bail!("--threshold must be in 0..1, got {}", a.threshold);
    }
    let chosen = backend::choose(a.backend)?;
    let (model, mut bundle, path) = models::load(a.weights.as_ref(), task, &chosen.device)?;
    a.tiling.apply_fov_width(&mut bundle)?;
    eprintln!("model: {path} ({})", bundle.model.architecture());
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let ctx = (model, bundle, chosen.device);
    let mut failed = 0;
    for input in &a.inputs {
        let started = std::time::Instant::now();
        match one(input, &a.out, &a, &ctx) {
            Ok(files) => {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                println!(
                    "{}: {} ({:.2} s)",
                    input.display(),
                    names.join(", "),
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} inputs failed; no output was written for them",
            a.inputs.len()
        );
    }
    Ok(())
}
