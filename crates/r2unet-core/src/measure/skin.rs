//! Skin lesion measures: size, outline and shape, the A, B and D of dermatology's ABCD rule
//! (asymmetry, border irregularity, diameter).
use serde::Serialize;

use super::components::components;
use super::{finite, hull, perimeter};

/// Measures of a skin-lesion mask. The whole mask is measured as the lesion: when it is in
/// several pieces (`components > 1`), area, perimeter and diameter cover all of them, and the
/// notes say so.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkinMeasures {
    /// Lesion pixels.
    pub area_px: u64,
    /// The outline's length: the marching-squares contour (through the midpoints between lesion
    /// and background pixels) scaled by Kulpa's factor π(1 + √2)/8 ≈ 0.948, unbiased for edges
    /// of random direction (a disc of radius r ≥ 20 within 2.5% of 2πr, r ≥ 50 within 0.5%;
    /// straight edges between 5.2% short and 2.6% long). Holes' edges count. 0 for no lesion.
    pub perimeter_px: f64,
    /// The maximum Feret diameter: the largest distance between two points of that contour,
    /// from its convex hull (a run of n pixels measures n).
    pub max_diameter_px: Option<f64>,
    /// Asymmetry across the major principal axis (the axis of least second moment, through the
    /// centroid): the area of the lesion XOR its mirror image, over the lesion's area. 0 for a
    /// mirror-symmetric lesion (a disc, an ellipse), up to 2. The mirror image is sampled
    /// bilinearly, so that a tilted axis does not add rounding noise.
    pub asymmetry_major_axis: Option<f64>,
    /// The same across the minor principal axis.
    pub asymmetry_minor_axis: Option<f64>,
    /// perimeter² / (4π area): 1 for a disc, more for an irregular or elongated outline. With
    /// this perimeter an axis-aligned square gives 0.948² × 4/π ≈ 1.14 (its straight edges
    /// measure 5.2% short), not the continuous 4/π ≈ 1.27.
    pub compactness: Option<f64>,
    /// 8-connected pieces of the mask.
    pub components: u64,
    /// Pixels of the largest piece.
    pub largest_component_px: u64,
    /// The scale given (`pixelSizeUm`), µm per pixel.
    pub um_per_pixel: Option<f64>,
    pub area_um2: Option<f64>,
    pub perimeter_um: Option<f64>,
    pub max_diameter_um: Option<f64>,
    /// Why a value is null, and anything else a reader should know.
    pub notes: Vec<String>,
}

pub(crate) const CSV_HEADER: &str = "areaPx,perimeterPx,maxDiameterPx,asymmetryMajorAxis,\
asymmetryMinorAxis,compactness,components,largestComponentPx,umPerPixel,areaUm2,perimeterUm,\
maxDiameterUm,notes";

pub(crate) fn measure(
    mask: &[bool],
    width: usize,
    height: usize,
    um_per_pixel: Option<f64>,
) -> SkinMeasures {
    let area = mask.iter().filter(|&&v| v).count() as u64;
    let perimeter = perimeter::perimeter(mask, width, height);
    let pieces = components(mask, width, height);
    let mut notes = Vec::new();
    if area == 0 {
        notes.push("no lesion: diameter, asymmetry and compactness are undefined".to_owned());
    }
    if pieces.len() > 1 {
        notes.push(format!(
            "the mask has {} separate pieces; every measure covers all of them",
            pieces.len()
        ));
    }
    let max_diameter = hull::max_feret(mask, width);
    let (asym_major, asym_minor) = asymmetry(mask, width, height).unzip();
    let scale = |v: Option<f64>, power: i32| Some(v? * um_per_pixel?.powi(power));
    SkinMeasures {
        area_px: area,
        perimeter_px: perimeter,
        max_diameter_px: max_diameter,
        asymmetry_major_axis: asym_major,
        asymmetry_minor_axis: asym_minor,
        compactness: (area > 0)
            .then(|| perimeter * perimeter / (4.0 * std::f64::consts::PI * area as f64))
            .and_then(finite),
        components: pieces.len() as u64,
        largest_component_px: pieces.iter().map(|c| c.size).max().unwrap_or(0),
        um_per_pixel,
        area_um2: scale(Some(area as f64), 2),
        perimeter_um: scale(Some(perimeter), 1),
        max_diameter_um: scale(max_diameter, 1),
        notes,
    }
}

