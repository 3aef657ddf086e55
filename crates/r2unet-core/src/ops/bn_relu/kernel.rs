//! Training-mode batch norm followed by ReLU, on `f32` slices in NCHW layout: one pass for the
//! statistics and one for the output, and two passes back.
//!
//! burn's generic `batch_norm_train` builds its statistics from a channel-first transposed copy
//! of the input and about eight element-wise passes (twelve backward, plus another transpose),
//! and the ReLU after it is two more; on the R2U-Net that was a fifth of a training step.

/// `batch x channels x plane` (plane = height * width).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl Dims {
    fn count(&self) -> usize {
        self.batch * self.plane
    }
}

use crate::ops::parallel::{SharedOut, for_each_index as for_each_channel};
use crate::ops::simd::simd_copies;

/// The forward pass's `(scale, shift)`, `y = max(0, x * scale + shift)`, from the statistics as
/// stored (f32): the backward pass computes them again from the same values with the same
/// operations, so its ReLU mask `x * scale + shift > 0` is bit for bit the forward's `y > 0`
/// without reading `y` (one input stream less in each of its two passes).
fn affine(gamma: f32, beta: f32, mean: f32, var: f32, eps: f64) -> (f32, f32) {
    let scale = gamma / ((f64::from(var) + eps).sqrt() as f32);
    (scale, beta - mean * scale)
}

/// Slices of channel `c` across the batch.
fn channel<'a>(x: &'a [f32], d: &Dims, c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
    let (plane, stride) = (d.plane, d.channels * d.plane);
    (0..d.batch).map(move |b| &x[b * stride + c * plane..b * stride + (c + 1) * plane])
}

/// Returns `(y, mean, biased variance)`, `y = max(0, gamma * (x - mean) / sqrt(var + eps) + beta)`.
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(
        x.len(),
        d.batch * d.channels * d.plane,
        "bn_relu: input length"
    );
    let len = x.len();
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let mut mean = vec![0.0f32; d.channels];
    let mut var = vec![0.0f32; d.channels];
    // SAFETY: `y` has room for `len` floats, `mean` and `var` hold `channels`; all three are left
    // alone until the tasks are done, and the task of channel c writes channel c of every image
    // and element c of the statistics.
    let (out, mean_out, var_out) = unsafe {
        (
            SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len),
            SharedOut::new(mean.as_mut_ptr(), d.channels),
            SharedOut::new(var.as_mut_ptr(), d.channels),
        )
    };
    let n = d.count() as f64;
    for_each_channel(d.channels, |c| {
        // Shifted sums (by the first element) keep the one-pass variance accurate.
        let shift = x[c * d.plane] as f64;
        let (s, s2) = channel_sums(x, &d, c, shift as f32);
        let m = s / n;
        let v = (s2 / n - m * m).max(0.0) as f32;
        let mu = (m + shift) as f32;
        let (scale, shift_out) = affine(gamma[c], beta[c], mu, v, eps);
        channel_affine_relu(&out, x, &d, c, scale, shift_out);
        // SAFETY: element c (< channels) of `mean` and `var` is written by this channel's task
        // only.
        unsafe {
            *mean_out.at(c) = mu;
            *var_out.at(c) = v;
        }
    });
    // SAFETY: every channel of every image was written above.
    unsafe { y.set_len(len) };
    (y, mean, var)
}

/// Inference: `y = max(0, x * scale + shift)` per channel, in one pass.
pub fn eval(x: &[f32], scale: &[f32], shift: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(
        x.len(),
        d.batch * d.channels * d.plane,
        "bn_relu: input length"
    );
    let len = x.len();
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `y` has room for `len` floats and is left alone until `set_len` below, after the
    // tasks; the task of channel c writes channel c of every image.
    let out = unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len) };
    for_each_channel(d.channels, |c| {
        channel_affine_relu(&out, x, &d, c, scale[c], shift[c])
    });
    // SAFETY: every channel of every image was written above.
    unsafe { y.set_len(len) };
    y
}

