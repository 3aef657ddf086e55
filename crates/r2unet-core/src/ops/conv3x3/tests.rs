//! The two algorithms against the definition and each other on plain slices, and the fast path
//! against burn's own convolution on random inputs, forward and backward.
#[cfg(feature = "flex")]
use burn::nn::PaddingConfig2d;
#[cfg(feature = "flex")]
use burn::nn::conv::Conv2dConfig;
#[cfg(feature = "flex")]
use burn::tensor::{Distribution, Tensor, Tolerance};

use super::im2col::tests::{assert_close, dims, pseudo_random, reference};
use super::*;

#[test]
fn winograd_matches_the_definition() {
    // Odd and even sides (clipped last tile), one tile row per task and many, several images
    // in one task; 99 channel pairs, two blocks of the weight transform, the last one short.
    for d in [
        dims(2, 3, 5, 7, 6),
        dims(2, 9, 11, 5, 6),
        dims(1, 2, 3, 301, 257),
        dims(3, 1, 1, 1, 2),
        dims(5, 16, 8, 6, 5),
        dims(2, 1, 2, 1, 1),
    ] {
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 3);
        let w = pseudo_random(d.c_out * d.c_in * 9, 4);
        let got = winograd::forward(&x, &w, d);
        let want = reference(&x, &w, d);
        assert_close(&got, &want, 1e-4, d);
    }
}

#[test]
fn winograd_weight_gradient_matches_im2col() {
    for d in [
        dims(2, 3, 5, 7, 6),
        dims(2, 9, 11, 5, 6),
        dims(1, 2, 3, 61, 57),
        dims(3, 1, 1, 1, 2),
        dims(5, 16, 8, 6, 5),
        dims(2, 1, 2, 1, 1),
    ] {
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 5);
        let dy = pseudo_random(d.batch * d.c_out * d.plane(), 6);
        let got = winograd::weight_grad(&x, &dy, d);
        let want = im2col::weight_grad(&x, &dy, d);
        let scale = want.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
        assert_close(&got, &want, 1e-4 * scale, d);
    }
}

/// The largest difference between `got` and `want`, relative to the largest `|want|` (at least 1).
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    err / scale
}

/// F(4x4)'s transforms carry factors up to 8 and 1/24, so its f32 error is about ten times
/// F(2x2)'s: on the shapes below at most 7.6e-6 of the largest output (F(2x2): 7.1e-7), growing
/// with the channel count (0.9e-6 at 3 input channels, 4.5e-6 at 32, 7.6e-6 at 128). The
/// tolerance leaves 4x that, and a real mistake (a wrong tap, a lost tile) is of order one.
const WINOGRAD4_TOLERANCE: f32 = 3e-5;

#[test]
fn winograd4_matches_im2col() {
    // Sides that are not multiples of 4 (partial tiles), a plane smaller than one tile, one and
    // several tile rows per task, several images per task, 1 to 128 channels, 99 channel pairs
    // (the weight transform's last block short).
    for d in [
        dims(1, 3, 5, 5, 7),
        dims(2, 9, 11, 10, 9),
        dims(2, 16, 16, 13, 9),
        dims(3, 32, 32, 24, 24),
        dims(2, 64, 64, 6, 6),
        dims(2, 1, 2, 1, 1),
        dims(3, 2, 1, 3, 2),
        dims(1, 2, 3, 301, 258),
        dims(4, 8, 16, 17, 18),
        dims(2, 128, 64, 12, 12),
        // Sixteen images and one more: on lanes also where the dispatch picks them.
        dims(17, 16, 32, 12, 12),
    ] {
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 7);
        let w = pseudo_random(d.c_out * d.c_in * 9, 8);
        let want = im2col::forward(&x, &w, d);
        let err = relative_error(&winograd4::forward(&x, &w, d), &want);
        assert!(err < WINOGRAD4_TOLERANCE, "{d:?}: relative error {err}");
        // With sixteen images in the lanes, whatever the shape.
        let got = winograd4::forward_add_lanes(&x, &w, None, d);
        let err = relative_error(&got, &want);
        assert!(
            err < WINOGRAD4_TOLERANCE,
            "{d:?} on lanes: relative error {err}"
        );
    }
    // And against the definition itself, on a small shape.
    let d = dims(2, 3, 5, 7, 6);
    let x = pseudo_random(d.batch * d.c_in * d.plane(), 9);
    let w = pseudo_random(d.c_out * d.c_in * 9, 10);
    let err = relative_error(&winograd4::forward(&x, &w, d), &reference(&x, &w, d));
    assert!(err < WINOGRAD4_TOLERANCE, "{d:?}: relative error {err}");
}

