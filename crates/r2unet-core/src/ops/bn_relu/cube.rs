//! The GPU batch norm + ReLU ([`super::lowered`]'s arithmetic) as cubecl kernels: the mean and
//! the variance, the normalised output; backward, the two per-channel sums of the gradient and
//! the input's gradient. Each reads its inputs once (the moments a second time, from cache); the
//! same arithmetic in burn's tensor ops is a launch (and a pass) per operation and two per sum,
//! about 37 launches a batch norm (bench/NOTES.md section 30).
//!
//! Tensors are `[batch, channels, plane]`, contiguous; per-channel vectors `[channels]`. The
//! element-wise kernels run a GPU thread per element, which finds its channel from its index.
//! The per-channel sums split each channel into blocks of about [`BLOCK_VALUES`], a work group of
//! [`SUM_THREADS`] per block (neighbouring threads read neighbouring pixels, then a tree in shared
//! memory), and a second launch adds up a channel's blocks, where it has more than one. One work
//! group per channel, as first written, ran 16 work groups over the first level's 16 channels
//! (73,728 values each at batch 32): a fraction of a datacentre GPU's 100+ multiprocessors, each
//! thread walking 288 values one load after another (bench/NOTES.md section 31).
use burn::backend::tensor::FloatTensor;
use burn::backend::{Cube, TensorMetadata};
use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::lowered::count;
use crate::ops::cube_launch::{empty, empty_like, per_element};

/// Threads per work group of the per-channel sums (a power of two, within WebGPU's 256).
const SUM_THREADS: u32 = 256;

/// Values a work group of the per-channel sums takes on: 8 a thread, so that each thread has a
/// few independent loads in flight and a long channel spreads over many work groups.
const BLOCK_VALUES: usize = 8 * SUM_THREADS as usize;

/// Most blocks per channel; a longer channel gets longer blocks.
const MAX_BLOCKS: usize = 1024;

/// The sum of every thread's `value` in this work group, on every thread. `shared` holds
/// [`SUM_THREADS`] floats; it may be used again once this returns.
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
    let total = shared[0];
    // Every thread reads the total before any writes its next value.
    sync_cube();
    total
}

/// Where value `j` of channel `c` lies in a `[batch, channels, plane]` tensor.
#[cube]
fn at(j: usize, c: usize, channels: usize, plane: usize) -> usize {
    ((j / plane) * channels + c) * plane + j % plane
}

/// The values of block `b` of a channel of `values`: `[start, end)`.
#[cube]
fn block_range(b: usize, block_len: usize, values: usize) -> (usize, usize) {
    let start = b * block_len;
    let mut end = start + block_len;
    if end > values {
        end = values;
    }
    (start, end)
}

/// Block `CUBE_POS_X` of channel `CUBE_POS_Y`: its mean and its sum of squared deviations from
/// that mean (two passes over the block, which the second reads from cache). With `whole`, the
/// block is the channel, and `m2_out` gets the biased variance instead.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn block_moments_kernel(
    x: &Tensor<f32>,
    mean_out: &mut Tensor<f32>,
    m2_out: &mut Tensor<f32>,
    channels: u32,
    plane: u32,
    blocks: u32,
    block_len: u32,
    #[comptime] whole: bool,
) {
    let (b, c) = (CUBE_POS_X as usize, CUBE_POS_Y as usize);
    let (channels, plane) = (channels as usize, plane as usize);
    let (start, end) = block_range(b, block_len as usize, x.len() / channels);
    let n = (end - start) as f32;
    let mut shared = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let mut acc = 0.0;
    let mut j = start + UNIT_POS as usize;
    while j < end {
        acc += x[at(j, c, channels, plane)];
        j += CUBE_DIM as usize;
    }
    let mean = cube_sum(&mut shared, acc) / n;
    let mut acc2 = 0.0;
    j = start + UNIT_POS as usize;
    while j < end {
        let d = x[at(j, c, channels, plane)] - mean;
        acc2 += d * d;
        j += CUBE_DIM as usize;
    }
    let m2 = cube_sum(&mut shared, acc2);
    if UNIT_POS == 0 {
        let i = c * blocks as usize + b;
        mean_out[i] = mean;
        if whole {
            m2_out[i] = m2 / n;
        } else {
            m2_out[i] = m2;
        }
    }
}

