//! `r2unet bench`: training throughput (48x48 patches, batch 32, Adam, BCE with logits) and
//! the time to segment one DRIVE test image, per backend. Figures only: nothing is asserted.
use std::time::Instant;

use anyhow::{Context, Result};
use r2unet::burn::module::Module;
use r2unet::burn::optim::GradientsParams;
use r2unet::burn::tensor::{Device, Distribution, Tensor};
use r2unet::image_io;
use r2unet::inference::predict;
use r2unet::inference::tiling::TilingConfig;
use r2unet::preprocess::{self, PreprocessConfig};
use r2unet::{ModelConfig, Task};
use r2unet_train::adam::FusedAdam;
use serde::Serialize;

use crate::args::{BackendArg, BenchArgs};
use crate::backend;

#[derive(Serialize)]
struct BenchResult {
    backend: String,
    threads: usize,
    /// The instruction set of this crate's CPU kernels (`R2UNET_MAX_CPU_ISA` caps it); `-` on a
    /// GPU.
    cpu_isa: String,
    params: usize,
    train_patches_per_s: f64,
    /// `None` with `--images 0`.
    infer_drive_image_s: Option<f64>,
    batch: usize,
    peak_rss_mib: f64,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn bench_one(name: &str, device: &Device, a: &BenchArgs) -> Result<BenchResult> {
    let config = ModelConfig::new();
    let train_device = device.clone().autodiff();
    let mut model = config.init(&train_device);
    let mut optim = FusedAdam::new(1e-8).init();
    let batch = a.batch;
    let x = Tensor::<4>::random(
        [batch, 1, 48, 48],
        Distribution::Normal(0.0, 1.0),
        &train_device,
    );
    let y = Tensor::<4>::random(
        [batch, 1, 48, 48],
        Distribution::Bernoulli(0.1),
        &train_device,
    );
    let mut step = |model: r2unet::R2UNet| {
        let loss = r2unet_train::bce::bce_with_logits(model.forward(x.clone()), y.clone());
        let _: f32 = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-3, model, grads)
    };
    for _ in 0..2 {
        model = step(model);
    }
    let started = Instant::now();
    for _ in 0..a.steps {
        model = step(model);
    }
    let train = (a.steps * batch) as f64 / started.elapsed().as_secs_f64();
    let infer_drive_image_s = if a.images == 0 {
        None
    } else {
        Some(drive_image_seconds(&model.valid(), device, a)?)
    };
    Ok(BenchResult {
        backend: name.into(),
        // burn-flex runs its kernels on rayon's global pool (RAYON_NUM_THREADS sets its size).
        threads: rayon::current_num_threads(),
        cpu_isa: if name == "flex" {
            r2unet::ops::cpu_isa().to_string()
        } else {
            "-".into()
        },
        params: config.trainable_params(),
        train_patches_per_s: train,
        infer_drive_image_s,
        batch,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// The best of `a.images` whole-image passes over DRIVE test image 01.
fn drive_image_seconds(inference: &r2unet::R2UNet, device: &Device, a: &BenchArgs) -> Result<f64> {
    let image_path = a.data.join("test/images/01_test.tif");
    let mask_path = a.data.join("test/mask/01_test_mask.gif");
    let img = image_io::decode(
        &std::fs::read(&image_path).with_context(|| image_path.display().to_string())?,
    )?;
    let fov = image_io::decode_label(
        &std::fs::read(&mask_path).with_context(|| mask_path.display().to_string())?,
    )?;
    let prepared =
        preprocess::prepare(&PreprocessConfig::for_task(Task::Retina), &img, Some(&fov))?;
    let eval_device = device.clone().without_autodiff();
    // One tile covering the whole (padded) image: the fastest path, comparable to PyTorch's
    // single forward pass on a padded 584x568 input.
    let tiling = TilingConfig::new()
        .with_tile(1024)
        .with_stride(1024)
        .with_batch(1);
    let mut best = f64::MAX;
    for _ in 0..a.images {
        let t = Instant::now();
        predict::probabilities(inference, &eval_device, &prepared, &tiling, |_, _| {})?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

pub fn run(a: BenchArgs) -> Result<()> {
    let wanted: Vec<BackendArg> = match a.backend {
        Some(b) => vec![b],
        None => vec![BackendArg::Flex, BackendArg::Wgpu],
    };
    let mut results = Vec::new();
    for b in wanted {
        let workload = backend::Workload::Training {
            model: r2unet::ModelConfig::new(),
            batch: a.batch,
            side: 48,
        };
        let chosen = match backend::choose(b, &workload) {
            Ok(c) => c,
            Err(e) if a.backend.is_none() => {
                eprintln!("skipping {b:?}: {e:#}");
                continue;
            }
            Err(e) => return Err(e),
        };
        results.push(bench_one(chosen.name, &chosen.device, &a)?);
    }
    println!(
        "| backend | threads | CPU kernels | params | batch | training (patches/s) | DRIVE image (s, best of {}) | peak RSS (MiB) |",
        a.images
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &results {
        let image = r
            .infer_drive_image_s
            .map_or("-".into(), |s| format!("{s:.3}"));
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {image} | {:.0} |",
            r.backend,
            r.threads,
            r.cpu_isa,
            r.params,
            r.batch,
            r.train_patches_per_s,
            r.peak_rss_mib
        );
    }
    if let Some(json) = &a.json {
        let text = if results.len() == 1 {
            serde_json::to_string_pretty(&results[0])?
        } else {
            serde_json::to_string_pretty(&results)?
        };
        std::fs::write(json, text).with_context(|| json.display().to_string())?;
    }
    Ok(())
}
