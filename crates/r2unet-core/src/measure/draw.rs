//! Test shapes with known measures: discs, ellipses, rectangles, curves of a given width.

/// Pixels whose centre lies in the disc of radius `r` around `(cx, cy)`.
pub fn disc(width: usize, height: usize, cx: f64, cy: f64, r: f64) -> Vec<bool> {
    ellipse(width, height, cx, cy, r, r)
}

/// Pixels whose centre lies in the axis-aligned ellipse with semi-axes `a` (x) and `b` (y).
pub fn ellipse(width: usize, height: usize, cx: f64, cy: f64, a: f64, b: f64) -> Vec<bool> {
    from_fn(width, height, |x, y| {
        let (dx, dy) = ((x - cx) / a, (y - cy) / b);
        dx * dx + dy * dy <= 1.0
    })
}

/// The pixels `x0..x1` by `y0..y1`.
pub fn rect(width: usize, height: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<bool> {
    from_fn(width, height, |x, y| {
        (x0 as f64..x1 as f64).contains(&x) && (y0 as f64..y1 as f64).contains(&y)
    })
}

pub fn from_fn(width: usize, height: usize, f: impl Fn(f64, f64) -> bool) -> Vec<bool> {
    (0..width * height)
        .map(|i| f((i % width) as f64, (i / width) as f64))
        .collect()
}

pub fn or(a: &[bool], b: &[bool]) -> Vec<bool> {
    a.iter().zip(b).map(|(&a, &b)| a || b).collect()
}

/// A 1-pixel, 8-connected digital line from `(x0, y0)` to `(x1, y1)` (Bresenham), set in `mask`.
pub fn line(mask: &mut [bool], width: usize, (x0, y0): (i64, i64), (x1, y1): (i64, i64)) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        mask[y as usize * width + x as usize] = true;
        if (x, y) == (x1, y1) {
            return;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// The curve through `points` drawn `thickness` pixels wide: 1 gives an 8-connected line through
/// the rounded points, more stamps a disc of that diameter along the curve.
pub fn curve(width: usize, height: usize, points: &[(f64, f64)], thickness: f64) -> Vec<bool> {
    let mut mask = vec![false; width * height];
    if thickness <= 1.0 {
        let round = |(x, y): (f64, f64)| (x.round() as i64, y.round() as i64);
        for pair in points.windows(2) {
            line(&mut mask, width, round(pair[0]), round(pair[1]));
        }
        return mask;
    }
    let r = thickness / 2.0;
    for &(px, py) in points {
        let (x0, x1) = ((px - r).floor().max(0.0), (px + r).ceil());
        let (y0, y1) = ((py - r).floor().max(0.0), (py + r).ceil());
        for y in y0 as usize..=(y1 as usize).min(height - 1) {
            for x in x0 as usize..=(x1 as usize).min(width - 1) {
                let (dx, dy) = (x as f64 - px, y as f64 - py);
                // Strictly inside, so that a width-w curve is w pixels across, not w + 1.
                if dx * dx + dy * dy < r * r {
                    mask[y * width + x] = true;
                }
            }
        }
    }
    mask
}
