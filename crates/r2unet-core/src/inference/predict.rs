//! From a prepared image to probabilities with a model: the tiled forward pass, in a blocking
//! form for native code and an async form for the browser (where reads must be async).
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::inference::tiling::{TilePlan, TilingConfig};
use crate::model::R2UNet;
use crate::preprocess::Prepared;

/// Activation memory per input pixel for the default widths, in bytes (measured order of
/// magnitude: about 100 f32 feature values live per pixel at the widest point).
pub const BYTES_PER_PIXEL: usize = 400;
/// Default activation budget for one forward pass.
pub const MEMORY_BUDGET: usize = 512 << 20;

/// The tiles `model` runs `prepared` in under `tiling`.
pub(crate) fn model_plan(
    model: &R2UNet,
    prepared: &Prepared,
    tiling: &TilingConfig,
) -> Result<TilePlan> {
    TilePlan::new(
        prepared.channels,
        prepared.height,
        prepared.width,
        tiling,
        model.size_multiple(),
    )
}

fn plan_for(
    model: &R2UNet,
    prepared: &Prepared,
    tiling: &TilingConfig,
) -> Result<(TilePlan, usize)> {
    let plan = model_plan(model, prepared, tiling)?;
    let batch = plan.batch_for_memory(tiling.batch, BYTES_PER_PIXEL, MEMORY_BUDGET);
    Ok((plan, batch))
}

fn batch_tensor(
    plan: &TilePlan,
    prepared: &Prepared,
    tiles: &[(usize, usize)],
    device: &Device,
) -> Tensor<4> {
    let input = plan.extract(&prepared.data, tiles);
    let shape = [tiles.len(), plan.channels, plan.tile_h, plan.tile_w];
    Tensor::<4>::from_data(TensorData::new(input, shape), device)
}

/// `t` mirrored left-right and/or upside down.
fn flip(t: Tensor<4>, left_right: bool, up_down: bool) -> Tensor<4> {
    match (left_right, up_down) {
        (false, false) => t,
        (true, false) => t.flip([3]),
        (false, true) => t.flip([2]),
        (true, true) => t.flip([2, 3]),
    }
}

/// The four mirrorings of test-time augmentation (left-right, up-down), in the order they are summed.
pub(crate) const FLIPS: [(bool, bool); 4] =
    [(false, false), (true, false), (false, true), (true, true)];

/// Sigmoid probabilities of `x` mirrored by `(left_right, up_down)`, mirrored back.
pub(crate) fn flip_pass(model: &R2UNet, x: Tensor<4>, (lr, ud): (bool, bool)) -> Tensor<4> {
    flip(sigmoid(model.forward(flip(x, lr, ud))), lr, ud)
}

/// Sigmoid probabilities of one batch, averaged over the four flips when `flips` is set.
fn forward_probabilities(model: &R2UNet, x: Tensor<4>, flips: bool) -> Tensor<4> {
    if !flips {
        return sigmoid(model.forward(x));
    }
    let sum = FLIPS
        .map(|f| flip_pass(model, x.clone(), f))
        .into_iter()
        .reduce(|a, b| a + b)
        .expect("four passes");
    sum.div_scalar(4.0)
}

fn to_vec(data: TensorData) -> Result<Vec<f32>> {
    data.try_to_vec::<f32>().map_err(|e| Error::ReadBack {
        what: "the probabilities",
        source: Box::new(e),
    })
}

