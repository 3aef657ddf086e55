//! The 3x3 convolution lowered to im2col + one batched matmul in burn's tensor ops, for training
//! on a GPU (wgpu).
//!
//! Why: burn's cubecl convolution on WGSL has only its direct kernel for a 3x3 filter (the
//! implicit-GEMM kernels need cooperative matrices, which WGSL lacks), and on a lent H200 that
//! kernel took 1.6 ms a launch, half of all GPU time (bench/NOTES.md section 14). A matmul is
//! what a GPU runs best, and built from tensor ops the lowering needs no backward pass of its own:
//! burn's autodiff differentiates the pad, the slices, the stack and the matmul.
//!
//! The columns of one image are `[9 c_in, h w]` floats; batches whose columns would pass
//! [`MAX_COLUMN_FLOATS`] run in chunks, so no GPU buffer outgrows what adapters bind.
use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;

/// Floats in one chunk's columns: 32 Mi (128 MiB), WebGPU's default storage-binding limit.
pub const MAX_COLUMN_FLOATS: usize = 32 << 20;

/// `[batch, c_in, h, w]` and `[c_out, c_in, 3, 3]` to `[batch, c_out, h, w]`: stride 1, zero
/// padding 1, no bias.
pub fn forward(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let [batch, c_in, h, w] = x.dims();
    let per_image = 9 * c_in * h * w;
    let chunk = (MAX_COLUMN_FLOATS / per_image.max(1)).clamp(1, batch.max(1));
    if chunk >= batch {
        return forward_chunk(x, weight);
    }
    let parts = (0..batch)
        .step_by(chunk)
        .map(|b0| {
            let b1 = (b0 + chunk).min(batch);
            forward_chunk(x.clone().narrow(0, b0, b1 - b0), weight.clone())
        })
        .collect();
    Tensor::cat(parts, 0)
}

fn forward_chunk(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let [batch, c_in, h, w] = x.dims();
    let [c_out, ..] = weight.dims();
    let padded = x.pad([(1, 1), (1, 1)], PadMode::Constant(0.0));
    // Column order (channel, ky, kx) matches the weights' `[c_out, c_in, 3, 3]` row order.
    let shifted = (0..3)
        .flat_map(|ky| (0..3).map(move |kx| (ky, kx)))
        .map(|(ky, kx)| {
            padded
                .clone()
                .slice([0..batch, 0..c_in, ky..ky + h, kx..kx + w])
        })
        .collect();
    let columns = Tensor::stack::<5>(shifted, 2).reshape([batch, c_in * 9, h * w]);
    weight
        .reshape([1, c_out, c_in * 9])
        .matmul(columns)
        .reshape([batch, c_out, h, w])
}
