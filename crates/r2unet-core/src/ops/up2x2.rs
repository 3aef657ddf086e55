//! The decoder's 2x2, stride-2 transposed convolutions as one matrix product per image where this
//! project's CPU kernels apply.
//!
//! With a 2x2 kernel and stride 2 the output pixels `(2i + a, 2j + c)` of every input pixel
//! `(i, j)` do not overlap, so the layer is `[4 c_out, c_in] x [c_in, h*w]` followed by moving
//! each of the four products to its place. burn-flex's general transposed convolution converts
//! to NHWC and back serially, forward and backward (about 5 % of a training step's samples);
//! here it is a batched GEMM and one permuting copy, and burn's autodiff gives the backward pass.
//! Elsewhere (WebGPU, other shapes) burn's `ConvTranspose2d` runs.
use burn::nn::conv::ConvTranspose2d;
use burn::tensor::Tensor;

fn applies(up: &ConvTranspose2d, x: &Tensor<4>) -> bool {
    super::cpu_kernels_apply(&x.device())
        && up.kernel_size == [2, 2]
        && up.stride == [2, 2]
        && up.dilation == [1, 1]
        && up.groups == 1
        && up.padding == [0, 0]
        && up.padding_out == [0, 0]
}

/// `up.forward(x)` for a 2x2, stride-2 transposed convolution: `[b, c_in, h, w]` to
/// `[b, c_out, 2h, 2w]`.
pub fn up2x2(up: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    if !applies(up, &x) {
        return up.forward(x);
    }
    let [batch, c_in, h, w] = x.dims();
    let [_, c_out, _, _] = up.weight.dims();
    // [c_in, c_out, 2, 2] -> rows (c_out, a, c), columns c_in.
    let weight = up
        .weight
        .val()
        .permute([1, 2, 3, 0])
        .reshape([1, c_out * 4, c_in]);
    let y = weight.matmul(x.reshape([batch, c_in, h * w])); // [b, 4 c_out, h*w]
    let y = y
        .reshape([batch, c_out, 2, 2, h, w])
        .permute([0, 1, 4, 2, 5, 3]) // [b, c_out, h, a, w, c]
        .reshape([batch, c_out, 2 * h, 2 * w]);
    match &up.bias {
        Some(bias) => y + bias.val().reshape([1, c_out, 1, 1]),
        None => y,
    }
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
