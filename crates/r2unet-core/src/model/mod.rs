//! The model zoo: one U-shaped assembly, built of the unit the config names.
//!
//! | name        | unit (Fig. 1)              | attention gates |
//! |-------------|----------------------------|-----------------|
//! | `unet`      | (a) forward                | no              |
//! | `runet`     | (b) recurrent              | no              |
//! | `resunet`   | (c) residual               | no              |
//! | `r2unet`    | (d) recurrent residual     | no              |
//! | `attr2unet` | (d) recurrent residual     | on every skip   |
pub mod attention;
pub mod rcl;
pub mod step_norm;
pub mod unet;
pub mod unit;

use burn::config::Config;
use burn::tensor::Device;

pub use unet::R2UNet;
pub use unit::UnitKind;

use crate::error::Error;

/// The architectures this crate builds, by their CLI names.
pub const ARCHITECTURES: [&str; 5] = ["unet", "runet", "resunet", "r2unet", "attr2unet"];

/// Configuration to create an [R2U-Net family model](R2UNet), using [`ModelConfig::init`].
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Input channels: 1 for retina (green channel) and lung, 3 for skin (RGB).
    #[config(default = 1)]
    pub in_channels: usize,
    /// Feature widths from the top level down; `len - 1` encoding and decoding units plus the
    /// bottleneck. Default 16-32-64-128, as in the re-implementation report.
    #[config(default = "vec![16, 32, 64, 128]")]
    pub widths: Vec<usize>,
    /// Recurrent steps per RCL (the paper's t).
    #[config(default = 2)]
    pub t: usize,
    /// The unit every level is built of.
    #[config(default = "UnitKind::RecurrentResidual")]
    pub unit: UnitKind,
    /// Attention gates on the skip connections.
    #[config(default = false)]
    pub attention: bool,
}

impl ModelConfig {
    /// The configuration for an architecture name from [`ARCHITECTURES`].
    pub fn for_architecture(name: &str) -> crate::Result<Self> {
        let (unit, attention) = match name {
            "unet" => (UnitKind::Forward, false),
            "runet" => (UnitKind::Recurrent, false),
            "resunet" => (UnitKind::Residual, false),
            "r2unet" => (UnitKind::RecurrentResidual, false),
            "attr2unet" => (UnitKind::RecurrentResidual, true),
            other => {
                return Err(Error::Config(format!(
                    "unknown architecture '{other}'; expected one of {}",
                    ARCHITECTURES.join(", ")
                )));
            }
        };
        Ok(Self::new().with_unit(unit).with_attention(attention))
    }

    /// The architecture's CLI name.
    pub fn architecture(&self) -> &'static str {
        match (self.unit, self.attention) {
            (UnitKind::Forward, _) => "unet",
            (UnitKind::Recurrent, _) => "runet",
            (UnitKind::Residual, _) => "resunet",
            (UnitKind::RecurrentResidual, false) => "r2unet",
            (UnitKind::RecurrentResidual, true) => "attr2unet",
        }
    }

    /// Inputs must be a multiple of this in height and width (one 2x2 pool per level).
    pub fn size_multiple(&self) -> usize {
        1 << (self.widths.len().saturating_sub(1))
    }

    /// Checks the values that `init` would otherwise panic on.
    pub fn validate(&self) -> crate::Result<()> {
        if self.in_channels == 0 || self.in_channels > 4 {
            return Err(Error::Config(format!(
                "in_channels must be 1..=4, got {}",
                self.in_channels
            )));
        }
        if self.widths.len() < 2 || self.widths.len() > 6 || self.widths.contains(&0) {
            return Err(Error::Config(format!(
                "widths must list 2 to 6 positive values, got {:?}",
                self.widths
            )));
        }
        if self.t > 8 {
            return Err(Error::Config(format!(
                "t must be at most 8, got {}",
                self.t
            )));
        }
        Ok(())
    }

    /// Returns the initialized model. Call [`validate`](Self::validate) first on untrusted input.
    pub fn init(&self, device: &Device) -> R2UNet {
        unet::build(self, device)
    }

    /// Trainable parameters (convolution weights and biases, batch-norm scale and shift; not the
    /// batch-norm running statistics, which burn's `num_params` also counts).
    pub fn trainable_params(&self) -> usize {
        let w = &self.widths;
        let conv3 = |i: usize, o: usize| 9 * i * o;
        let conv1 = |i: usize, o: usize| i * o + o;
        let bn = |c: usize| 2 * c;
        let rcl = |c: usize| 2 * conv3(c, c) + bn(c);
        let unit = |i: usize, o: usize| match self.unit {
            UnitKind::Forward => conv3(i, o) + bn(o) + conv3(o, o) + bn(o),
            UnitKind::Recurrent | UnitKind::RecurrentResidual => conv1(i, o) + 2 * rcl(o),
            UnitKind::Residual => conv1(i, o) + 2 * (conv3(o, o) + bn(o)),
        };
        let mut n = unit(self.in_channels, w[0]);
        for l in 1..w.len() {
            n += unit(w[l - 1], w[l]);
        }
        for l in (0..w.len() - 1).rev() {
            n += 4 * w[l + 1] * w[l] + w[l]; // 2x2 transposed conv with bias
            if self.attention {
                let inner = (w[l] / 2).max(1);
                n += conv1(w[l], inner)
                    + bn(inner)
                    + conv1(w[l], inner)
                    + bn(inner)
                    + conv1(inner, 1)
                    + bn(1);
            }
            n += unit(2 * w[l], w[l]);
        }
        n + conv1(w[0], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};

    /// The report's R2U-Net (16-32-64-128, t = 2) has 1,043,313 trainable parameters; the
    /// speed issue's PyTorch twin must print the same.
    #[test]
    fn r2unet_parameter_count_matches_reference() {
        assert_eq!(ModelConfig::new().trainable_params(), 1_043_313);
    }

    #[test]
    fn every_variant_has_the_expected_shapes_and_parameter_counts() {
        let device = Device::flex();
        for name in ARCHITECTURES {
            for in_channels in [1, 3] {
                let config = ModelConfig::for_architecture(name)
                    .unwrap()
                    .with_in_channels(in_channels);
                let model = config.init(&device);
                // burn counts each BN's running mean and variance too.
                let running: usize = model.running_stat_values();
                assert_eq!(
                    model.num_params(),
                    config.trainable_params() + running,
                    "{name} in_channels={in_channels}"
                );
                assert_eq!(config.architecture(), name);
                for (h, w) in [(48, 48), (24, 40)] {
                    let x = Tensor::<4>::random(
                        [2, in_channels, h, w],
                        Distribution::Normal(0.0, 1.0),
                        &device,
                    );
                    assert_eq!(model.forward(x).dims(), [2, 1, h, w], "{name} {h}x{w}");
                }
            }
        }
    }

    #[test]
    fn unknown_architecture_lists_the_valid_ones() {
        let err = ModelConfig::for_architecture("vnet")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vnet") && err.contains("r2unet") && err.contains("attr2unet"),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_bad_configs() {
        assert!(ModelConfig::new().validate().is_ok());
        assert!(ModelConfig::new().with_widths(vec![16]).validate().is_err());
        assert!(ModelConfig::new().with_in_channels(0).validate().is_err());
        assert!(
            ModelConfig::new()
                .with_widths(vec![16, 0])
                .validate()
                .is_err()
        );
    }
}
