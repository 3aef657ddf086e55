//! `r2unet info`.
use anyhow::{Context, Result};

use crate::args::InfoArgs;

pub fn run(a: InfoArgs) -> Result<()> {
    let bytes = std::fs::read(&a.weights).with_context(|| a.weights.display().to_string())?;
    let bundle = r2unet::weights::read_bundle(&bytes).with_context(|| a.weights.display().to_string())?;
    println!("file:         {} ({} bytes)", a.weights.display(), bytes.len());
    println!("architecture: {}", bundle.model.architecture());
    println!("parameters:   {}", bundle.model.trainable_params());
    println!("model:        {}", serde_json::to_string(&bundle.model)?);
    println!("preprocess:   {}", serde_json::to_string(&bundle.preprocess)?);
    for (k, v) in &bundle.info {
        println!("{k:<13} {v}");
    }
    Ok(())
}
