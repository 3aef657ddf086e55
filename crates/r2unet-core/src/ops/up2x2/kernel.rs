//! The 2x2, stride-2 transposed convolution on plain `f32` slices in NCHW layout. With a 2x2
//! kernel and stride 2 the four outputs `(2i + a, 2j + c)` of input pixel `(i, j)` are its alone,
//! so per image the layer is one product `P = W^T x` (`[4 c_out, c_in] x [c_in, h*w]`, rows
//! `(co, a, c)`) whose rows are then interleaved into place with the bias added; the backward
//! pass gathers the output gradient into the same row order and runs the two products of the
//! gradients on it, one task per (image, block of rows) for all three.
use std::cell::RefCell;

use crate::ops::gemm::gemm;
use crate::ops::parallel::{SharedOut, for_each_task, sum_over_tasks, with_buffer};
use crate::ops::simd::simd_copies;

/// Shape of one layer: `batch x c_in x h x w` to `batch x c_out x 2h x 2w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Rows of `P`: `(co, a, c)`.
    fn rows(&self) -> usize {
        4 * self.c_out
    }

    fn check(&self, x: Option<&[f32]>, weight: &[f32], dy: Option<&[f32]>) {
        if let Some(x) = x {
            assert_eq!(
                x.len(),
                self.batch * self.c_in * self.plane(),
                "up2x2: input length"
            );
        }
        assert_eq!(
            weight.len(),
            self.c_in * self.rows(),
            "up2x2: weight length"
        );
        if let Some(dy) = dy {
            assert_eq!(
                dy.len(),
                self.batch * self.c_out * 4 * self.plane(),
                "up2x2: output gradient length"
            );
        }
    }
}

/// A task: image `.0`, input rows `.1 .. .1 + .2` (output rows twice those).
type Task = (usize, usize, usize);

/// Whole images where the batch alone gives enough tasks (training batches); blocks of rows
/// otherwise, so that a batch of one still runs on every thread.
fn tasks(d: &Dims) -> Vec<Task> {
    let splits = (16 / d.batch.max(1)).max(1);
    let block = d.h.div_ceil(splits).max(1);
    (0..d.batch)
        .flat_map(|b| {
            (0..d.h)
                .step_by(block)
                .map(move |r| (b, r, block.min(d.h - r)))
        })
        .collect()
}

thread_local! {
    /// Each thread's product (forward) or gathered output gradient (backward).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

#[inline(always)]
fn interleave2_body(dst: &mut [f32], s0: &[f32], s1: &[f32], bias: f32) {
    for ((d, &a), &b) in dst.chunks_exact_mut(2).zip(s0).zip(s1) {
        d[0] = a + bias;
        d[1] = b + bias;
    }
}

#[inline(always)]
fn deinterleave2_body(src: &[f32], d0: &mut [f32], d1: &mut [f32]) {
    for ((s, a), b) in src.chunks_exact(2).zip(d0.iter_mut()).zip(d1.iter_mut()) {
        *a = s[0];
        *b = s[1];
    }
}

simd_copies! {
    fn interleave2(dst: &mut [f32], s0: &[f32], s1: &[f32], bias: f32) => interleave2_body;
    fn deinterleave2(src: &[f32], d0: &mut [f32], d1: &mut [f32]) => deinterleave2_body;
}

/// `y = conv_transpose2x2(x, weight) + bias`: `x` `[batch, c_in, h, w]`, `weight`
/// `[c_in, c_out, 2, 2]`, `bias` `[c_out]`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], d: Dims) -> Vec<f32> {
    d.check(Some(x), weight, None);
    assert_eq!(bias.len(), d.c_out, "up2x2: bias length");
    let (plane, q, w) = (d.plane(), d.rows(), d.w);
    // W^T, `[4 c_out, c_in]` row-major (small), so that the product is row-major throughout.
    let mut wt = vec![0.0f32; weight.len()];
    for ci in 0..d.c_in {
        for r in 0..q {
            wt[r * d.c_in + ci] = weight[ci * q + r];
        }
    }
    let len = d.batch * d.c_out * 4 * plane;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `y` has room for `len` floats and is left alone until `set_len`; the tasks cover
    // every (image, input row) once, and each writes the two output rows of each of its input
    // rows in every plane of its image, and nothing else.
    let out = unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len) };
    for_each_task(&tasks(&d), |&(b, r0, rows)| {
        let n = rows * w;
        with_buffer(&SCRATCH, q * n, |p| {
            gemm(
                q,
                n,
                d.c_in,
                p.as_mut_ptr(),
                (n as isize, 1),
                false,
                wt.as_ptr(),
                (d.c_in as isize, 1),
                x[b * d.c_in * plane + r0 * w..].as_ptr(),
                (plane as isize, 1),
            );
            for (co, &bias) in bias.iter().enumerate() {
                for a in 0..2 {
                    let (s0, s1) = (&p[(4 * co + 2 * a) * n..], &p[(4 * co + 2 * a + 1) * n..]);
                    for i in 0..rows {
                        let at = ((b * d.c_out + co) * 2 * d.h + 2 * (r0 + i) + a) * 2 * w;
                        // SAFETY: output row 2 (r0 + i) + a of plane co of image b: this task's.
                        let row = unsafe { out.slice_mut(at..at + 2 * w) };
                        interleave2(row, &s0[i * w..][..w], &s1[i * w..][..w], bias);
                    }
                }
            }
        });
    });
    // SAFETY: every element was written by its task.
    unsafe { y.set_len(len) };
    y
}