/// Asymmetry across the major and the minor principal axis (see [`SkinMeasures`]), `None` for an
/// empty mask.
fn asymmetry(mask: &[bool], width: usize, height: usize) -> Option<(f64, f64)> {
    // Moments in integers, so that a shape symmetric about a pixel row or column has exactly zero
    // cross moment and its axes come out exactly along x and y (a disc's axes are undefined;
    // atan2(0, 0) = 0 picks x and y).
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0i128, 0i128, 0i128, 0, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, v)| **v) {
        let (x, y) = ((i % width) as i128, (i / width) as i128);
        n += 1;
        (sx, sy) = (sx + x, sy + y);
        (sxx, syy, sxy) = (sxx + x * x, syy + y * y, sxy + x * y);
    }
    if n == 0 {
        return None;
    }
    // Central moments times n².
    let (mxx, myy, mxy) = (n * sxx - sx * sx, n * syy - sy * sy, n * sxy - sx * sy);
    let angle = 0.5 * (2.0 * mxy as f64).atan2((mxx - myy) as f64);
    let centre = (sx as f64 / n as f64, sy as f64 / n as f64);
    let across = |angle: f64| {
        let (ux, uy) = (angle.cos(), angle.sin());
        let mut unmatched = 0.0;
        for (i, _) in mask.iter().enumerate().filter(|(_, v)| **v) {
            let (dx, dy) = ((i % width) as f64 - centre.0, (i / width) as f64 - centre.1);
            let along = dx * ux + dy * uy;
            let (mx, my) = (2.0 * along * ux - dx, 2.0 * along * uy - dy);
            unmatched += 1.0 - bilinear(mask, width, height, centre.0 + mx, centre.1 + my);
        }
        // Reflection is its own inverse, so the mirror's pixels outside the lesion are as many as
        // the lesion's pixels outside the mirror: the XOR is twice the one-sided count.
        2.0 * unmatched / n as f64
    };
    let major = across(angle);
    let minor = across(angle + std::f64::consts::FRAC_PI_2);
    Some((major, minor))
}

