//! `r2unet predict`.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::{GrayImage, RgbImage};
use r2unet::Task;
use r2unet::image_io::{self, RawImage};
use r2unet::inference::predict;
use r2unet::measure::{self, MeasureOptions, Measurements};
use r2unet::preprocess;

use crate::args::PredictArgs;
use crate::inputs::{self, Input};
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

/// What one image produced: the files written and, with `--measure`, its measurements.
struct Done {
    files: Vec<PathBuf>,
    measured: Option<Measurements>,
}

fn one(
    input: &Input,
    out: &Path,
    a: &PredictArgs,
    ctx: &(
        r2unet::R2UNet,
        r2unet::ModelBundle,
        r2unet::burn::tensor::Device,
    ),
) -> Result<Done> {
    let (model, bundle, device) = ctx;
    let name = &input.name;
    let input = &input.path;
    let bytes = std::fs::read(input).with_context(|| input.display().to_string())?;
    let img = image_io::decode(&bytes).with_context(|| input.display().to_string())?;
    let prepared = preprocess::prepare(&bundle.preprocess, &img, None)
        .with_context(|| input.display().to_string())?;
    let probs = predict::probabilities(model, device, &prepared, &a.tiling.config()?, |_, _| {})
        .with_context(|| input.display().to_string())?;
    let probs = prepared.restore(&probs);
    let mask = predict::mask(&probs, a.threshold);
    let (w, h) = (img.width, img.height);
    let measured = if a.measure {
        let fov = (bundle.preprocess.task == Task::Retina).then_some(&prepared.source_fov[..]);
        let binary: Vec<bool> = mask.iter().map(|&m| m > 0).collect();
        let m = measure::measure(
            bundle.preprocess.task,
            &binary,
            w as usize,
            h as usize,
            fov,
            &measure_options(a),
        )
        .with_context(|| format!("measuring {}", input.display()))?;
        Some(m)
    } else {
        None
    };
    let base = out.join(name);
    if let Some(dir) = base.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let named = |suffix: &str| {
        let mut file = base.clone().into_os_string();
        file.push(format!(".{suffix}.png"));
        PathBuf::from(file)
    };
    let prob_img = GrayImage::from_raw(
        w,
        h,
        probs.iter().map(|p| (p * 255.0).round() as u8).collect(),
    )
    .expect("size matches");
    let mask_img = GrayImage::from_raw(w, h, mask.clone()).expect("size matches");
    let mut written = Vec::new();
    let prob_path = named("prob");
    save_atomic(&prob_path, |p| {
        prob_img.save_with_format(p, image::ImageFormat::Png)
    })?;
    written.push(prob_path);
    let mask_path = named("mask");
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
        let path = named("overlay");
        save_atomic(&path, |p| rgb.save_with_format(p, image::ImageFormat::Png))?;
        written.push(path);
    }
    Ok(Done {
        files: written,
        measured,
    })
}

fn measure_options(a: &PredictArgs) -> MeasureOptions {
    MeasureOptions {
        pixel_size_um: a.pixel_size_um,
        fov_angle_deg: a.fov_angle,
        pixel_spacing_mm: a.pixel_spacing_mm,
    }
}

/// A positive, finite scale, or an error naming the flag.
fn check_scale(value: Option<f64>, flag: &str) -> Result<()> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => {
            anyhow::bail!("{flag} must be a positive number, got {v}")
        }
        _ => Ok(()),
    }
}

/// One image's measurements as JSON: its path first, then the fields in the order the core
/// defines them.
#[derive(serde::Serialize)]
struct Row<'a> {
    image: String,
    #[serde(flatten)]
    measurements: &'a Measurements,
}

/// `measurements.csv` (one row per measured image) and `measurements.json` (an array of the
/// same, each with its `image`), written through temporary names.
fn write_measurements(out: &Path, task: Task, rows: &[(PathBuf, Measurements)]) -> Result<()> {
    let mut csv = format!("image,{}\n", Measurements::csv_header(task));
    let mut json = Vec::new();
    for (image, m) in rows {
        let shown = image.display().to_string();
        csv.push_str(&format!("{},{}\n", csv_field(&shown), m.csv_row()));
        json.push(Row {
            image: shown,
            measurements: m,
        });
    }
    let json = serde_json::to_string_pretty(&json)? + "\n";
    for (file, text) in [("measurements.csv", csv), ("measurements.json", json)] {
        let path = out.join(file);
        let tmp = out.join(format!("{file}.partial"));
        std::fs::write(&tmp, text).with_context(|| tmp.display().to_string())?;
        std::fs::rename(&tmp, &path).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn run(a: PredictArgs) -> Result<()> {
    let task = a.task;
    a.tiling.config()?;
    if !(0.0..=1.0).contains(&a.threshold) {
        anyhow::bail!("--threshold must be in 0..1, got {}", a.threshold);
    }
    check_scale(a.pixel_size_um, "--pixel-size-um")?;
    check_scale(a.fov_angle, "--fov-angle")?;
    check_scale(a.pixel_spacing_mm, "--pixel-spacing-mm")?;
    let chosen = backend::choose(a.backend, &backend::Workload::tile(task, a.tiling.tile))?;
    let (model, mut bundle, path) = models::load(a.weights.as_ref(), task, &chosen.device)?;
    a.tiling.apply_fov_width(&mut bundle)?;
    eprintln!("model: {path} ({})", bundle.model.architecture());
    let collected = inputs::collect(&a.inputs, a.glob.as_deref(), &a.out)?;
    if !collected.skipped.is_empty() {
        let what = match &a.glob {
            Some(g) => format!("not matching --glob '{g}'"),
            None => "not images".to_string(),
        };
        eprintln!("warning: skipped {} files {what}:", collected.skipped.len());
        for path in &collected.skipped {
            eprintln!("  {}", path.display());
        }
    }
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let ctx = (model, bundle, chosen.device);
    let total = collected.inputs.len();
    let mut failed = 0;
    let mut measured = Vec::new();
    for input in &collected.inputs {
        let started = std::time::Instant::now();
        match one(input, &a.out, &a, &ctx) {
            Ok(done) => {
                let names: Vec<String> =
                    done.files.iter().map(|f| f.display().to_string()).collect();
                println!(
                    "{}: {} ({:.2} s)",
                    input.path.display(),
                    names.join(", "),
                    started.elapsed().as_secs_f64()
                );
                if let Some(m) = done.measured {
                    measured.push((input.path.clone(), m));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if a.measure && !measured.is_empty() {
        write_measurements(&a.out, task, &measured)?;
        println!(
            "measurements of {} images: {}, {}",
            measured.len(),
            a.out.join("measurements.csv").display(),
            a.out.join("measurements.json").display()
        );
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {total} inputs failed; no output was written for them{}",
            if a.measure {
                " and they have no row in measurements.csv"
            } else {
                ""
            }
        );
    }
    Ok(())
}