/// Returns `(dx, dgamma, dbeta)` from the forward's input, parameters and statistics.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let len = x.len();
    let mut dx: Vec<f32> = Vec::with_capacity(len);
    let mut dgamma = vec![0.0f32; d.channels];
    let mut dbeta = vec![0.0f32; d.channels];
    // SAFETY: `dx` has room for `len` floats, `dgamma` and `dbeta` hold `channels`; all three are
    // left alone until the tasks are done, and the task of channel c writes channel c of every
    // image and element c of the parameter gradients.
    let (out, dg_out, db_out) = unsafe {
        (
            SharedOut::new(dx.spare_capacity_mut().as_mut_ptr().cast(), len),
            SharedOut::new(dgamma.as_mut_ptr(), d.channels),
            SharedOut::new(dbeta.as_mut_ptr(), d.channels),
        )
    };
    let n = d.count() as f32;
    for_each_channel(d.channels, |c| {
        let inv = 1.0 / ((var[c] as f64 + eps).sqrt() as f32);
        let mu = mean[c];
        let relu = affine(gamma[c], beta[c], mu, var[c], eps);
        // g = dy where the ReLU passed, 0 elsewhere; xhat = (x - mean) * inv.
        let (sum_g, sum_gx) = channel_grad_sums(x, dy, &d, c, mu, relu);
        let sum_gxhat = (sum_gx as f32) * inv;
        let k = gamma[c] * inv / n;
        let (mean_g, mean_gxhat) = (sum_g as f32 / n, sum_gxhat / n);
        let p = [mu, inv, k * n, mean_g, mean_gxhat];
        channel_grad_out(&out, x, dy, &d, c, relu, p);
        // SAFETY: element c (< channels) of `dgamma` and `dbeta` is written by this channel's
        // task only.
        unsafe {
            *dg_out.at(c) = sum_gxhat;
            *db_out.at(c) = sum_g as f32;
        }
    });
    // SAFETY: every channel of every image was written above.
    unsafe { dx.set_len(len) };
    (dx, dgamma, dbeta)
}

/// Lanes of the partial sums below: as a plain `a += v` the f32 sum is one serial chain that the
/// compiler may not reorder (it ran scalar, one add per 4 cycles); 32 independent lanes vectorise
/// (two AVX-512 registers, four AVX2, eight SSE) and also round less than one long chain.
const LANES: usize = 32;

/// Elements summed into the f32 lanes before they are added to the f64 totals: the lanes run on
/// across images, so that a 6x6 plane's 36 elements do not each pay for summing 32 lanes (per
/// plane, that reduction and the call around it were most of the work on the small planes,
/// bench/NOTES.md section 26), while no lane adds more than about a hundred terms in f32.
const FLUSH: usize = 32 * LANES;

/// Two sums over 32 lanes, flushed into f64 every [`FLUSH`] elements.
struct Sums {
    lanes: [[f32; LANES]; 2],
    pending: usize,
    total: (f64, f64),
}

impl Sums {
    #[inline(always)]
    fn new() -> Self {
        Sums {
            lanes: [[0.0; LANES]; 2],
            pending: 0,
            total: (0.0, 0.0),
        }
    }

    /// Adds `f(xs[i], gs[i])` for every `i < xs.len()` (`(a, b)` pairs, into lanes `i mod
    /// LANES`).
    #[inline(always)]
    fn add(&mut self, xs: &[f32], gs: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) {
        let len = xs.len();
        let gs = &gs[..len];
        let full = len - len % LANES;
        let [a, b] = &mut self.lanes;
        for (xc, gc) in xs[..full]
            .chunks_exact(LANES)
            .zip(gs[..full].chunks_exact(LANES))
        {
            for k in 0..LANES {
                let (u, v) = f(xc[k], gc[k]);
                a[k] += u;
                b[k] += v;
            }
        }
        for (k, (&x, &g)) in xs[full..].iter().zip(&gs[full..]).enumerate() {
            let (u, v) = f(x, g);
            a[k] += u;
            b[k] += v;
        }
        self.pending += len;
        if self.pending >= FLUSH {
            self.flush();
        }
    }

    #[inline(always)]
    fn flush(&mut self) {
        let [a, b] = &mut self.lanes;
        self.total.0 += a.iter().sum::<f32>() as f64;
        self.total.1 += b.iter().sum::<f32>() as f64;
        *a = [0.0; LANES];
        *b = [0.0; LANES];
        self.pending = 0;
    }

