//! Contrast-limited adaptive histogram equalisation (Zuiderveld, 1994) on an 8-bit plane: the
//! contrast step of the usual retina pipeline (e.g. retina-unet), here in the one place that
//! training, evaluation, the CLI and the browser all call.

/// Equalises `plane` (values 0..=255) in place with `grid x grid` tiles and the given clip limit
/// (a multiple of the mean bin height; OpenCV's 2.0 is the usual choice).
pub fn apply(plane: &mut [u8], width: usize, height: usize, grid: usize, clip: f32) {
    let tile_w = width.div_ceil(grid.min(width).max(1)).max(1);
    let tile_h = height.div_ceil(grid.min(height).max(1)).max(1);
    // As many tiles as that size needs, which is `grid` unless the side is small: 17 pixels in
    // 8 tiles of 3 need only 6, and an 8th would start past the edge (found by fuzzing).
    let grid_x = width.div_ceil(tile_w).max(1);
    let grid_y = height.div_ceil(tile_h).max(1);
    // One lookup table per tile.
    let mut luts = vec![[0u8; 256]; grid_x * grid_y];
    for ty in 0..grid_y {
        for tx in 0..grid_x {
            let (x0, y0) = (tx * tile_w, ty * tile_h);
            let (x1, y1) = ((x0 + tile_w).min(width), (y0 + tile_h).min(height));
            let mut hist = [0u32; 256];
            for y in y0..y1 {
                for &v in &plane[y * width + x0..y * width + x1] {
                    hist[v as usize] += 1;
                }
            }
            let count = ((x1.saturating_sub(x0)) * (y1.saturating_sub(y0))).max(1) as u32;
            let limit = ((clip * count as f32 / 256.0) as u32).max(1);
            let mut excess = 0u32;
            for h in hist.iter_mut() {
                if *h > limit {
                    excess += *h - limit;
                    *h = limit;
                }
            }
            let (share, rest) = (excess / 256, (excess % 256) as usize);
            for (i, h) in hist.iter_mut().enumerate() {
                *h += share + u32::from(i < rest);
            }
            let mut cdf = 0u32;
            let lut = &mut luts[ty * grid_x + tx];
            for (i, h) in hist.iter().enumerate() {
                cdf += h;
                lut[i] = ((cdf as f32 * 255.0 / count as f32).round()).min(255.0) as u8;
            }
        }
    }
    // Bilinear interpolation between the four nearest tile centres removes tile seams.
    for y in 0..height {
        let fy = (y as f32 + 0.5) / tile_h as f32 - 0.5;
        let ty0 = fy.floor().clamp(0.0, (grid_y - 1) as f32) as usize;
        let ty1 = (ty0 + 1).min(grid_y - 1);
        let wy = (fy - ty0 as f32).clamp(0.0, 1.0);
        for x in 0..width {
            let fx = (x as f32 + 0.5) / tile_w as f32 - 0.5;
            let tx0 = fx.floor().clamp(0.0, (grid_x - 1) as f32) as usize;
            let tx1 = (tx0 + 1).min(grid_x - 1);
            let wx = (fx - tx0 as f32).clamp(0.0, 1.0);
            let v = plane[y * width + x] as usize;
            let at = |ty: usize, tx: usize| luts[ty * grid_x + tx][v] as f32;
            let top = at(ty0, tx0) * (1.0 - wx) + at(ty0, tx1) * wx;
            let bottom = at(ty1, tx0) * (1.0 - wx) + at(ty1, tx1) * wx;
            plane[y * width + x] = (top * (1.0 - wy) + bottom * wy).round() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every side from 1 to 80 pixels with 8 tiles: no tile starts past the edge (widths such as
    /// 17 or 33 panicked, the fuzzer's first find) and none is empty (at 49 the 8th tile of 7 was
    /// empty and darkened the right edge), so a constant plane stays constant.
    #[test]
    fn every_small_size_is_equalised_without_empty_tiles() {
        for width in 1..=80 {
            for height in [1, 2, 9, 17, 49, width] {
                let mut plane = vec![100u8; width * height];
                super::apply(&mut plane, width, height, 8, 2.0);
                assert!(
                    plane.iter().all(|&v| v == plane[0]),
                    "{width}x{height}: {plane:?}"
                );
            }
        }
    }

    #[test]
    fn stretches_a_low_contrast_ramp_and_keeps_order() {
        let (w, h) = (64, 64);
        let mut plane: Vec<u8> = (0..w * h).map(|i| 100 + ((i % w) * 20 / w) as u8).collect();
        let before = plane.clone();
        super::apply(&mut plane, w, h, 4, 2.0);
        let span = |p: &[u8]| *p.iter().max().unwrap() as i32 - *p.iter().min().unwrap() as i32;
        assert!(
            span(&plane) > span(&before),
            "{} vs {}",
            span(&plane),
            span(&before)
        );
        // Local equalisation does not keep a ramp strictly monotone across tile seams, but it
        // must keep its order overall.
        let mean = |p: &[u8]| p.iter().map(|&v| v as f64).sum::<f64>() / p.len() as f64;
        let (ma, mb) = (mean(&before), mean(&plane));
        let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
        for (a, b) in before.iter().zip(&plane) {
            let (da, db) = (*a as f64 - ma, *b as f64 - mb);
            cov += da * db;
            va += da * da;
            vb += db * db;
        }
        let r = cov / (va * vb).sqrt();
        assert!(r > 0.9, "correlation {r}");
    }
}
