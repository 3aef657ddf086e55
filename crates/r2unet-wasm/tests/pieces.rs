//! The path of the package's threads, natively: an image cut into pieces (`engine::split`), each
//! run by `engine::forward_piece` on an engine of its own (as each pool worker has its own
//! module), put together by `Pieces::finish`: the same map as one engine's `segment`.
#![cfg(not(target_family = "wasm"))]

mod common;

use r2unet::image_io::RawImage;
use r2unet::inference::tiling::TilingConfig;
use r2unet_wasm::engine::{Engine, SegmentOptions, forward_piece, segment_blocking, split};

/// Polls a future that never waits (flex reads back at once).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}

#[test]
fn pieces_on_two_engines_give_the_one_engine_map() {
    let weights = common::retina_native_scale();
    let (engine, bundle) = Engine::cpu(&weights).unwrap();
    let (other, _) = Engine::cpu(&weights).unwrap();
    let image =
        RawImage::from_rgba8(common::SIDE, common::SIDE, &common::synthetic_fundus_rgba()).unwrap();
    for flips in [false, true] {
        let mut options = common::options();
        options.tiling = options.tiling.with_flips(flips);
        let want = segment_blocking(&engine, &bundle, &image, &options).unwrap();
        let mut pieces = split(&engine, &bundle, image.clone(), &options, 2, || 0.0).unwrap();
        assert!(!pieces.is_bands());
        assert_eq!(pieces.regions(), 4, "the fixture's four tiles");
        assert_eq!(pieces.len(), if flips { 16 } else { 4 });
        for i in 0..pieces.len() {
            let (piece, input) = pieces.piece(i).unwrap();
            // Every other piece on the second engine, as two workers would run them.
            let on = if i % 2 == 0 { &engine } else { &other };
            let out = ready(forward_piece(on, input, piece)).unwrap();
            pieces.set(i, out).unwrap();
        }
        let got = pieces.finish(1.0, || 0.0).unwrap();
        assert_eq!(got.probabilities, want.probabilities, "flips {flips}");
        assert_eq!(got.mask, want.mask);
        assert_eq!((got.width, got.height), (want.width, want.height));
    }
}

#[test]
fn a_short_one_pass_image_stays_one_piece_and_bad_outputs_are_refused() {
    let weights = common::retina_native_scale();
    let (engine, bundle) = Engine::cpu(&weights).unwrap();
    let image =
        RawImage::from_rgba8(common::SIDE, common::SIDE, &common::synthetic_fundus_rgba()).unwrap();
    let options = SegmentOptions {
        threshold: 0.5,
        tiling: TilingConfig::new().with_batch(1).with_whole_up_to(450_000),
    };
    let mut pieces = split(&engine, &bundle, image, &options, 4, || 0.0).unwrap();
    // 48 rows: two bands with 32-row halos would cost more than one pass.
    assert_eq!(pieces.len(), 1);
    let (piece, input) = pieces.piece(0).unwrap();
    assert!(pieces.piece(1).is_err());
    assert!(pieces.set(0, vec![0.0; 3]).is_err());
    let out = ready(forward_piece(&engine, input.clone(), piece)).unwrap();
    assert!(ready(forward_piece(&engine, input[1..].to_vec(), piece)).is_err());
    pieces.set(0, out).unwrap();
    assert!(pieces.finish(0.0, || 0.0).is_ok());
    let pieces = split(
        &engine,
        &bundle,
        RawImage::from_rgba8(common::SIDE, common::SIDE, &common::synthetic_fundus_rgba()).unwrap(),
        &options,
        1,
        || 0.0,
    )
    .unwrap();
    let Err(err) = pieces.finish(0.0, || 0.0) else {
        panic!("pieces without outputs were put together");
    };
    let err = err.to_string();
    assert!(err.contains("1 of 1 pieces have no output"), "{err}");
}
