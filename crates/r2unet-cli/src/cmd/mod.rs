pub mod bench;
pub mod eval;
pub mod export;
pub mod info;
pub mod predict;
pub mod train;

use r2unet::tiling::TilingConfig;

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
}
