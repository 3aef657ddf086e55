//! A fast 3x3 convolution for the CPU backend, plugged into burn as a backend extension with
//! its own backward pass; [`conv3x3`] uses it where it applies and burn's convolution elsewhere.
//!
//! The R2U-Net spends nearly all of its time in 3x3, stride-1, padding-1 convolutions without
//! bias (every RCL and every forward/residual unit). See [`im2col`] for why burn-flex's general
//! convolution is slow on them.
//!
//! On plain `f32` slices in NCHW layout, [`forward`], [`input_grad`] and [`weight_grad`] choose
//! per shape between the two algorithms, [`im2col`] + GEMM and [`winograd`]. Both run on the same
//! GEMM (`ops/gemm.rs`) and task runner (`ops::parallel`), and neither calls the other. The two
//! Winograd kernels, F(2x2) and [`winograd4`]'s F(4x4), also share their tasks, scratch and
//! per-position GEMMs (`tiles.rs`) and the run-time choice of vector width (`simd.rs`).
#[cfg(feature = "flex")]
mod autodiff;
#[cfg(all(feature = "flex", feature = "wgpu"))]
mod cube;
pub mod im2col;
mod lanes;
#[cfg(target_arch = "x86_64")]
mod lanes_avx2;
#[cfg(target_arch = "x86_64")]
mod lanes_avx512;
pub mod lowered;
mod tiles;
pub mod winograd;
pub mod winograd3;
pub mod winograd4;
#[cfg(target_arch = "x86_64")]
mod winograd4_avx2;
#[cfg(target_arch = "x86_64")]
mod winograd4_avx512;

#[cfg(feature = "flex")]
use burn::backend::flex::FlexTensor;
#[cfg(feature = "flex")]
use burn::backend::tensor::FloatTensor;
#[cfg(feature = "flex")]
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
#[cfg(feature = "flex")]
use burn::tensor::TensorData;
use burn::tensor::{DType, Tensor};

use crate::ops::parallel::{SharedOut, for_each_index};

/// Shape of one convolution: `batch x c_in x h x w` to `batch x c_out x h x w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    /// Pixels per plane, `h * w`.
    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Panics unless `x` and `weight` are a forward pass's input and weights of this shape.
    #[track_caller]
    fn check_forward(&self, x: &[f32], weight: &[f32]) {
        let input = self.batch * self.c_in * self.plane();
        assert_eq!(x.len(), input, "conv3x3: input length");
        let weights = self.c_out * self.c_in * 9;
        assert_eq!(weight.len(), weights, "conv3x3: weight length");
    }

    /// Panics unless `x` and `dy` are the input and output gradient of this shape.
    #[track_caller]
    fn check_weight_grad(&self, x: &[f32], dy: &[f32]) {
        let input = self.batch * self.c_in * self.plane();
        assert_eq!(x.len(), input, "conv3x3: input length");
        let output = self.batch * self.c_out * self.plane();
        assert_eq!(dy.len(), output, "conv3x3: output gradient length");
    }
}

/// `y = conv3x3(x, weight)`; `x` is `[batch, c_in, h, w]`, `weight` `[c_out, c_in, 3, 3]`,
/// the result `[batch, c_out, h, w]`. Winograd F(4x4), F(3x3) or F(2x2) where faster, im2col +
/// GEMM elsewhere ([`forward_algorithm`]).
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    match forward_algorithm(&d) {
        Algorithm::Winograd4 => winograd4::forward(x, weight, d),
        Algorithm::Winograd3 => winograd3::forward(x, weight, d),
        Algorithm::Winograd2 => winograd::forward(x, weight, d),
        Algorithm::Im2col => im2col::forward(x, weight, d),
    }
}

/// The algorithms [`forward`], [`input_grad`] and [`weight_grad`] choose between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Im2col,
    /// F(2x2, 3x3), [`winograd`].
    Winograd2,
    /// F(3x3, 3x3), [`winograd3`].
    Winograd3,
    /// F(4x4, 3x3), [`winograd4`].
    Winograd4,
}

/// What the forward pass (and so the input gradient, a forward pass with the channels swapped)
/// runs on `d`.
pub fn forward_algorithm(d: &Dims) -> Algorithm {
    if too_few_images(d) {
        Algorithm::Im2col
    } else if winograd4::pays(d) {
        Algorithm::Winograd4
    } else if winograd3::pays(d) {
        Algorithm::Winograd3
    } else if winograd::pays(d) {
        Algorithm::Winograd2
    } else {
        Algorithm::Im2col
    }
}

/// What [`weight_grad`] runs on `d`.
pub fn weight_grad_algorithm(d: &Dims) -> Algorithm {
    if winograd4::pays_for_weight_grad(d) {
        Algorithm::Winograd4
    } else if winograd3::pays_for_weight_grad(d) {
        Algorithm::Winograd3
    } else if winograd::pays_for_weight_grad(d) {
        Algorithm::Winograd2
    } else {
        Algorithm::Im2col
    }
}

