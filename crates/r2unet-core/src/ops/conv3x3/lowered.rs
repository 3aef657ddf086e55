//! The 3x3 convolution lowered to im2col + one batched matmul in any backend's tensor ops, with
//! its gradients written out, for training on a GPU (wgpu): the [`super::Conv3x3Backend`] of
//! burn's cubecl backend.
//!
//! Why: burn's cubecl convolution on WGSL has only its direct kernel for a 3x3 filter (the
//! implicit-GEMM kernels need cooperative matrices, which WGSL lacks), and on a lent H200 that
//! kernel took 1.6 ms a launch, half of all GPU time (bench/NOTES.md section 14). A matmul is
//! what a GPU runs best.
//!
//! Why the gradients by hand: the columns are one gather (`select` of the padded planes' nine
//! shifted windows; on burn's cubecl backend one kernel, `cube.rs`); left to burn's autodiff,
//! that gather's backward pass is a scatter-add with one GPU thread per plane running serially
//! over all of its columns, and the nine-slice lowering this replaced cost about 60 launches a
//! convolution (bench/NOTES.md section 30). Here the input's gradient is the same lowering of the
//! output's gradient with the weights transposed and turned round, and the weights' gradient the
//! output's gradient times the columns: about 8 launches in all on the GPU.
//!
//! The columns of one image are `[9 c_in, h w]` floats; batches whose columns would pass
//! [`MAX_COLUMN_FLOATS`] run in chunks, so no GPU buffer outgrows what adapters bind.
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::ops::PadMode;
use burn::tensor::{Shape, Slice, TensorData};

/// Floats in one chunk's columns: 32 Mi (128 MiB), WebGPU's default storage-binding limit.
pub const MAX_COLUMN_FLOATS: usize = 32 << 20;

/// `[batch, c_in, h, w]` and `[c_out, c_in, 3, 3]` to `[batch, c_out, h, w]`: stride 1, zero
/// padding 1, no bias.
pub fn forward<B: Columns>(x: FloatTensor<B>, weight: FloatTensor<B>) -> FloatTensor<B> {
    let [_, c_in, h, w] = dims(&x);
    let c_out = weight.shape()[0];
    let weight = B::float_reshape(weight, Shape::new([1, c_out, 9 * c_in]));
    let parts = chunks(dims(&x)[0], 9 * c_in * h * w)
        .map(|(b0, b1)| {
            let columns = B::columns(narrow::<B>(x.clone(), b0, b1));
            let y = B::float_matmul(weight.clone(), columns);
            B::float_reshape(y, Shape::new([b1 - b0, c_out, h, w]))
        })
        .collect::<Vec<_>>();
    cat::<B>(parts)
}

/// `addend + forward(x, weight)`.
pub fn forward_add<B: Columns>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    addend: FloatTensor<B>,
) -> FloatTensor<B> {
    B::float_add(addend, forward::<B>(x, weight))
}

/// The input's gradient from the output's `[batch, c_out, h, w]`: the same convolution of `dy`
/// with each filter transposed (`c_out` <-> `c_in`) and turned by 180 degrees.
pub fn input_grad<B: Columns>(dy: FloatTensor<B>, weight: FloatTensor<B>) -> FloatTensor<B> {
    let turned = B::float_flip(B::float_swap_dims(weight, 0, 1), &[2, 3]);
    forward::<B>(dy, turned)
}

/// The weights' gradient `[c_out, c_in, 3, 3]` from the input and the output's gradient:
/// `sum over images of dy [c_out, h w] x columns^T [h w, 9 c_in]`.
pub fn weight_grad<B: Columns>(x: FloatTensor<B>, dy: FloatTensor<B>) -> FloatTensor<B> {
    let [batch, c_in, h, w] = dims(&x);
    let c_out = dy.shape()[1];
    let dy = B::float_reshape(dy, Shape::new([batch, c_out, h * w]));
    let sum = chunks(batch, 9 * c_in * h * w)
        .map(|(b0, b1)| {
            let columns = B::columns(narrow::<B>(x.clone(), b0, b1));
            let per_image = B::float_matmul(
                narrow::<B>(dy.clone(), b0, b1),
                B::float_swap_dims(columns, 1, 2),
            );
            B::float_sum_dim(per_image, 0)
        })
        .reduce(B::float_add)
        .expect("a batch has at least one chunk");
    B::float_reshape(sum, Shape::new([c_out, c_in, 3, 3]))
}

/// How a backend builds the columns of [`gather_columns`]: by default that gather in burn's
/// ops (a pad, then a `select`: three launches); burn's cubecl backend has one kernel for it.
pub trait Columns: Backend {
    /// im2col: `[batch, c, h, w]` to `[batch, 9 c, h w]`, rows in `(channel, ky, kx)` order
    /// (that of the weights' `[c_out, c_in, 3, 3]` flattened), zero outside the plane.
    fn columns(x: FloatTensor<Self>) -> FloatTensor<Self> {
        gather_columns::<Self>(x)
    }
}

#[cfg(feature = "flex")]
impl Columns for burn::backend::Flex {}

/// [`Columns::columns`] as one gather from the zero-padded planes.
pub fn gather_columns<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [batch, c, h, w] = dims(&x);
    let device = x.device();
    let padded = B::float_pad(x, &[(0, 0), (0, 0), (1, 1), (1, 1)], PadMode::Constant(0.0));
    let planes = B::float_reshape(padded, Shape::new([batch, c, (h + 2) * (w + 2)]));
    let taps = B::float_select(planes, 2, tap_indices::<B>(h, w, &device));
    B::float_reshape(taps, Shape::new([batch, 9 * c, h * w]))
}

/// For each tap `(ky, kx)` and output pixel `(y, x)`, in that order, the index of the input pixel
/// it reads in a padded `(h + 2) x (w + 2)` plane.
fn tap_indices<B: Backend>(h: usize, w: usize, device: &B::Device) -> IntTensor<B> {
    let mut indices = Vec::with_capacity(9 * h * w);
    for ky in 0..3 {
        for kx in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let index = (y + ky) * (w + 2) + x + kx;
                    indices.push(i32::try_from(index).expect("a plane's index fits in i32"));
                }
            }
        }
    }
    B::int_from_data(TensorData::new(indices, [9 * h * w]), device)
}

/// `[b0, b1)` ranges that split `batch` images so that no range's columns pass
/// [`MAX_COLUMN_FLOATS`] (`per_image` floats each; at least one image a range).
fn chunks(batch: usize, per_image: usize) -> impl Iterator<Item = (usize, usize)> {
    let chunk = (MAX_COLUMN_FLOATS / per_image.max(1)).clamp(1, batch.max(1));
    (0..batch.max(1))
        .step_by(chunk)
        .map(move |b0| (b0, (b0 + chunk).min(batch)))
}

/// Images `[b0, b1)` of a tensor; the tensor itself when that is all of it.
fn narrow<B: Backend>(t: FloatTensor<B>, b0: usize, b1: usize) -> FloatTensor<B> {
    let shape = t.shape();
    if b0 == 0 && b1 == shape[0] {
        return t;
    }
    let mut ranges: Vec<Slice> = shape.iter().map(|&n| Slice::from(0..n)).collect();
    ranges[0] = Slice::from(b0..b1);
    B::float_slice(t, &ranges)
}

fn cat<B: Backend>(mut parts: Vec<FloatTensor<B>>) -> FloatTensor<B> {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    B::float_cat(parts, 0)
}

fn dims(x: &impl TensorMetadata) -> [usize; 4] {
    let s = x.shape();
    [s[0], s[1], s[2], s[3]]
}
