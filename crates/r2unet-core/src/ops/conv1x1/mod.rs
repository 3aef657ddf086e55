//! 1x1 convolutions as one matrix product per image where this project's CPU kernels apply,
//! plugged into burn as a backend extension with its own backward pass.
//!
//! burn-flex runs every convolution through its general path, which converts the input to NHWC
//! and the result back; a 1x1 convolution in NCHW is already `[c_out, c_in] x [c_in, h*w]` per
//! image. Through burn's own `matmul` that product allocated a zeroed output that burn-flex then
//! copied once more (for alignment), and the bias was a separate, single-threaded add;
//! [`kernel`] writes the product and the bias into the output once, and its backward pass sums
//! the weights' gradient over images in place. Elsewhere (WebGPU, other layers) burn's `Conv2d`
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
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
#[cfg(feature = "flex")]
use burn::tensor::TensorData;
use burn::tensor::{DType, Tensor};

/// 1x1 convolution, stride 1, no padding, one group, with a bias, in NCHW layout.
#[cfg(feature = "flex")]
#[backend_extension(Flex, Autodiff: cfg(feature = "autodiff"))]
pub trait Conv1x1Backend: Backend {
    /// `[batch, c_in, h, w]`, `[c_out, c_in, 1, 1]` and `[c_out]` to `[batch, c_out, h, w]`.
    fn conv1x1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// The input's gradient from the output's.
    fn conv1x1_input_grad(dy: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The weights' (`[c_out, c_in, 1, 1]`) and the bias's (`[c_out]`) gradients.
    fn conv1x1_param_grads(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        c_out: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

#[cfg(feature = "flex")]
fn f32_tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(feature = "flex")]
impl Conv1x1Backend for Flex {
    fn conv1x1(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let [x, weight, bias] = [x, weight, bias].map(|t| t.to_contiguous());
        let s = x.layout().shape();
        let d = kernel::Dims {
            batch: s[0],
            c_in: s[1],
            c_out: weight.layout().shape()[0],
            plane: s[2] * s[3],
        };
        let y = kernel::forward(x.storage(), weight.storage(), bias.storage(), d);
        f32_tensor(y, vec![d.batch, d.c_out, s[2], s[3]])
    }

    fn conv1x1_input_grad(dy: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let [dy, weight] = [dy, weight].map(|t| t.to_contiguous());
        let s = dy.layout().shape();
        let d = kernel::Dims {
            batch: s[0],
            c_in: weight.layout().shape()[1],
            c_out: s[1],
            plane: s[2] * s[3],
        };
        let dx = kernel::input_grad(dy.storage(), weight.storage(), d);
        f32_tensor(dx, vec![d.batch, d.c_in, s[2], s[3]])
    }

    fn conv1x1_param_grads(
        x: FlexTensor,
        dy: FlexTensor,
        c_out: usize,
    ) -> (FlexTensor, FlexTensor) {
        let [x, dy] = [x, dy].map(|t| t.to_contiguous());
        let s = x.layout().shape();
        let d = kernel::Dims {
            batch: s[0],
            c_in: s[1],
            c_out,
            plane: s[2] * s[3],
        };
        let (dw, dbias) = kernel::param_grads(x.storage(), dy.storage(), d);
        (
            f32_tensor(dw, vec![c_out, d.c_in, 1, 1]),
            f32_tensor(dbias, vec![c_out]),
        )
    }
}

fn applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    let [_, _, kh, kw] = conv.weight.dims();
    super::cpu_kernels_apply(&x.device())
        && x.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32
        && kh == 1
        && kw == 1
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(
            conv.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        )
}

#[cfg(feature = "flex")]
fn on_flex(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let c_out = conv.weight.dims()[0];
    // A layer without a bias adds zeros (a constant: no gradient is computed for it).
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::<1>::zeros([c_out], &x.device()),
    };
    Tensor::from_dispatch(<Dispatch as Conv1x1Backend>::conv1x1(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// `conv.forward(x)` for a 1x1, stride-1, unpadded convolution.
pub fn conv1x1(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if !applies(conv, &x) {
        return conv.forward(x);
    }
    #[cfg(feature = "flex")]
    return on_flex(conv, x);
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature")
}

#[cfg(all(test, feature = "flex", feature = "autodiff"))]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn forward_and_gradients_match_burns_convolution() {
        let device = burn::tensor::Device::flex().autodiff();
        for (batch, c_in, c_out, h, w, bias) in [
            (3, 16, 32, 12, 9, true),
            (2, 5, 1, 7, 7, true),
            (1, 4, 6, 5, 3, false),
            (17, 3, 2, 4, 5, true),
        ] {
            let layer = Conv2dConfig::new([c_in, c_out], [1, 1])
                .with_bias(bias)
                .init(&device);
            assert!(applies(
                &layer,
                &Tensor::<4>::zeros([1, c_in, 1, 1], &device)
            ));
            let x =
                Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device)
                    .require_grad();
            let fast = conv1x1(&layer, x.clone());
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
