//! Training-mode batch norm + ReLU in any backend's tensor ops, with its backward pass written
//! out: the arithmetic of the GPU batch norm. On wgpu, `cube.rs` runs it as cubecl kernels; here,
//! in burn's ops, the unit tests hold it to this module's CPU kernels on burn-flex.
//!
//! Why: burn's generic `batch_norm_train` swaps batch and channel axes and reduces one
//! `[channels, batch * h * w]` row per channel: a copy of the whole activation first, then as few
//! as 16 long rows for a GPU to share out (on a lent H200, reductions were 41 % of GPU time,
//! bench/NOTES.md section 14). Here `[batch, channels, h * w]` is a free reshape of NCHW and its
//! `batch * channels` rows reduce in place; the `[batch, channels]` sums that are left are small.
//! And burn's autodiff, left to differentiate that chain, records every op of it and adds a
//! backward op or two for each (bench/NOTES.md section 30).
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::Shape;

/// Output, batch mean and biased batch variance (`[channels]` each) of `relu(batch_norm(x))`.
pub fn train<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let shape = x.shape();
    let (channels, count) = (shape[1], count(&shape));
    let x = planes::<B>(x);
    let mean = per_channel_mean::<B>(x.clone(), count);
    let centred = B::float_sub(x, mean.clone());
    let variance = per_channel_mean::<B>(B::float_mul(centred.clone(), centred.clone()), count);
    let scale = B::float_div(
        per_channel::<B>(gamma, channels),
        B::float_sqrt(B::float_add_scalar(variance.clone(), epsilon.into())),
    );
    let y = B::float_add(
        B::float_mul(centred, scale),
        per_channel::<B>(beta, channels),
    );
    let flat = Shape::new([channels]);
    (
        B::float_reshape(B::relu(y), shape),
        B::float_reshape(mean, flat.clone()),
        B::float_reshape(variance, flat),
    )
}

/// The gradients of the input, gamma and beta from the output's, with the ReLU's mask from the
/// pre-activation recomputed from `x` and the statistics:
/// `dx = gamma / sigma / n * (n g - sum g - x_hat sum(g x_hat))`, `g` the output's gradient
/// where the ReLU passed it.
#[allow(clippy::too_many_arguments)]
pub fn backward<B: Backend>(
    x: FloatTensor<B>,
    dy: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let shape = x.shape();
    let (channels, count) = (shape[1], count(&shape));
    let inv_sigma = B::float_recip(B::float_sqrt(B::float_add_scalar(
        per_channel::<B>(variance, channels),
        epsilon.into(),
    )));
    let gamma = per_channel::<B>(gamma, channels);
    let x_hat = B::float_mul(
        B::float_sub(planes::<B>(x), per_channel::<B>(mean, channels)),
        inv_sigma.clone(),
    );
    let pre = B::float_add(
        B::float_mul(x_hat.clone(), gamma.clone()),
        per_channel::<B>(beta, channels),
    );
    let g = B::relu_backward(pre, planes::<B>(dy));
    let dbeta = per_channel_sum::<B>(g.clone());
    let dgamma = per_channel_sum::<B>(B::float_mul(g.clone(), x_hat.clone()));
    let centred_g = B::float_sub(
        B::float_sub(B::float_mul_scalar(g, (count as f64).into()), dbeta.clone()),
        B::float_mul(x_hat, dgamma.clone()),
    );
    let factor = B::float_mul_scalar(B::float_mul(gamma, inv_sigma), (1.0 / count as f64).into());
    let flat = Shape::new([channels]);
    (
        B::float_reshape(B::float_mul(centred_g, factor), shape),
        B::float_reshape(dgamma, flat.clone()),
        B::float_reshape(dbeta, flat),
    )
}

/// Values per channel: batch x plane.
pub(super) fn count(shape: &Shape) -> usize {
    shape[0] * shape.iter().skip(2).product::<usize>()
}

/// `[batch, channels, ...]` as `[batch, channels, plane]` (free for NCHW).
fn planes<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let shape = x.shape();
    let plane = shape.iter().skip(2).product::<usize>();
    B::float_reshape(x, Shape::new([shape[0], shape[1], plane]))
}

/// A `[channels]` vector as `[1, channels, 1]`, to broadcast over planes.
fn per_channel<B: Backend>(v: FloatTensor<B>, channels: usize) -> FloatTensor<B> {
    B::float_reshape(v, Shape::new([1, channels, 1]))
}

/// `[batch, channels, plane]` summed to `[1, channels, 1]`: the planes first (`batch *
/// channels` rows), then the batch.
fn per_channel_sum<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_sum_dim(B::float_sum_dim(x, 2), 0)
}

fn per_channel_mean<B: Backend>(x: FloatTensor<B>, count: usize) -> FloatTensor<B> {
    B::float_mul_scalar(per_channel_sum::<B>(x), (1.0 / count as f64).into())
}