#[test]
fn winograd4_weight_gradient_matches_im2col() {
    // Measured at most 2.8e-6 of the largest gradient on these shapes (F(2x2): 6e-7).
    for d in [
        dims(1, 3, 5, 5, 7),
        dims(2, 9, 11, 10, 9),
        dims(2, 16, 16, 13, 9),
        dims(3, 32, 32, 24, 24),
        dims(2, 64, 64, 6, 6),
        dims(2, 1, 2, 1, 1),
        dims(3, 2, 1, 3, 2),
        dims(1, 2, 3, 61, 58),
        dims(4, 8, 16, 17, 18),
        dims(2, 128, 64, 12, 12),
        // Sixteen images and one more: on lanes also where the dispatch picks them.
        dims(17, 16, 32, 12, 12),
    ] {
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 5);
        let dy = pseudo_random(d.batch * d.c_out * d.plane(), 6);
        let want = im2col::weight_grad(&x, &dy, d);
        let err = relative_error(&winograd4::weight_grad(&x, &dy, d), &want);
        assert!(err < WINOGRAD4_TOLERANCE, "{d:?}: relative error {err}");
        let err = relative_error(&winograd4::weight_grad_lanes(&x, &dy, d), &want);
        assert!(
            err < WINOGRAD4_TOLERANCE,
            "{d:?} on lanes: relative error {err}"
        );
    }
}

/// F(3x3)'s transforms carry factors up to 4 and 1/6: between F(2x2)'s error and F(4x4)'s.
const WINOGRAD3_TOLERANCE: f32 = 2e-5;

/// Shapes for F(3x3): sides that are and are not multiples of 3 (partial tiles), planes smaller
/// than a tile, a full group of sixteen images and partial ones (lanes left empty), one and two
/// tile rows to a task, 1 to 128 channels.
fn winograd3_shapes() -> [Dims; 10] {
    [
        dims(16, 32, 32, 6, 6),
        dims(17, 3, 5, 5, 7),
        dims(2, 9, 11, 8, 4),
        dims(33, 16, 8, 3, 3),
        dims(1, 2, 1, 1, 1),
        dims(3, 1, 2, 2, 1),
        dims(20, 128, 128, 6, 6),
        dims(5, 64, 128, 7, 8),
        dims(4, 8, 16, 13, 10),
        // Two tile rows to a task, the last task one.
        dims(17, 4, 4, 8, 3),
    ]
}

#[test]
fn winograd3_matches_im2col() {
    for d in winograd3_shapes() {
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 11);
        let w = pseudo_random(d.c_out * d.c_in * 9, 12);
        let want = im2col::forward(&x, &w, d);
        let err = relative_error(&winograd3::forward(&x, &w, d), &want);
        assert!(err < WINOGRAD3_TOLERANCE, "{d:?}: relative error {err}");
        // With an addend, added as the planes are written.
        let addend = pseudo_random(want.len(), 13);
        let got = winograd3::forward_add(&x, &w, Some(&addend), d);
        let want: Vec<f32> = want.iter().zip(&addend).map(|(y, a)| y + a).collect();
        let err = relative_error(&got, &want);
        assert!(
            err < WINOGRAD3_TOLERANCE,
            "{d:?} + addend: relative error {err}"
        );
    }
    let d = dims(2, 3, 5, 7, 6);
    let x = pseudo_random(d.batch * d.c_in * d.plane(), 9);
    let w = pseudo_random(d.c_out * d.c_in * 9, 10);
    let err = relative_error(&winograd3::forward(&x, &w, d), &reference(&x, &w, d));
    assert!(err < WINOGRAD3_TOLERANCE, "{d:?}: relative error {err}");
}

