//! Maximum Feret diameter: the largest distance between two points of a shape, found among the
//! vertices of its convex hull.
//!
//! The shape is the same contour that the perimeter measures (the polygon through the midpoints
//! between object and background pixels), so a run of n pixels is n long and a disc of radius r
//! about 2r + 1. Only each row's two extreme pixels can be on the hull, so the hull is built from
//! at most 6 points per row; coordinates are doubled to stay integers and the hull exact.

/// The maximum Feret diameter of `mask` in pixels, `None` for an empty mask.
pub(crate) fn max_feret(mask: &[bool], width: usize) -> Option<f64> {
    let mut points: Vec<(i64, i64)> = Vec::new();
    for (y, row) in mask.chunks_exact(width).enumerate() {
        let (Some(first), Some(last)) = (row.iter().position(|&v| v), row.iter().rposition(|&v| v))
        else {
            continue;
        };
        let y = 2 * y as i64;
        for x in [2 * first as i64, 2 * last as i64] {
            points.extend([(x, y - 1), (x, y + 1)]);
        }
        points.extend([(2 * first as i64 - 1, y), (2 * last as i64 + 1, y)]);
    }
    if points.is_empty() {
        return None;
    }
    let hull = convex_hull(points);
    // The hull of a digital shape has O(side^(2/3)) vertices (a few hundred for a 3500-pixel
    // side), so all pairs cost less than the pass over the pixels did.
    let mut best = 0i64;
    for (i, &(ax, ay)) in hull.iter().enumerate() {
        for &(bx, by) in &hull[i + 1..] {
            best = best.max((ax - bx).pow(2) + (ay - by).pow(2));
        }
    }
    Some((best as f64).sqrt() / 2.0)
}

/// Andrew's monotone chain: the hull's vertices, counter-clockwise, without collinear points.
fn convex_hull(mut points: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    points.sort_unstable();
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let cross = |o: (i64, i64), a: (i64, i64), b: (i64, i64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(i64, i64)> = Vec::with_capacity(points.len() + 1);
    for pass in [
        &points[..],
        &points.iter().rev().copied().collect::<Vec<_>>()[..],
    ] {
        let floor = hull.len();
        for &p in pass {
            while hull.len() >= floor + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop(); // the first point of the other chain
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;

    #[test]
    fn hull_of_a_square_with_inner_points() {
        let pts = vec![(0, 0), (4, 0), (4, 4), (0, 4), (2, 2), (2, 0), (1, 3)];
        let mut h = convex_hull(pts);
        h.sort_unstable();
        assert_eq!(h, vec![(0, 0), (0, 4), (4, 0), (4, 4)]);
    }

    #[test]
    fn diameters() {
        assert_eq!(max_feret(&[false; 9], 3), None);
        assert_eq!(max_feret(&[true], 1), Some(1.0));
        let (w, h) = (120, 120);
        let disc = draw::disc(w, h, 60.0, 60.0, 50.0);
        let d = max_feret(&disc, w).unwrap();
        assert!((d / 100.0 - 1.0).abs() < 0.02, "{d}");
        let rect = draw::rect(w, h, 10, 20, 90, 80); // 80 x 60
        let d = max_feret(&rect, w).unwrap();
        assert!((d - 80f64.hypot(60.0)).abs() < 1.0, "{d}");
        let mut line = vec![false; w * h];
        draw::line(&mut line, w, (5, 7), (104, 7));
        assert_eq!(max_feret(&line, w), Some(100.0));
    }
}
