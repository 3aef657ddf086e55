//! The decoder's 2x2, stride-2 transposed convolutions as one matrix product per image where
//! this project's CPU kernels apply, plugged into burn as a backend extension with its own
//! backward pass.
//!
//! With a 2x2 kernel and stride 2 the output pixels `(2i + a, 2j + c)` of every input pixel
//! `(i, j)` do not overlap, so the layer is `[4 c_out, c_in] x [c_in, h*w]` followed by moving
//! each of the four products to its place ([`kernel`]). burn-flex's general transposed
//! convolution converts to NHWC and back serially, forward and backward; burn's `matmul` and a
//! permute (what ran here before) allocated a zeroed product that burn-flex copied once more for
//! alignment, permuted it in another copy and added the bias in a third pass, and the backward
//! pass ran each of those in reverse. Elsewhere (WebGPU, other shapes) burn's `ConvTranspose2d`
//! runs.
#[cfg(feature = "flex")]
mod autodiff;
pub mod kernel;

#[cfg(feature = "flex")]
use burn::backend::flex::FlexTensor;
#[cfg(feature = "flex")]
use burn::backend::tensor::FloatTensor;
#[cfg(feature = "flex")]
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::conv::ConvTranspose2d;
#[cfg(feature = "flex")]
use burn::tensor::TensorData;
use burn::tensor::{DType, Tensor};

/// 2x2, stride-2 transposed convolution, no padding, one group, with a bias, in NCHW layout.
#[cfg(feature = "flex")]
#[backend_extension(Flex, Autodiff: cfg(feature = "autodiff"))]
pub trait Up2x2Backend: Backend {
    /// `[batch, c_in, h, w]`, `[c_in, c_out, 2, 2]` and `[c_out]` to `[batch, c_out, 2h, 2w]`.
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// The input's, the weights' and the bias's gradients from the output's.
    fn up2x2_backward(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

#[cfg(feature = "flex")]
fn f32_tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(feature = "flex")]
fn dims(x: &FlexTensor, weight: &FlexTensor) -> kernel::Dims {
    let s = x.layout().shape();
    kernel::Dims {
        batch: s[0],
        c_in: s[1],
        c_out: weight.layout().shape()[1],
        h: s[2],
        w: s[3],
    }
}

#[cfg(feature = "flex")]
impl Up2x2Backend for Flex {
    fn up2x2(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let [x, weight, bias] = [x, weight, bias].map(|t| t.to_contiguous());
        let d = dims(&x, &weight);
        let y = kernel::forward(x.storage(), weight.storage(), bias.storage(), d);
        f32_tensor(y, vec![d.batch, d.c_out, 2 * d.h, 2 * d.w])
    }

    fn up2x2_backward(
        x: FlexTensor,
        dy: FlexTensor,
        weight: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [x, dy, weight] = [x, dy, weight].map(|t| t.to_contiguous());
        let d = dims(&x, &weight);
        let (dx, dw, dbias) = kernel::backward(x.storage(), dy.storage(), weight.storage(), d);
        (
            f32_tensor(dx, vec![d.batch, d.c_in, d.h, d.w]),
            f32_tensor(dw, vec![d.c_in, d.c_out, 2, 2]),
            f32_tensor(dbias, vec![d.c_out]),
        )
    }
}

fn applies(up: &ConvTranspose2d, x: &Tensor<4>) -> bool {
    super::cpu_kernels_apply(&x.device())
        && x.dtype() == DType::F32
        && up.weight.val().dtype() == DType::F32
        && up.kernel_size == [2, 2]
        && up.stride == [2, 2]
        && up.dilation == [1, 1]
        && up.groups == 1
        && up.padding == [0, 0]
        && up.padding_out == [0, 0]
}

#[cfg(feature = "flex")]
fn on_flex(up: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let c_out = up.weight.dims()[1];
    // A layer without a bias adds zeros (a constant: no gradient is computed for it).
    let bias = match &up.bias {
        Some(bias) => bias.val(),
        None => Tensor::<1>::zeros([c_out], &x.device()),
    };
    Tensor::from_dispatch(<Dispatch as Up2x2Backend>::up2x2(
        x.into_dispatch(),
        up.weight.val().into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// `up.forward(x)` for a 2x2, stride-2 transposed convolution: `[b, c_in, h, w]` to
/// `[b, c_out, 2h, 2w]`.
pub fn up2x2(up: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    if !applies(up, &x) {
        return up.forward(x);
    }
    #[cfg(feature = "flex")]
    return on_flex(up, x);
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature")
}

#[cfg(all(test, feature = "flex", feature = "autodiff"))]
mod tests {
    use burn::nn::conv::ConvTranspose2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn forward_and_gradients_match_burns_transposed_convolution() {
        let device = burn::tensor::Device::flex().autodiff();
        for (batch, c_in, c_out, h, w, bias) in [
            (3, 32, 16, 6, 5, true),
            (2, 4, 3, 1, 7, true),
            (1, 5, 2, 3, 3, false),
            (1, 16, 8, 40, 3, true),
        ] {
            let layer = ConvTranspose2dConfig::new([c_in, c_out], [2, 2])
                .with_stride([2, 2])
                .with_bias(bias)
                .init(&device);
            let x =
                Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device)
                    .require_grad();
            assert!(applies(&layer, &x));
            let fast = up2x2(&layer, x.clone());
            let slow = layer.forward(x.clone());
            crate::ops::assert_same_layer(fast, slow, |g| {
                let mut v = vec![
                    x.grad(g).unwrap().into_data(),
                    layer.weight.grad(g).unwrap().into_data(),
                ];
                v.extend(layer.bias.as_ref().map(|b| b.grad(g).unwrap().into_data()));
                v
            });
        }
    }
}
