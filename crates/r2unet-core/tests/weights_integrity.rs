//! Every shipped model, corrupted one random byte at a time, is refused: the figure of
//! RELIABILITY.md ("weights integrity"). `R2UNET_CORRUPTIONS` sets the count per model (default
//! 200; the published figure used the command in RELIABILITY.md).
use std::path::PathBuf;

use r2unet::Error;
use r2unet::weights::read_bundle;

/// SplitMix64: a fixed, dependency-free sequence, so a failure names a reproducible position.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn random_single_byte_corruptions_of_every_shipped_model_are_refused() {
    let per_model: usize = std::env::var("R2UNET_CORRUPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bpk"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "shipped models in {}: {files:?}",
        models.display()
    );
    let mut state = 20_261_205;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        read_bundle(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for _ in 0..per_model {
            let at = (splitmix(&mut state) % bytes.len() as u64) as usize;
            // Any change of the byte: 1..=255 added, so it always differs.
            let delta = (splitmix(&mut state) % 255 + 1) as u8;
            let mut bad = bytes.clone();
            bad[at] = bad[at].wrapping_add(delta);
            let kind = match read_bundle(&bad) {
                Ok(_) => panic!(
                    "{}: byte {at} changed by {delta} was accepted",
                    file.display()
                ),
                Err(Error::DigestMismatch) => "digest mismatch",
                Err(Error::NoDigest) => "no digest",
                Err(Error::NotBurnpack(_)) => "not a burnpack",
                Err(e) => panic!("{}: byte {at}: unexpected error {e}", file.display()),
            };
            *kinds.entry(kind).or_default() += 1;
        }
        println!(
            "{}: {per_model} random single-byte corruptions, all refused ({kinds:?})",
            file.file_name().unwrap().to_string_lossy()
        );
    }
}
