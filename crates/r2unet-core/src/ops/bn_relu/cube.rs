//! The GPU batch norm + ReLU ([`super::lowered`]'s arithmetic) as five cubecl kernels: the mean,
//! the variance, the normalised output; backward, the two per-channel sums of the gradient and
//! the input's gradient. Each reads its inputs once; the same arithmetic in burn's tensor ops is a
//! launch (and a pass) per operation and two per sum, about 37 launches a batch norm (bench/NOTES.md
//! section 30).
//!
//! Tensors are `[batch, channels, plane]`, contiguous; per-channel vectors `[channels]`. The
//! element-wise kernels run a GPU thread per element, which finds its channel from its index; the
//! sums a work group of [`SUM_THREADS`] per channel, each thread striding over the channel's
//! values (neighbours read neighbouring pixels), then a tree in shared memory.
use burn::backend::tensor::FloatTensor;
use burn::backend::{Cube, TensorMetadata};
use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use cubecl::prelude::*;

use super::lowered::count;
use crate::ops::cube_launch::{empty, empty_like, per_element};

/// Threads per work group of the per-channel sums (a power of two, within WebGPU's 256).
const SUM_THREADS: u32 = 256;

/// The sum of every thread's `value` in this work group, on every thread. `shared` holds
/// [`SUM_THREADS`] floats.
#[cube]
fn cube_sum(shared: &mut Shared<[f32]>, value: f32) -> f32 {
    shared[UNIT_POS as usize] = value;
    sync_cube();
    let mut active = CUBE_DIM;
    while active > 1 {
        active /= 2;
        if UNIT_POS < active {
            let other = shared[(UNIT_POS + active) as usize];
            shared[UNIT_POS as usize] += other;
        }
        sync_cube();
    }
    shared[0]
}

/// Channel `CUBE_POS`'s mean, or with `centred`, its mean of `(x - mean)^2` (the biased variance).
#[cube(launch)]
fn channel_mean_kernel(
    x: &Tensor<f32>,
    mean: &Tensor<f32>,
    out: &mut Tensor<f32>,
    channels: u32,
    plane: u32,
    #[comptime] centred: bool,
) {
    let c = CUBE_POS;
    let (channels, plane) = (channels as usize, plane as usize);
    let values = x.len() / channels;
    let mut shared = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let mut centre = 0.0;
    if centred {
        centre = mean[c];
    }
    let mut acc = 0.0;
    let mut j = UNIT_POS as usize;
    while j < values {
        let v = x[((j / plane) * channels + c) * plane + j % plane];
        if centred {
            let d = v - centre;
            acc += d * d;
        } else {
            acc += v;
        }
        j += CUBE_DIM as usize;
    }
    let total = cube_sum(&mut shared, acc);
    if UNIT_POS == 0 {
        out[c] = total / values as f32;
    }
}

/// Channel `CUBE_POS`'s `sum g` and `sum g x_hat`, `g` the output's gradient where the ReLU
/// passed it (the pre-activation recomputed from `x`).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn grad_sums_kernel(
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    mean: &Tensor<f32>,
    variance: &Tensor<f32>,
    gamma: &Tensor<f32>,
    beta: &Tensor<f32>,
    sum_g: &mut Tensor<f32>,
    sum_g_x_hat: &mut Tensor<f32>,
    epsilon: f32,
    channels: u32,
    plane: u32,
) {
    let c = CUBE_POS;
    let (channels, plane) = (channels as usize, plane as usize);
    let values = x.len() / channels;
    let mut shared_g = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let mut shared_gx = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let inv_sigma = 1.0 / f32::sqrt(variance[c] + epsilon);
    let (m, scale, shift) = (mean[c], gamma[c], beta[c]);
    let mut acc_g = 0.0;
    let mut acc_gx = 0.0;
    let mut j = UNIT_POS as usize;
    while j < values {
        let i = ((j / plane) * channels + c) * plane + j % plane;
        let x_hat = (x[i] - m) * inv_sigma;
        if x_hat * scale + shift > 0.0 {
            acc_g += dy[i];
            acc_gx += dy[i] * x_hat;
        }
        j += CUBE_DIM as usize;
    }
    let total_g = cube_sum(&mut shared_g, acc_g);
    let total_gx = cube_sum(&mut shared_gx, acc_gx);
    if UNIT_POS == 0 {
        sum_g[c] = total_g;
        sum_g_x_hat[c] = total_gx;
    }
}

