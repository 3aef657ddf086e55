//! One image's forward passes as independent pieces, so that several workers (the browser's pool
//! of CPU modules, each with its own copy of the model) can run them and one place puts the
//! outputs together. Two ways to split:
//!
//! - an image that the plan runs as one tile (the browser CPU path's whole image) becomes
//!   horizontal **bands** with a halo of extra rows above and below; each band's output keeps
//!   only its own rows (the halo is dropped). The band edges sit on multiples of the model's size
//!   multiple, so every band pools on the one pass's grid, and the stitched map differs from the
//!   one pass only where the halo is shorter than what the network looks at ([`band_halo`]:
//!   32 rows for retina, 80 for skin and lung, whose shipped 128- and 256-row inputs therefore
//!   stay one band);
//! - an image planned as several tiles gives one piece per tile, blended as
//!   [`probabilities`](crate::inference::predict::probabilities) blends them: the same numbers.
//!
//! With flips every region gives four pieces (one per mirroring), averaged in the order the
//! one-thread path sums them.
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::inference::predict::{FLIPS, flip_pass, model_plan};
use crate::inference::tiling::{TilePlan, TilingConfig};
use crate::model::R2UNet;
use crate::preprocess::{Prepared, Task};

/// Rows of halo above and below each band (where it has a neighbour) for a retina model, which
/// reads the picture at its own resolution and finds vessels from what lies near them. Measured
/// on DRIVE test images 01-03 with the shipped retina model against the one pass, 2 / 3 / 4 bands
/// (`R2UNET_SPLIT_SWEEP=1 cargo test --release -p r2unet-core --test split_drive -- --nocapture`),
/// the largest probability difference inside the field of view and the lowest Dice of the masks:
///
/// | halo | max abs diff | Dice |
/// |---:|---|---|
/// | 0 | 0.83 / 0.76 / 0.88 | 0.9965 / 0.9929 / 0.9918 |
/// | 16 | 0.20 / 0.14 / 0.23 | 0.9990 / 0.9989 / 0.9984 |
/// | 32 | 0.048 / 0.043 / 0.051 | 0.99976 / 0.99969 / 0.99955 |
/// | 64 | 0.0017 / 0.0018 / 0.0017 | 1.00000 / 0.99998 / 0.99998 |
///
/// 32 rows: masks within 0.05 % of the one pass's, for 12 % more work than one pass over two
/// bands (328 + 320 rows instead of 584).
pub const BAND_HALO: usize = 32;

/// Rows of halo for a skin or lung model, which reads the whole picture resized to one square
/// and outlines a lesion or a lung from all of it: a band that sees part of the picture changes
/// the mask far more than on retina. Measured with exactly 2 / 3 / 4 bands, whatever
/// [`band_count`] allows, against the one pass on the first 10 ISIC 2017 validation images
/// (skin, 128x128) and the first 10 LUNG test slices (lung, 256x256)
/// (`R2UNET_SPLIT_SWEEP=1 cargo test --release -p r2unet-core --test split_skin_lung --
/// --nocapture`), the largest probability difference and the lowest Dice of the masks at 0.5:
///
/// | halo | skin max abs diff | skin Dice | lung max abs diff | lung Dice |
/// |---:|---|---|---|---|
/// | 0 | 1.00 / 1.00 / 1.00 | 0.000 / 0.000 / 0.000 | 1.00 / 1.00 / 1.00 | 0.755 / 0.347 / 0.000 |
/// | 16 | 0.99 / 1.00 / 1.00 | 0.000 / 0.664 / 0.000 | 0.99 / 0.99 / 0.99 | 0.886 / 0.741 / 0.829 |
/// | 32 | 0.39 / 0.96 / 0.40 | 0.898 / 0.866 / 0.898 | 0.97 / 0.98 / 0.98 | 0.979 / 0.942 / 0.931 |
/// | 48 | 0.15 / 0.20 / 0.15 | 0.9922 / 0.9795 / 0.9922 | 0.76 / 0.93 / 0.95 | 0.9983 / 0.9922 / 0.9924 |
/// | 64 | 0.0000 (see below) / 0.0043 / 0.0077 | 1.00000 / 1.00000 / 1.00000 | 0.11 / 0.34 / 0.11 | 0.99990 / 0.99974 / 0.99990 |
/// | 80 | 0.0000 / 0.0001 / 0.0001 | 1.00000 / 1.00000 / 1.00000 | 0.0004 / 0.0070 / 0.0004 | 1.00000 / 1.00000 / 1.00000 |
///
/// (Skin's 2 bands of 64 rows with a 64-row halo each see the whole 128 rows: the one pass.)
/// 80 rows: the masks of the one pass. With [`band_count`]'s rule (a band owns at least twice
/// the halo) the shipped models' 128- and 256-row inputs are never cut: they run as one piece
/// (one thread, or four with flips), which is fast anyway, and only a larger input (320 rows or
/// more, a model trained at another size) is cut in bands. Measured for the shipped depth (3
/// poolings, size multiple 8); a deeper model looks further.
pub const WHOLE_PICTURE_HALO: usize = 80;

