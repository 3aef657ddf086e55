//! Fuzz target `preprocess`: see `r2unet_fuzz::preprocess` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| r2unet_fuzz::preprocess(data));
