//! End-to-end tests of the `r2unet` binary, one module per command (the layout of ripgrep's
//! `tests/`), on real data from `../shared/data` (or `$R2UNET_DATA`). A test whose data set is
//! absent prints `SKIPPED:` and returns; `scripts/test.sh` lists those lines.
mod util;

mod cpu_isa;
mod eval;
mod export;
mod folder;
mod info;
mod odd_inputs;
mod peak_memory;
mod predict;
mod predict_folder;
mod train;
