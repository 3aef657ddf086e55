//! The 3x3 convolution (stride 1, zero padding 1, no bias) on plain `f32` slices in NCHW layout,
//! forward and both gradients, as im2col + GEMM.
//!
//! Why our own: burn-flex's general convolution converts every input to NHWC serially, zeroes a
//! fresh im2col buffer per 512-pixel tile and scatters the GEMM result back to NCHW, and its
//! backward goes through a transposed convolution; on the R2U-Net that glue cost as much as the
//! arithmetic. Here the im2col matrix is built in the `[C*9, pixels]` order that makes the weight
//! tensor `[C_out, C_in, 3, 3]` a row-major `[C_out, C_in*9]` matrix as it is, every im2col row is
//! a shifted copy of an input row, and the GEMM writes straight into the NCHW output.
//!
//! Work is split into (image, band of rows) tasks so that a batch of small patches and a single
//! large image both keep every thread busy, and so that an im2col band stays in the L2 cache.

use super::Dims;
use crate::ops::gemm::gemm;
use crate::ops::parallel::{SharedOut, for_each_task, sum_over_tasks, with_buffer};

/// Rows per band: the im2col band (`9 * c_in * rows * w` floats) near 128 K floats (512 KiB).
fn band_rows(d: &Dims) -> usize {
    const TARGET: usize = 128 * 1024;
    (TARGET / (9 * d.c_in * d.w).max(1)).clamp(1, d.h)
}

/// (image, first row, rows) for every task.
fn tasks(d: &Dims) -> Vec<(usize, usize, usize)> {
    let rows = band_rows(d);
    let mut tasks = Vec::with_capacity(d.batch * d.h.div_ceil(rows));
    for b in 0..d.batch {
        let mut r0 = 0;
        while r0 < d.h {
            let n = rows.min(d.h - r0);
            tasks.push((b, r0, n));
            r0 += n;
        }
    }
    tasks
}