/// `relu((x - mean) / sqrt(var + eps) * gamma + beta)`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn forward_kernel(
    x: &Tensor<f32>,
    mean: &Tensor<f32>,
    variance: &Tensor<f32>,
    gamma: &Tensor<f32>,
    beta: &Tensor<f32>,
    out: &mut Tensor<f32>,
    epsilon: f32,
    channels: u32,
    plane: u32,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let c = (i / plane as usize) % channels as usize;
    let scale = gamma[c] / f32::sqrt(variance[c] + epsilon);
    out[i] = f32::max((x[i] - mean[c]) * scale + beta[c], 0.0);
}

/// `(1 - momentum) running + momentum batch` for the mean and the variance.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn running_stats_kernel(
    running_mean: &Tensor<f32>,
    running_var: &Tensor<f32>,
    mean: &Tensor<f32>,
    variance: &Tensor<f32>,
    mean_out: &mut Tensor<f32>,
    var_out: &mut Tensor<f32>,
    momentum: f32,
) {
    let c = ABSOLUTE_POS;
    if c >= mean_out.len() {
        terminate!();
    }
    mean_out[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c];
    var_out[c] = (1.0 - momentum) * running_var[c] + momentum * variance[c];
}

/// `dx = gamma / sigma / n * (n g - sum g - x_hat sum(g x_hat))`, `g` as in
/// `grad_sums_kernel`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn input_grad_kernel(
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    mean: &Tensor<f32>,
    variance: &Tensor<f32>,
    gamma: &Tensor<f32>,
    beta: &Tensor<f32>,
    sum_g: &Tensor<f32>,
    sum_g_x_hat: &Tensor<f32>,
    dx: &mut Tensor<f32>,
    epsilon: f32,
    count: f32,
    channels: u32,
    plane: u32,
) {
    let i = ABSOLUTE_POS;
    if i >= dx.len() {
        terminate!();
    }
    let c = (i / plane as usize) % channels as usize;
    let inv_sigma = 1.0 / f32::sqrt(variance[c] + epsilon);
    let x_hat = (x[i] - mean[c]) * inv_sigma;
    let mut g = 0.0;
    if x_hat * gamma[c] + beta[c] > 0.0 {
        g = dy[i];
    }
    let centred = count * g - sum_g[c] - x_hat * sum_g_x_hat[c];
    dx[i] = gamma[c] * inv_sigma / count * centred;
}

/// `[batch, channels, ...]`: channels and plane, as the kernels take them.
fn channels_and_plane(shape: &Shape) -> (u32, u32) {
    let plane = shape.iter().skip(2).product::<usize>();
    let fit = |v: usize| u32::try_from(v).expect("a batch norm's channels and plane fit in u32");
    (fit(shape[1]), fit(plane))
}

/// One work group of [`SUM_THREADS`] per channel.
fn per_channel(channels: u32) -> (CubeCount, CubeDim) {
    (
        CubeCount::Static(channels, 1, 1),
        CubeDim::new_1d(SUM_THREADS),
    )
}

