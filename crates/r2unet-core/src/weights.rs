//! Weights files: burn's burnpack format with the model and preprocessing configs in its
//! metadata, so a file of another architecture, task or channel count is refused with a message
//! instead of loading garbage or panicking.
use std::collections::BTreeMap;

use burn::store::{BurnpackStore, HalfPrecisionAdapter, ModuleSnapshot};
use burn::tensor::{Bytes, Device};

use crate::error::{Error, Result};
use crate::model::{ModelConfig, R2UNet};
use crate::preprocess::PreprocessConfig;

/// Marks a burnpack file as an r2unet model; bumped on incompatible changes.
pub const FORMAT: &str = "r2unet-1";
const KEY_FORMAT: &str = "r2unet.format";
const KEY_MODEL: &str = "r2unet.model";
const KEY_PREPROCESS: &str = "r2unet.preprocess";
const KEY_INFO: &str = "r2unet.info";
const KEY_PRECISION: &str = "r2unet.precision";

/// Everything about a model except its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelBundle {
    pub model: ModelConfig,
    pub preprocess: PreprocessConfig,
    /// Free-form provenance (dataset, command, epochs, metrics), shown by `r2unet` and the page.
    pub info: BTreeMap<String, String>,
}

/// Precision of stored tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// Half the size; batch-norm statistics stay f32 (their variance underflows in f16).
    F16,
}

/// Serialises a model and its bundle to burnpack bytes.
pub fn to_bytes(model: &R2UNet, bundle: &ModelBundle, precision: Precision) -> Result<Vec<u8>> {
    let info = serde_json::to_string(&bundle.info).map_err(|e| Error::Weights(e.to_string()))?;
    let mut store = BurnpackStore::from_bytes(None)
        .metadata(KEY_FORMAT, FORMAT)
        .metadata(KEY_MODEL, bundle.model.to_string())
        .metadata(KEY_PREPROCESS, bundle.preprocess.to_string())
        .metadata(KEY_INFO, info)
        .metadata(KEY_PRECISION, if precision == Precision::F16 { "f16" } else { "f32" });
    if precision == Precision::F16 {
        store = store.with_to_adapter(HalfPrecisionAdapter::new());
    }
    model.save_into(&mut store).map_err(|e| Error::Weights(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| Error::Weights(e.to_string()))?;
    Ok(bytes.to_vec())
}

/// Reads only the configs of a weights file.
pub fn read_bundle(bytes: &[u8]) -> Result<ModelBundle> {
    if bytes.is_empty() {
        return Err(Error::Weights("the file is empty (0 bytes)".into()));
    }
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::Weights(format!("not a burnpack file, or cut short ({e:?})")))?;
    let meta = reader.metadata();
    let get = |key: &str| {
        meta.get(key).ok_or_else(|| {
            Error::Weights(format!("burnpack file without '{key}': not an r2unet model"))
        })
    };
    let format = get(KEY_FORMAT)?;
    if format != FORMAT {
        return Err(Error::Weights(format!("format '{format}' is not supported (expected '{FORMAT}')")));
    }
    let model: ModelConfig = serde_json::from_str(get(KEY_MODEL)?)
        .map_err(|e| Error::Weights(format!("model config: {e}")))?;
    model.validate()?;
    let preprocess: PreprocessConfig = serde_json::from_str(get(KEY_PREPROCESS)?)
        .map_err(|e| Error::Weights(format!("preprocess config: {e}")))?;
    preprocess.validate()?;
    let info = match meta.get(KEY_INFO) {
        Some(s) => serde_json::from_str(s).map_err(|e| Error::Weights(format!("info: {e}")))?,
        None => BTreeMap::new(),
    };
    if model.in_channels != preprocess.task.channels() {
        return Err(Error::WeightsMismatch(format!(
            "model takes {} channels but task '{}' gives {}",
            model.in_channels,
            preprocess.task.name(),
            preprocess.task.channels()
        )));
    }
    Ok(ModelBundle { model, preprocess, info })
}

/// Builds the model a weights file describes, on `device`, and loads its tensors.
pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<(R2UNet, ModelBundle)> {
    let bundle = read_bundle(bytes)?;
    let mut model = bundle.model.init(device);
    load_into(&mut model, bytes)?;
    Ok((model, bundle))
}