/// Fills `col` (`[c*9, rows*w]`, row-major) with the 3x3 neighbourhoods of output rows
/// `r0..r0+rows` of one `[c, h, w]` image, zero outside the image.
///
/// Each im2col row is one contiguous copy of the band's input rows, shifted by `kw - 1`, with
/// the column that wrapped around zeroed afterwards: copying image row by image row made one
/// `memmove` call per 48, 24 or 12 floats, and those calls were 9 % of a training step.
fn im2col_band(x: &[f32], c: usize, h: usize, w: usize, r0: usize, rows: usize, col: &mut [f32]) {
    let n = rows * w;
    debug_assert_eq!(col.len(), c * 9 * n);
    for ci in 0..c {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for kh in 0..3 {
            // Output row i reads input row r0 + i + kh - 1; rows i_lo..i_hi of the band are inside.
            let i_lo = (1 - kh as isize - r0 as isize).max(0) as usize;
            let i_hi = (h as isize + 1 - kh as isize - r0 as isize)
                .clamp(i_lo as isize, rows as isize) as usize;
            for kw in 0..3 {
                let k = ci * 9 + kh * 3 + kw;
                let dst = &mut col[k * n..(k + 1) * n];
                dst[..i_lo * w].fill(0.0);
                dst[i_hi * w..].fill(0.0);
                if i_hi == i_lo {
                    continue;
                }
                let start = (r0 + i_lo + kh - 1) * w;
                let len = (i_hi - i_lo) * w;
                let d = &mut dst[i_lo * w..i_hi * w];
                // d[j] = src[start + j + kw - 1]
                match kw {
                    0 => {
                        d[1..].copy_from_slice(&plane[start..start + len - 1]);
                        d.iter_mut().step_by(w).for_each(|v| *v = 0.0);
                    }
                    1 => d.copy_from_slice(&plane[start..start + len]),
                    _ => {
                        d[..len - 1].copy_from_slice(&plane[start + 1..start + len]);
                        d[w - 1..].iter_mut().step_by(w).for_each(|v| *v = 0.0);
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Each thread's im2col band, reused across calls: a fresh zeroed buffer per band cost
    /// about 5% of a training step in `memset` alone.
    static COL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's im2col buffer of `len` floats (contents unspecified: `im2col_band`
/// overwrites every element).
fn with_col<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&COL, len, f)
}

/// [`super::forward`] as im2col + GEMM.
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    d.check_forward(x, weight);
    let plane = d.plane();
    let len = d.batch * d.c_out * plane;
    // The tasks' GEMMs write every element (without reading it), so no zeroing first.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `y` has room for `len` floats and is left alone until `set_len` below, after the
    // tasks; each task writes the rows of its own (image, band).
    let out = unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len) };
    let k = d.c_in * 9;
    for_each_task(&tasks(&d), |&(b, r0, rows)| {
        let n = rows * d.w;
        with_col(k * n, |col| {
            let image = &x[b * d.c_in * plane..(b + 1) * d.c_in * plane];
            im2col_band(image, d.c_in, d.h, d.w, r0, rows, col);
            // Output rows r0..r0+rows of every channel of image b: a [c_out, n] block with row
            // stride `plane`.
            // The offset is inside `y` (b < batch, r0 < h); this task alone writes the band's
            // rows, through `gemm` below.
            let dst = out.at(b * d.c_out * plane + r0 * d.w);
            gemm(
                d.c_out,
                n,
                k,
                dst,
                (plane as isize, 1),
                false,
                weight.as_ptr(),
                (k as isize, 1),
                col.as_ptr(),
                (n as isize, 1),
            );
        });
    });
    // SAFETY: the tasks cover every (image, row) once, and each GEMM wrote all `c_out` rows of
    // its band.
    unsafe { y.set_len(len) };
    y
}

/// [`super::weight_grad`] as `sum over images and pixels of dy * im2col(x)^T`.
pub fn weight_grad(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    d.check_weight_grad(x, dy);
    let plane = d.plane();
    let k = d.c_in * 9;
    let size = d.c_out * k;
    let task = |acc: &mut [f32], &(b, r0, rows): &(usize, usize, usize)| {
        let n = rows * d.w;
        with_col(k * n, |col| {
            im2col_band(
                &x[b * d.c_in * plane..(b + 1) * d.c_in * plane],
                d.c_in,
                d.h,
                d.w,
                r0,
                rows,
                col,
            );
            let lhs = dy[b * d.c_out * plane + r0 * d.w..].as_ptr();
            // dW[c_out, k] += dy_band[c_out, n] * col[k, n]^T
            gemm(
                d.c_out,
                k,
                n,
                acc.as_mut_ptr(),
                (k as isize, 1),
                true,
                lhs,
                (plane as isize, 1),
                col.as_ptr(),
                (1, n as isize),
            );
        });
    };
    sum_over_tasks(&tasks(&d), size, task)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Direct definition, for checking.
    pub(in crate::ops::conv3x3) fn reference(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
        let mut y = vec![0.0f32; d.batch * d.c_out * d.plane()];
        for b in 0..d.batch {
            for co in 0..d.c_out {
                for i in 0..d.h {
                    for j in 0..d.w {
                        let mut s = 0.0;
                        for ci in 0..d.c_in {
                            for kh in 0..3 {
                                for kw in 0..3 {
                                    let (yy, xx) = (
                                        i as isize + kh as isize - 1,
                                        j as isize + kw as isize - 1,
                                    );
                                    if yy < 0 || xx < 0 || yy >= d.h as isize || xx >= d.w as isize
                                    {
                                        continue;
                                    }
                                    s += weight[((co * d.c_in + ci) * 3 + kh) * 3 + kw]
                                        * x[((b * d.c_in + ci) * d.h + yy as usize) * d.w
                                            + xx as usize];
                                }
                            }
                        }
                        y[((b * d.c_out + co) * d.h + i) * d.w + j] = s;
                    }
                }
            }
        }
        y
    }

    pub(in crate::ops::conv3x3) fn dims(
        batch: usize,
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
    ) -> Dims {
        Dims {
            batch,
            c_in,
            c_out,
            h,
            w,
        }
    }

    /// The largest absolute difference, checked against `tolerance`.
    pub(in crate::ops::conv3x3) fn assert_close(
        got: &[f32],
        want: &[f32],
        tolerance: f32,
        d: Dims,
    ) {
        assert_eq!(got.len(), want.len(), "{d:?}");
        let err = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < tolerance, "{d:?}: max error {err}");
    }

    pub(in crate::ops::conv3x3) fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn forward_matches_the_definition_with_one_and_several_bands() {
        // A wide one-channel image and a many-channel one, so that both many-band and
        // single-band task splits run.
        for d in [
            dims(2, 3, 5, 7, 6),
            dims(1, 2, 3, 300, 257),
            dims(3, 1, 1, 1, 2),
        ] {
            let x = pseudo_random(d.batch * d.c_in * d.plane(), 1);
            let w = pseudo_random(d.c_out * d.c_in * 9, 2);
            let got = forward(&x, &w, d);
            let want = reference(&x, &w, d);
            assert_close(&got, &want, 1e-4, d);
        }
    }
}