    #[inline(always)]
    fn finish(mut self) -> (f64, f64) {
        self.flush();
        self.total
    }
}

/// `(sum of (v - shift), sum of (v - shift)^2)` over channel `c` of every image.
#[inline(always)]
fn channel_sums_body(x: &[f32], d: &Dims, c: usize, shift: f32) -> (f64, f64) {
    let mut sums = Sums::new();
    for row in channel(x, d, c) {
        sums.add(row, row, |v, _| {
            let t = v - shift;
            (t, t * t)
        });
    }
    sums.finish()
}

/// `y = max(0, x * scale + shift)` for channel `c` of every image, into `out` (`x`'s shape).
#[inline(always)]
fn channel_affine_relu_body(
    out: &SharedOut,
    x: &[f32],
    d: &Dims,
    c: usize,
    scale: f32,
    shift: f32,
) {
    for b in 0..d.batch {
        let at = b * d.channels * d.plane + c * d.plane;
        // SAFETY: channel c of image b is written by channel c's task only (the callers run one
        // task a channel).
        let dst = unsafe { out.slice_mut(at..at + d.plane) };
        for (o, &v) in dst.iter_mut().zip(&x[at..at + d.plane]) {
            *o = (v * scale + shift).max(0.0);
        }
    }
}

/// `(sum of g, sum of g * (x - mu))` over channel `c` of every image, with `g = dy` where the
/// ReLU passed (`x * scale + shift > 0`, `relu = (scale, shift)`), 0 elsewhere.
#[inline(always)]
fn channel_grad_sums_body(
    x: &[f32],
    dy: &[f32],
    d: &Dims,
    c: usize,
    mu: f32,
    relu: (f32, f32),
) -> (f64, f64) {
    let (scale, shift) = relu;
    let mut sums = Sums::new();
    for (xs, gs) in channel(x, d, c).zip(channel(dy, d, c)) {
        sums.add(xs, gs, |x, g| {
            let g = if x * scale + shift > 0.0 { g } else { 0.0 };
            (g, g * (x - mu))
        });
    }
    sums.finish()
}

/// `dx = k_n * (g - mean_g - (x - mu) * inv * mean_gxhat)` for channel `c` of every image, into
/// `out`; `p = [mu, inv, k_n, mean_g, mean_gxhat]`, `g` as in [`channel_grad_sums_body`].
#[inline(always)]
fn channel_grad_out_body(
    out: &SharedOut,
    x: &[f32],
    dy: &[f32],
    d: &Dims,
    c: usize,
    relu: (f32, f32),
    p: [f32; 5],
) {
    let (scale, shift) = relu;
    let [mu, inv, k_n, mean_g, mean_gxhat] = p;
    for b in 0..d.batch {
        let at = b * d.channels * d.plane + c * d.plane;
        // SAFETY: channel c of image b is written by channel c's task only.
        let dst = unsafe { out.slice_mut(at..at + d.plane) };
        let (xs, gs) = (&x[at..at + d.plane], &dy[at..at + d.plane]);
        for ((o, &xv), &gv) in dst.iter_mut().zip(xs).zip(gs) {
            let g = if xv * scale + shift > 0.0 { gv } else { 0.0 };
            let xhat = (xv - mu) * inv;
            *o = k_n * (g - mean_g - xhat * mean_gxhat);
        }
    }
}

// One call a channel, from copies for the widest vectors the CPU has (see `crate::ops::simd`).
simd_copies! {
    fn channel_sums(x: &[f32], d: &Dims, c: usize, shift: f32) -> (f64, f64) => channel_sums_body;
    fn channel_affine_relu(
        out: &SharedOut, x: &[f32], d: &Dims, c: usize, scale: f32, shift: f32
    ) => channel_affine_relu_body;
    fn channel_grad_sums(
        x: &[f32], dy: &[f32], d: &Dims, c: usize, mu: f32, relu: (f32, f32)
    ) -> (f64, f64) => channel_grad_sums_body;
    fn channel_grad_out(
        out: &SharedOut, x: &[f32], dy: &[f32], d: &Dims, c: usize, relu: (f32, f32), p: [f32; 5]
    ) => channel_grad_out_body;
}