/// The band halo for a model of `task`: [`BAND_HALO`] for retina, [`WHOLE_PICTURE_HALO`] for
/// skin and lung.
pub fn band_halo(task: Task) -> usize {
    match task {
        Task::Retina => BAND_HALO,
        Task::Skin | Task::Lung => WHOLE_PICTURE_HALO,
    }
}

/// Rows of one band: `input` of the padded image, of which `own` go into the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// First and one-past-last input row (multiples of the size multiple).
    pub input: (usize, usize),
    /// First and one-past-last row this band's output fills.
    pub own: (usize, usize),
}

/// How many bands to cut `padded` rows into for `parts` workers: each must own at least
/// `2 * halo` rows (else the halos cost more than the split gains), and one row of `multiple`.
pub fn band_count(padded: usize, multiple: usize, parts: usize, halo: usize) -> usize {
    let most = if halo == 0 {
        padded / multiple
    } else {
        padded / (2 * halo)
    };
    parts.min(most).max(1)
}

/// `n` bands over `padded` rows (a multiple of `multiple`), as equal as the multiple allows,
/// each with `halo` rows (rounded up to the multiple) more on the sides that have a neighbour.
pub fn bands(padded: usize, multiple: usize, n: usize, halo: usize) -> Vec<Band> {
    let units = padded / multiple;
    let halo = halo.div_ceil(multiple) * multiple;
    let n = n.clamp(1, units.max(1));
    let (base, extra) = (units / n, units % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let rows = (base + usize::from(i < extra)) * multiple;
        let own = (at, at + rows);
        let input = (own.0.saturating_sub(halo), (own.1 + halo).min(padded));
        out.push(Band { input, own });
        at += rows;
    }
    out
}

enum Regions {
    /// The plan's tiles, one piece each.
    Tiles(TilePlan),
    /// One tile covering the image (`plan.tile_h x plan.tile_w`, zero past the edges), in bands.
    Bands(TilePlan, Vec<Band>),
}

/// A piece's input shape `[n, channels, height, width]` and mirroring (an index of the four
/// flips: none, left-right, up-down, both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub shape: [usize; 4],
    pub flip: usize,
}

/// An image's forward passes as pieces; see the module's documentation.
pub struct Split {
    regions: Regions,
    /// 1, or 4 with flips.
    flips: usize,
}