/// Output, batch mean and biased batch variance (`[channels]` each) of `relu(batch_norm(x))`.
pub fn train(
    x: FloatTensor<Cube>,
    gamma: FloatTensor<Cube>,
    beta: FloatTensor<Cube>,
    epsilon: f64,
) -> (FloatTensor<Cube>, FloatTensor<Cube>, FloatTensor<Cube>) {
    let [x, gamma, beta] = [x, gamma, beta].map(into_contiguous);
    let shape = x.shape();
    let (channels, plane) = channels_and_plane(&shape);
    let (mean, variance) = (empty(&x, [shape[1]].into()), empty(&x, [shape[1]].into()));
    for (out, centred) in [(&mean, false), (&variance, true)] {
        let (cubes, dim) = per_channel(channels);
        channel_mean_kernel::launch(
            &x.client,
            cubes,
            dim,
            x.clone().into_tensor_arg(),
            mean.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            channels,
            plane,
            centred,
        );
    }
    let y = empty_like(&x);
    let (cubes, dim) = per_element(&x);
    forward_kernel::launch(
        &x.client,
        cubes,
        dim,
        x.clone().into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        variance.clone().into_tensor_arg(),
        gamma.into_tensor_arg(),
        beta.into_tensor_arg(),
        y.clone().into_tensor_arg(),
        epsilon as f32,
        channels,
        plane,
    );
    (y, mean, variance)
}

/// The gradients of the input, gamma and beta from the output's (see [`super::lowered::backward`]).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: FloatTensor<Cube>,
    dy: FloatTensor<Cube>,
    gamma: FloatTensor<Cube>,
    beta: FloatTensor<Cube>,
    mean: FloatTensor<Cube>,
    variance: FloatTensor<Cube>,
    epsilon: f64,
) -> (FloatTensor<Cube>, FloatTensor<Cube>, FloatTensor<Cube>) {
    let [x, dy, gamma, beta, mean, variance] =
        [x, dy, gamma, beta, mean, variance].map(into_contiguous);
    let shape = x.shape();
    let (channels, plane) = channels_and_plane(&shape);
    let (dbeta, dgamma) = (empty(&x, [shape[1]].into()), empty(&x, [shape[1]].into()));
    let (cubes, dim) = per_channel(channels);
    grad_sums_kernel::launch(
        &x.client,
        cubes,
        dim,
        x.clone().into_tensor_arg(),
        dy.clone().into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        variance.clone().into_tensor_arg(),
        gamma.clone().into_tensor_arg(),
        beta.clone().into_tensor_arg(),
        dbeta.clone().into_tensor_arg(),
        dgamma.clone().into_tensor_arg(),
        epsilon as f32,
        channels,
        plane,
    );
    let dx = empty_like(&x);
    let (cubes, dim) = per_element(&x);
    input_grad_kernel::launch(
        &dx.client,
        cubes,
        dim,
        x.into_tensor_arg(),
        dy.into_tensor_arg(),
        mean.into_tensor_arg(),
        variance.into_tensor_arg(),
        gamma.into_tensor_arg(),
        beta.into_tensor_arg(),
        dbeta.clone().into_tensor_arg(),
        dgamma.clone().into_tensor_arg(),
        dx.clone().into_tensor_arg(),
        epsilon as f32,
        count(&shape) as f32,
        channels,
        plane,
    );
    (dx, dgamma, dbeta)
}

/// The running statistics' update ([`super::update_running_stats`]) as one kernel.
pub fn running_stats_update(
    running_mean: FloatTensor<Cube>,
    running_var: FloatTensor<Cube>,
    mean: FloatTensor<Cube>,
    variance: FloatTensor<Cube>,
    momentum: f32,
) -> (FloatTensor<Cube>, FloatTensor<Cube>) {
    let [running_mean, running_var, mean, variance] =
        [running_mean, running_var, mean, variance].map(into_contiguous);
    let (mean_out, var_out) = (empty_like(&mean), empty_like(&mean));
    let (cubes, dim) = per_element(&mean);
    running_stats_kernel::launch(
        &mean.client,
        cubes,
        dim,
        running_mean.into_tensor_arg(),
        running_var.into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        variance.into_tensor_arg(),
        mean_out.clone().into_tensor_arg(),
        var_out.clone().into_tensor_arg(),
        momentum,
    );
    (mean_out, var_out)
}
