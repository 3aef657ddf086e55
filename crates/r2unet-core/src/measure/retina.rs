//! Retinal vessel-tree measures: how much vessel, how long, how wide, how winding, how branched.
use serde::Serialize;

use super::fractal;
use super::graph::{self, Graph};
use super::{MeasureOptions, distance, finite, quantile, skeleton};

/// Retinal distance per degree of visual angle, µm: 288 (Drasdo & Fowler, "Non-linear
/// projection of the retinal image in a wide-angle schematic eye", Br J Ophthalmol 58, 1974),
/// for an emmetropic eye near the posterior pole; a myopic eye (longer) has more µm per degree.
pub const UM_PER_DEGREE: f64 = 288.0;
/// Segments whose ends are closer than this (px) have no tortuosity: on a short segment a
/// single pixel of skeleton wobble moves the ratio by several per cent.
pub const TORTUOSITY_MIN_CHORD_PX: f64 = 10.0;
/// The pixel stride of the chords that measure a segment's arc length (see
/// [`RetinaMeasures::tortuosity_mean`]).
pub const ARC_STRIDE_PX: usize = 5;
/// Line pixels on either side of a pixel whose areas its calibre averages.
const CALIBRE_REACH: usize = 3;

/// Where the µm scale came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ScaleSource {
    /// The pixel size the caller gave.
    PixelSize,
    /// The camera's field-of-view angle over the FOV's width in pixels.
    FovAngle,
}

/// Measures of a retinal vessel mask inside the field of view (FOV). Vessel pixels outside the
/// FOV are ignored.
///
/// The vessel tree is thinned to its 1-pixel centre lines (the skeleton: directional thinning
/// by topology-preserving pixel deletion, which keeps every vessel connected however thin).
/// Spurs that the thinning grows from bumps in a vessel's edge are pruned: a branch from a
/// junction to a free end no longer than the vessel's half-width at the junction (so it never
/// leaves the vessel) is removed. The skeleton is then a graph of end points, branch points and
/// the segments between them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetinaMeasures {
    /// FOV pixels (the whole image when no FOV is given).
    pub fov_pixels: u64,
    /// Vessel pixels inside the FOV.
    pub vessel_pixels: u64,
    /// vesselPixels / fovPixels.
    pub vessel_area_fraction: Option<f64>,
    /// The skeleton's length, steps between 4-neighbours counting 1 and diagonal steps √2
    /// (the steps inside a junction's pixel cluster do not count). Like any step count it
    /// overstates oblique vessels: by 8% at 26.6°, about 5% averaged over all directions.
    pub skeleton_length_px: f64,
    /// Calibre (vessel width) along the skeleton: every vessel pixel is given to its nearest
    /// skeleton pixel (exact Euclidean), and a line pixel's calibre is the vessel area given to
    /// the line pixels within 3 steps of it along its segment, over the length of that stretch
    /// (its chord). Area over length is the width whatever the vessel's direction: a straight
    /// band w pixels wide measures w at any angle, where twice the distance to the background
    /// (the usual alternative) reads oblique vessels about 1 px narrow. A 1-pixel line measures 1
    /// along the axes and 1/√2 diagonally, where its pixels touch only at corners. End and
    /// junction pixels, whose areas hold a vessel's rounded end or the meeting of branches, are
    /// left out; the first pixels of a branch still share the parent vessel's area, which the
    /// median and percentiles feel less than the mean. Mean over the line pixels.
    pub calibre_mean_px: Option<f64>,
    pub calibre_median_px: Option<f64>,
    /// 10th percentile (linear interpolation between ranks): the thin capillaries' end.
    pub calibre_p10_px: Option<f64>,
    /// 90th percentile: the main vessels near the disc.
    pub calibre_p90_px: Option<f64>,
    /// Mean over segments (branch or end point to branch or end point) of arc length / chord
    /// length: 1 for straight, more for winding. The arc is measured by chords between every
    /// 5th pixel of the segment, which averages out the pixel staircase of oblique lines (that
    /// step counting would read as 8% tortuosity). Segments with a chord under 10 px, and closed
    /// loops, are left out.
    pub tortuosity_mean: Option<f64>,
    /// The segments that `tortuosityMean` averages.
    pub tortuosity_segments: u64,
    /// Skeleton segments, closed loops included.
    pub segments: u64,
    /// Junctions: clusters of touching skeleton pixels with three or more neighbours each.
    pub branch_points: u64,
    /// Skeleton pixels with exactly one neighbour.
    pub end_points: u64,
    /// Box-counting dimension of the vessel mask inside the FOV: boxes of 2, 4, 8, ... px laid
    /// from the corner of the vessels' bounding box, up to the largest size with 4 boxes across
    /// that box's longer side; the least-squares slope of log N(s) against log(1/s), where N(s)
    /// counts the boxes holding vessel. Published figures for DRIVE's manual vessel maps are
    /// about 1.4 to 1.7.
    pub fractal_dimension: Option<f64>,
    /// µm per pixel, when a scale is known.
    pub um_per_pixel: Option<f64>,
    /// `pixelSize` (given) or `fovAngle` (the camera's FOV angle x 288 µm per degree, over the
    /// FOV's width in pixels: its widest row, which holds even when the disc's top and bottom
    /// are cut off); `null` without a scale.
    pub scale_source: Option<ScaleSource>,
    pub skeleton_length_um: Option<f64>,
    pub calibre_mean_um: Option<f64>,
    pub calibre_median_um: Option<f64>,
    pub calibre_p10_um: Option<f64>,
    pub calibre_p90_um: Option<f64>,
    /// Why a value is null, and anything else a reader should know.
    pub notes: Vec<String>,
}