/// Probabilities at model resolution (`prepared.height x prepared.width`), blocking.
/// `progress(done, total)` is called after each batch of tiles.
pub fn probabilities(
    model: &R2UNet,
    device: &Device,
    prepared: &Prepared,
    tiling: &TilingConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<f32>> {
    let (plan, batch) = plan_for(model, prepared, tiling)?;
    let mut acc = plan.accumulator();
    let total = plan.positions.len();
    let mut done = 0;
    for tiles in plan.positions.chunks(batch) {
        let x = batch_tensor(&plan, prepared, tiles, device);
        let probs = forward_probabilities(model, x, tiling.flips);
        let data = probs.try_into_data().map_err(|e| Error::ReadBack {
            what: "the probabilities",
            source: Box::new(e),
        })?;
        acc.add(tiles, &to_vec(data)?);
        done += tiles.len();
        progress(done, total);
    }
    Ok(acc.finish())
}

/// The same as [`probabilities`], reading results back asynchronously (required on WebGPU in
/// the browser).
pub async fn probabilities_async(
    model: &R2UNet,
    device: &Device,
    prepared: &Prepared,
    tiling: &TilingConfig,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<f32>> {
    probabilities_async_with(model, device, prepared, tiling, progress, async || {
        Ok::<(), Error>(())
    })
    .await
}

/// [`probabilities_async`] with a `pause` awaited after every forward pass (after each batch of
/// tiles, and between the four passes of `flips`): the browser yields to its event loop there
/// and checks for cancellation. An error from `pause` stops the pass and is returned. The
/// probabilities are the same as [`probabilities`]'s (the flips are summed in the same order).
pub async fn probabilities_async_with<E: From<Error>>(
    model: &R2UNet,
    device: &Device,
    prepared: &Prepared,
    tiling: &TilingConfig,
    mut progress: impl FnMut(usize, usize),
    mut pause: impl AsyncFnMut() -> std::result::Result<(), E>,
) -> std::result::Result<Vec<f32>, E> {
    let (plan, batch) = plan_for(model, prepared, tiling)?;
    let mut acc = plan.accumulator();
    let total = plan.positions.len();
    let mut done = 0;
    for tiles in plan.positions.chunks(batch) {
        let x = batch_tensor(&plan, prepared, tiles, device);
        let probs = if tiling.flips {
            let mut sum = flip_pass(model, x.clone(), FLIPS[0]);
            for f in &FLIPS[1..] {
                pause().await?;
                sum = sum + flip_pass(model, x.clone(), *f);
            }
            sum.div_scalar(4.0)
        } else {
            forward_probabilities(model, x, false)
        };
        let data = probs.into_data_async().await.map_err(|e| Error::ReadBack {
            what: "the probabilities",
            source: Box::new(e),
        })?;
        acc.add(tiles, &to_vec(data)?);
        done += tiles.len();
        progress(done, total);
        pause().await?;
    }
    Ok(acc.finish())
}

/// Threshold probabilities into a 0/255 mask.
pub fn mask(probabilities: &[f32], threshold: f32) -> Vec<u8> {
    probabilities
        .iter()
        .map(|&p| if p >= threshold { 255 } else { 0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::tiling::Blend;
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

    fn whole(model: &R2UNet, device: &Device, p: &Prepared) -> Vec<f32> {
        let x = Tensor::<4>::from_data(
            TensorData::new(p.data.clone(), [1, 1, p.height, p.width]),
            device,
        );
        sigmoid(model.forward(x))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    fn small_model() -> (Device, R2UNet) {
        let device = Device::flex();
        let model = ModelConfig::new()
            .with_widths(vec![8, 16, 32])
            .init(&device);
        (device, model)
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn one_tile_covering_the_image_equals_the_whole_image_forward() {
        let (device, model) = small_model();
        let p = prepared(64, 96);
        let config = TilingConfig::new().with_tile(128).with_stride(128);
        let got = probabilities(&model, &device, &p, &config, |_, _| {}).unwrap();
        let want = whole(&model, &device, &p);
        let max = max_abs_diff(&got, &want);
        assert!(max < 1e-5, "max abs difference {max}");
    }

    /// Overlapping tiles differ from the whole-image pass only near tile borders (the receptive
    /// field sees zero padding there); blending keeps that difference small.
    #[test]
    fn overlapping_tiles_agree_with_the_whole_image_forward() {
        let (device, model) = small_model();
        let p = prepared(96, 96);
        let config = TilingConfig::new()
            .with_tile(64)
            .with_stride(16)
            .with_blend(Blend::Gaussian);
        let mut calls = 0;
        let got = probabilities(&model, &device, &p, &config, |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert!(calls > 0);
        let want = whole(&model, &device, &p);
        let mean = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / got.len() as f32;
        assert!(mean < 0.02, "mean abs difference {mean}");
    }

    /// With `flips`, each output pixel is the mean of four plain passes over the flipped image,
    /// each flipped back.
    #[test]
    fn flips_average_the_four_flipped_passes() {
        let (device, model) = small_model();
        let p = prepared(64, 96);
        let config = TilingConfig::new().with_tile(128).with_stride(128);
        let got = probabilities(
            &model,
            &device,
            &p,
            &config.clone().with_flips(true),
            |_, _| {},
        )
        .unwrap();
        let (h, w) = (p.height, p.width);
        let flipped = |img: &[f32], lr: bool, ud: bool| -> Vec<f32> {
            let at = |y: usize, x: usize| {
                img[(if ud { h - 1 - y } else { y }) * w + if lr { w - 1 - x } else { x }]
            };
            (0..h * w).map(|i| at(i / w, i % w)).collect()
        };
        let mut want = vec![0.0f32; h * w];
        for (lr, ud) in [(false, false), (true, false), (false, true), (true, true)] {
            let q = Prepared {
                data: flipped(&p.data, lr, ud),
                ..p.clone()
            };
            let plain = probabilities(&model, &device, &q, &config, |_, _| {}).unwrap();
            for (a, b) in want.iter_mut().zip(flipped(&plain, lr, ud)) {
                *a += b / 4.0;
            }
        }
        let max = max_abs_diff(&got, &want);
        assert!(max < 1e-5, "max abs difference {max}");
        let plain = probabilities(&model, &device, &p, &config, |_, _| {}).unwrap();
        assert!(
            max_abs_diff(&got, &plain) > 1e-4,
            "an untrained network is not flip-symmetric, so the average must differ"
        );
    }

    /// Polls a future that never waits (flex reads back at once; the pauses here are ready).
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the future waited"),
        }
    }

    /// The async pass with pauses gives exactly the blocking pass's probabilities (flips or not),
    /// pauses after every forward pass, and stops at the first pause that fails.
    #[test]
    fn the_pausable_async_pass_equals_the_blocking_one_and_stops_when_told() {
        let (device, model) = small_model();
        let p = prepared(64, 96);
        for flips in [false, true] {
            // Two tiles, one per forward pass.
            let config = TilingConfig::new()
                .with_tile(64)
                .with_stride(32)
                .with_batch(1)
                .with_flips(flips);
            let want = probabilities(&model, &device, &p, &config, |_, _| {}).unwrap();
            let (mut pauses, mut reports) = (0, vec![]);
            let got = ready(probabilities_async_with(
                &model,
                &device,
                &p,
                &config,
                |done, total| reports.push((done, total)),
                async || {
                    pauses += 1;
                    Ok::<(), Error>(())
                },
            ))
            .unwrap();
            assert_eq!(got, want, "flips {flips}");
            assert_eq!(reports, vec![(1, 2), (2, 2)]);
            assert_eq!(pauses, if flips { 2 * 4 } else { 2 }, "flips {flips}");

            // A pause that fails after the first tile: no second tile, the pause's error back.
            #[derive(Debug)]
            enum Stop {
                Failed(#[allow(dead_code)] Error),
                Asked,
            }
            impl From<Error> for Stop {
                fn from(e: Error) -> Self {
                    Stop::Failed(e)
                }
            }
            let reports = std::cell::RefCell::new(vec![]);
            let stopped = ready(probabilities_async_with(
                &model,
                &device,
                &p,
                &config,
                |done, total| reports.borrow_mut().push((done, total)),
                async || match reports.borrow().is_empty() {
                    true => Ok(()),
                    false => Err(Stop::Asked),
                },
            ));
            assert!(matches!(stopped, Err(Stop::Asked)), "{stopped:?}");
            assert_eq!(reports.into_inner(), vec![(1, 2)]);
        }
    }

    #[test]
    fn mask_thresholds_inclusively() {
        assert_eq!(mask(&[0.1, 0.5, 0.9], 0.5), vec![0, 255, 255]);
    }
}
