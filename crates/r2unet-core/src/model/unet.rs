//! The U-shaped assembly shared by every variant: units down with 2x2 max-pooling, 2x2
//! transposed convolutions up, concatenated (optionally gated) skips, a 1x1 conv to one logit.
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::ModelConfig;
use super::attention::AttentionGate;
use super::unit::{Unit, UnitConfig};
use crate::ops::conv1x1::conv1x1;
use crate::ops::max_pool2x2::max_pool2x2;
use crate::ops::up2x2::up2x2;

/// An R2U-Net family network (which family member depends on its [`ModelConfig`]).
#[derive(Module, Debug)]
pub struct R2UNet {
    pub encoders: Vec<Unit>,
    pub pool: MaxPool2d,
    pub ups: Vec<ConvTranspose2d>,
    pub gates: Vec<AttentionGate>,
    pub decoders: Vec<Unit>,
    pub head: Conv2d,
}

pub(super) fn build(config: &ModelConfig, device: &Device) -> R2UNet {
    let w = &config.widths;
    let unit = |i, o| {
        UnitConfig::new(i, o, config.unit)
            .with_t(config.t)
            .init(device)
    };
    let mut encoders = vec![unit(config.in_channels, w[0])];
    for l in 1..w.len() {
        encoders.push(unit(w[l - 1], w[l]));
    }
    let (mut ups, mut gates, mut decoders) = (Vec::new(), Vec::new(), Vec::new());
    // Decoder levels are stored bottom-up, in the order forward() runs them.
    for l in (0..w.len() - 1).rev() {
        ups.push(
            ConvTranspose2dConfig::new([w[l + 1], w[l]], [2, 2])
                .with_stride([2, 2])
                .init(device),
        );
        if config.attention {
            gates.push(AttentionGate::new(w[l], w[l], (w[l] / 2).max(1), device));
        }
        decoders.push(unit(2 * w[l], w[l]));
    }
    R2UNet {
        encoders,
        pool: MaxPool2dConfig::new([2, 2]).init(),
        ups,
        gates,
        decoders,
        head: Conv2dConfig::new([w[0], 1], [1, 1]).init(device),
    }
}

impl R2UNet {
    /// Inputs must be a multiple of this in height and width (one 2x2 pool per level below the
    /// first), as [`ModelConfig::size_multiple`](super::ModelConfig::size_multiple).
    pub fn size_multiple(&self) -> usize {
        1 << (self.encoders.len() - 1)
    }

    /// Logits (apply a sigmoid for probabilities).
    ///
    /// # Shapes
    /// - input `[batch, in_channels, H, W]`, H and W multiples of `2^(levels-1)`
    /// - output `[batch, 1, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.encoders.len());
        let mut x = x;
        for (level, encoder) in self.encoders.iter().enumerate() {
            if level > 0 {
                x = max_pool2x2(&self.pool, x); // [B, C, H/2^level, W/2^level]
            }
            x = encoder.forward(x);
            skips.push(x.clone());
        }
        skips.pop(); // the bottleneck is `x` itself
        for (i, (up, decoder)) in self.ups.iter().zip(&self.decoders).enumerate() {
            let up = up2x2(up, x); // [B, w[l], 2h, 2w]
            let skip = skips.pop().expect("one skip per decoder level");
            let skip = match self.gates.get(i) {
                Some(gate) => gate.forward(up.clone(), skip),
                None => skip,
            };
            x = decoder.forward(Tensor::cat(vec![skip, up], 1)); // [B, w[l], 2h, 2w]
        }
        conv1x1(&self.head, x)
    }

    /// Values held in batch-norm running statistics (burn's `num_params` counts them; the
    /// paper's trainable count does not).
    pub fn running_stat_values(&self) -> usize {
        let unit = |u: &Unit| -> usize {
            match u {
                Unit::Forward(f) => {
                    2 * (f.first.norm.gamma.dims()[0] + f.second.norm.gamma.dims()[0])
                }
                Unit::Residual(r) => {
                    2 * (r.first.norm.gamma.dims()[0] + r.second.norm.gamma.dims()[0])
                }
                Unit::Recurrent(r) => rcl(&r.first) + rcl(&r.second),
                Unit::RecurrentResidual(r) => rcl(&r.first) + rcl(&r.second),
            }
        };
        fn rcl(r: &super::rcl::Rcl) -> usize {
            2 * r.norm.channels() * r.norm.running_mean.len()
        }
        let gates: usize = self
            .gates
            .iter()
            .map(|g| 2 * (g.gate_norm.gamma.dims()[0] + g.skip_norm.gamma.dims()[0] + 1))
            .sum();
        self.encoders
            .iter()
            .chain(&self.decoders)
            .map(unit)
            .sum::<usize>()
            + gates
    }
}