/// Channel `CUBE_POS`'s mean and biased variance from its blocks' means and squared deviations
/// (Chan, Golub and LeVeque's merge: the blocks' deviations plus each block's count times its
/// mean's squared distance from the channel's), stable where the mean is far from zero.
#[cube(launch)]
fn merge_moments_kernel(
    block_mean: &Tensor<f32>,
    block_m2: &Tensor<f32>,
    mean: &mut Tensor<f32>,
    variance: &mut Tensor<f32>,
    values: u32,
    block_len: u32,
) {
    let c = CUBE_POS;
    let blocks = block_mean.len() / mean.len();
    let (values, block_len) = (values as usize, block_len as usize);
    let mut shared = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let mut acc = 0.0;
    let mut b = UNIT_POS as usize;
    while b < blocks {
        let (start, end) = block_range(b, block_len, values);
        acc += (end - start) as f32 * block_mean[c * blocks + b];
        b += CUBE_DIM as usize;
    }
    let m = cube_sum(&mut shared, acc) / values as f32;
    let mut acc2 = 0.0;
    b = UNIT_POS as usize;
    while b < blocks {
        let (start, end) = block_range(b, block_len, values);
        let d = block_mean[c * blocks + b] - m;
        acc2 += block_m2[c * blocks + b] + (end - start) as f32 * d * d;
        b += CUBE_DIM as usize;
    }
    let m2 = cube_sum(&mut shared, acc2);
    if UNIT_POS == 0 {
        mean[c] = m;
        variance[c] = m2 / values as f32;
    }
}

/// Block `CUBE_POS_X` of channel `CUBE_POS_Y`: its `sum g` and `sum g x_hat`, `g` the output's
/// gradient where the ReLU passed it (the pre-activation recomputed from `x`).
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
    blocks: u32,
    block_len: u32,
) {
    let (b, c) = (CUBE_POS_X as usize, CUBE_POS_Y as usize);
    let (channels, plane) = (channels as usize, plane as usize);
    let (start, end) = block_range(b, block_len as usize, x.len() / channels);
    let mut shared = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let inv_sigma = 1.0 / f32::sqrt(variance[c] + epsilon);
    let (m, scale, shift) = (mean[c], gamma[c], beta[c]);
    let mut acc_g = 0.0;
    let mut acc_gx = 0.0;
    let mut j = start + UNIT_POS as usize;
    while j < end {
        let i = at(j, c, channels, plane);
        let x_hat = (x[i] - m) * inv_sigma;
        if x_hat * scale + shift > 0.0 {
            acc_g += dy[i];
            acc_gx += dy[i] * x_hat;
        }
        j += CUBE_DIM as usize;
    }
    let total_g = cube_sum(&mut shared, acc_g);
    let total_gx = cube_sum(&mut shared, acc_gx);
    if UNIT_POS == 0 {
        let i = c * blocks as usize + b;
        sum_g[i] = total_g;
        sum_g_x_hat[i] = total_gx;
    }
}

