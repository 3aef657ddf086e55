//! Weights files: burn's burnpack format with the model and preprocessing configs in its
//! metadata, so a file of another architecture, task or channel count is refused with a message
//! instead of loading garbage or panicking; then a trailer with the SHA-256 of everything before
//! it, so that a file changed anywhere (a flipped bit on disk or in a download) is refused too,
//! rather than loading slightly wrong weights that still make a plausible mask.
use std::collections::BTreeMap;

use burn::store::{BurnpackStore, HalfPrecisionAdapter, ModuleSnapshot};
use burn::tensor::{Bytes, DType, Device};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{ModelConfig, R2UNet};
use crate::preprocess::PreprocessConfig;
use crate::quantize::{self, Int8Adapter, Scales};

/// Marks a burnpack file as an r2unet model; bumped on incompatible changes.
pub const FORMAT: &str = "r2unet-1";
const KEY_FORMAT: &str = "r2unet.format";
const KEY_MODEL: &str = "r2unet.model";
const KEY_PREPROCESS: &str = "r2unet.preprocess";
const KEY_INFO: &str = "r2unet.info";
const KEY_PRECISION: &str = "r2unet.precision";
const KEY_SCALES: &str = "r2unet.int8_scales";

/// Ends every weights file: the SHA-256 of the burnpack bytes before it, then this tag.
const DIGEST_TAG: &[u8; 8] = b"r2unet#1";
const TRAILER_LEN: usize = 32 + DIGEST_TAG.len();

/// `pack` with its digest trailer appended.
fn seal(mut pack: Vec<u8>) -> Vec<u8> {
    let digest = Sha256::digest(&pack);
    pack.extend_from_slice(&digest);
    pack.extend_from_slice(DIGEST_TAG);
    pack
}

/// The burnpack bytes of a weights file, after checking its digest.
fn unseal(bytes: &[u8]) -> Result<&[u8]> {
    if bytes.is_empty() {
        return Err(Error::Weights("the file is empty (0 bytes)".into()));
    }
    let tagged = bytes.len() >= TRAILER_LEN && bytes.ends_with(DIGEST_TAG);
    if !tagged {
        // Say what the file is: not a burnpack at all (or one cut short), or one from before
        // the digest.
        pack_reader(bytes)?;
        return Err(Error::NoDigest);
    }
    let (pack, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let digest = &trailer[..32];
    if Sha256::digest(pack).as_slice() != digest {
        return Err(Error::DigestMismatch);
    }
    Ok(pack)
}

/// A weights file written before files carried a digest, sealed as it is: for `r2unet export`,
/// the way to bring such a file up to date. A file that has a digest is checked instead.
pub fn seal_legacy(bytes: &[u8]) -> Result<Vec<u8>> {
    match unseal(bytes) {
        Ok(_) => Ok(bytes.to_vec()),
        Err(Error::NoDigest) => {
            // Only a readable r2unet file is worth sealing.
            read_bundle_of_pack(bytes)?;
            Ok(seal(bytes.to_vec()))
        }
        Err(e) => Err(e),
    }
}

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
    /// A quarter of the size: convolution kernels as i8 with a scale per output slice
    /// (`quantize.rs`); biases and batch-norm tensors stay f32.
    Int8,
}

impl Precision {
    fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }
}

