//! 1x1 convolutions as a batched matrix product where this project's CPU kernels apply.
//!
//! burn-flex runs every convolution through its general path, which converts the input to NHWC
//! and the result back; a 1x1 convolution in NCHW is already `[c_out, c_in] x [c_in, h*w]` per
//! image, so a matmul on free reshapes does the same work without the copies, and burn's
//! autodiff gives its backward pass. Elsewhere (WebGPU, other layers) burn's `Conv2d` runs.
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

fn applies(conv: &Conv2d, x: &Tensor<4>) -> bool {
    let [_, _, kh, kw] = conv.weight.dims();
    super::cpu_kernels_apply(&x.device())
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

/// `conv.forward(x)` for a 1x1, stride-1, unpadded convolution.
pub fn conv1x1(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if !applies(conv, &x) {
        return conv.forward(x);
    }
    let [batch, c_in, h, w] = x.dims();
    let [c_out, _, _, _] = conv.weight.dims();
    let weight = conv.weight.val().reshape([1, c_out, c_in]);
    let y = weight.matmul(x.reshape([batch, c_in, h * w]));
    let y = match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, c_out, 1]),
        None => y,
    };
    y.reshape([batch, c_out, h, w])
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
