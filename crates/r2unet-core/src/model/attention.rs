//! Additive attention gate on a skip connection (Oktay et al., "Attention U-Net", 2018): the
//! decoder's signal `g` decides which skip pixels `x` pass.
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use crate::ops::conv1x1::conv1x1;

#[derive(Module, Debug)]
pub struct AttentionGate {
    pub gate: Conv2d,
    pub gate_norm: BatchNorm,
    pub skip: Conv2d,
    pub skip_norm: BatchNorm,
    pub psi: Conv2d,
    pub psi_norm: BatchNorm,
}

impl AttentionGate {
    /// `gate_channels` for `g`, `skip_channels` for `x`, `inner` for the joint space.
    pub fn new(gate_channels: usize, skip_channels: usize, inner: usize, device: &Device) -> Self {
        let conv = |i, o| Conv2dConfig::new([i, o], [1, 1]).init(device);
        Self {
            gate: conv(gate_channels, inner),
            gate_norm: BatchNormConfig::new(inner).init(device),
            skip: conv(skip_channels, inner),
            skip_norm: BatchNormConfig::new(inner).init(device),
            psi: conv(inner, 1),
            psi_norm: BatchNormConfig::new(1).init(device),
        }
    }

    /// # Shapes
    /// - g `[batch, gate_channels, H, W]`, x `[batch, skip_channels, H, W]`
    /// - output `[batch, skip_channels, H, W]`: `x` scaled by a per-pixel weight in (0, 1)
    pub fn forward(&self, g: Tensor<4>, x: Tensor<4>) -> Tensor<4> {
        let g1 = self.gate_norm.forward(conv1x1(&self.gate, g));
        let x1 = self.skip_norm.forward(conv1x1(&self.skip, x.clone()));
        let psi = sigmoid(self.psi_norm.forward(conv1x1(&self.psi, relu(g1 + x1)))); // [B, 1, H, W]
        x * psi
    }
}
