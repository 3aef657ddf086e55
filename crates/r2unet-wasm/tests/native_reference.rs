//! The native forward pass on the synthetic input, against the committed fixture that the
//! browser tests compare the CPU and WebGPU builds with. A changed model or forward pass makes
//! this fail with the command that rewrites the fixture.
#![cfg(not(target_family = "wasm"))]

mod common;

use r2unet::image_io::RawImage;
use r2unet_wasm::engine::{Engine, segment_blocking};

#[test]
fn native_forward_matches_the_committed_browser_fixture() {
    let weights = common::retina_native_scale();
    let (engine, bundle) = Engine::cpu(&weights).unwrap();
    let image =
        RawImage::from_rgba8(common::SIDE, common::SIDE, &common::synthetic_fundus_rgba()).unwrap();
    let seg = segment_blocking(&engine, &bundle, &image, &common::options()).unwrap();
    common::assert_not_trivial(&seg.probabilities);

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(common::FIXTURE);
    if std::env::var_os("R2UNET_BLESS").is_some() {
        let bytes: Vec<u8> = seg
            .probabilities
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&path, bytes).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let want =
        common::decode_f32_le(&std::fs::read(&path).expect("the fixture should be committed"));
    let diff = common::max_abs_diff(&seg.probabilities, &want);
    assert!(
        diff <= 1e-4,
        "native probabilities differ from {} by {diff}; if the model or the forward pass changed on \
         purpose, rewrite it: R2UNET_BLESS=1 cargo test --release -p r2unet-wasm --test native_reference",
        common::FIXTURE
    );
}