impl Split {
    /// Plans the pieces of a `[channels, height, width]` image for `parts` workers (`parts` bands
    /// at most, fewer for a short image; tiles stay the plan's tiles). `multiple` is the model's
    /// size multiple, `halo` the band halo in rows ([`band_halo`]).
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        tiling: &TilingConfig,
        multiple: usize,
        parts: usize,
        halo: usize,
    ) -> Result<Self> {
        let plan = TilePlan::new(channels, height, width, tiling, multiple)?;
        let regions = if plan.positions.len() == 1 && parts > 1 {
            let n = band_count(plan.tile_h, multiple, parts, halo);
            let bands = bands(plan.tile_h, multiple, n, halo);
            Regions::Bands(plan, bands)
        } else {
            Regions::Tiles(plan)
        };
        Ok(Self {
            regions,
            flips: if tiling.flips { FLIPS.len() } else { 1 },
        })
    }

    /// Plans the pieces of `prepared` for `model`, a model of `task` (its halo: [`band_halo`]).
    pub fn for_model(
        model: &R2UNet,
        task: Task,
        prepared: &Prepared,
        tiling: &TilingConfig,
        parts: usize,
    ) -> Result<Self> {
        Self::new(
            prepared.channels,
            prepared.height,
            prepared.width,
            tiling,
            model.size_multiple(),
            parts,
            band_halo(task),
        )
    }

    fn plan(&self) -> &TilePlan {
        match &self.regions {
            Regions::Tiles(plan) | Regions::Bands(plan, _) => plan,
        }
    }

    /// Tiles or bands.
    pub fn regions(&self) -> usize {
        match &self.regions {
            Regions::Tiles(plan) => plan.positions.len(),
            Regions::Bands(_, bands) => bands.len(),
        }
    }

    /// Whether the image was cut into bands (else: the plan's tiles).
    pub fn is_bands(&self) -> bool {
        matches!(self.regions, Regions::Bands(..))
    }

    /// The bands, when the image was cut into bands.
    pub fn bands(&self) -> &[Band] {
        match &self.regions {
            Regions::Bands(_, bands) => bands,
            Regions::Tiles(_) => &[],
        }
    }

    /// Pieces in all: regions times flips.
    pub fn len(&self) -> usize {
        self.regions() * self.flips
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Piece `i` (region `i / flips`, mirroring `i % flips`).
    pub fn piece(&self, i: usize) -> Piece {
        let plan = self.plan();
        let rows = match &self.regions {
            Regions::Tiles(_) => plan.tile_h,
            Regions::Bands(_, bands) => {
                let b = bands[i / self.flips];
                b.input.1 - b.input.0
            }
        };
        Piece {
            shape: [1, plan.channels, rows, plan.tile_w],
            flip: i % self.flips,
        }
    }

    /// Piece `i`'s input, `[1, channels, rows, width]` planar, from the prepared image's data
    /// (`[channels, height, width]`), zero past its edges.
    pub fn input(&self, image: &[f32], i: usize) -> Vec<f32> {
        let region = i / self.flips;
        match &self.regions {
            Regions::Tiles(plan) => plan.extract(image, &[plan.positions[region]]),
            Regions::Bands(plan, bands) => {
                let Band {
                    input: (y0, y1), ..
                } = bands[region];
                let (h, w, tw) = (plan.height, plan.width, plan.tile_w);
                let rows = y1 - y0;
                let mut out = vec![0.0f32; plan.channels * rows * tw];
                for c in 0..plan.channels {
                    let plane = &image[c * h * w..(c + 1) * h * w];
                    let dst = &mut out[c * rows * tw..(c + 1) * rows * tw];
                    for y in y0..y1.min(h) {
                        let d = (y - y0) * tw;
                        dst[d..d + w].copy_from_slice(&plane[y * w..(y + 1) * w]);
                    }
                }
                out
            }
        }
    }

    /// The `[height, width]` probabilities from every piece's output (`[1, 1, rows, width]`
    /// each, in piece order): flips averaged, tiles blended, bands stitched.
    pub fn assemble(&self, outputs: &[Vec<f32>]) -> Result<Vec<f32>> {
        if outputs.len() != self.len() {
            return Err(Error::Config(format!(
                "{} piece outputs for {} pieces",
                outputs.len(),
                self.len()
            )));
        }
        for (i, out) in outputs.iter().enumerate() {
            let [n, _, rows, cols] = self.piece(i).shape;
            if out.len() != n * rows * cols {
                return Err(Error::Config(format!(
                    "piece {i}'s output has {} values, expected {}",
                    out.len(),
                    n * rows * cols
                )));
            }
        }
        // Each region's flips, summed in order and divided by 4, as the one-thread path does.
        let mean = |r: usize| -> Vec<f32> {
            let group = &outputs[r * self.flips..(r + 1) * self.flips];
            if self.flips == 1 {
                return group[0].clone();
            }
            let mut sum = group[0].clone();
            for g in &group[1..] {
                for (s, v) in sum.iter_mut().zip(g) {
                    *s += v;
                }
            }
            sum.iter_mut().for_each(|s| *s /= self.flips as f32);
            sum
        };
        match &self.regions {
            Regions::Tiles(plan) => {
                let mut acc = plan.accumulator();
                for (r, &at) in plan.positions.iter().enumerate() {
                    acc.add(&[at], &mean(r));
                }
                Ok(acc.finish())
            }
            Regions::Bands(plan, bands) => {
                let (h, w, tw) = (plan.height, plan.width, plan.tile_w);
                let mut map = vec![0.0f32; h * w];
                for (r, band) in bands.iter().enumerate() {
                    let out = mean(r);
                    for y in band.own.0..band.own.1.min(h) {
                        let s = (y - band.input.0) * tw;
                        map[y * w..(y + 1) * w].copy_from_slice(&out[s..s + w]);
                    }
                }
                Ok(map)
            }
        }
    }
}

