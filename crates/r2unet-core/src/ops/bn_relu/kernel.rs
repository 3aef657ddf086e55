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

use crate::ops::OutPtr;

use crate::ops::for_each_index as for_each_channel;

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
    let out = OutPtr(y.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let mut mean = vec![0.0f32; d.channels];
    let mut var = vec![0.0f32; d.channels];
    let (mean_ptr, var_ptr) = (OutPtr(mean.as_mut_ptr()), OutPtr(var.as_mut_ptr()));
    let n = d.count() as f64;
    for_each_channel(d.channels, |c| {
        let (out, mean_ptr, var_ptr) = (out, mean_ptr, var_ptr);
        // Shifted sums (by the first element) keep the one-pass variance accurate.
        let shift = x[c * d.plane] as f64;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for row in channel(x, &d, c) {
            let (mut a, mut a2) = (0.0f32, 0.0f32);
            for &v in row {
                let t = v - shift as f32;
                a += t;
                a2 += t * t;
            }
            s += a as f64;
            s2 += a2 as f64;
        }
        let m = s / n;
        let v = (s2 / n - m * m).max(0.0);
        let mu = (m + shift) as f32;
        let scale = gamma[c] / ((v + eps).sqrt() as f32);
        let shift_out = beta[c] - mu * scale;
        for b in 0..d.batch {
            let at = b * d.channels * d.plane + c * d.plane;
            let src = &x[at..at + d.plane];
            // SAFETY: channel c of image b is written by this task only.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(at), d.plane) };
            for (o, &v) in dst.iter_mut().zip(src) {
                *o = (v * scale + shift_out).max(0.0);
            }
        }
        // SAFETY: element c of `mean` and `var` is written by this channel's task only.
        unsafe {
            *mean_ptr.0.add(c) = mu;
            *var_ptr.0.add(c) = v as f32;
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
    let out = OutPtr(y.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    for_each_channel(d.channels, |c| {
        for b in 0..d.batch {
            let at = b * d.channels * d.plane + c * d.plane;
            // SAFETY: channel c of image b is written by this task only.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(at), d.plane) };
            for (o, &v) in dst.iter_mut().zip(&x[at..at + d.plane]) {
                *o = (v * scale[c] + shift[c]).max(0.0);
            }
        }
    });
    // SAFETY: every channel of every image was written above.
    unsafe { y.set_len(len) };
    y
}

/// Returns `(dx, dgamma, dbeta)` from the forward's input, output and statistics.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let len = x.len();
    let mut dx: Vec<f32> = Vec::with_capacity(len);
    let out = OutPtr(dx.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let mut dgamma = vec![0.0f32; d.channels];
    let mut dbeta = vec![0.0f32; d.channels];
    let (dg_ptr, db_ptr) = (OutPtr(dgamma.as_mut_ptr()), OutPtr(dbeta.as_mut_ptr()));
    let n = d.count() as f32;
    for_each_channel(d.channels, |c| {
        let (out, dg_ptr, db_ptr) = (out, dg_ptr, db_ptr);
        let inv = 1.0 / ((var[c] as f64 + eps).sqrt() as f32);
        let mu = mean[c];
        // g = dy where the ReLU passed, 0 elsewhere; xhat = (x - mean) * inv.
        let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
        for ((xs, ys), gs) in channel(x, &d, c)
            .zip(channel(y, &d, c))
            .zip(channel(dy, &d, c))
        {
            let (mut a, mut b) = (0.0f32, 0.0f32);
            for ((&xv, &yv), &gv) in xs.iter().zip(ys).zip(gs) {
                let g = if yv > 0.0 { gv } else { 0.0 };
                a += g;
                b += g * (xv - mu);
            }
            sum_g += a as f64;
            sum_gx += b as f64;
        }
        let sum_gxhat = (sum_gx as f32) * inv;
        let k = gamma[c] * inv / n;
        let (mean_g, mean_gxhat) = (sum_g as f32 / n, sum_gxhat / n);
        for b in 0..d.batch {
            let at = b * d.channels * d.plane + c * d.plane;
            // SAFETY: channel c of image b is written by this task only.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(at), d.plane) };
            let (xs, ys, gs) = (
                &x[at..at + d.plane],
                &y[at..at + d.plane],
                &dy[at..at + d.plane],
            );
            for (((o, &xv), &yv), &gv) in dst.iter_mut().zip(xs).zip(ys).zip(gs) {
                let g = if yv > 0.0 { gv } else { 0.0 };
                let xhat = (xv - mu) * inv;
                *o = k * n * (g - mean_g - xhat * mean_gxhat);
            }
        }
        // SAFETY: element c of `dgamma` and `dbeta` is written by this channel's task only.
        unsafe {
            *dg_ptr.0.add(c) = sum_gxhat;
            *db_ptr.0.add(c) = sum_g as f32;
        }
    });
    // SAFETY: every channel of every image was written above.
    unsafe { dx.set_len(len) };
    (dx, dgamma, dbeta)
}
