//! `r2unet eval`.
use anyhow::{Context, Result};
use r2unet::Task;
use r2unet_train::evaluate::{self, Report};
use r2unet_train::{Dataset, Source};

use crate::args::{DatasetArg, EvalArgs};
use crate::cmd::train::{folder_spec, open_folder, refuse_folder_flags};
use crate::{backend, models, progress};

fn cell(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.4}"))
}

/// The report as markdown; `dataset`: the named data set, whose paper figures get a row (none
/// for folder data).
pub fn markdown(report: &Report, dataset: Option<Dataset>, task: Task, weights: &str) -> String {
    let p = &report.pooled;
    let mut s = format!(
        "{} / {} ({} images, threshold {}, pooled over {}), weights {} ({}, {} parameters)\n\n",
        report.dataset,
        report.split,
        report.images.len(),
        report.threshold,
        if task == Task::Retina {
            "FOV pixels"
        } else {
            "all pixels"
        },
        weights,
        report.architecture,
        report.parameters
    );
    s += "| | ACC | SE | SP | F1 (Dice) | Jaccard | AUC | PR-AUC |\n|---|---|---|---|---|---|---|---|\n";
    s += &format!(
        "| ours | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
        p.acc, p.se, p.sp, p.f1, p.jaccard, p.auc, p.pr_auc
    );
    if let Some(dataset) = dataset {
        let paper = evaluate::paper_r2unet(dataset);
        s += &format!(
            "| paper R2U-Net | {} | {} | {} | {} | n/a | {} | n/a |\n",
            cell(paper[0]),
            cell(paper[1]),
            cell(paper[2]),
            cell(paper[3]),
            cell(paper[4])
        );
    }
    s += "\n";
    if task != Task::Retina {
        let what = if task == Task::Lung { "lung" } else { "lesion" };
        s += &format!("By the {what}'s share of the image (the ground truth's):\n\n");
        s += &format!(
            "| {what} share | images | share of all {what} pixels | Dice (pooled) | SE (pooled) | mean image Dice |\n|---|---|---|---|---|---|\n"
        );
        for b in &report.by_size {
            s += &format!(
                "| {:.0}-{:.0} % | {} | {:.1} % | {:.4} | {:.4} | {:.4} |\n",
                b.from * 100.0,
                b.to * 100.0,
                b.images,
                b.foreground_share * 100.0,
                b.dice,
                b.se,
                b.mean_image_dice
            );
        }
        s += "\n";
    }
    s += "| image | ACC | SE | SP | F1 | AUC |\n|---|---|---|---|---|---|\n";
    for im in &report.images {
        let m = &im.metrics;
        s += &format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            im.id, m.acc, m.se, m.sp, m.f1, m.auc
        );
    }
    s
}

/// Draws the pooled ROC curve: unit square with a 0.1 grid, the chance diagonal in grey and
/// the curve in red (false-positive rate right, true-positive rate up).
fn write_roc(report: &Report, path: &std::path::Path) -> Result<()> {
    use image::{Rgb, RgbImage};
    const SIZE: u32 = 480;
    const PAD: u32 = 20;
    let span = (SIZE - 2 * PAD) as f64;
    let to_px = |x: f64, y: f64| (PAD as f64 + x * span, (SIZE - PAD) as f64 - y * span);
    let mut img = RgbImage::from_pixel(SIZE, SIZE, Rgb([255, 255, 255]));
    let line = |img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: Rgb<u8>| {
        let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            if x >= 0.0 && y >= 0.0 && (x as u32) < SIZE && (y as u32) < SIZE {
                img.put_pixel(x as u32, y as u32, c);
            }
        }
    };
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let grey = if i == 0 || i == 10 {
            Rgb([0, 0, 0])
        } else {
            Rgb([225, 225, 225])
        };
        line(&mut img, to_px(v, 0.0), to_px(v, 1.0), grey);
        line(&mut img, to_px(0.0, v), to_px(1.0, v), grey);
    }
    line(
        &mut img,
        to_px(0.0, 0.0),
        to_px(1.0, 1.0),
        Rgb([160, 160, 160]),
    );
    for w in report.roc.windows(2) {
        let (a, b) = (to_px(w[0].0, w[0].1), to_px(w[1].0, w[1].1));
        for d in [0.0, 1.0] {
            line(&mut img, (a.0 + d, a.1), (b.0 + d, b.1), Rgb([200, 0, 0]));
        }
    }
    let tmp = path.with_extension("partial.png");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}

pub fn run(a: EvalArgs) -> Result<()> {
    let (task, spec) = match a.dataset {
        DatasetArg::Named(d) => {
            refuse_folder_flags(&a.folder, d)?;
            (d.task(), None)
        }
        DatasetArg::Folder => {
            let spec = folder_spec(&a.folder, a.seed)?;
            (spec.task, Some(spec))
        }
    };
    let chosen = backend::choose(a.backend, &backend::Workload::tile(task, a.tiling.tile))?;
    let (model, mut bundle, path) = models::load(a.weights.as_ref(), task, &chosen.device)?;
    a.tiling.apply_fov_width(&mut bundle)?;
    let tiling = a.tiling.config()?;
    let source = match (a.dataset, &spec) {
        (DatasetArg::Named(dataset), _) => Source::Named {
            dataset,
            root: a.data.clone().context("--data ROOT is needed")?,
        },
        // Checked with the model's own preprocessing, which is what scoring runs.
        (DatasetArg::Folder, Some(spec)) => {
            if bundle.preprocess.task != spec.task {
                anyhow::bail!(
                    "{path}: a {} model; --task {} needs a {} model",
                    bundle.preprocess.task.name(),
                    spec.task.name(),
                    spec.task.name()
                );
            }
            open_folder(spec, &bundle.preprocess)?
        }
        (DatasetArg::Folder, None) => unreachable!("a folder spec is made above"),
    };
    let split = a
        .split
        .clone()
        .unwrap_or_else(|| source.default_eval_split().to_string());
    let n = source.list(&split)?.len();
    let bar = progress::bar(n, "eval");
    let report = evaluate::evaluate(
        &source,
        &split,
        &model,
        &bundle,
        &chosen.device,
        &tiling,
        a.threshold,
        |d, _| bar.set_position(d as u64),
    )?;
    bar.finish_and_clear();
    print!("{}", markdown(&report, source.dataset(), task, &path));
    println!("\n{:.1} s on {}", report.seconds, chosen.name);
    if let Some(json) = &a.json {
        std::fs::write(json, serde_json::to_string_pretty(&report)?)
            .with_context(|| json.display().to_string())?;
    }
    if let Some(roc) = &a.roc {
        write_roc(&report, roc)?;
    }
    Ok(())
}