fn piece_tensor(input: Vec<f32>, piece: Piece, device: &Device) -> Result<Tensor<4>> {
    let [n, c, h, w] = piece.shape;
    if input.len() != n * c * h * w || piece.flip >= FLIPS.len() {
        return Err(Error::Config(format!(
            "a piece of {} values does not have the shape {:?} (flip {})",
            input.len(),
            piece.shape,
            piece.flip
        )));
    }
    Ok(Tensor::<4>::from_data(
        TensorData::new(input, piece.shape),
        device,
    ))
}

fn read(data: TensorData) -> Result<Vec<f32>> {
    data.try_to_vec::<f32>().map_err(|e| Error::ReadBack {
        what: "a piece's probabilities",
        source: Box::new(e),
    })
}

/// One piece through the model: sigmoid probabilities `[n, 1, rows, width]`, mirrored by the
/// piece's flip and back (read back asynchronously, as WebGPU in the browser needs).
pub async fn forward_piece(
    model: &R2UNet,
    device: &Device,
    input: Vec<f32>,
    piece: Piece,
) -> Result<Vec<f32>> {
    let x = piece_tensor(input, piece, device)?;
    let y = flip_pass(model, x, FLIPS[piece.flip]);
    read(y.into_data_async().await.map_err(|e| Error::ReadBack {
        what: "a piece's probabilities",
        source: Box::new(e),
    })?)
}

/// [`forward_piece`], blocking (native code).
pub fn forward_piece_blocking(
    model: &R2UNet,
    device: &Device,
    input: Vec<f32>,
    piece: Piece,
) -> Result<Vec<f32>> {
    let x = piece_tensor(input, piece, device)?;
    let y = flip_pass(model, x, FLIPS[piece.flip]);
    read(y.try_into_data().map_err(|e| Error::ReadBack {
        what: "a piece's probabilities",
        source: Box::new(e),
    })?)
}

/// Every piece of `prepared` run in turn on one model and put together (what a pool of `parts`
/// workers computes; for tests and for measuring the halo).
pub fn probabilities_split(
    model: &R2UNet,
    device: &Device,
    prepared: &Prepared,
    tiling: &TilingConfig,
    parts: usize,
    halo: usize,
) -> Result<Vec<f32>> {
    let split = Split::new(
        prepared.channels,
        prepared.height,
        prepared.width,
        tiling,
        model.size_multiple(),
        parts,
        halo,
    )?;
    probabilities_of(model, device, prepared, &split)
}

/// Exactly `n` bands (as many as the rows allow) of a one-pass image with `halo` rows, whatever
/// the rule of [`band_count`] says, run in turn and stitched: for measuring a halo and a count
/// the rule would refuse. `Ok(None)` when the plan has several tiles.
pub fn probabilities_bands(
    model: &R2UNet,
    device: &Device,
    prepared: &Prepared,
    tiling: &TilingConfig,
    n: usize,
    halo: usize,
) -> Result<Option<Vec<f32>>> {
    let plan = model_plan(model, prepared, tiling)?;
    if plan.positions.len() != 1 {
        return Ok(None);
    }
    let bands = bands(plan.tile_h, model.size_multiple(), n, halo);
    let split = Split {
        regions: Regions::Bands(plan, bands),
        flips: if tiling.flips { FLIPS.len() } else { 1 },
    };
    probabilities_of(model, device, prepared, &split).map(Some)
}

