//! Training-mode batch norm + ReLU from per-plane sums in burn's tensor ops, for training on a
//! GPU (wgpu).
//!
//! Why: burn's generic `batch_norm_train` swaps batch and channel axes and reduces one
//! `[channels, batch * h * w]` row per channel: a copy of the whole activation first, then as few
//! as 16 long rows for a GPU to share out (on a lent H200, reductions were 41 % of GPU time,
//! bench/NOTES.md section 14). Here `[batch, channels, h * w]` is a free reshape of NCHW and its
//! `batch * channels` rows reduce in place; the `[batch, channels]` sums that are left are small.
//! burn's autodiff differentiates the whole chain.
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::BnRelu;

/// `relu(batch_norm(x))` with batch statistics; the mean and biased variance come back as well.
pub fn train(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> BnRelu {
    let [batch, channels, h, w] = x.dims();
    let count = (batch * h * w) as f64;
    let per_channel = |t: Tensor<3>| {
        t.sum_dim(2)
            .sum_dim(0)
            .div_scalar(count)
            .reshape([1, channels, 1, 1])
    };
    let mean = per_channel(x.clone().reshape([batch, channels, h * w]));
    let centred = x - mean.clone();
    let variance = per_channel(centred.clone().square().reshape([batch, channels, h * w]));
    let scale = gamma.reshape([1, channels, 1, 1]) / variance.clone().add_scalar(epsilon).sqrt();
    BnRelu {
        output: relu(centred * scale + beta.reshape([1, channels, 1, 1])),
        mean: mean.reshape([channels]),
        variance: variance.reshape([channels]),
    }
}
