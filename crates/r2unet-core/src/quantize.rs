//! Int8 storage of the convolution kernels, for the smallest browser download: each kernel is
//! stored as i8 (7-bit levels, see `LEVELS`) with one symmetric scale per output slice (its first
//! dimension), the scales in the file's metadata. Biases and batch-norm tensors are small and stay
//! f32. The model still computes in f32: the kernels are dequantised once, when the file is loaded.
use std::collections::BTreeMap;
use std::sync::Arc;

use burn::store::bridge::map_data;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleAdapter, ModuleContext, ModuleSnapshot};
use burn::tensor::{DType, TensorData};

use crate::error::{Cause, Error, Result};
use crate::model::R2UNet;

/// Largest stored magnitude: 7-bit levels (-63..=63) in i8 storage. The download is what counts
/// and it is served gzipped: with 127 levels the kernels' bytes carry about 7.5 bits of entropy
/// and gzip saves 10 %, with 63 about 6.6 and gzip saves 21 % (retina: 1.02 -> 0.89 MB), while
/// DRIVE test metrics stay those of the f32 model to the third decimal (README).
const LEVELS: f32 = 63.0;

/// Kernels smaller than this stay f32: their scales would cost more than the bytes saved.
const MIN_ELEMENTS: usize = 256;

/// Scale per first-dimension slice, by tensor path.
pub type Scales = BTreeMap<String, Vec<f32>>;

/// The scales for every convolution kernel of `model` worth quantising.
pub fn scales_of(model: &R2UNet) -> Result<Scales> {
    let mut scales = Scales::new();
    for tensor in model.collect(None, None, false) {
        let numel: usize = tensor.shape.iter().product();
        if tensor.dtype != DType::F32 || tensor.shape.len() != 4 || numel < MIN_ELEMENTS {
            continue;
        }
        let unreadable = |e: Cause| Error::WeightsTensor {
            name: tensor.name.clone(),
            source: e,
        };
        let data = burn::store::bridge::to_data(&tensor).map_err(|e| unreadable(Box::new(e)))?;
        let values = data
            .as_slice::<f32>()
            .map_err(|e| unreadable(Box::new(e)))?;
        scales.insert(
            tensor.name.clone(),
            slice_scales(values, numel / tensor.shape[0]),
        );
    }
    Ok(scales)
}

/// One symmetric scale per run of `per` values: the largest magnitude maps to `LEVELS`.
fn slice_scales(values: &[f32], per: usize) -> Vec<f32> {
    values
        .chunks(per)
        .map(|slice| slice.iter().fold(0f32, |m, v| m.max(v.abs())) / LEVELS)
        .collect()
}

/// Checks a file's scales against its stored tensors before any is decoded, so that a damaged
/// or hand-edited file is refused with a message instead of failing inside the loader.
pub fn check(scales: &Scales, stored: &[(String, DType, Vec<usize>)]) -> Result<()> {
    for (name, s) in scales {
        let Some((_, dtype, shape)) = stored.iter().find(|(n, _, _)| n == name) else {
            return Err(Error::Weights(format!(
                "int8 scales name '{name}', which the file does not hold"
            )));
        };
        if *dtype != DType::I8 || shape.first() != Some(&s.len()) {
            return Err(Error::Weights(format!(
                "int8 tensor '{name}': stored as {dtype:?} {shape:?} with {} scales",
                s.len()
            )));
        }
        if s.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::Weights(format!(
                "int8 tensor '{name}': a scale is negative or not finite"
            )));
        }
    }
    Ok(())
}

/// Casts the listed kernels f32 -> i8 on save and i8 -> f32 on load (the direction follows the
/// stored dtype, as burn's `HalfPrecisionAdapter` does).
#[derive(Clone)]
pub struct Int8Adapter {
    scales: Arc<Scales>,
}

impl Int8Adapter {
    pub fn new(scales: Scales) -> Self {
        Self {
            scales: Arc::new(scales),
        }
    }
}

impl ModuleAdapter for Int8Adapter {
    fn adapt(&self, tensor: PackTensor, _ctx: ModuleContext<'_>) -> PackTensor {
        let Some(scales) = self.scales.get(&tensor.name).cloned() else {
            return tensor;
        };
        let (name, shape) = (tensor.name.clone(), tensor.shape.clone());
        match tensor.dtype {
            DType::F32 => map_data(tensor, name, DType::I8, shape, move |data| {
                quantize(data, &scales)
            }),
            DType::I8 => map_data(tensor, name, DType::F32, shape, move |data| {
                dequantize(data, &scales)
            }),
            _ => tensor,
        }
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

fn quantize(data: TensorData, scales: &[f32]) -> TensorData {
    let shape = data.shape().clone();
    let values = data.try_to_vec::<f32>().unwrap_or_default();
    let per = values.len() / scales.len().max(1);
    let q: Vec<i8> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales[i / per];
            if s > 0.0 {
                (v / s).round().clamp(-LEVELS, LEVELS) as i8
            } else {
                0
            }
        })
        .collect();
    TensorData::new(q, shape)
}

fn dequantize(data: TensorData, scales: &[f32]) -> TensorData {
    let shape = data.shape().clone();
    let q = data.try_to_vec::<i8>().unwrap_or_default();
    let per = q.len() / scales.len().max(1);
    let values: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * scales[i / per])
        .collect();
    TensorData::new(values, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_round_trip_is_within_half_a_step() {
        let values: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let data = TensorData::new(values.clone(), [2, 4, 8, 8]);
        let scales = slice_scales(&values, 256);
        let back = dequantize(quantize(data, &scales), &scales)
            .try_to_vec::<f32>()
            .unwrap();
        for (i, (a, b)) in values.iter().zip(&back).enumerate() {
            assert!(
                (a - b).abs() <= scales[i / 256] * 0.5 + 1e-6,
                "{i}: {a} vs {b}"
            );
        }
    }
}
