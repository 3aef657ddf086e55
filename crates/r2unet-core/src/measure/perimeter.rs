//! Perimeter of a mask from its 2x2 pixel configurations, in one pass and without tracing.
//!
//! The contour is the marching-squares polygon through the midpoints between object and
//! background pixel centres (8-connected object): a 2x2 window with two side-by-side object pixels
//! holds a straight piece of it, 1 long; a window with one or three object pixels holds a corner
//! piece, √2/2 long; a window with two diagonal ones holds two corner pieces. That polygon's
//! length overstates oblique edges (its staircase is counted step by step: +5.5% on average over
//! all directions), so it is scaled by Kulpa's factor π(1 + √2)/8 ≈ 0.948 (Kulpa, "Area and
//! perimeter measurement of blobs in discrete binary pictures", CGIP 6, 1977), which makes it
//! unbiased for edges of uniformly spread direction: a disc of radius r measures within 2.5% of
//! 2πr for r ≥ 20, within 0.5% for r ≥ 50. A straight edge measures between 5.2% short (along
//! the axes and diagonals) and 2.6% long, so an axis-aligned square's perimeter is
//! 0.948 × 4 × side.

/// Kulpa's factor: the mean of a staircase's length over the true length, inverted.
pub(crate) const KULPA: f64 = std::f64::consts::PI * (1.0 + std::f64::consts::SQRT_2) / 8.0;

/// The perimeter of `mask` in pixels (0 for an empty mask); holes' edges count too.
pub(crate) fn perimeter(mask: &[bool], width: usize, height: usize) -> f64 {
    let at = |x: usize, y: usize| -> u8 {
        // Window (x, y) covers pixels x-1..=x by y-1..=y; outside the image is background.
        (x >= 1 && y >= 1 && x <= width && y <= height && mask[(y - 1) * width + x - 1]) as u8
    };
    let (mut straight, mut corners) = (0u64, 0u64);
    for y in 0..=height {
        for x in 0..=width {
            let (tl, tr, bl, br) = (at(x, y), at(x + 1, y), at(x, y + 1), at(x + 1, y + 1));
            match tl + tr + bl + br {
                1 | 3 => corners += 1,
                2 if tl == br => corners += 2, // the two diagonal ones: a saddle
                2 => straight += 1,
                _ => {}
            }
        }
    }
    KULPA * (straight as f64 + corners as f64 * std::f64::consts::FRAC_1_SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;
    use std::f64::consts::PI;

    #[test]
    fn discs_measure_within_two_and_a_half_per_cent() {
        for r in [20.0, 20.5, 25.0, 33.3, 50.0, 120.0] {
            let n = (2.0 * r) as usize + 10;
            let c = n as f64 / 2.0;
            for (dx, dy) in [(0.0, 0.0), (0.5, 0.0), (0.3, 0.7)] {
                let p = perimeter(&draw::disc(n, n, c + dx, c + dy, r), n, n);
                let tol = if r >= 50.0 { 0.005 } else { 0.025 };
                assert!((p / (2.0 * PI * r) - 1.0).abs() < tol, "r={r}: {p}");
            }
        }
    }

    #[test]
    fn squares_pixels_and_holes() {
        let square = draw::rect(60, 60, 10, 10, 50, 50);
        let p = perimeter(&square, 60, 60);
        // 4 x 39 straight pieces and 4 corners.
        let expect = KULPA * (4.0 * 39.0 + 4.0 * std::f64::consts::FRAC_1_SQRT_2);
        assert!((p - expect).abs() < 1e-9, "{p}");
        assert_eq!(perimeter(&[false; 4], 2, 2), 0.0);
        let one = perimeter(&[true], 1, 1);
        assert!((one - KULPA * 4.0 * std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
        // A hole adds its edge.
        let mut framed = square.clone();
        for y in 20..40 {
            for x in 20..40 {
                framed[y * 60 + x] = false;
            }
        }
        assert!(perimeter(&framed, 60, 60) > 1.4 * p);
        // The image's edge is an edge: a full image's perimeter is its frame's.
        let full = perimeter(&[true; 100], 10, 10);
        assert!((full - KULPA * (4.0 * 9.0 + 4.0 * std::f64::consts::FRAC_1_SQRT_2)).abs() < 1e-9);
    }
}
