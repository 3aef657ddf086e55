//! Box-counting (Minkowski-Bouligand) dimension: how the number of boxes needed to cover a
//! shape grows as the boxes shrink. A line gives 1, a filled area 2, a vessel tree between.

/// A rectangle of pixels, `x0..x1` by `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

/// The bounding box of the `true` pixels, `None` when there are none.
pub(crate) fn bounding_box(on: &[bool], width: usize) -> Option<Region> {
    let mut r: Option<Region> = None;
    for (y, row) in on.chunks_exact(width).enumerate() {
        let (Some(first), Some(last)) = (row.iter().position(|&v| v), row.iter().rposition(|&v| v))
        else {
            continue;
        };
        r = Some(match r {
            None => Region {
                x0: first,
                y0: y,
                x1: last + 1,
                y1: y + 1,
            },
            Some(r) => Region {
                x0: r.x0.min(first),
                y0: r.y0,
                x1: r.x1.max(last + 1),
                y1: y + 1,
            },
        });
    }
    r
}

/// Fewest boxes across the shape's longer side at the largest box size: with fewer, a count is
/// mostly the edge effects of where the last boxes fall.
pub(crate) const MIN_BOXES_ACROSS: usize = 4;
/// Fewest box sizes for a slope worth reporting.
pub(crate) const MIN_SIZES: usize = 3;

/// The box-counting dimension of the shape `on`: boxes of side s = 2, 4, 8, ... up to the
/// largest power of two with [`MIN_BOXES_ACROSS`] boxes across the longer side of the shape's
/// bounding box, laid from that box's top-left corner (so that the grid fits the shape, not the
/// image around it); N(s) = boxes holding a pixel of the shape; the dimension is the
/// least-squares slope of log N(s) against log(1/s). `None` for an empty shape or one too small
/// for [`MIN_SIZES`] sizes (under 32 px long).
pub(crate) fn box_counting(on: &[bool], width: usize) -> Option<f64> {
    let region = bounding_box(on, width)?;
    let (rw, rh) = (region.x1 - region.x0, region.y1 - region.y0);
    // Occupancy at box size 2, pooled 2x2 for each doubling: O(pixels) in all.
    let (mut bw, mut bh) = (rw.div_ceil(2), rh.div_ceil(2));
    let mut grid = vec![false; bw * bh];
    for y in 0..rh {
        let row = &on[(region.y0 + y) * width + region.x0..][..rw];
        for (x, _) in row.iter().enumerate().filter(|(_, v)| **v) {
            grid[(y / 2) * bw + x / 2] = true;
        }
    }
    let mut points = Vec::new();
    let mut size = 2usize;
    while size * MIN_BOXES_ACROSS <= rw.max(rh) {
        let count = grid.iter().filter(|&&v| v).count();
        if count == 0 {
            return None;
        }
        points.push(((1.0 / size as f64).ln(), (count as f64).ln()));
        let (nw, nh) = (bw.div_ceil(2), bh.div_ceil(2));
        let mut next = vec![false; nw * nh];
        for y in 0..bh {
            for x in 0..bw {
                if grid[y * bw + x] {
                    next[(y / 2) * nw + x / 2] = true;
                }
            }
        }
        (grid, bw, bh, size) = (next, nw, nh, size * 2);
    }
    if points.len() < MIN_SIZES {
        return None;
    }
    super::finite(slope(&points))
}

fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x / n, sy + y / n));
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(sxy, sxx), &(x, y)| {
        (sxy + (x - mx) * (y - my), sxx + (x - mx) * (x - mx))
    });
    sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;

    #[test]
    fn a_line_is_one_and_a_square_is_two() {
        let (w, h) = (512, 512);
        let mut line = vec![false; w * h];
        draw::line(&mut line, w, (0, 200), (511, 200));
        let d = box_counting(&line, w).unwrap();
        assert!((d - 1.0).abs() < 0.1, "{d}");
        let mut diag = vec![false; w * h];
        draw::line(&mut diag, w, (0, 0), (511, 511));
        let d = box_counting(&diag, w).unwrap();
        assert!((d - 1.0).abs() < 0.1, "{d}");
        // Filled squares, one that the boxes tile and one that they do not.
        for (x0, x1) in [(128, 384), (100, 400), (37, 140)] {
            let square = draw::rect(w, h, x0, x0, x1, x1);
            let d = box_counting(&square, w).unwrap();
            assert!((d - 2.0).abs() < 0.1, "{x0}..{x1}: {d}");
        }
        let d = box_counting(&vec![true; w * h], w).unwrap();
        assert!((d - 2.0).abs() < 1e-9, "{d}");
    }

    #[test]
    fn empty_or_tiny_shapes_have_none() {
        let (w, h) = (64, 64);
        assert_eq!(box_counting(&vec![false; w * h], w), None);
        // 16 pixels across: box sizes 2 and 4 only.
        assert_eq!(box_counting(&draw::rect(w, h, 10, 10, 26, 26), w), None);
        assert_eq!(
            bounding_box(&draw::rect(w, h, 10, 12, 26, 50), w),
            Some(Region {
                x0: 10,
                y0: 12,
                x1: 26,
                y1: 50
            })
        );
    }
}