fn probabilities_of(
    model: &R2UNet,
    device: &Device,
    prepared: &Prepared,
    split: &Split,
) -> Result<Vec<f32>> {
    let outputs = (0..split.len())
        .map(|i| {
            forward_piece_blocking(
                model,
                device,
                split.input(&prepared.data, i),
                split.piece(i),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    split.assemble(&outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::predict::probabilities;
    use crate::model::ModelConfig;

    fn prepared(h: usize, w: usize) -> Prepared {
        let data = (0..h * w).map(|i| ((i * 31) % 97) as f32 / 97.0).collect();
        Prepared {
            data,
            channels: 1,
            width: w,
            height: h,
            fov: vec![true; h * w],
            source_fov: vec![true; h * w],
            source_width: w,
            source_height: h,
        }
    }

    fn small_model() -> (Device, R2UNet) {
        let device = Device::flex();
        let model = ModelConfig::new()
            .with_widths(vec![8, 16, 32])
            .init(&device);
        (device, model)
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn bands_cover_the_rows_once_on_the_multiple() {
        let b = bands(584, 8, 2, 64);
        assert_eq!(
            b,
            vec![
                Band {
                    input: (0, 360),
                    own: (0, 296)
                },
                Band {
                    input: (232, 584),
                    own: (296, 584)
                }
            ]
        );
        for n in 1..8 {
            for halo in [0, 8, 30, 64] {
                let b = bands(584, 8, n, halo);
                assert_eq!(b.len(), n);
                assert_eq!(b[0].own.0, 0);
                assert_eq!(b.last().unwrap().own.1, 584);
                for w in b.windows(2) {
                    assert_eq!(w[0].own.1, w[1].own.0);
                }
                for band in &b {
                    assert!(band.input.0 <= band.own.0 && band.own.1 <= band.input.1);
                    assert!(band.input.0 % 8 == 0 && band.input.1 % 8 == 0);
                }
            }
        }
        // A short image is not cut into bands that would cost more than they save.
        assert_eq!(band_count(128, 8, 4, 64), 1);
        assert_eq!(band_count(256, 8, 4, 64), 2);
        assert_eq!(band_count(584, 8, 4, 64), 4);
        assert_eq!(band_count(16, 8, 4, 0), 2);
        // The shipped skin (128 rows) and lung (256 rows) inputs stay one band; retina's DRIVE
        // image (584 rows) is cut for up to 4 workers.
        assert_eq!(band_count(128, 8, 4, band_halo(Task::Skin)), 1);
        assert_eq!(band_count(256, 8, 4, band_halo(Task::Lung)), 1);
        assert_eq!(band_count(320, 8, 4, band_halo(Task::Lung)), 2);
        assert_eq!(band_count(584, 8, 4, band_halo(Task::Retina)), 4);
    }

    fn run(split: &Split, model: &R2UNet, device: &Device, p: &Prepared) -> Vec<f32> {
        let outputs: Vec<Vec<f32>> = (0..split.len())
            .map(|i| {
                forward_piece_blocking(model, device, split.input(&p.data, i), split.piece(i))
                    .unwrap()
            })
            .collect();
        split.assemble(&outputs).unwrap()
    }

    /// Bands whose halo reaches past the image's ends see what the one pass sees, so the
    /// stitched map is the one pass's, flips or not; without a halo it is not.
    #[test]
    fn bands_with_a_whole_image_halo_equal_the_one_pass() {
        let (device, model) = small_model();
        let p = prepared(60, 44);
        for flips in [false, true] {
            let tiling = TilingConfig::new()
                .with_whole_up_to(1 << 20)
                .with_flips(flips);
            let want = probabilities(&model, &device, &p, &tiling, |_, _| {}).unwrap();
            let split = Split::new(1, 60, 44, &tiling, 4, 3, 0).unwrap();
            assert!(split.is_bands());
            assert_eq!(split.len(), 3 * if flips { 4 } else { 1 });
            assert!(max_abs_diff(&run(&split, &model, &device, &p), &want) > 1e-4);
            let plan = TilePlan::new(1, 60, 44, &tiling, 4).unwrap();
            let whole = Split {
                regions: Regions::Bands(plan, bands(60, 4, 3, 64)),
                flips: split.flips,
            };
            let max = max_abs_diff(&run(&whole, &model, &device, &p), &want);
            assert!(max < 1e-5, "flips {flips}: max abs difference {max}");
        }
    }

    /// Tiles split into pieces give exactly the one-thread tiled pass, flips or not.
    #[test]
    fn tile_pieces_equal_the_tiled_pass() {
        let (device, model) = small_model();
        let p = prepared(72, 90);
        for flips in [false, true] {
            let tiling = TilingConfig::new()
                .with_tile(32)
                .with_stride(24)
                .with_batch(1)
                .with_flips(flips);
            let want = probabilities(&model, &device, &p, &tiling, |_, _| {}).unwrap();
            let got = probabilities_split(&model, &device, &p, &tiling, 2, 64).unwrap();
            assert_eq!(got, want, "flips {flips}");
        }
    }

    #[test]
    fn wrong_outputs_are_refused() {
        let tiling = TilingConfig::new().with_whole_up_to(1 << 20);
        let split = Split::new(1, 60, 44, &tiling, 4, 2, 0).unwrap();
        assert!(split.assemble(&[vec![0.0; 10]]).is_err());
        let sizes: Vec<Vec<f32>> = (0..split.len())
            .map(|i| {
                let [n, _, h, w] = split.piece(i).shape;
                vec![0.5; n * h * w + usize::from(i == 1)]
            })
            .collect();
        assert!(split.assemble(&sizes).is_err());
        let (device, model) = small_model();
        let bad = Piece {
            shape: [1, 1, 8, 8],
            flip: 0,
        };
        assert!(forward_piece_blocking(&model, &device, vec![0.0; 63], bad).is_err());
    }
}