/// The input's, the weights' (`[c_in, c_out, 2, 2]`) and the bias's gradients in one pass over
/// the output gradient: with `G` its `[4 c_out, pixels]` gather, `dx = W G` per image (`W` as
/// stored is `[c_in, 4 c_out]`), `dW = sum of x G^T`, and the bias's the sum of `G`'s four rows
/// per output channel.
pub fn backward(x: &[f32], dy: &[f32], weight: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    d.check(Some(x), weight, Some(dy));
    let (plane, q, w) = (d.plane(), d.rows(), d.w);
    let len = d.batch * d.c_in * plane;
    let mut dx: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: as in `forward`: each task writes its input rows of every plane of its image.
    let out = unsafe { SharedOut::new(dx.spare_capacity_mut().as_mut_ptr().cast(), len) };
    let pairs = d.c_in * q;
    let mut acc = sum_over_tasks(&tasks(&d), pairs + d.c_out, |acc, &(b, r0, rows)| {
        let n = rows * w;
        with_buffer(&SCRATCH, q * n, |g| {
            for co in 0..d.c_out {
                for a in 0..2 {
                    let (g0, g1) =
                        g[(4 * co + 2 * a) * n..(4 * co + 2 * a + 2) * n].split_at_mut(n);
                    for i in 0..rows {
                        let at = ((b * d.c_out + co) * 2 * d.h + 2 * (r0 + i) + a) * 2 * w;
                        deinterleave2(
                            &dy[at..at + 2 * w],
                            &mut g0[i * w..][..w],
                            &mut g1[i * w..][..w],
                        );
                    }
                }
            }
            let first = b * d.c_in * plane + r0 * w;
            gemm(
                d.c_in,
                n,
                q,
                out.at(first),
                (plane as isize, 1),
                false,
                weight.as_ptr(),
                (q as isize, 1),
                g.as_ptr(),
                (n as isize, 1),
            );
            let (dw, dbias) = acc.split_at_mut(pairs);
            gemm(
                d.c_in,
                q,
                n,
                dw.as_mut_ptr(),
                (q as isize, 1),
                true,
                x[first..].as_ptr(),
                (plane as isize, 1),
                g.as_ptr(),
                (1, n as isize),
            );
            for (co, s) in dbias.iter_mut().enumerate() {
                *s += g[4 * co * n..4 * (co + 1) * n].iter().sum::<f32>();
            }
        });
    });
    // SAFETY: every element was written by its task.
    unsafe { dx.set_len(len) };
    let dbias = acc.split_off(pairs);
    (dx, acc, dbias)
}
