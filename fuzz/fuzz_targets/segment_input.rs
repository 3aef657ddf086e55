//! Fuzz target `segment_input`: see `r2unet_fuzz::segment_input` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| r2unet_fuzz::segment_input(data));
