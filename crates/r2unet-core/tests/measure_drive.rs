//! The retina measures on DRIVE's 20 manual test labels, inside the official FOV masks, against
//! published figures for the same labels: vessel area fraction about 12% of the FOV, box-counting
//! dimension about 1.4 to 1.7.
mod common;

use std::io::Write;

use std::path::PathBuf;

use r2unet::Task;
use r2unet::measure::{MeasureOptions, Measurements, measure};

fn binary(path: &PathBuf) -> (Vec<bool>, usize, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image =
        r2unet::image_io::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (
        image.to_binary(),
        image.width as usize,
        image.height as usize,
    )
}

#[test]
fn drive_manual_labels_measure_in_the_published_ranges() {
    let Some(dir) = common::drive_test("measure_drive") else {
        return;
    };
    let options = MeasureOptions {
        fov_angle_deg: Some(45.0),
        ..Default::default()
    };
    let (mut fraction, mut fractal, mut tortuosity) = (Vec::new(), Vec::new(), Vec::new());
    // Every image's row, shown when an assertion fails.
    let mut rows = format!("image,{}\n", Measurements::csv_header(Task::Retina));
    for n in 1..=20 {
        let (label, w, h) = binary(&dir.join(format!("1st_manual/{n:02}_manual1.gif")));
        let (fov, fw, fh) = binary(&dir.join(format!("mask/{n:02}_test_mask.gif")));
        assert_eq!((w, h), (fw, fh), "image {n:02}");
        let Measurements::Retina(m) = measure(Task::Retina, &label, w, h, Some(&fov), &options)
            .unwrap_or_else(|e| panic!("image {n:02}: {e}"))
        else {
            panic!("a retina task gives retina measures");
        };
        rows += &format!("{n:02},{}\n", Measurements::Retina(m.clone()).csv_row());
        fraction.push(m.vessel_area_fraction.expect("the FOV is not empty"));
        fractal.push(m.fractal_dimension.expect("a vessel tree spans the FOV"));
        let t = m.tortuosity_mean.expect("a vessel tree has long segments");
        assert!(t >= 1.0, "image {n:02}: tortuosity {t}\n{rows}");
        tortuosity.push(t);
        assert!(
            m.branch_points > 20 && m.end_points > 20,
            "image {n:02}: {m:?}"
        );
        assert!(
            m.calibre_median_px.is_some_and(|c| (1.0..6.0).contains(&c)),
            "{m:?}"
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (fraction, fractal, tortuosity) = (mean(&fraction), mean(&fractal), mean(&tortuosity));
    // Straight to stderr, past the harness's capture: the figures are the test's report.
    let _ = writeln!(
        std::io::stderr(),
        "DRIVE test, 1st observer, 20 images: vessel area fraction {:.2}% of the FOV, \
         box-counting dimension {fractal:.3}, tortuosity {tortuosity:.3}",
        100.0 * fraction
    );
    assert!(
        (0.10..0.15).contains(&fraction),
        "vessel area fraction {fraction}"
    );
    assert!((1.3..1.8).contains(&fractal), "fractal dimension {fractal}");
    assert!(tortuosity >= 1.0);
}