/// The rules for batches that do not fill the lanes (bench/NOTES.md section 29), and that a
/// training batch of 32 keeps the kernels it had.
#[test]
fn the_small_planes_run_im2col_forward_on_a_few_images() {
    use super::{Algorithm, forward_algorithm, weight_grad_algorithm};
    for batch in [1, 4, 11] {
        assert_eq!(
            forward_algorithm(&dims(batch, 128, 128, 6, 6)),
            Algorithm::Im2col
        );
    }
    for batch in [1, 4, 7] {
        assert_eq!(
            forward_algorithm(&dims(batch, 64, 64, 12, 12)),
            Algorithm::Im2col
        );
        // The weight gradient keeps F(4x4): it tied with im2col at 1-2 images and led from 4.
        assert_eq!(
            weight_grad_algorithm(&dims(batch, 64, 64, 12, 12)),
            Algorithm::Winograd4
        );
    }
    for batch in [12, 15, 32] {
        let d = dims(batch, 128, 128, 6, 6);
        assert_eq!(forward_algorithm(&d), Algorithm::Winograd3);
        assert_eq!(weight_grad_algorithm(&d), Algorithm::Winograd3);
    }
    assert_ne!(
        forward_algorithm(&dims(8, 64, 64, 12, 12)),
        Algorithm::Im2col
    );
    assert_ne!(
        forward_algorithm(&dims(32, 64, 64, 12, 12)),
        Algorithm::Im2col
    );
    // Larger planes are not affected: one image of a whole DRIVE image's deepest level.
    assert_eq!(
        forward_algorithm(&dims(1, 128, 128, 73, 73)),
        Algorithm::Winograd4
    );
}

#[test]
fn winograd3_weight_gradient_matches_im2col() {
    for d in winograd3_shapes() {
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 5);
        let dy = pseudo_random(d.batch * d.c_out * d.plane(), 6);
        let got = winograd3::weight_grad(&x, &dy, d);
        let want = im2col::weight_grad(&x, &dy, d);
        let err = relative_error(&got, &want);
        assert!(err < WINOGRAD3_TOLERANCE, "{d:?}: relative error {err}");
    }
}