/// The mask's value at a point between pixel centres, interpolated; 0 outside the image.
fn bilinear(mask: &[bool], width: usize, height: usize, x: f64, y: f64) -> f64 {
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = (x - fx, y - fy);
    let value = |x: f64, y: f64| -> f64 {
        let inside = x >= 0.0 && y >= 0.0 && x < width as f64 && y < height as f64;
        f64::from(u8::from(inside && mask[y as usize * width + x as usize]))
    };
    // Weights of exactly 0 skip their pixel, so a mirror image that lands on pixel centres
    // reads exactly them.
    let mut v = 0.0;
    for (dx, wx) in [(0.0, 1.0 - tx), (1.0, tx)] {
        for (dy, wy) in [(0.0, 1.0 - ty), (1.0, ty)] {
            if wx * wy > 0.0 {
                v += wx * wy * value(fx + dx, fy + dy);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;
    use std::f64::consts::PI;

    fn skin(mask: &[bool], w: usize, h: usize) -> SkinMeasures {
        measure(mask, w, h, None)
    }

    #[test]
    fn a_disc() {
        let (w, h, r) = (140, 130, 50.0);
        let m = skin(&draw::disc(w, h, 70.0, 64.0, r), w, h);
        assert!(
            (m.area_px as f64 / (PI * r * r) - 1.0).abs() < 0.01,
            "{m:?}"
        );
        assert!(
            (m.perimeter_px / (2.0 * PI * r) - 1.0).abs() < 0.03,
            "{m:?}"
        );
        assert!(
            (m.max_diameter_px.unwrap() / (2.0 * r) - 1.0).abs() < 0.02,
            "{m:?}"
        );
        assert!((m.compactness.unwrap() - 1.0).abs() < 0.1, "{m:?}");
        assert!(m.asymmetry_major_axis.unwrap() < 0.01, "{m:?}");
        assert!(m.asymmetry_minor_axis.unwrap() < 0.01, "{m:?}");
        assert_eq!((m.components, m.largest_component_px), (1, m.area_px));
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        assert_eq!(m.area_um2, None);
    }

    #[test]
    fn a_disc_off_the_pixel_grid_is_still_symmetric() {
        let (w, h) = (140, 130);
        let m = skin(&draw::disc(w, h, 70.3, 64.6, 40.0), w, h);
        assert!(m.asymmetry_major_axis.unwrap() < 0.03, "{m:?}");
        assert!(m.asymmetry_minor_axis.unwrap() < 0.03, "{m:?}");
    }

    #[test]
    fn ellipses_are_symmetric_and_less_compact() {
        let (w, h) = (200, 120);
        let m = skin(&draw::ellipse(w, h, 100.0, 60.0, 80.0, 30.0), w, h);
        assert!(m.asymmetry_major_axis.unwrap() < 0.01, "{m:?}");
        assert!(m.asymmetry_minor_axis.unwrap() < 0.01, "{m:?}");
        assert!(m.compactness.unwrap() > 1.2, "{m:?}");
        assert!((m.max_diameter_px.unwrap() - 161.0).abs() < 2.0, "{m:?}");
        // Tilted 30°: still (nearly) symmetric about its own axes.
        let (sin, cos) = (PI / 6.0).sin_cos();
        let tilted = draw::from_fn(w, h, |x, y| {
            let (dx, dy) = (x - 100.3, y - 60.2);
            let (u, v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
            (u / 70.0).powi(2) + (v / 25.0).powi(2) <= 1.0
        });
        let m = skin(&tilted, w, h);
        assert!(m.asymmetry_major_axis.unwrap() < 0.05, "{m:?}");
        assert!(m.asymmetry_minor_axis.unwrap() < 0.05, "{m:?}");
    }

    #[test]
    fn an_asymmetric_shape_scores_high() {
        // A disc with a bite out of one side: symmetric about the x axis only.
        let (w, h) = (140, 140);
        let disc = draw::disc(w, h, 70.0, 70.0, 50.0);
        let bite = draw::disc(w, h, 120.0, 70.0, 30.0);
        let mask: Vec<bool> = disc.iter().zip(&bite).map(|(&d, &b)| d && !b).collect();
        let m = skin(&mask, w, h);
        let (a, b) = (
            m.asymmetry_major_axis.unwrap(),
            m.asymmetry_minor_axis.unwrap(),
        );
        assert!(a.min(b) < 0.02 && a.max(b) > 0.2, "{m:?}");
    }

    #[test]
    fn a_square_and_its_compactness() {
        let (w, h) = (100, 100);
        let m = skin(&draw::rect(w, h, 20, 20, 80, 80), w, h);
        // Straight edges measure 0.948 of their length: 0.948² x 4/π, not 4/π (see the field).
        let expect = perimeter::KULPA.powi(2) * 4.0 / PI;
        assert!((m.compactness.unwrap() - expect).abs() < 0.03, "{m:?}");
        assert!(m.asymmetry_major_axis.unwrap() < 1e-9, "{m:?}");
    }

    #[test]
    fn two_discs_are_two_components_and_scale_applies() {
        let (w, h) = (200, 100);
        let a = draw::disc(w, h, 50.0, 50.0, 30.0);
        let b = draw::disc(w, h, 150.0, 50.0, 20.0);
        let m = measure(&draw::or(&a, &b), w, h, Some(10.0));
        assert_eq!(m.components, 2);
        assert_eq!(
            m.largest_component_px,
            a.iter().filter(|&&v| v).count() as u64
        );
        assert_eq!(m.notes.len(), 1, "{:?}", m.notes);
        assert_eq!(m.area_um2, Some(m.area_px as f64 * 100.0));
        assert_eq!(m.max_diameter_um, m.max_diameter_px.map(|d| d * 10.0));
    }

    #[test]
    fn a_large_lesion_measures_quickly() {
        let (w, h) = (3500, 3500);
        let mask = draw::ellipse(w, h, 1700.0, 1800.0, 1500.0, 1200.0);
        let t = std::time::Instant::now();
        let m = skin(&mask, w, h);
        assert!(t.elapsed().as_secs_f64() < 3.0, "{:?}", t.elapsed());
        assert!(m.asymmetry_major_axis.unwrap() < 0.01, "{m:?}");
    }

    #[test]
    fn empty_and_full_masks() {
        let m = skin(&[false; 100], 10, 10);
        assert_eq!(m.area_px, 0);
        assert_eq!(m.perimeter_px, 0.0);
        assert_eq!(m.max_diameter_px, None);
        assert_eq!(m.compactness, None);
        assert_eq!(m.asymmetry_major_axis, None);
        assert_eq!(m.components, 0);
        assert!(!m.notes.is_empty());
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"maxDiameterPx\":null"), "{json}");
        let m = skin(&[true; 100], 10, 10);
        assert_eq!((m.area_px, m.components), (100, 1));
        assert!(m.asymmetry_major_axis.unwrap() < 1e-9);
    }
}
