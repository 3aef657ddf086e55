//! Throughput of the CPU kernels on the R2U-Net's layer shapes (a batch of 32 48x48 patches, and one DRIVE-sized image):
//! `cargo run --release -p r2unet-core --features native --example kernel_bench`.
//! Figures only, for profiling; `r2unet bench` is the benchmark of record.
use std::time::Instant;

use r2unet::ops::conv3x3::{self, Dims, im2col, winograd, winograd3, winograd4};

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// GFLOP/s counted as the direct convolution's 2 * c_in * c_out * 9 * pixels, also for Winograd
/// (its "effective" rate), so that the columns compare times. "Winograd" is F(2x2, 3x3); "input
/// grad" is whichever kernel the dispatch picks for it.
fn main() {
    println!(
        "| layer | im2col forward | Winograd forward | F(4x4) forward | F(3x3) forward | input grad | im2col weight grad | Winograd weight grad | F(4x4) weight grad | F(3x3) weight grad |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut shapes = vec![
        (32, 16, 48),
        (32, 32, 24),
        (32, 64, 12),
        (32, 128, 6),
        // A batch too small for the lanes: F(4x4) along the rows or F(2x2) on 12x12 planes.
        (8, 64, 12),
        (1, 16, 584),
        (1, 32, 292),
        (1, 64, 146),
        (1, 128, 73),
    ];
    // KERNEL_BENCH_BATCHES=1,4,8,15: the two small levels (64 x 12 x 12 and 128 x 6 x 6) at
    // these batch sizes instead, for the rules of the batches that do not fill the lanes.
    if let Ok(list) = std::env::var("KERNEL_BENCH_BATCHES") {
        shapes = list
            .split(',')
            .map(|b| {
                b.trim()
                    .parse::<usize>()
                    .expect("KERNEL_BENCH_BATCHES: a list of numbers")
            })
            .flat_map(|b| [(b, 64, 12), (b, 128, 6)])
            .collect();
    }
    for (batch, c, side) in shapes {
        let d = Dims {
            batch,
            c_in: c,
            c_out: c,
            h: side,
            w: side,
        };
        let x: Vec<f32> = (0..d.batch * c * side * side)
            .map(|i| (i % 17) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..c * c * 9).map(|i| (i % 13) as f32 * 0.01).collect();
        let flop = 2.0 * (d.batch * c * c * 9 * side * side) as f64;
        let f = time(|| {
            std::hint::black_box(im2col::forward(&x, &w, d));
        });
        let wf = time(|| {
            std::hint::black_box(winograd::forward(&x, &w, d));
        });
        let w4 = time(|| {
            std::hint::black_box(winograd4::forward(&x, &w, d));
        });
        let wg = time(|| {
            std::hint::black_box(winograd::weight_grad(&x, &x, d));
        });
        let wg4 = time(|| {
            std::hint::black_box(winograd4::weight_grad(&x, &x, d));
        });
        // F(3x3) only where it may run: on large planes its scratch is of the planes' size.
        let small = side <= 8;
        let w3 = small.then(|| {
            time(|| {
                std::hint::black_box(winograd3::forward(&x, &w, d));
            })
        });
        let wg3 = small.then(|| {
            time(|| {
                std::hint::black_box(winograd3::weight_grad(&x, &x, d));
            })
        });
        let rate = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{:.1}", flop / t / 1e9));
        let gi = time(|| {
            std::hint::black_box(conv3x3::input_grad(&x, &w, d));
        });
        let gw = time(|| {
            std::hint::black_box(im2col::weight_grad(&x, &x, d));
        });
        println!(
            "| {batch} x {c}x{side}x{side} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            flop / f / 1e9,
            flop / wf / 1e9,
            flop / w4 / 1e9,
            rate(w3),
            flop / gi / 1e9,
            flop / gw / 1e9,
            flop / wg / 1e9,
            flop / wg4 / 1e9,
            rate(wg3)
        );
    }
}