/// Whether a batch is too small for the Winograd kernels of the small planes, so that the
/// forward pass is faster as im2col's one GEMM over the whole batch. Those kernels run sixteen
/// images in a vector's lanes (F(3x3) on 6x6, F(4x4) on 12x12) or only a few tiles along a
/// row, and every call transforms all the weights, whatever the batch. Kernel bench at 128 x 6 x 6
/// and 64 x 12 x 12, batches 1-16 (bench/NOTES.md section 29): on 6x6 planes im2col beat F(2x2)
/// up to 8 images (135-150 against 73-121 GFLOP/s at 4 and 8), and F(3x3) led from 12; on 12x12
/// planes im2col beat F(4x4) and F(2x2) up to 4 images (153-162 against 85-123), and F(4x4)
/// along the rows led from 8 or 12. Held to AVX2 the same within noise. The weight gradients
/// keep their rules: there F(4x4) tied with im2col at 1-2 images and led from 4.
fn too_few_images(d: &Dims) -> bool {
    let side = d.h.max(d.w);
    (side <= 8 && d.batch < winograd3::MIN_BATCH) || (side <= 12 && d.batch < 8)
}

/// `addend + conv3x3(x, weight)`, `addend` shaped as the output: the RCL's `W_f * x + W_r * h`.
/// F(4x4) adds it as it writes each task's output rows, while they are in cache; the other
/// algorithms (the small planes, where the sum is small) add it after, in parallel. burn-flex's
/// own add ran on one thread while the other waited: 3 % of a training step (bench/NOTES.md
/// section 25).
pub fn forward_add(x: &[f32], weight: &[f32], addend: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(
        addend.len(),
        d.batch * d.c_out * d.plane(),
        "conv3x3: addend length"
    );
    match forward_algorithm(&d) {
        Algorithm::Winograd4 => return winograd4::forward_add(x, weight, Some(addend), d),
        Algorithm::Winograd3 => return winograd3::forward_add(x, weight, Some(addend), d),
        Algorithm::Winograd2 | Algorithm::Im2col => {}
    }
    let mut y = forward(x, weight, d);
    add_assign(&mut y, addend);
    y
}

/// `y += a` in parallel blocks.
fn add_assign(y: &mut [f32], a: &[f32]) {
    const BLOCK: usize = 1 << 15;
    let len = y.len();
    // SAFETY: `y` is borrowed for the whole call, and block `i` touches its own elements only.
    let out = unsafe { SharedOut::new(y.as_mut_ptr(), len) };
    for_each_index(len.div_ceil(BLOCK), |i| {
        let range = i * BLOCK..len.min((i + 1) * BLOCK);
        // SAFETY: this block's elements, touched by this task only.
        let dst = unsafe { out.slice_mut(range.clone()) };
        dst.iter_mut().zip(&a[range]).for_each(|(y, a)| *y += a);
    });
}

/// Gradient of the input: a 3x3 convolution of `dy` with the weights flipped in space and with
/// input and output channels swapped.
pub fn input_grad(dy: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(weight.len(), d.c_out * d.c_in * 9, "conv3x3: weight length");
    let mut flipped: Vec<f32> = Vec::with_capacity(weight.len());
    // SAFETY: `flipped` has room for every weight and is left alone until `set_len`; the task
    // for input channel `ci` writes that channel's block of `c_out` kernels only.
    let out = unsafe {
        SharedOut::new(
            flipped.spare_capacity_mut().as_mut_ptr().cast(),
            weight.len(),
        )
    };
    // In parallel, one input channel a task: done in order on one thread, the flip held the
    // other thread idle for 7 % of a 6x6 plane's input gradient at 128 channels.
    for_each_index(d.c_in, |ci| {
        // SAFETY: input channel ci's kernels, written by this task only.
        let block = unsafe { out.slice_mut(ci * d.c_out * 9..(ci + 1) * d.c_out * 9) };
        for (co, k) in block.chunks_exact_mut(9).enumerate() {
            let src = &weight[(co * d.c_in + ci) * 9..][..9];
            k.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(k, &w)| *k = w);
        }
    });
    // SAFETY: the tasks wrote every input channel's kernels.
    unsafe { flipped.set_len(weight.len()) };
    let swapped = Dims {
        c_in: d.c_out,
        c_out: d.c_in,
        ..d
    };
    forward(dy, &flipped, swapped)
}

/// Gradient of the weights, `[c_out, c_in, 3, 3]`: Winograd where faster, im2col + GEMM
/// elsewhere ([`weight_grad_algorithm`]).
pub fn weight_grad(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    match weight_grad_algorithm(&d) {
        Algorithm::Winograd4 => winograd4::weight_grad(x, dy, d),
        Algorithm::Winograd3 => winograd3::weight_grad(x, dy, d),
        Algorithm::Winograd2 => winograd::weight_grad(x, dy, d),
        Algorithm::Im2col => im2col::weight_grad(x, dy, d),
    }
}