pub(crate) const CSV_HEADER: &str = "fovPixels,vesselPixels,vesselAreaFraction,skeletonLengthPx,\
calibreMeanPx,calibreMedianPx,calibreP10Px,calibreP90Px,tortuosityMean,tortuositySegments,\
segments,branchPoints,endPoints,fractalDimension,umPerPixel,scaleSource,skeletonLengthUm,\
calibreMeanUm,calibreMedianUm,calibreP10Um,calibreP90Um,notes";

pub(crate) fn measure(
    mask: &[bool],
    width: usize,
    height: usize,
    fov: Option<&[bool]>,
    options: &MeasureOptions,
) -> RetinaMeasures {
    let mut notes = Vec::new();
    let inside = |i: usize| fov.is_none_or(|f| f[i]);
    let vessel: Vec<bool> = (0..mask.len()).map(|i| mask[i] && inside(i)).collect();
    let fov_pixels = fov.map_or(mask.len(), |f| f.iter().filter(|&&v| v).count()) as u64;
    let vessel_pixels = vessel.iter().filter(|&&v| v).count() as u64;
    let outside = mask.iter().filter(|&&v| v).count() as u64 - vessel_pixels;
    if outside > 0 {
        notes.push(format!("{outside} vessel pixel(s) outside the FOV ignored"));
    }
    if fov_pixels == 0 {
        notes.push("no FOV pixels: the vessel area fraction is undefined".to_owned());
    }
    if vessel_pixels == 0 {
        notes.push(
            "no vessel pixels in the FOV: calibre, tortuosity and fractal dimension are undefined"
                .to_owned(),
        );
    }

    let (skel, graph) = skeleton_graph(&vessel, width, height);
    let length: f64 = graph.segments.iter().map(|s| s.chain_length(width)).sum();

    let mut calibres = calibres(&vessel, &skel, &graph, width, height);
    calibres.sort_unstable_by(f64::total_cmp);
    let calibre_mean =
        (!calibres.is_empty()).then(|| calibres.iter().sum::<f64>() / calibres.len() as f64);

    let ratios: Vec<f64> = graph
        .segments
        .iter()
        .filter(|s| !s.closed && s.chord(width) >= TORTUOSITY_MIN_CHORD_PX)
        .map(|s| s.arc_length(width, ARC_STRIDE_PX) / s.chord(width))
        .collect();
    let tortuosity = (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64);
    if vessel_pixels > 0 && ratios.is_empty() {
        notes.push(format!(
            "no skeleton segment spans {TORTUOSITY_MIN_CHORD_PX} px: tortuosity is undefined"
        ));
    }

    let fractal_dimension = fractal::box_counting(&vessel, width);
    if vessel_pixels > 0 && fractal_dimension.is_none() {
        notes.push(
            "the vessels span under 32 px: too few box sizes for a fractal dimension".to_owned(),
        );
    }
    if vessel_pixels > 0 && calibres.is_empty() {
        notes.push(
            "the skeleton has no line pixels (no vessel longer than it is wide): calibre is \
             undefined"
                .to_owned(),
        );
    }

    let (um_per_pixel, scale_source) = scale(fov, width, options, &mut notes);
    let um = |px: Option<f64>| Some(px? * um_per_pixel?);
    let calibre = |q: f64| quantile(&calibres, q);
    RetinaMeasures {
        fov_pixels,
        vessel_pixels,
        vessel_area_fraction: finite(vessel_pixels as f64 / fov_pixels as f64),
        skeleton_length_px: length,
        calibre_mean_px: calibre_mean.and_then(finite),
        calibre_median_px: calibre(0.5),
        calibre_p10_px: calibre(0.1),
        calibre_p90_px: calibre(0.9),
        tortuosity_mean: tortuosity.and_then(finite),
        tortuosity_segments: ratios.len() as u64,
        segments: graph.segments.len() as u64,
        branch_points: graph.branch_points as u64,
        end_points: graph.end_points as u64,
        fractal_dimension,
        um_per_pixel,
        scale_source,
        skeleton_length_um: um(Some(length)),
        calibre_mean_um: um(calibre_mean),
        calibre_median_um: um(calibre(0.5)),
        calibre_p10_um: um(calibre(0.1)),
        calibre_p90_um: um(calibre(0.9)),
        notes,
    }
}

