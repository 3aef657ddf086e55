//! Fuzz target `decode`: see `r2unet_fuzz::decode` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| r2unet_fuzz::decode(data));
