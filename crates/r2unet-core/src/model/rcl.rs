//! The recurrent convolutional layer (RCL) of the paper's Fig. 3:
//! `h(0) = ReLU(BN(W_f * x))`, `h(k) = ReLU(BN(W_f * x + W_r * h(k-1)))` for `k = 1..=t`.
use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

use super::step_norm::StepNorm;
use crate::ops::conv3x3::{conv3x3, conv3x3_add};

/// Configuration to create a [recurrent convolutional layer](Rcl).
#[derive(Config, Debug)]
pub struct RclConfig {
    /// Channels in and out (an RCL never changes the channel count).
    pub channels: usize,
    /// Recurrent steps after the feed-forward one.
    #[config(default = 2)]
    pub t: usize,
}

/// A recurrent convolutional layer with feed-forward weights `W_f` and recurrent weights `W_r`
/// shared across all time steps, and one batch norm (scale and shift) shared across steps with
/// running statistics per step (see [`StepNorm`] for why).
#[derive(Module, Debug)]
pub struct Rcl {
    pub feed_forward: Conv2d,
    pub recurrent: Conv2d,
    pub norm: StepNorm,
    #[module(skip)]
    pub t: usize,
}

impl RclConfig {
    /// Returns the initialized layer.
    pub fn init(&self, device: &Device) -> Rcl {
        // Bias-free: the batch norm that follows has its own shift.
        let conv = || {
            Conv2dConfig::new([self.channels, self.channels], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        Rcl {
            feed_forward: conv(),
            recurrent: conv(),
            norm: StepNorm::new(self.channels, self.t + 1, device),
            t: self.t,
        }
    }
}

impl Rcl {
    /// # Shapes
    /// - input `[batch, channels, height, width]`
    /// - output `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // W_f * x does not change across steps: compute it once (half the cost of recomputing).
        let fx = conv3x3(&self.feed_forward, x);
        let mut h = self.norm.forward_relu(fx.clone(), 0);
        for k in 1..=self.t {
            h = self
                .norm
                .forward_relu(conv3x3_add(&self.recurrent, h, fx.clone()), k);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::TensorData;

    /// One channel, 3x3 kernels that are all zero but the centre, so each conv is a scalar
    /// multiply and the recurrence can be followed by hand.
    #[test]
    fn recurrence_matches_hand_computation() {
        let device = Device::flex();
        let mut rcl = RclConfig::new(1).with_t(2).init(&device);
        let centre = |v: f32| {
            let mut k = [0.0f32; 9];
            k[4] = v;
            Param::from_tensor(Tensor::<4>::from_data(
                TensorData::new(k.to_vec(), [1, 1, 3, 3]),
                &device,
            ))
        };
        rcl.feed_forward.weight = centre(2.0);
        rcl.recurrent.weight = centre(0.5);
        // Inference mode on a plain device: BN uses running stats (mean 0, var 1, gamma 1, beta 0).
        let eps = 1e-5f32;
        let bn = |v: f32| v / (1.0 + eps).sqrt();
        let input = [1.0f32, -1.0, 0.25, 3.0];
        let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 1, 2, 2]), &device);
        let out: Vec<f32> = rcl.forward(x).into_data().try_to_vec().unwrap();
        for (i, &xi) in input.iter().enumerate() {
            let fx = 2.0 * xi;
            let h0 = bn(fx).max(0.0);
            let h1 = bn(fx + 0.5 * h0).max(0.0);
            let h2 = bn(fx + 0.5 * h1).max(0.0);
            assert!(
                (out[i] - h2).abs() < 1e-5,
                "pixel {i}: got {}, expected {h2}",
                out[i]
            );
        }
    }

    #[test]
    fn t_zero_is_a_plain_conv_bn_relu() {
        let device = Device::flex();
        let rcl = RclConfig::new(4).with_t(0).init(&device);
        let x = Tensor::<4>::random(
            [1, 4, 5, 5],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = burn::tensor::activation::relu(
            rcl.norm.forward(rcl.feed_forward.forward(x.clone()), 0),
        );
        let got = rcl.forward(x);
        got.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), burn::tensor::Tolerance::default());
    }
}
