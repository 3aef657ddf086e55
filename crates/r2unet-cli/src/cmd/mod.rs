pub mod bench;
pub mod eval;
pub mod export;
pub mod info;
pub mod predict;
pub mod train;

use r2unet::inference::tiling::TilingConfig;

use crate::args::TilingArgs;

impl TilingArgs {
    pub fn config(&self) -> anyhow::Result<TilingConfig> {
        let config = TilingConfig::new()
            .with_tile(self.tile)
            .with_stride(self.stride)
            .with_batch(self.tile_batch)
            .with_flips(self.flips);
        config.validate()?;
        Ok(config)
    }

    /// `--fov-width`: replaces the model's own field-of-view width (retina models only).
    pub fn apply_fov_width(&self, bundle: &mut r2unet::ModelBundle) -> anyhow::Result<()> {
        set_fov_width(bundle, self.fov_width)
    }
}

/// Replaces a retina model's field-of-view width (what its images are resampled to), if given.
pub fn set_fov_width(bundle: &mut r2unet::ModelBundle, width: Option<usize>) -> anyhow::Result<()> {
    let Some(width) = width else {
        return Ok(());
    };
    if bundle.preprocess.task != r2unet::Task::Retina {
        anyhow::bail!(
            "--fov-width is for retina models; this is a {} model",
            bundle.preprocess.task.name()
        );
    }
    if width != 0 && !(64..=8192).contains(&width) {
        anyhow::bail!("--fov-width {width}: must be 0 (native size) or 64 to 8192 pixels");
    }
    bundle.preprocess.fov_width = width;
    Ok(())
}
