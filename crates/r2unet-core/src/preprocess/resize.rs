//! Resampling of single planes; used by preprocessing (to the model's size) and to map
//! probabilities back to the source size.

/// Bilinear resampling with pixel centres aligned (as OpenCV's INTER_LINEAR). When shrinking by
/// more than 2x the source is box-averaged first so thin structures do not alias away.
pub fn bilinear(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    if (w, h) == (nw, nh) {
        return src.to_vec();
    }
    let factor = (w / nw.max(1)).min(h / nh.max(1));
    if factor >= 2 {
        let (bw, bh) = (w / factor, h / factor);
        let mut boxed = vec![0.0f32; bw * bh];
        for y in 0..bh {
            for x in 0..bw {
                let mut s = 0.0;
                for dy in 0..factor {
                    let row = (y * factor + dy) * w + x * factor;
                    s += src[row..row + factor].iter().sum::<f32>();
                }
                boxed[y * bw + x] = s / (factor * factor) as f32;
            }
        }
        return bilinear(&boxed, bw, bh, nw, nh);
    }
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    let mut out = vec![0.0f32; nw * nh];
    for y in 0..nh {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(h - 1);
        let wy = fy - y0 as f32;
        for x in 0..nw {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(w - 1);
            let wx = fx - x0 as f32;
            let top = src[y0 * w + x0] * (1.0 - wx) + src[y0 * w + x1] * wx;
            let bottom = src[y1 * w + x0] * (1.0 - wx) + src[y1 * w + x1] * wx;
            out[y * nw + x] = top * (1.0 - wy) + bottom * wy;
        }
    }
    out
}

/// Nearest-neighbour resampling for masks.
pub fn nearest<T: Copy>(src: &[T], w: usize, h: usize, nw: usize, nh: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(nw * nh);
    for y in 0..nh {
        let sy = ((y * h) / nh).min(h - 1);
        for x in 0..nw {
            out.push(src[sy * w + ((x * w) / nw).min(w - 1)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constant_planes_survive() {
        let p: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(bilinear(&p, 4, 3, 4, 3), p);
        let c = vec![0.25f32; 100 * 80];
        for (nw, nh) in [(7, 9), (300, 200), (33, 21)] {
            assert!(
                bilinear(&c, 100, 80, nw, nh)
                    .iter()
                    .all(|&v| (v - 0.25).abs() < 1e-6)
            );
        }
    }

    #[test]
    fn upsampling_a_ramp_stays_a_ramp() {
        let p = vec![0.0f32, 1.0];
        let up = bilinear(&p, 2, 1, 4, 1);
        assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0]);
    }
}