/// 3x3 convolution, stride 1, zero padding 1, no bias, one group, in NCHW layout.
#[cfg(feature = "flex")]
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff: cfg(feature = "autodiff"))]
pub trait Conv3x3Backend: Backend {
    /// `[batch, c_in, h, w]`, `[c_out, c_in, 3, 3]` to `[batch, c_out, h, w]`.
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `addend + conv3x3(x, weight)`, `addend` of the output's shape.
    fn conv3x3_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        addend: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// The input's gradient from the output's.
    fn conv3x3_input_grad(dy: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The weights' gradient from the input and the output's gradient.
    fn conv3x3_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        c_out: usize,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
fn dims(x: &FlexTensor, c_out: usize) -> Dims {
    let s = x.layout().shape();
    Dims {
        batch: s[0],
        c_in: s[1],
        c_out,
        h: s[2],
        w: s[3],
    }
}

#[cfg(feature = "flex")]
fn f32_tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(feature = "flex")]
impl Conv3x3Backend for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let d = dims(&x, weight.layout().shape()[0]);
        let y = forward(x.storage::<f32>(), weight.storage::<f32>(), d);
        f32_tensor(y, [d.batch, d.c_out, d.h, d.w])
    }

    fn conv3x3_add(x: FlexTensor, weight: FlexTensor, addend: FlexTensor) -> FlexTensor {
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let addend = addend.to_contiguous();
        let d = dims(&x, weight.layout().shape()[0]);
        let y = forward_add(
            x.storage::<f32>(),
            weight.storage::<f32>(),
            addend.storage::<f32>(),
            d,
        );
        f32_tensor(y, [d.batch, d.c_out, d.h, d.w])
    }

    fn conv3x3_input_grad(dy: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let (dy, weight) = (dy.to_contiguous(), weight.to_contiguous());
        let c_in = weight.layout().shape()[1];
        let s = dy.layout().shape();
        let d = Dims {
            batch: s[0],
            c_in,
            c_out: s[1],
            h: s[2],
            w: s[3],
        };
        let dx = input_grad(dy.storage::<f32>(), weight.storage::<f32>(), d);
        f32_tensor(dx, [d.batch, d.c_in, d.h, d.w])
    }

    fn conv3x3_weight_grad(x: FlexTensor, dy: FlexTensor, c_out: usize) -> FlexTensor {
        let (x, dy) = (x.to_contiguous(), dy.to_contiguous());
        let d = dims(&x, c_out);
        let dw = weight_grad(x.storage::<f32>(), dy.storage::<f32>(), d);
        f32_tensor(dw, [d.c_out, d.c_in, 3, 3])
    }
}

/// On a GPU, for training: the convolution and its two gradients lowered to im2col + matmul
/// ([`lowered`]), so that burn's autodiff records one op per convolution, not the lowering's
/// gather, pad and matmul.
#[cfg(all(feature = "flex", feature = "wgpu"))]
impl Conv3x3Backend for burn::backend::Cube {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        lowered::forward::<Self>(x, weight)
    }

    fn conv3x3_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        addend: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        lowered::forward_add::<Self>(x, weight, addend)
    }

    fn conv3x3_input_grad(dy: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        lowered::input_grad::<Self>(dy, weight)
    }

    fn conv3x3_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        _c_out: usize,
    ) -> FloatTensor<Self> {
        lowered::weight_grad::<Self>(x, dy)
    }
}

/// Whether `conv` is the shape this module computes: a bias-free 3x3, stride 1, padding 1, one
/// group.
fn is_plain_3x3(conv: &Conv2d) -> bool {
    let [_, _, kh, kw] = conv.weight.dims();
    kh == 3
        && kw == 3
        && conv.bias.is_none()
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1))
}

/// Whether the fast kernel can run this convolution on this tensor.
fn fast_path_applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    super::cpu_kernels_apply(&x.device())
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32
        && is_plain_3x3(conv)
}

/// Whether a 3x3 convolution trains through [`lowered`] (see
/// [`crate::ops::lowered_for_gpu_training`]).
fn lowered_applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    super::lowered_for_gpu_training(&x.device()) && is_plain_3x3(conv)
}

/// `conv.forward(x)`, through the fast kernel when the convolution is a bias-free 3x3 with
/// stride 1 and padding 1 running on burn-flex, lowered to a matmul when it trains on a GPU (see
/// [`lowered`]); otherwise burn's own convolution.
pub fn conv3x3(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if !fast_path_applies(conv, &x) && !lowered_applies(conv, &x) {
        return conv.forward(x);
    }
    #[cfg(feature = "flex")]
    return Tensor::from_dispatch(<Dispatch as Conv3x3Backend>::conv3x3(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
    ));
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature")
}

/// `addend + conv.forward(x)` ([`conv3x3`] plus an addend of the output's shape), with the add
/// inside the fast kernel's output pass where that applies.
pub fn conv3x3_add(conv: &Conv2d, x: Tensor<4>, addend: Tensor<4>) -> Tensor<4> {
    let extension =
        (fast_path_applies(conv, &x) && addend.dtype() == DType::F32) || lowered_applies(conv, &x);
    if !extension {
        return addend + conv3x3(conv, x);
    }
    #[cfg(feature = "flex")]
    return Tensor::from_dispatch(<Dispatch as Conv3x3Backend>::conv3x3_add(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        addend.into_dispatch(),
    ));
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature")
}

#[cfg(test)]
mod tests;
