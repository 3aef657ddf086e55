//! The four convolutional units of the paper's Fig. 1: (a) forward, (b) recurrent, (c) residual,
//! (d) recurrent residual. Each maps `[B, in, H, W]` to `[B, out, H, W]`.
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::rcl::{Rcl, RclConfig};
use crate::ops::bn_relu::{bn_relu_eval, bn_relu_train, update_running_stats};
use crate::ops::conv1x1::conv1x1;
use crate::ops::conv3x3::conv3x3;

/// Which unit the network is built of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// (a) two conv-BN-ReLU layers: U-Net.
    Forward,
    /// (b) 1x1 conv then two RCLs: RU-Net.
    Recurrent,
    /// (c) 1x1 conv, two conv-BN-ReLU layers, residual add: ResU-Net.
    Residual,
    /// (d) 1x1 conv, two RCLs, residual add: R2U-Net.
    RecurrentResidual,
}

/// A conv 3x3 → batch norm → ReLU layer, the building block of units (a) and (c).
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub norm: BatchNorm,
}

impl ConvBnRelu {
    fn new(channels: [usize; 2], device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(channels[1]).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = conv3x3(&self.conv, x);
        let device = z.device();
        let n = &self.norm;
        if !device.is_autodiff() {
            let mean = n.running_mean.value().to_device(&device);
            let var = n.running_var.value().to_device(&device);
            return bn_relu_eval(z, n.gamma.val(), n.beta.val(), mean, var, n.epsilon);
        }
        // burn's BatchNorm training pass, with the normalisation and the ReLU fused.
        let r = bn_relu_train(z, n.gamma.val(), n.beta.val(), n.epsilon);
        update_running_stats(
            (&n.running_mean, &n.running_var),
            (r.mean, r.variance),
            n.momentum,
        );
        r.output
    }
}

/// Configuration to create a [convolutional unit](Unit).
#[derive(Config, Debug)]
pub struct UnitConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kind: UnitKind,
    #[config(default = 2)]
    pub t: usize,
}

/// One of the paper's four units.
#[derive(Module, Debug)]
pub enum Unit {
    Forward(ForwardUnit),
    Recurrent(RecurrentUnit),
    Residual(ResidualUnit),
    RecurrentResidual(RecurrentResidualUnit),
}

#[derive(Module, Debug)]
pub struct ForwardUnit {
    pub first: ConvBnRelu,
    pub second: ConvBnRelu,
}

#[derive(Module, Debug)]
pub struct RecurrentUnit {
    pub entry: Conv2d,
    pub first: Rcl,
    pub second: Rcl,
}

#[derive(Module, Debug)]
pub struct ResidualUnit {
    pub entry: Conv2d,
    pub first: ConvBnRelu,
    pub second: ConvBnRelu,
}

#[derive(Module, Debug)]
pub struct RecurrentResidualUnit {
    pub entry: Conv2d,
    pub first: Rcl,
    pub second: Rcl,
}

impl UnitConfig {
    /// Returns the initialized unit.
    pub fn init(&self, device: &Device) -> Unit {
        let (i, o) = (self.in_channels, self.out_channels);
        // The 1x1 entry conv makes the channel counts match so the residual add is defined.
        let entry = || Conv2dConfig::new([i, o], [1, 1]).init(device);
        let rcl = || RclConfig::new(o).with_t(self.t).init(device);
        match self.kind {
            UnitKind::Forward => Unit::Forward(ForwardUnit {
                first: ConvBnRelu::new([i, o], device),
                second: ConvBnRelu::new([o, o], device),
            }),
            UnitKind::Recurrent => Unit::Recurrent(RecurrentUnit {
                entry: entry(),
                first: rcl(),
                second: rcl(),
            }),
            UnitKind::Residual => Unit::Residual(ResidualUnit {
                entry: entry(),
                first: ConvBnRelu::new([o, o], device),
                second: ConvBnRelu::new([o, o], device),
            }),
            UnitKind::RecurrentResidual => Unit::RecurrentResidual(RecurrentResidualUnit {
                entry: entry(),
                first: rcl(),
                second: rcl(),
            }),
        }
    }
}

impl Unit {
    /// # Shapes
    /// - input `[batch, in_channels, height, width]`
    /// - output `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Unit::Forward(u) => u.second.forward(u.first.forward(x)),
            Unit::Recurrent(u) => u.second.forward(u.first.forward(conv1x1(&u.entry, x))),
            Unit::Residual(u) => {
                let x = conv1x1(&u.entry, x);
                x.clone() + u.second.forward(u.first.forward(x))
            }
            Unit::RecurrentResidual(u) => {
                let x = conv1x1(&u.entry, x);
                x.clone() + u.second.forward(u.first.forward(x))
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// The fused layer against burn's conv -> BatchNorm -> ReLU: the output and the running
    /// statistics after a training pass, and the output in inference mode.
    #[test]
    fn fused_conv_bn_relu_matches_burns_modules() {
        let device = Device::flex().autodiff();
        let fused = ConvBnRelu::new([3, 8], &device);
        // Its own batch norm: a cloned module would share the running-statistics state.
        let plain = ConvBnRelu {
            conv: fused.conv.clone(),
            norm: BatchNormConfig::new(8).init(&device),
        };
        let x = Tensor::<4>::random([4, 3, 10, 9], Distribution::Normal(0.3, 1.5), &device);
        let tol = Tolerance::rel_abs(1e-4, 1e-4);
        let got = fused.forward(x.clone());
        let want =
            burn::tensor::activation::relu(plain.norm.forward(plain.conv.forward(x.clone())));
        got.inner()
            .into_data()
            .assert_approx_eq::<f32>(&want.inner().into_data(), tol);
        for (a, b) in [
            (
                fused.norm.running_mean.value(),
                plain.norm.running_mean.value(),
            ),
            (
                fused.norm.running_var.value(),
                plain.norm.running_var.value(),
            ),
        ] {
            a.inner()
                .into_data()
                .assert_approx_eq::<f32>(&b.inner().into_data(), tol);
        }
        let (fused, plain, x) = (fused.valid(), plain.valid(), x.inner());
        let got = fused.forward(x.clone());
        let want = burn::tensor::activation::relu(plain.norm.forward(plain.conv.forward(x)));
        got.into_data()
            .assert_approx_eq::<f32>(&want.into_data(), tol);
    }
}
