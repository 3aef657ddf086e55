//! Every input that made a fuzz target crash, replayed through that target's own function:
//! `tests/fuzz-regressions/TARGET/NAME` goes through `r2unet_fuzz::TARGET` (fuzz/src/lib.rs,
//! included here as it is, so the fuzzer and this test run the same code). Each must now return
//! normally. `scripts/fuzz.sh` finds them; RELIABILITY.md lists what each one was.
use std::path::Path;

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

#[test]
fn every_input_that_crashed_a_fuzz_target_now_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut count = 0;
    for target in harness::TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            println!("{target}: {} ({} bytes)", file.display(), bytes.len());
            harness::run(target, &bytes);
            count += 1;
        }
    }
    println!("{count} fuzz regression inputs passed");
}

/// The targets' functions run on their seeds' shapes: a valid tiny model, and images refused
/// or taken (a smoke test of the harness itself, so a broken harness cannot pass silently).
#[test]
fn the_fuzz_harness_runs_its_own_seeds() {
    use r2unet::weights::Precision;
    for precision in [Precision::F32, Precision::F16, Precision::Int8] {
        let file = harness::tiny_weights(precision);
        assert!(r2unet::weights::read_bundle(&file).is_ok());
        harness::weights(&file);
        harness::weights(&harness::meta_seed(precision));
    }
    harness::decode(b"not an image");
    // A synthetic 40x30 RGB image through every shipped configuration (flags: 7 << 1).
    let image = r2unet::image_io::RawImage {
        width: 40,
        height: 30,
        channels: 3,
        kind: r2unet::image_io::SampleKind::U8,
        data: (0..40 * 30 * 3).map(|i| (i * 7 % 256) as f32).collect(),
    };
    let config = harness::config_bytes(&r2unet::PreprocessConfig::for_task(r2unet::Task::Retina));
    let input = [&[7 << 1][..], &config, &harness::synthetic_bytes(&image)].concat();
    harness::preprocess(&input);
    // The same image as `{width, height, data}` RGBA for the skin model, default options.
    let rgba: Vec<u8> = image
        .data
        .chunks(3)
        .flat_map(|p| [p[0] as u8, p[1] as u8, p[2] as u8, 255])
        .collect();
    let head = [1u8 | (1 << 1), 0, 0, 0, 0, 100];
    let dims = [40u32.to_le_bytes(), 30u32.to_le_bytes()].concat();
    harness::segment_input(&[&head[..], &dims, &rgba].concat());
}