/// The pruned skeleton of `vessel` and its graph.
fn skeleton_graph(vessel: &[bool], width: usize, height: usize) -> (Vec<bool>, Graph) {
    let d2 = distance::squared_distance(vessel, width, height);
    let mut skel = skeleton::thin(vessel, width, height);
    let graph = graph::trace(&skel, width, height);
    let mut pruned = false;
    for s in &graph.segments {
        let (first, last) = (s.path[0], s.path[s.path.len() - 1]);
        let (end, junction) = match (graph.degree[first], graph.degree[last]) {
            (1, d) if d >= 3 => (first, last),
            (d, 1) if d >= 3 => (last, first),
            _ => continue,
        };
        if s.chain_length(width) <= f64::from(d2[junction]).sqrt() {
            for &p in &s.path {
                if p != junction {
                    skel[p] = false;
                }
            }
            debug_assert!(!skel[end]);
            pruned = true;
        }
    }
    if !pruned {
        return (skel, graph);
    }
    // A junction that lost its spur may leave a pixel that is no longer needed: thin again (only
    // such pixels go), then trace the final skeleton.
    let skel = skeleton::thin(&skel, width, height);
    let graph = graph::trace(&skel, width, height);
    (skel, graph)
}

/// The calibre at every line pixel of the skeleton (see [`RetinaMeasures::calibre_mean_px`]).
fn calibres(
    vessel: &[bool],
    skel: &[bool],
    graph: &Graph,
    width: usize,
    height: usize,
) -> Vec<f64> {
    // Each pixel's nearest skeleton pixel, then, in the same buffer, each skeleton pixel's area:
    // a skeleton pixel is its own nearest, so its entry is free to hold the count (one buffer,
    // not two, at 4 bytes a pixel).
    let mut area = distance::nearest_site(skel, width, height);
    for (a, _) in area.iter_mut().zip(skel).filter(|(_, s)| **s) {
        *a = 0;
    }
    for i in (0..vessel.len()).filter(|&i| vessel[i]) {
        let owner = if skel[i] { i } else { area[i] as usize };
        if owner != distance::NONE as usize {
            area[owner] += 1;
        }
    }
    let mut out = Vec::new();
    for s in &graph.segments {
        // A loop's last pixel repeats its first.
        let path = &s.path[..s.path.len() - usize::from(s.closed)];
        let line = |j: usize| graph.degree[path[j]] == 2;
        for i in (0..path.len()).filter(|&i| line(i)) {
            let (lo, hi) = (
                i.saturating_sub(CALIBRE_REACH),
                (i + CALIBRE_REACH).min(path.len() - 1),
            );
            let step = graph::distance(path[lo], path[hi], width) / (hi - lo) as f64;
            let (sum, n) = (lo..=hi)
                .filter(|&j| line(j))
                .fold((0u64, 0u64), |(sum, n), j| {
                    (sum + u64::from(area[path[j]]), n + 1)
                });
            out.extend(finite(sum as f64 / n as f64 / step));
        }
    }
    out
}