/// Loads tensors into an existing model, refusing anything but an exact match.
pub fn load_into(model: &mut R2UNet, bytes: &[u8]) -> Result<()> {
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::Weights(format!("not a burnpack file, or cut short ({e:?})")))?;
    let half = reader.metadata().get(KEY_PRECISION).is_some_and(|p| p == "f16");
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes.to_vec())));
    // The adapter casts both ways, so it is applied only to files stored in f16.
    if half {
        store = store.with_from_adapter(HalfPrecisionAdapter::new());
    }
    let result = model.load_from(&mut store).map_err(|e| Error::WeightsMismatch(e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        let mut parts = Vec::new();
        if !result.missing.is_empty() {
            parts.push(format!("{} tensors missing (e.g. {})", result.missing.len(), result.missing[0].0));
        }
        if !result.unused.is_empty() {
            parts.push(format!("{} tensors unused (e.g. {})", result.unused.len(), result.unused[0]));
        }
        if !result.errors.is_empty() {
            parts.push(format!("{} tensors rejected (e.g. {:?})", result.errors.len(), result.errors[0]));
        }
        return Err(Error::WeightsMismatch(parts.join("; ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Task;
    use burn::tensor::{Distribution, Tensor};

    fn bundle(model: ModelConfig) -> ModelBundle {
        let mut info = BTreeMap::new();
        info.insert("dataset".into(), "test".into());
        ModelBundle { model, preprocess: PreprocessConfig::for_task(Task::Retina), info }
    }

    fn small() -> ModelConfig {
        ModelConfig::new().with_widths(vec![4, 8])
    }

    #[test]
    fn round_trip_keeps_outputs_in_f32_and_close_in_f16() {
        let device = Device::flex();
        let model = small().init(&device);
        let x = Tensor::<4>::random([1, 1, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let want = model.forward(x.clone()).into_data();
        for (precision, tol) in [(Precision::F32, 1e-6), (Precision::F16, 2e-2)] {
            let bytes = to_bytes(&model, &bundle(small()), precision).unwrap();
            let (loaded, b) = from_bytes(&bytes, &device).unwrap();
            assert_eq!(b, bundle(small()));
            let got = loaded.forward(x.clone()).into_data();
            let (g, w) = (got.try_to_vec::<f32>().unwrap(), want.try_to_vec::<f32>().unwrap());
            let max = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(max < tol, "{precision:?}: {max}");
        }
    }

    #[test]
    fn f16_file_is_about_half_the_size() {
        let device = Device::flex();
        let model = ModelConfig::new().init(&device);
        let f32b = to_bytes(&model, &bundle(ModelConfig::new()), Precision::F32).unwrap().len();
        let f16b = to_bytes(&model, &bundle(ModelConfig::new()), Precision::F16).unwrap().len();
        assert!(f16b * 10 < f32b * 6, "{f16b} vs {f32b}");
    }

    #[test]
    fn refuses_empty_truncated_foreign_and_mismatched_files() {
        let device = Device::flex();
        let model = small().init(&device);
        let bytes = to_bytes(&model, &bundle(small()), Precision::F32).unwrap();
        let msg = |r: Result<(R2UNet, ModelBundle)>| r.map(|_| ()).unwrap_err().to_string();
        assert!(msg(from_bytes(&[], &device)).contains("empty"));
        assert!(msg(from_bytes(&bytes[..bytes.len() / 2], &device)).contains("invalid weights"));
        assert!(msg(from_bytes(b"PK\x03\x04 zip file", &device)).contains("burnpack"));
        // Same tensors, but the metadata claims another architecture.
        let liar = to_bytes(&model, &bundle(small().with_widths(vec![4, 8, 16])), Precision::F32).unwrap();
        let err = msg(from_bytes(&liar, &device));
        assert!(err.contains("do not fit"), "{err}");
        // Skin wants 3 channels; a 1-channel model labelled skin is refused up front.
        let mut b = bundle(small());
        b.preprocess = PreprocessConfig::for_task(Task::Skin);
        let wrong = to_bytes(&model, &b, Precision::F32).unwrap();
        assert!(msg(from_bytes(&wrong, &device)).contains("channels"));
    }
}
