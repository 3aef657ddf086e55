//! The element-wise passes of the GPU batch norm + ReLU ([`super::lowered`]'s arithmetic) as
//! cubecl kernels on burn's cubecl backend (wgpu): each reads its inputs once and writes its
//! outputs once, where the same arithmetic in burn's tensor ops is a launch (and a pass) per
//! operation. A training step's batch norms took about 37 launches each that way, 14 this way
//! (bench/NOTES.md section 30). The per-channel sums stay burn's reductions.
//!
//! Tensors are `[batch, channels, plane]`, contiguous; per-channel vectors `[channels]`. A GPU
//! thread per element finds its channel from its index.
use burn::backend::tensor::FloatTensor;
use burn::backend::{Cube, TensorMetadata};
use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use super::lowered::channel_sums;

/// `(x - mean)^2`, for the variance.
#[cube(launch)]
fn centred_square_kernel(
    x: &Tensor<f32>,
    mean: &Tensor<f32>,
    out: &mut Tensor<f32>,
    channels: u32,
    plane: u32,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let c = (i / plane as usize) % channels as usize;
    let d = x[i] - mean[c];
    out[i] = d * d;
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

/// The output's gradient where the ReLU passed it (`g`), and `g * x_hat`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn masked_grad_kernel(
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    mean: &Tensor<f32>,
    variance: &Tensor<f32>,
    gamma: &Tensor<f32>,
    beta: &Tensor<f32>,
    g_out: &mut Tensor<f32>,
    g_x_hat_out: &mut Tensor<f32>,
    epsilon: f32,
    channels: u32,
    plane: u32,
) {
    let i = ABSOLUTE_POS;
    if i >= g_out.len() {
        terminate!();
    }
    let c = (i / plane as usize) % channels as usize;
    let x_hat = (x[i] - mean[c]) / f32::sqrt(variance[c] + epsilon);
    let mut g = dy[i];
    if x_hat * gamma[c] + beta[c] <= 0.0 {
        g = 0.0;
    }
    g_out[i] = g;
    g_x_hat_out[i] = g * x_hat;
}

/// `dx = gamma / sigma / n * (n g - sum g - x_hat sum(g x_hat))`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn input_grad_kernel(
    x: &Tensor<f32>,
    g: &Tensor<f32>,
    mean: &Tensor<f32>,
    variance: &Tensor<f32>,
    gamma: &Tensor<f32>,
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
    let centred = count * g[i] - sum_g[c] - x_hat * sum_g_x_hat[c];
    dx[i] = gamma[c] * inv_sigma / count * centred;
}

/// A new contiguous tensor of `like`'s shape and type.
fn empty_like(like: &CubeTensor) -> CubeTensor {
    empty_device_dtype(
        like.client.clone(),
        like.device.clone(),
        like.meta.shape().clone(),
        like.dtype,
    )
}

/// Launch geometry for one thread per element of `t`.
fn elementwise(t: &CubeTensor) -> (CubeCount, CubeDim) {
    let n = t.meta.num_elements();
    let cube_dim = CubeDim::new(&t.client, n);
    (
        calculate_cube_count_elemwise(&t.client, n, cube_dim),
        cube_dim,
    )
}

/// `[batch, channels, ...]`: channels and plane, as the kernels take them.
fn channels_and_plane(shape: &Shape) -> (u32, u32) {
    let plane = shape.iter().skip(2).product::<usize>();
    let fit = |v: usize| u32::try_from(v).expect("a batch norm's channels and plane fit in u32");
    (fit(shape[1]), fit(plane))
}

fn count(shape: &Shape) -> usize {
    shape[0] * shape.iter().skip(2).product::<usize>()
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
    let inv_count = 1.0 / count(&shape) as f64;
    let mean = into_contiguous(channel_sums::<Cube>(x.clone(), inv_count));
    let squares = empty_like(&x);
    let (cubes, dim) = elementwise(&x);
    centred_square_kernel::launch(
        &x.client,
        cubes.clone(),
        dim,
        x.clone().into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        squares.clone().into_tensor_arg(),
        channels,
        plane,
    );
    let variance = into_contiguous(channel_sums::<Cube>(squares, inv_count));
    let y = empty_like(&x);
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
    let (g, g_x_hat) = (empty_like(&x), empty_like(&x));
    let (cubes, dim) = elementwise(&x);
    masked_grad_kernel::launch(
        &x.client,
        cubes.clone(),
        dim,
        x.clone().into_tensor_arg(),
        dy.into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        variance.clone().into_tensor_arg(),
        gamma.clone().into_tensor_arg(),
        beta.into_tensor_arg(),
        g.clone().into_tensor_arg(),
        g_x_hat.clone().into_tensor_arg(),
        epsilon as f32,
        channels,
        plane,
    );
    let dbeta = into_contiguous(channel_sums::<Cube>(g.clone(), 1.0));
    let dgamma = into_contiguous(channel_sums::<Cube>(g_x_hat, 1.0));
    let dx = empty_like(&x);
    input_grad_kernel::launch(
        &dx.client,
        cubes,
        dim,
        x.into_tensor_arg(),
        g.into_tensor_arg(),
        mean.into_tensor_arg(),
        variance.into_tensor_arg(),
        gamma.into_tensor_arg(),
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
