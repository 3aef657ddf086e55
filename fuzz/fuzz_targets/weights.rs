//! Fuzz target `weights`: see `r2unet_fuzz::weights` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| r2unet_fuzz::weights(data));