#[cfg(feature = "flex")]
fn conv(c_in: usize, c_out: usize, device: &burn::tensor::Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

#[cfg(feature = "flex")]
fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[cfg(feature = "flex")]
#[test]
fn forward_and_gradients_match_burns_convolution() {
    let device = burn::tensor::Device::flex().autodiff();
    for (batch, c_in, c_out, h, w) in [
        (2, 3, 4, 9, 7),
        (4, 16, 8, 48, 48),
        (1, 8, 16, 130, 61),
        (2, 2, 3, 5, 1),
        (1, 3, 2, 1, 6),
        // Winograd for all three (32 channels; then 16 channels on a plane 64+ wide).
        (2, 32, 32, 14, 9),
        (1, 16, 16, 11, 70),
        // F(4x4) for all three (16 channels, sides from 24; then the weight gradient alone).
        (2, 16, 16, 26, 25),
        (3, 16, 32, 13, 12),
        // F(3x3) for all three (32 channels, 6x6 planes, sixteen images and one more).
        (17, 32, 32, 6, 6),
        // F(4x4) on lanes for all three where the CPU has AVX-512 (12x12, sixteen images).
        (16, 16, 16, 12, 12),
        // F(3x3) on three quarters of the lanes; im2col forward on a batch too small for them.
        (12, 32, 32, 6, 6),
        (4, 16, 16, 12, 12),
    ] {
        let layer = conv(c_in, c_out, &device);
        let x = Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let probe = Tensor::<4>::random(
            [batch, c_out, h, w],
            Distribution::Normal(0.0, 1.0),
            &device,
        );

        assert!(
            fast_path_applies(&layer, &x),
            "the fast kernel must be the one under test"
        );
        let fast = conv3x3(&layer, x.clone());
        let slow = layer.forward(x.clone());
        let scale: f32 = slow.clone().abs().max().into_scalar();
        let scale = scale.max(1.0);
        let err = max_abs_diff(fast.clone().inner(), slow.clone().inner());
        assert!(err <= 1e-5 * scale, "forward {batch}x{c_in}x{h}x{w}: {err}");

        // A scalar loss that weights every output differently, so both gradients are dense.
        let g_fast = (fast * probe.clone()).sum().backward();
        let g_slow = (slow * probe).sum().backward();
        let dx_fast = x.grad(&g_fast).unwrap();
        let dx_slow = x.grad(&g_slow).unwrap();
        dx_fast
            .into_data()
            .assert_approx_eq::<f32>(&dx_slow.into_data(), Tolerance::rel_abs(1e-4, 1e-4));
        let dw_fast = layer.weight.grad(&g_fast).unwrap();
        let dw_slow = layer.weight.grad(&g_slow).unwrap();
        dw_fast
            .into_data()
            .assert_approx_eq::<f32>(&dw_slow.into_data(), Tolerance::rel_abs(1e-4, 1e-3));
    }
}

/// The RCL's `addend + conv(x)` in one op against burn's convolution and add: output and the
/// three gradients, with F(4x4) and F(3x3) (which add as they write), F(2x2) and im2col (which
/// add after).
#[cfg(all(feature = "flex", feature = "autodiff"))]
#[test]
fn conv_plus_addend_matches_burns_convolution_and_add() {
    let device = burn::tensor::Device::flex().autodiff();
    for (batch, c, h, w) in [
        (2, 16, 26, 25),
        (2, 32, 14, 9),
        (2, 3, 9, 7),
        (16, 32, 6, 6),
        (16, 16, 12, 12),
    ] {
        let layer = conv(c, c, &device);
        let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let addend = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        assert!(fast_path_applies(&layer, &x));
        let fast = conv3x3_add(&layer, x.clone(), addend.clone());
        let slow = addend.clone() + layer.forward(x.clone());
        let probe = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let g_fast = (fast.clone() * probe.clone()).sum().backward();
        let g_slow = (slow.clone() * probe).sum().backward();
        // Relative to the largest value, as F(4x4)'s error is (WINOGRAD4_TOLERANCE).
        let check = |what: &str, a: Tensor<4>, b: Tensor<4>| {
            let scale: f32 = b.clone().abs().max().into_scalar();
            let err = max_abs_diff(a, b) / scale.max(1.0);
            assert!(
                err < WINOGRAD4_TOLERANCE,
                "{what} {batch}x{c}x{h}x{w}: {err}"
            );
        };
        check("output", fast.inner(), slow.inner());
        check("dx", x.grad(&g_fast).unwrap(), x.grad(&g_slow).unwrap());
        check(
            "addend",
            addend.grad(&g_fast).unwrap(),
            addend.grad(&g_slow).unwrap(),
        );
        check(
            "dW",
            layer.weight.grad(&g_fast).unwrap(),
            layer.weight.grad(&g_slow).unwrap(),
        );
    }
}

#[cfg(feature = "flex")]
#[test]
fn other_convolutions_fall_back_to_burn() {
    let device = burn::tensor::Device::flex();
    let strided = Conv2dConfig::new([2, 3], [3, 3])
        .with_stride([2, 2])
        .init(&device);
    let x = Tensor::<4>::random([1, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    assert!(!fast_path_applies(&strided, &x));
    let out = conv3x3(&strided, x.clone());
    out.into_data()
        .assert_approx_eq::<f32>(&strided.forward(x).into_data(), Tolerance::default());
}

/// The GPU-training lowering (one gather, then a matmul) and its two gradients by hand, run here
/// on burn-flex's primitives against the definition and this module's CPU kernels; the last
/// shape is split into chunks of the batch.
#[cfg(feature = "flex")]
#[test]
fn lowered_matches_the_definition_and_the_cpu_gradients() {
    use burn::backend::Flex;
    let tensor = |data: &[f32], shape: [usize; 4]| {
        FlexTensor::from_data(TensorData::new(data.to_vec(), shape))
    };
    let floats = |t: FlexTensor| t.into_data().try_to_vec::<f32>().unwrap();
    for d in [
        dims(2, 3, 4, 9, 7),
        dims(3, 16, 8, 12, 12),
        dims(1, 2, 3, 5, 1),
        // 3 images of 9 * 96 * 128 * 128 column floats each: over the limit together, 2 chunks.
        dims(3, 96, 2, 128, 128),
    ] {
        let chunked = d.batch * 9 * d.c_in * d.plane() > lowered::MAX_COLUMN_FLOATS;
        assert_eq!(chunked, d.c_in == 96);
        let x = pseudo_random(d.batch * d.c_in * d.plane(), 5);
        let w = pseudo_random(d.c_out * d.c_in * 9, 6);
        let dy = pseudo_random(d.batch * d.c_out * d.plane(), 7);
        let (xs, ws, dys) = (
            [d.batch, d.c_in, d.h, d.w],
            [d.c_out, d.c_in, 3, 3],
            [d.batch, d.c_out, d.h, d.w],
        );
        let y = lowered::forward::<Flex>(tensor(&x, xs), tensor(&w, ws));
        assert_close(&floats(y), &reference(&x, &w, d), 1e-4, d);
        let dx = lowered::input_grad::<Flex>(tensor(&dy, dys), tensor(&w, ws));
        let err = relative_error(&floats(dx), &input_grad(&dy, &w, d));
        assert!(err < 1e-5, "{d:?}: input gradient off by {err}");
        let dw = lowered::weight_grad::<Flex>(tensor(&x, xs), tensor(&dy, dys));
        let err = relative_error(&floats(dw), &im2col::weight_grad(&x, &dy, d));
        assert!(err < 1e-5, "{d:?}: weight gradient off by {err}");
    }
}