/// Serialises a model and its bundle to burnpack bytes.
pub fn to_bytes(model: &R2UNet, bundle: &ModelBundle, precision: Precision) -> Result<Vec<u8>> {
    let info = serde_json::to_string(&bundle.info).map_err(|e| Error::Weights(e.to_string()))?;
    let mut store = BurnpackStore::from_bytes(None)
        .metadata(KEY_FORMAT, FORMAT)
        .metadata(KEY_MODEL, bundle.model.to_string())
        .metadata(KEY_PREPROCESS, bundle.preprocess.to_string())
        .metadata(KEY_INFO, info)
        .metadata(KEY_PRECISION, precision.name());
    match precision {
        Precision::F32 => {}
        Precision::F16 => store = store.with_to_adapter(HalfPrecisionAdapter::new()),
        Precision::Int8 => {
            let scales = quantize::scales_of(model)?;
            let json = serde_json::to_string(&scales).map_err(|e| Error::Weights(e.to_string()))?;
            store = store
                .metadata(KEY_SCALES, json)
                .with_to_adapter(Int8Adapter::new(scales));
        }
    }
    model
        .save_into(&mut store)
        .map_err(|e| Error::Weights(e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| Error::Weights(e.to_string()))?;
    Ok(seal(bytes.to_vec()))
}

/// The burnpack container of a weights file, or an error saying it is none.
fn pack_reader(bytes: &[u8]) -> Result<burn_pack::Reader> {
    burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(Error::NotBurnpack)
}

/// Reads only the configs of a weights file.
pub fn read_bundle(bytes: &[u8]) -> Result<ModelBundle> {
    read_bundle_of_pack(unseal(bytes)?)
}

fn read_bundle_of_pack(bytes: &[u8]) -> Result<ModelBundle> {
    let reader = pack_reader(bytes)?;
    let meta = reader.metadata();
    let get = |key: &str| {
        meta.get(key).ok_or_else(|| {
            Error::Weights(format!(
                "burnpack file without '{key}': not an r2unet model"
            ))
        })
    };
    let format = get(KEY_FORMAT)?;
    if format != FORMAT {
        return Err(Error::Weights(format!(
            "format '{format}' is not supported (expected '{FORMAT}')"
        )));
    }
    let model: ModelConfig = serde_json::from_str(get(KEY_MODEL)?)
        .map_err(|e| Error::Weights(format!("model config: {e}")))?;
    model.validate()?;
    check_fits(&model, bytes.len())?;
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
    Ok(ModelBundle {
        model,
        preprocess,
        info,
    })
}

/// Widest feature map a weights file may describe (a standard U-Net's widest is 1024). Also
/// keeps [`ModelConfig::trainable_params`] within a 32-bit `usize` (wasm32).
pub const MAX_WIDTH: usize = 2048;

/// The model a file describes must fit in the file, checked before [`ModelConfig::init`]
/// allocates it: every trainable parameter takes at least one byte (an int8 kernel weight), so a
/// config of more parameters than the file has bytes cannot be loaded, and a few edited digits
/// of metadata (`"widths": [9, 999999]`) would otherwise ask for terabytes and abort.
fn check_fits(model: &ModelConfig, file_len: usize) -> Result<()> {
    if let Some(w) = model.widths.iter().find(|&&w| w > MAX_WIDTH) {
        return Err(Error::Weights(format!(
            "the model config asks for a width of {w} (at most {MAX_WIDTH})"
        )));
    }
    let params = model.trainable_params();
    if params > file_len {
        return Err(Error::WeightsMismatch(format!(
            "the model config describes {params} parameters, more than the file's {file_len} \
             bytes can hold"
        )));
    }
    Ok(())
}

/// The storage precision a weights file declares (`f32` for files that predate the key).
pub fn stored_precision(bytes: &[u8]) -> Result<String> {
    let reader = pack_reader(unseal(bytes)?)?;
    Ok(reader
        .metadata()
        .get(KEY_PRECISION)
        .cloned()
        .unwrap_or_else(|| "f32".into()))
}

/// Builds the model a weights file describes, on `device`, and loads its tensors.
pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<(R2UNet, ModelBundle)> {
    let pack = unseal(bytes)?;
    let bundle = read_bundle_of_pack(pack)?;
    let mut model = bundle.model.init(device);
    load_pack_into(&mut model, pack)?;
    Ok((model, bundle))
}

/// Loads tensors into an existing model, refusing anything but an exact match.
pub fn load_into(model: &mut R2UNet, bytes: &[u8]) -> Result<()> {
    load_pack_into(model, unseal(bytes)?)
}

fn load_pack_into(model: &mut R2UNet, bytes: &[u8]) -> Result<()> {
    let reader = pack_reader(bytes)?;
    let precision = reader
        .metadata()
        .get(KEY_PRECISION)
        .cloned()
        .unwrap_or_else(|| "f32".into());
    let scales: Option<Scales> = match precision.as_str() {
        "f32" | "f16" => None,
        "int8" => {
            let json = reader
                .metadata()
                .get(KEY_SCALES)
                .ok_or_else(|| Error::Weights(format!("an int8 file without '{KEY_SCALES}'")))?;
            let scales = serde_json::from_str(json)
                .map_err(|e| Error::Weights(format!("int8 scales: {e}")))?;
            let stored: Vec<_> = reader
                .into_tensors()
                .map_err(Error::NotBurnpack)?
                .into_iter()
                .map(|t| (t.name, t.dtype, t.shape.to_vec()))
                .collect();
            quantize::check(&scales, &stored)?;
            Some(scales)
        }
        other => {
            return Err(Error::Weights(format!(
                "unknown precision '{other}' (expected f32, f16 or int8)"
            )));
        }
    };
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes.to_vec())));
    // The adapters cast both ways, so each is applied only to files stored in its format.
    if precision == "f16" {
        store = store.with_from_adapter(HalfPrecisionAdapter::new());
    }
    if let Some(scales) = scales {
        store = store.with_from_adapter(Int8Adapter::new(scales));
    }
    let result = model
        .load_from(&mut store)
        .map_err(|e| Error::WeightsMismatch(e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        let mut parts = Vec::new();
        if !result.missing.is_empty() {
            parts.push(format!(
                "{} tensors missing (e.g. {})",
                result.missing.len(),
                result.missing[0].0
            ));
        }
        if !result.unused.is_empty() {
            parts.push(format!(
                "{} tensors unused (e.g. {})",
                result.unused.len(),
                result.unused[0]
            ));
        }
        if !result.errors.is_empty() {
            parts.push(format!(
                "{} tensors rejected (e.g. {:?})",
                result.errors.len(),
                result.errors[0]
            ));
        }
        return Err(Error::WeightsMismatch(parts.join("; ")));
    }
    // burn keeps the dtype a float tensor was stored in, and the model computes in f32: a tensor
    // stored in another float type than the file's precision gives (an f16 tensor in an "f32"
    // file, a batch-norm statistic in f16) loaded, and the first forward pass panicked on the
    // mixed dtypes (found by fuzzing).
    let stray = model
        .collect(None, None, false)
        .into_iter()
        .find(|t| t.dtype != DType::F32);
    if let Some(t) = stray {
        return Err(Error::WeightsMismatch(format!(
            "tensor '{}' is stored as {:?}, which a file of precision '{precision}' does not hold \
             (the model computes in f32)",
            t.name, t.dtype
        )));
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
        ModelBundle {
            model,
            preprocess: PreprocessConfig::for_task(Task::Retina),
            info,
        }
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
        for (precision, tol) in [
            (Precision::F32, 1e-6),
            (Precision::F16, 2e-2),
            (Precision::Int8, 5e-2),
        ] {
            let bytes = to_bytes(&model, &bundle(small()), precision).unwrap();
            let (loaded, b) = from_bytes(&bytes, &device).unwrap();
            assert_eq!(b, bundle(small()));
            let got = loaded.forward(x.clone()).into_data();
            let (g, w) = (
                got.try_to_vec::<f32>().unwrap(),
                want.try_to_vec::<f32>().unwrap(),
            );
            let max = g
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(max < tol, "{precision:?}: {max}");
        }
    }

    #[test]
    fn f16_file_is_about_half_the_size() {
        let device = Device::flex();
        let model = ModelConfig::new().init(&device);
        let f32b = to_bytes(&model, &bundle(ModelConfig::new()), Precision::F32)
            .unwrap()
            .len();
        let f16b = to_bytes(&model, &bundle(ModelConfig::new()), Precision::F16)
            .unwrap()
            .len();
        assert!(f16b * 10 < f32b * 6, "{f16b} vs {f32b}");
        let int8 = to_bytes(&model, &bundle(ModelConfig::new()), Precision::Int8)
            .unwrap()
            .len();
        assert!(int8 * 10 < f32b * 3, "{int8} vs {f32b}");
    }

    #[test]
    fn refuses_int8_files_whose_scales_do_not_fit() {
        let device = Device::flex();
        let model = ModelConfig::new().with_widths(vec![16, 32]).init(&device);
        let b = bundle(ModelConfig::new().with_widths(vec![16, 32]));
        let bytes = to_bytes(&model, &b, Precision::Int8).unwrap();
        let reader = pack_reader(unseal(&bytes).unwrap()).unwrap();
        let json = reader.metadata().get(KEY_SCALES).unwrap().clone();
        let mut scales: Scales = serde_json::from_str(&json).unwrap();
        assert!(!scales.is_empty());
        // One scale too few for the first kernel: a same-length edit of the metadata.
        let first = scales.keys().next().unwrap().clone();
        scales.get_mut(&first).unwrap().pop();
        let mut store = BurnpackStore::from_bytes(None)
            .metadata(KEY_FORMAT, FORMAT)
            .metadata(KEY_MODEL, b.model.to_string())
            .metadata(KEY_PREPROCESS, b.preprocess.to_string())
            .metadata(KEY_PRECISION, "int8")
            .metadata(KEY_SCALES, serde_json::to_string(&scales).unwrap())
            .with_to_adapter(Int8Adapter::new(serde_json::from_str(&json).unwrap()));
        model.save_into(&mut store).unwrap();
        let bad = seal(store.get_bytes().unwrap().to_vec());
        let err = from_bytes(&bad, &device)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&first) && err.contains("scales"), "{err}");
        let mut unknown = BurnpackStore::from_bytes(None)
            .metadata(KEY_FORMAT, FORMAT)
            .metadata(KEY_MODEL, b.model.to_string())
            .metadata(KEY_PREPROCESS, b.preprocess.to_string())
            .metadata(KEY_PRECISION, "int4");
        model.save_into(&mut unknown).unwrap();
        let err = from_bytes(&seal(unknown.get_bytes().unwrap().to_vec()), &device)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("int4"), "{err}");
    }

    /// Metadata describing a model far larger than the file (a width of 999999, or 2049) is
    /// refused by `read_bundle` before anything is allocated for it.
    #[test]
    fn refuses_a_model_config_larger_than_its_file() {
        let device = Device::flex();
        let model = small().init(&device);
        for (widths, why) in [
            (vec![9, 999_999], "width of 999999"),
            (vec![4, 2049], "width of 2049"),
            (vec![64, 128, 256], "parameters, more than the file"),
        ] {
            let b = bundle(small());
            let mut store = BurnpackStore::from_bytes(None)
                .metadata(KEY_FORMAT, FORMAT)
                .metadata(KEY_MODEL, small().with_widths(widths).to_string())
                .metadata(KEY_PREPROCESS, b.preprocess.to_string())
                .metadata(KEY_PRECISION, "f32");
            model.save_into(&mut store).unwrap();
            let bytes = seal(store.get_bytes().unwrap().to_vec());
            let started = std::time::Instant::now();
            let err = from_bytes(&bytes, &device).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
            assert!(started.elapsed().as_millis() < 1000);
            assert!(read_bundle(&bytes).is_err());
        }
    }

    /// Half-precision tensors in a file whose metadata says f32 (no adapter casts them back):
    /// refused at load, naming the tensor, instead of a model that panics in its first pass.
    #[test]
    fn refuses_tensors_stored_in_another_precision_than_declared() {
        let device = Device::flex();
        let model = small().init(&device);
        let b = bundle(small());
        let mut store = BurnpackStore::from_bytes(None)
            .metadata(KEY_FORMAT, FORMAT)
            .metadata(KEY_MODEL, b.model.to_string())
            .metadata(KEY_PREPROCESS, b.preprocess.to_string())
            .metadata(KEY_PRECISION, "f32")
            .with_to_adapter(HalfPrecisionAdapter::new());
        model.save_into(&mut store).unwrap();
        let bytes = seal(store.get_bytes().unwrap().to_vec());
        assert!(read_bundle(&bytes).is_ok());
        let err = from_bytes(&bytes, &device).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Error::WeightsMismatch(_)) && err.to_string().contains("stored as F16"),
            "{err}"
        );
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
        let liar = to_bytes(
            &model,
            &bundle(small().with_widths(vec![4, 8, 16])),
            Precision::F32,
        )
        .unwrap();
        let err = msg(from_bytes(&liar, &device));
        assert!(err.contains("do not fit"), "{err}");
        // Skin wants 3 channels; a 1-channel model labelled skin is refused up front.
        let mut b = bundle(small());
        b.preprocess = PreprocessConfig::for_task(Task::Skin);
        let wrong = to_bytes(&model, &b, Precision::F32).unwrap();
        assert!(msg(from_bytes(&wrong, &device)).contains("channels"));
    }

    /// Every byte is covered by the digest: a flip anywhere (header, metadata, tensors, the
    /// digest itself) is refused, never loaded as slightly different weights.
    #[test]
    fn a_flipped_byte_anywhere_is_refused() {
        let device = Device::flex();
        let model = small().init(&device);
        for precision in [Precision::F32, Precision::Int8] {
            let bytes = to_bytes(&model, &bundle(small()), precision).unwrap();
            assert!(from_bytes(&bytes, &device).is_ok());
            // Every 7th byte, and each of the last 64 (the trailer and the data before it).
            let n = bytes.len();
            for i in (0..n).step_by(7).chain(n - 64..n) {
                let mut bad = bytes.clone();
                bad[i] ^= 0x10;
                let err = from_bytes(&bad, &device).map(|_| ()).unwrap_err();
                assert!(
                    matches!(
                        err,
                        Error::DigestMismatch | Error::NoDigest | Error::NotBurnpack(_)
                    ),
                    "{precision:?}, byte {i} of {n}: {err}"
                );
                assert!(read_bundle(&bad).is_err(), "byte {i}");
            }
        }
    }

    /// A file written before the digest: refused with the way out named, and `seal_legacy` (what
    /// `r2unet export` does) brings it up to date with the same tensors.
    #[test]
    fn legacy_files_are_refused_until_sealed() {
        let device = Device::flex();
        let model = small().init(&device);
        let sealed = to_bytes(&model, &bundle(small()), Precision::F32).unwrap();
        let legacy = unseal(&sealed).unwrap().to_vec();
        let err = from_bytes(&legacy, &device).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::NoDigest), "{err}");
        assert!(err.to_string().contains("r2unet export"), "{err}");
        assert_eq!(seal_legacy(&legacy).unwrap(), sealed);
        assert_eq!(seal_legacy(&sealed).unwrap(), sealed);
        assert!(seal_legacy(b"not weights").is_err());
    }
}
