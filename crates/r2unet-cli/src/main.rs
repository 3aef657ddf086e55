/*!
`r2unet`: train, evaluate and apply R2U-Net family models for medical image segmentation.

Subcommands: `train`, `eval`, `predict`, `export`, `bench`, `info`, `zoo`. Each lives in `cmd/`, takes
its parsed arguments and returns `anyhow::Result`; this file only parses, dispatches and maps
errors to exit code 2.
*/
mod args;
mod backend;
mod cmd;
mod inputs;
mod models;
mod progress;

use std::process::ExitCode;

// glibc hands every large tensor buffer back to the kernel on free and maps fresh zeroed pages
// for the next one: page faults and page clearing were about 5 % of a training step and of a
// whole-image forward pass (bench/NOTES.md). mimalloc keeps and reuses them, once told not to
// purge freed memory (see `main`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (15 in both mimalloc v2 and v3's `mi_option_e`; the Rust bindings
/// name no constant for it). By default freed memory goes back to the OS after 10 ms and comes
/// back as freshly zeroed pages on the next training step: with -1 it stays, and `clear_page`
/// fell from 10.7 % to 3.4 % of a training bench's samples. A run's memory is steady, so
/// keeping it costs nothing.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

use clap::Parser;

fn main() -> ExitCode {
    // SAFETY: sets a global option of the allocator; valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = args::Cli::parse();
    // SAFETY: no thread has been started yet (the pool below is built after this).
    unsafe { backend::keep_default_on_cpu() };
    // The command runs on a worker of a rayon pool (RAYON_NUM_THREADS threads, else one per
    // core) rather than beside it: each of burn-flex's and our kernels' parallel ops then starts
    // on the calling thread instead of waking the pool from outside and sleeping until it is done,
    // thousands of times per training step. `scripts/bench.sh`-style A/B runs: training 66.6-67.1
    // -> 67.5-72.8 patches/s, DRIVE image 0.484-0.506 -> 0.458-0.489 s (bench/NOTES.md 15).
    let result = match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(|| run(cli)),
        Err(_) => run(cli),
    };
    let code = match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err:#}");
            2
        }
    };
    if backend::wgpu_started() {
        // A process that created a wgpu device was seen to abort at exit on SwiftShader's Vulkan,
        // after its work was done and written ("malloc_consolidate(): unaligned fastbin chunk
        // detected", status 134; "double free or corruption", 139): the driver's C++ teardown
        // racing the runtime's device thread. Every file is closed by now; leave without the
        // exit handlers, so that a finished run does not end in a crash.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; nothing after it runs.
        #[cfg(unix)]
        unsafe {
            libc::_exit(code)
        }
        #[cfg(not(unix))]
        std::process::exit(code)
    }
    ExitCode::from(code as u8)
}

fn run(cli: args::Cli) -> anyhow::Result<()> {
    // A cap the kernels cannot read would otherwise be ignored where they decide (at the first
    // kernel call): a benchmark of the AVX2 paths would then quietly measure AVX-512.
    r2unet::ops::max_cpu_isa_from_env().map_err(anyhow::Error::msg)?;
    match cli.command {
        args::Command::Train(a) => cmd::train::run(a),
        args::Command::Eval(a) => cmd::eval::run(a),
        args::Command::Predict(a) => cmd::predict::run(a),
        args::Command::Export(a) => cmd::export::run(a),
        args::Command::Bench(a) => cmd::bench::run(a),
        args::Command::Info(a) => cmd::info::run(a),
        args::Command::Zoo(a) => cmd::info::zoo(a),
    }
}
