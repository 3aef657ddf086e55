//! Sliding-window inference: cut a prepared image into overlapping tiles, run them in batches,
//! and blend the tile probabilities back (weighted mean where tiles overlap). The plan and the
//! accumulator are plain data so the native (sync) and browser (async) loops share them.
use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How overlapping tiles are weighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// Plain mean.
    Constant,
    /// Gaussian weights (sigma = tile / 8) that trust tile centres more than their borders.
    Gaussian,
}

/// Configuration of [sliding-window inference](TilePlan).
#[derive(Config, Debug, PartialEq)]
pub struct TilingConfig {
    /// Tile side in pixels (rounded up to the model's multiple). Large tiles are faster; 48
    /// with stride 16 reproduces the paper's patch protocol.
    #[config(default = 256)]
    pub tile: usize,
    /// Step between tiles; `stride < tile` overlaps them.
    #[config(default = 192)]
    pub stride: usize,
    /// Upper bound on tiles per forward pass; [`TilePlan::batch_for_memory`] may lower it.
    #[config(default = 4)]
    pub batch: usize,
    #[config(default = "Blend::Gaussian")]
    pub blend: Blend,
    /// Images of at most this many pixels run as one tile covering the whole image (0: never).
    /// One pass does 1.5-1.8x less work than overlapping 256-pixel tiles and has no seams, at
    /// the cost of memory that grows with the image; the browser's CPU path uses it.
    #[config(default = 0)]
    pub whole_up_to: usize,
    /// Test-time augmentation: average each tile's probabilities over the four flips
    /// (none, left-right, up-down, both), each mapped back. Four times the work; smooths the
    /// orientation-dependent errors of a network trained with flip augmentation.
    #[config(default = false)]
    pub flips: bool,
}

impl TilingConfig {
    pub fn validate(&self) -> crate::Result<()> {
        if self.tile < 8 || self.tile > 4096 {
            return Err(Error::Config(format!(
                "tile must be 8..=4096, got {}",
                self.tile
            )));
        }
        if self.stride == 0 || self.stride > self.tile {
            return Err(Error::Config(format!(
                "stride must be 1..=tile ({}), got {}",
                self.tile, self.stride
            )));
        }
        if self.batch == 0 {
            return Err(Error::Config("batch must be at least 1".into()));
        }
        Ok(())
    }
}

/// Where tiles go over one image.
#[derive(Clone, Debug)]
pub struct TilePlan {
    pub channels: usize,
    pub width: usize,
    pub height: usize,
    pub tile_w: usize,
    pub tile_h: usize,
    /// Top-left corners `(y, x)`; tiles may run past the image edge, where input is zero.
    pub positions: Vec<(usize, usize)>,
    weights: Vec<f32>,
}

fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// Tile starts along one axis: every `stride`, the last one flush with the end.
fn starts(len: usize, tile: usize, stride: usize) -> Vec<usize> {
    if len <= tile {
        return vec![0];
    }
    let mut s: Vec<usize> = (0..)
        .map(|i| i * stride)
        .take_while(|&p| p + tile < len)
        .collect();
    s.push(len - tile);
    s.dedup();
    s
}

impl TilePlan {
    /// Plans tiles for a `[channels, height, width]` image; `multiple` is the model's size
    /// multiple. An image smaller than a tile gets one tile, padded.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        config: &TilingConfig,
        multiple: usize,
    ) -> crate::Result<Self> {
        config.validate()?;
        let whole = height * width <= config.whole_up_to;
        let tile = if whole {
            round_up(height.max(width), multiple)
        } else {
            round_up(config.tile, multiple)
        };
        let tile_h = tile.min(round_up(height, multiple));
        let tile_w = tile.min(round_up(width, multiple));
        let stride = if whole { tile } else { config.stride.min(tile) };
        let positions = starts(height, tile_h, stride)
            .into_iter()
            .flat_map(|y| {
                starts(width, tile_w, stride)
                    .into_iter()
                    .map(move |x| (y, x))
            })
            .collect();
        let weights = match config.blend {
            Blend::Constant => vec![1.0; tile_h * tile_w],
            Blend::Gaussian => gaussian(tile_h, tile_w),
        };
        Ok(Self {
            channels,
            width,
            height,
            tile_w,
            tile_h,
            positions,
            weights,
        })
    }

    /// Tiles per batch so that activations stay under `budget_bytes`: the network holds about
    /// `bytes_per_pixel` bytes per input pixel at its widest (about 100 floats for 16-32-64-128).
    pub fn batch_for_memory(
        &self,
        max_batch: usize,
        bytes_per_pixel: usize,
        budget_bytes: usize,
    ) -> usize {
        let per_tile = (self.tile_w * self.tile_h * bytes_per_pixel).max(1);
        (budget_bytes / per_tile).clamp(1, max_batch.max(1))
    }

    /// The input of the given tiles as `[n, channels, tile_h, tile_w]`, zero past the edges.
    pub fn extract(&self, image: &[f32], tiles: &[(usize, usize)]) -> Vec<f32> {
        let (th, tw) = (self.tile_h, self.tile_w);
        let mut out = vec![0.0f32; tiles.len() * self.channels * th * tw];
        for (t, &(y0, x0)) in tiles.iter().enumerate() {
            for c in 0..self.channels {
                let plane =
                    &image[c * self.height * self.width..(c + 1) * self.height * self.width];
                let dst = &mut out[(t * self.channels + c) * th * tw..][..th * tw];
                for dy in 0..th.min(self.height - y0) {
                    let cols = tw.min(self.width - x0);
                    let src = &plane[(y0 + dy) * self.width + x0..][..cols];
                    dst[dy * tw..dy * tw + cols].copy_from_slice(src);
                }
            }
        }
        out
    }

    pub fn accumulator(&self) -> Accumulator<'_> {
        Accumulator {
            plan: self,
            sum: vec![0.0; self.width * self.height],
            weight: vec![0.0; self.width * self.height],
        }
    }
}