/// Channel `CUBE_POS`'s sums of its blocks' two sums.
#[cube(launch)]
fn merge_sums_kernel(
    block_a: &Tensor<f32>,
    block_b: &Tensor<f32>,
    sum_a: &mut Tensor<f32>,
    sum_b: &mut Tensor<f32>,
) {
    let c = CUBE_POS;
    let blocks = block_a.len() / sum_a.len();
    let mut shared = Shared::<[f32]>::new_slice(SUM_THREADS as usize);
    let mut acc_a = 0.0;
    let mut acc_b = 0.0;
    let mut b = UNIT_POS as usize;
    while b < blocks {
        acc_a += block_a[c * blocks + b];
        acc_b += block_b[c * blocks + b];
        b += CUBE_DIM as usize;
    }
    let total_a = cube_sum(&mut shared, acc_a);
    let total_b = cube_sum(&mut shared, acc_b);
    if UNIT_POS == 0 {
        sum_a[c] = total_a;
        sum_b[c] = total_b;
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

/// How the per-channel sums split a channel of `values`: blocks and the values of each (the last
/// may be shorter, none is empty).
fn blocks(values: usize) -> (u32, u32) {
    let wanted = values.div_ceil(BLOCK_VALUES).clamp(1, MAX_BLOCKS);
    let block_len = values.div_ceil(wanted).max(1);
    let blocks = values.div_ceil(block_len).max(1);
    let fit = |v: usize| u32::try_from(v).expect("a batch norm's channel fits in u32 values");
    (fit(blocks), fit(block_len))
}

/// A work group of [`SUM_THREADS`] per block of every channel.
fn per_block(blocks: u32, channels: u32) -> (CubeCount, CubeDim) {
    (
        CubeCount::Static(blocks, channels, 1),
        CubeDim::new_1d(SUM_THREADS),
    )
}

/// One work group of [`SUM_THREADS`] per channel.
fn per_channel(channels: u32) -> (CubeCount, CubeDim) {
    per_block(1, channels)
}

/// Where the first kernel of a pair of per-channel sums writes: the sums themselves when a channel
/// is one block, else two new `[channels * blocks]` tensors for the merge to read.
fn block_outputs(
    x: &CubeTensor,
    sums: (&CubeTensor, &CubeTensor),
    blocks: u32,
) -> (CubeTensor, CubeTensor) {
    if blocks == 1 {
        return (sums.0.clone(), sums.1.clone());
    }
    let shape = Shape::from([sums.0.meta.num_elements() * blocks as usize]);
    (empty(x, shape.clone()), empty(x, shape))
}

/// The batch mean and biased batch variance of each channel of `x`, `[channels]` each: one
/// launch where a channel fits one block, else the blocks' moments and their merge.
fn moments(x: &CubeTensor, channels: u32, plane: u32) -> (CubeTensor, CubeTensor) {
    let values = count(&x.shape());
    let (blocks, block_len) = blocks(values);
    let (mean, variance) = (
        empty(x, [channels as usize].into()),
        empty(x, [channels as usize].into()),
    );
    let whole = blocks == 1;
    let (block_mean, block_m2) = block_outputs(x, (&mean, &variance), blocks);
    let (cubes, dim) = per_block(blocks, channels);
    block_moments_kernel::launch(
        &x.client,
        cubes,
        dim,
        x.clone().into_tensor_arg(),
        block_mean.clone().into_tensor_arg(),
        block_m2.clone().into_tensor_arg(),
        channels,
        plane,
        blocks,
        block_len,
        whole,
    );
    if !whole {
        let (cubes, dim) = per_channel(channels);
        merge_moments_kernel::launch(
            &x.client,
            cubes,
            dim,
            block_mean.into_tensor_arg(),
            block_m2.into_tensor_arg(),
            mean.clone().into_tensor_arg(),
            variance.clone().into_tensor_arg(),
            values as u32,
            block_len,
        );
    }
    (mean, variance)
}

/// Output, batch mean and biased batch variance (`[channels]` each) of `relu(batch_norm(x))`.
pub fn train(
    x: FloatTensor<Cube>,
    gamma: FloatTensor<Cube>,
    beta: FloatTensor<Cube>,
    epsilon: f64,
) -> (FloatTensor<Cube>, FloatTensor<Cube>, FloatTensor<Cube>) {
    let [x, gamma, beta] = [x, gamma, beta].map(into_contiguous);
    let (channels, plane) = channels_and_plane(&x.shape());
    let (mean, variance) = moments(&x, channels, plane);
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
    let values = count(&shape);
    let (blocks, block_len) = blocks(values);
    let (dbeta, dgamma) = (empty(&x, [shape[1]].into()), empty(&x, [shape[1]].into()));
    let (block_g, block_gx) = block_outputs(&x, (&dbeta, &dgamma), blocks);
    let (cubes, dim) = per_block(blocks, channels);
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
        block_g.clone().into_tensor_arg(),
        block_gx.clone().into_tensor_arg(),
        epsilon as f32,
        channels,
        plane,
        blocks,
        block_len,
    );
    if blocks > 1 {
        let (cubes, dim) = per_channel(channels);
        merge_sums_kernel::launch(
            &x.client,
            cubes,
            dim,
            block_g.into_tensor_arg(),
            block_gx.into_tensor_arg(),
            dbeta.clone().into_tensor_arg(),
            dgamma.clone().into_tensor_arg(),
        );
    }
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
        values as f32,
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
