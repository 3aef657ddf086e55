//! `r2unet export`.
use anyhow::{Context, Result};
use r2unet::burn::tensor::Device;
use r2unet::weights::{self, Precision};

use crate::args::ExportArgs;

pub fn run(a: ExportArgs) -> Result<()> {
    let raw = std::fs::read(&a.weights).with_context(|| a.weights.display().to_string())?;
    // The way to bring a file from before weights carried a digest up to date.
    let bytes = weights::seal_legacy(&raw).with_context(|| a.weights.display().to_string())?;
    if bytes.len() != raw.len() {
        eprintln!(
            "note: {} has no integrity digest (written before r2unet added one); the export carries one",
            a.weights.display()
        );
    }
    let (model, mut bundle) = weights::from_bytes(&bytes, &Device::flex())
        .with_context(|| a.weights.display().to_string())?;
    super::set_fov_width(&mut bundle, a.fov_width)?;
    let precision = match (a.f16, a.int8) {
        (true, _) => Precision::F16,
        (_, true) => Precision::Int8,
        _ => Precision::F32,
    };
    let out = weights::to_bytes(&model, &bundle, precision)?;
    let tmp = a.out.with_extension("bpk.partial");
    std::fs::write(&tmp, &out).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, &a.out).with_context(|| a.out.display().to_string())?;
    println!("{} ({:?}, {} bytes)", a.out.display(), precision, out.len());
    Ok(())
}