fn gaussian(h: usize, w: usize) -> Vec<f32> {
    let g = |n: usize| -> Vec<f32> {
        let sigma = n as f32 / 8.0;
        let c = (n as f32 - 1.0) / 2.0;
        (0..n)
            .map(|i| (-((i as f32 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
            .collect()
    };
    let (gy, gx) = (g(h), g(w));
    // Clamped away from zero so pixels seen by a tile's border only are still defined.
    gy.iter()
        .flat_map(|&a| gx.iter().map(move |&b| (a * b).max(1e-3)))
        .collect()
}

/// Blends tile outputs into one map.
pub struct Accumulator<'a> {
    plan: &'a TilePlan,
    sum: Vec<f32>,
    weight: Vec<f32>,
}

impl Accumulator<'_> {
    /// Adds `[n, 1, tile_h, tile_w]` outputs of the tiles at `tiles`.
    pub fn add(&mut self, tiles: &[(usize, usize)], outputs: &[f32]) {
        let p = self.plan;
        let (th, tw) = (p.tile_h, p.tile_w);
        for (t, &(y0, x0)) in tiles.iter().enumerate() {
            let out = &outputs[t * th * tw..][..th * tw];
            for dy in 0..th.min(p.height - y0) {
                for dx in 0..tw.min(p.width - x0) {
                    let (i, j) = ((y0 + dy) * p.width + x0 + dx, dy * tw + dx);
                    self.sum[i] += out[j] * p.weights[j];
                    self.weight[i] += p.weights[j];
                }
            }
        }
    }

    /// The blended `[height, width]` map.
    pub fn finish(self) -> Vec<f32> {
        self.sum
            .iter()
            .zip(&self.weight)
            .map(|(s, w)| if *w > 0.0 { s / w } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any pointwise function stitched from tiles equals the function applied to the whole
    /// image: this checks extraction, placement, edge handling and blending at once.
    #[test]
    fn pointwise_function_stitches_exactly() {
        let (c, h, w) = (2, 37, 53);
        let image: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let f = |a: f32, b: f32| a * 0.5 - b * b;
        for blend in [Blend::Constant, Blend::Gaussian] {
            for (tile, stride) in [(16, 8), (16, 16), (24, 5), (64, 64)] {
                let config = TilingConfig::new()
                    .with_tile(tile)
                    .with_stride(stride)
                    .with_blend(blend);
                let plan = TilePlan::new(c, h, w, &config, 8).unwrap();
                let mut acc = plan.accumulator();
                for chunk in plan.positions.chunks(3) {
                    let x = plan.extract(&image, chunk);
                    let n = plan.tile_h * plan.tile_w;
                    let y: Vec<f32> = (0..chunk.len())
                        .flat_map(|t| (0..n).map(move |j| (t, j)))
                        .map(|(t, j)| f(x[(t * c) * n + j], x[(t * c + 1) * n + j]))
                        .collect();
                    acc.add(chunk, &y);
                }
                let got = acc.finish();
                for i in 0..h * w {
                    let want = f(image[i], image[h * w + i]);
                    assert!(
                        (got[i] - want).abs() < 1e-5,
                        "{blend:?} {tile}/{stride} pixel {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn tiles_cover_the_image_and_end_flush() {
        let config = TilingConfig::new().with_tile(48).with_stride(16);
        let plan = TilePlan::new(1, 584, 565, &config, 8).unwrap();
        let ys: Vec<usize> = plan.positions.iter().map(|p| p.0).collect();
        assert_eq!(*ys.iter().max().unwrap(), 584 - 48);
        assert!(plan.positions.iter().any(|&(_, x)| x == 565 - 48));
    }

    #[test]
    fn small_images_get_one_padded_tile() {
        let plan = TilePlan::new(1, 20, 30, &TilingConfig::new(), 8).unwrap();
        assert_eq!(plan.positions, vec![(0, 0)]);
        assert_eq!((plan.tile_h, plan.tile_w), (24, 32));
    }

    #[test]
    fn images_up_to_the_whole_image_budget_get_one_tile() {
        let config = TilingConfig::new().with_whole_up_to(600 * 600);
        let plan = TilePlan::new(1, 584, 565, &config, 8).unwrap();
        assert_eq!(plan.positions, vec![(0, 0)]);
        assert_eq!((plan.tile_h, plan.tile_w), (584, 568));
        // Past the budget, the usual tiles.
        let plan = TilePlan::new(1, 960, 999, &config, 8).unwrap();
        assert_eq!((plan.tile_h, plan.tile_w), (256, 256));
        assert!(plan.positions.len() > 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(TilingConfig::new().with_stride(0).validate().is_err());
        assert!(
            TilingConfig::new()
                .with_tile(64)
                .with_stride(65)
                .validate()
                .is_err()
        );
        assert!(TilingConfig::new().with_batch(0).validate().is_err());
    }
}
