//! `r2unet info`.
use anyhow::{Context, Result};

use crate::args::{InfoArgs, ZooArgs};

pub fn run(a: InfoArgs) -> Result<()> {
    let bytes = std::fs::read(&a.weights).with_context(|| a.weights.display().to_string())?;
    let bundle =
        r2unet::weights::read_bundle(&bytes).with_context(|| a.weights.display().to_string())?;
    println!(
        "file:         {} ({} bytes)",
        a.weights.display(),
        bytes.len()
    );
    println!("architecture: {}", bundle.model.architecture());
    println!("parameters:   {}", bundle.model.trainable_params());
    println!(
        "precision:    {}",
        r2unet::weights::stored_precision(&bytes)?
    );
    println!("model:        {}", serde_json::to_string(&bundle.model)?);
    println!(
        "preprocess:   {}",
        serde_json::to_string(&bundle.preprocess)?
    );
    for (k, v) in &bundle.info {
        println!("{k:<13} {v}");
    }
    Ok(())
}

/// `r2unet zoo`: every architecture with its trainable parameter count (counted from the config
/// and checked against the built model by the test suite).
pub fn zoo(a: ZooArgs) -> Result<()> {
    println!(
        "| architecture | unit (Fig. 1) | attention | params, 1 channel (retina, lung) | params, 3 channels (skin) |"
    );
    println!("|---|---|---|---|---|");
    for name in r2unet::model::ARCHITECTURES {
        let config = r2unet::ModelConfig::for_architecture(name)?
            .with_widths(a.widths.clone())
            .with_t(a.t);
        config.validate()?;
        let unit = match config.unit {
            r2unet::UnitKind::Forward => "(a) forward",
            r2unet::UnitKind::Recurrent => "(b) recurrent",
            r2unet::UnitKind::Residual => "(c) residual",
            r2unet::UnitKind::RecurrentResidual => "(d) recurrent residual",
        };
        println!(
            "| {name} | {unit} | {} | {} | {} |",
            if config.attention { "yes" } else { "no" },
            config.clone().with_in_channels(1).trainable_params(),
            config.with_in_channels(3).trainable_params()
        );
    }
    Ok(())
}