fn scale(
    fov: Option<&[bool]>,
    width: usize,
    options: &MeasureOptions,
    notes: &mut Vec<String>,
) -> (Option<f64>, Option<ScaleSource>) {
    if let Some(um) = options.pixel_size_um {
        if options.fov_angle_deg.is_some() {
            notes.push("pixelSizeUm given: fovAngleDeg ignored".to_owned());
        }
        return (Some(um), Some(ScaleSource::PixelSize));
    }
    let Some(angle) = options.fov_angle_deg else {
        return (None, None);
    };
    let fov_width = match fov {
        None => {
            notes.push("no FOV mask given: the image's width taken as the FOV's diameter".into());
            width
        }
        Some(fov) => fractal::bounding_box(fov, width).map_or(0, |r| r.x1 - r.x0),
    };
    if fov_width == 0 {
        notes.push("no FOV pixels: no scale from the FOV angle".to_owned());
        return (None, None);
    }
    (
        finite(angle * UM_PER_DEGREE / fov_width as f64),
        Some(ScaleSource::FovAngle),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;
    use std::f64::consts::PI;

    fn retina(mask: &[bool], w: usize, h: usize) -> RetinaMeasures {
        measure(mask, w, h, None, &MeasureOptions::default())
    }

    #[test]
    fn straight_lines_are_not_tortuous() {
        let (w, h) = (200, 200);
        for (a, b) in [
            ((10, 100), (190, 100)),
            ((10, 10), (190, 190)),
            ((20, 5), (40, 190)),
        ] {
            let mut m = vec![false; w * h];
            draw::line(&mut m, w, a, b);
            let r = retina(&m, w, h);
            assert_eq!(
                (r.segments, r.end_points, r.branch_points),
                (1, 2, 0),
                "{r:?}"
            );
            assert!((r.tortuosity_mean.unwrap() - 1.0).abs() < 0.02, "{r:?}");
            // Area over length: 1 along the axes, 1/√2 on the diagonal.
            let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
            let expect = dx.abs().max(dy.abs()) / dx.hypot(dy);
            assert!(
                (r.calibre_median_px.unwrap() - expect).abs() < 0.02,
                "{r:?}"
            );
        }
        // A thick oblique band too.
        let pts: Vec<(f64, f64)> = (0..=600)
            .map(|i| (20.0 + i as f64 * 0.25, 30.0 + i as f64 * 0.125))
            .collect();
        let r = retina(&draw::curve(w, h, &pts, 5.0), w, h);
        assert!((r.tortuosity_mean.unwrap() - 1.0).abs() < 0.02, "{r:?}");
        assert!((r.calibre_median_px.unwrap() - 5.0).abs() < 0.5, "{r:?}");
    }

    /// arc length / chord of y = A sin(2πx/L) over `periods` periods, by the trapezoid rule.
    fn sine_ratio(a: f64, l: f64, periods: f64) -> f64 {
        let n = 100_000;
        let span = periods * l;
        let dx = span / n as f64;
        let speed = |x: f64| (1.0 + (a * 2.0 * PI / l * (2.0 * PI * x / l).cos()).powi(2)).sqrt();
        let arc: f64 = (0..n)
            .map(|i| 0.5 * (speed(i as f64 * dx) + speed((i + 1) as f64 * dx)) * dx)
            .sum();
        arc / span
    }

    #[test]
    fn a_sine_curve_has_its_arc_over_chord() {
        let (w, h) = (300, 100);
        for (a, l, thickness) in [(12.0, 120.0, 1.0), (15.0, 100.0, 3.0), (8.0, 60.0, 1.0)] {
            let periods = 2.0;
            let pts: Vec<(f64, f64)> = (0..=4000)
                .map(|i| {
                    let x = i as f64 / 4000.0 * periods * l;
                    (20.0 + x, 50.0 + a * (2.0 * PI * x / l).sin())
                })
                .collect();
            let r = retina(&draw::curve(w, h, &pts, thickness), w, h);
            let truth = sine_ratio(a, l, periods);
            let got = r.tortuosity_mean.unwrap();
            assert!(
                (got / truth - 1.0).abs() < 0.03,
                "A={a} L={l} width {thickness}: {got} vs {truth}; {r:?}"
            );
            assert_eq!(r.tortuosity_segments, 1, "{r:?}");
        }
    }

    #[test]
    fn a_band_of_width_7_has_calibre_7() {
        let (w, h) = (240, 240);
        let r = retina(&draw::rect(w, h, 20, 40, 220, 47), w, h);
        assert!((r.calibre_mean_px.unwrap() - 7.0).abs() < 1.0, "{r:?}");
        assert_eq!(r.calibre_median_px, Some(7.0));
        assert_eq!((r.segments, r.branch_points), (1, 0), "{r:?}");
        // Oblique, 30°.
        let pts: Vec<(f64, f64)> = (0..=400)
            .map(|i| {
                let t = i as f64 * 0.4;
                (30.0 + t * (PI / 6.0).cos(), 60.0 + t * (PI / 6.0).sin())
            })
            .collect();
        let r = retina(&draw::curve(w, h, &pts, 7.0), w, h);
        assert!((r.calibre_mean_px.unwrap() - 7.0).abs() < 1.0, "{r:?}");
        assert!((r.calibre_median_px.unwrap() - 7.0).abs() < 1.0, "{r:?}");
    }

    #[test]
    fn crosses_have_one_branch_point_and_four_ends() {
        let (w, h) = (101, 101);
        let mut thin = vec![false; w * h];
        draw::line(&mut thin, w, (10, 50), (90, 50));
        draw::line(&mut thin, w, (50, 10), (50, 90));
        let thick = draw::or(
            &draw::rect(w, h, 10, 47, 91, 54),
            &draw::rect(w, h, 47, 10, 54, 91),
        );
        for (mask, what) in [(thin, "1 px"), (thick, "7 px")] {
            let r = retina(&mask, w, h);
            assert_eq!(
                (r.branch_points, r.end_points, r.segments),
                (1, 4, 4),
                "{what}: {r:?}"
            );
        }
    }

    #[test]
    fn spurs_from_a_ragged_edge_are_pruned() {
        let (w, h) = (200, 60);
        let mut m = draw::rect(w, h, 10, 20, 190, 31); // 11 px wide
        for x in (20..180).step_by(15) {
            m[19 * w + x] = true; // one-pixel bumps on the edge
            m[19 * w + x + 1] = true;
        }
        let r = retina(&m, w, h);
        assert_eq!(
            (r.branch_points, r.end_points, r.segments),
            (0, 2, 1),
            "{r:?}"
        );
    }

    #[test]
    fn empty_full_and_outside_the_fov() {
        let (w, h) = (64, 64);
        let r = retina(&vec![false; w * h], w, h);
        assert_eq!(r.vessel_area_fraction, Some(0.0));
        assert_eq!(
            (r.calibre_mean_px, r.tortuosity_mean, r.fractal_dimension),
            (None, None, None)
        );
        assert_eq!(r.skeleton_length_px, 0.0);
        assert!(!r.notes.is_empty());
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            !json.contains("NaN") && json.contains("\"calibreMeanPx\":null"),
            "{json}"
        );

        let r = retina(&vec![true; w * h], w, h);
        assert_eq!(r.vessel_area_fraction, Some(1.0));
        assert!((r.fractal_dimension.unwrap() - 2.0).abs() < 0.05, "{r:?}");
        // A filled square thins to a point or a small cross: a calibre, or a note why not.
        assert!(
            r.calibre_mean_px.is_some() || r.notes.iter().any(|n| n.contains("calibre")),
            "{r:?}"
        );

        let empty_fov = vec![false; w * h];
        let r = measure(
            &vec![true; w * h],
            w,
            h,
            Some(&empty_fov),
            &MeasureOptions::default(),
        );
        assert_eq!(
            (r.fov_pixels, r.vessel_pixels, r.vessel_area_fraction),
            (0, 0, None)
        );
        assert!(
            r.notes.iter().any(|n| n.contains("no FOV pixels")),
            "{:?}",
            r.notes
        );
        assert!(
            r.notes.iter().any(|n| n.contains("outside the FOV")),
            "{:?}",
            r.notes
        );
        let r = measure(
            &vec![false; w * h],
            w,
            h,
            Some(&empty_fov),
            &MeasureOptions {
                fov_angle_deg: Some(45.0),
                ..Default::default()
            },
        );
        assert_eq!((r.um_per_pixel, r.scale_source), (None, None));

        // A tiny image: measured, nothing to box-count.
        let r = retina(&[true, false, true, true], 2, 2);
        assert_eq!(r.fractal_dimension, None);
        assert_eq!(r.vessel_pixels, 3);
    }

    #[test]
    fn scales() {
        let (w, h) = (200, 200);
        let fov = draw::disc(w, h, 100.0, 100.0, 90.0); // 181 px wide
        let mut m = vec![false; w * h];
        draw::line(&mut m, w, (30, 100), (170, 100));
        let opts = MeasureOptions {
            fov_angle_deg: Some(45.0),
            ..Default::default()
        };
        let r = measure(&m, w, h, Some(&fov), &opts);
        let um = 45.0 * 288.0 / 181.0;
        assert!((r.um_per_pixel.unwrap() - um).abs() < 1e-9, "{r:?}");
        assert_eq!(r.scale_source, Some(ScaleSource::FovAngle));
        assert!((r.skeleton_length_um.unwrap() - 140.0 * um).abs() < 1e-6);
        assert!((r.calibre_median_um.unwrap() - um).abs() < 1e-9);
        let opts = MeasureOptions {
            pixel_size_um: Some(10.0),
            fov_angle_deg: Some(45.0),
            ..Default::default()
        };
        let r = measure(&m, w, h, Some(&fov), &opts);
        assert_eq!(
            (r.um_per_pixel, r.scale_source),
            (Some(10.0), Some(ScaleSource::PixelSize))
        );
        let r = measure(&m, w, h, Some(&fov), &MeasureOptions::default());
        assert_eq!(
            (r.um_per_pixel, r.skeleton_length_um, r.scale_source),
            (None, None, None)
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"scaleSource\":null"), "{json}");
    }

    #[test]
    fn a_large_vessel_like_mask_measures_quickly() {
        // 3500 x 3500 with a grid of wavy vessels of several widths.
        let (w, h) = (3500, 3500);
        let mut mask = vec![false; w * h];
        for k in 0..30 {
            let y0 = 60.0 + k as f64 * 113.0;
            let pts: Vec<(f64, f64)> = (0..=13_000)
                .map(|i| {
                    let x = 50.0 + i as f64 * 0.26;
                    (x, y0 + 25.0 * (x / (80.0 + k as f64)).sin())
                })
                .collect();
            let band = draw::curve(w, h, &pts, 1.0 + (k % 6) as f64 * 2.0);
            for (m, b) in mask.iter_mut().zip(band) {
                *m |= b;
            }
        }
        let fov = draw::disc(w, h, 1750.0, 1750.0, 1700.0);
        let t = std::time::Instant::now();
        let r = measure(&mask, w, h, Some(&fov), &MeasureOptions::default());
        let took = t.elapsed();
        eprintln!("3500x3500: {took:?}");
        assert!(took.as_secs_f64() < 3.0, "{took:?}");
        assert!(
            r.segments >= 30 && r.tortuosity_mean.unwrap() > 1.0,
            "{r:?}"
        );
    }
}
