//! Binary cross-entropy on logits, in the numerically stable form
//! `max(z, 0) - z * y + log(1 + exp(-|z|))`: the sigmoid is never formed, so saturated logits
//! neither overflow nor give `log(0)`.
use r2unet::burn::tensor::Tensor;

/// Mean BCE over all elements. `targets` hold 0.0 or 1.0.
pub fn bce_with_logits(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let relu = logits.clone().clamp_min(0.0);
    let softplus = logits.clone().abs().neg().exp().log1p();
    (relu - logits * targets + softplus).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2unet::burn::tensor::{Device, TensorData};

    #[test]
    fn matches_the_textbook_formula_and_survives_saturation() {
        let device = Device::flex();
        let z = [-3.0f32, -0.5, 0.0, 2.0, 80.0, -80.0];
        let y = [0.0f32, 1.0, 1.0, 0.0, 1.0, 0.0];
        let t = |v: &[f32]| {
            Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 1, 1, v.len()]), &device)
        };
        let got: f32 = bce_with_logits(t(&z), t(&y)).into_scalar();
        let want: f32 = z
            .iter()
            .zip(&y)
            .map(|(&z, &y)| {
                let p = 1.0 / (1.0 + (-z as f64).exp());
                let p = p.clamp(1e-300, 1.0 - 1e-16);
                -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
            })
            .sum::<f64>() as f32
            / z.len() as f32;
        assert!(got.is_finite());
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
}
