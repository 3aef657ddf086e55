//! Where a training step's time goes (forward, backward) on flex, for profiling:
//! `cargo run --release -p r2unet-core --features native,autodiff --example step_bench`.
use std::time::Instant;

use r2unet::ModelConfig;
use r2unet::burn::tensor::{Device, Distribution, Tensor};

fn main() {
    if std::env::args().any(|a| a == "--ops") {
        return ops();
    }
    // `--skin`: the skin task's batches (16 RGB images of 128x128) instead of retina patches.
    let skin = std::env::args().any(|a| a == "--skin");
    let (shape, channels) = if skin {
        ([16, 3, 128, 128], 3)
    } else {
        ([32, 1, 48, 48], 1)
    };
    let device = Device::flex().autodiff();
    let model = ModelConfig::new().with_in_channels(channels).init(&device);
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    // STEPS=n for more steps; the minimum of each is printed at the end (the least disturbed
    // by other processes on a shared machine).
    let steps: usize = std::env::var("STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let (mut best_fwd, mut best_bwd) = (f64::INFINITY, f64::INFINITY);
    for i in 0..steps {
        let t = Instant::now();
        let y = model.forward(x.clone());
        let loss = y.mean();
        let _: f32 = loss.clone().into_scalar();
        let fwd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _grads = loss.backward();
        let bwd = t.elapsed().as_secs_f64();
        println!("step {i}: forward {:.3} s, backward {:.3} s", fwd, bwd);
        if i > 0 {
            (best_fwd, best_bwd) = (best_fwd.min(fwd), best_bwd.min(bwd));
        }
    }
    println!("fastest after the first: forward {best_fwd:.3} s, backward {best_bwd:.3} s");
    let plain = Device::flex();
    let model = ModelConfig::new().with_in_channels(channels).init(&plain);
    let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &plain);
    for _ in 0..3 {
        let t = Instant::now();
        let y: f32 = model.forward(x.clone()).mean().into_scalar();
        println!("inference forward {:.3} s ({y})", t.elapsed().as_secs_f64());
    }
}

#[allow(dead_code)]
pub fn ops() {
    use r2unet::burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use r2unet::burn::nn::pool::MaxPool2dConfig;
    let device = Device::flex();
    let t = |name: &str, f: &mut dyn FnMut()| {
        f();
        let s = Instant::now();
        for _ in 0..5 {
            f();
        }
        println!("{name}: {:.1} ms", s.elapsed().as_secs_f64() * 200.0);
    };
    let x16 = Tensor::<4>::random([32, 16, 48, 48], Distribution::Normal(0.0, 1.0), &device);
    let x32 = Tensor::<4>::random([32, 32, 24, 24], Distribution::Normal(0.0, 1.0), &device);
    let c1 = Conv2dConfig::new([16, 16], [1, 1]).init(&device);
    t("1x1 conv 16->16 @48", &mut || {
        let _ = c1.forward(x16.clone());
    });
    let c1b = Conv2dConfig::new([32, 16], [1, 1]).init(&device);
    let x32_48 = Tensor::<4>::random([32, 32, 48, 48], Distribution::Normal(0.0, 1.0), &device);
    t("1x1 conv 32->16 @48", &mut || {
        let _ = c1b.forward(x32_48.clone());
    });
    let up = ConvTranspose2dConfig::new([32, 16], [2, 2])
        .with_stride([2, 2])
        .init(&device);
    t("up 32->16 24->48", &mut || {
        let _ = up.forward(x32.clone());
    });
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    t("maxpool @48 c16", &mut || {
        let _ = pool.forward(x16.clone());
    });
    let ad = Device::flex().autodiff();
    let xa =
        Tensor::<4>::random([32, 16, 48, 48], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    t("maxpool fwd+bwd autodiff @48 c16", &mut || {
        let _ = pool.forward(xa.clone()).sum().backward();
    });
    use r2unet::ops::conv1x1::conv1x1;
    t("conv1x1 fwd 32->16 @48", &mut || {
        let _ = conv1x1(&c1b, x32_48.clone());
    });
    let c1a = Conv2dConfig::new([32, 16], [1, 1]).init(&ad);
    let x32a =
        Tensor::<4>::random([32, 32, 48, 48], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    t("conv1x1 fwd+bwd autodiff 32->16 @48", &mut || {
        let _ = conv1x1(&c1a, x32a.clone()).sum().backward();
    });
    use r2unet::ops::up2x2::up2x2;
    t("up2x2 fwd 32->16 24->48", &mut || {
        let _ = up2x2(&up, x32.clone());
    });
    let up_a = ConvTranspose2dConfig::new([32, 16], [2, 2])
        .with_stride([2, 2])
        .init(&ad);
    let x32_24a =
        Tensor::<4>::random([32, 32, 24, 24], Distribution::Normal(0.0, 1.0), &ad).require_grad();
    t("up2x2 fwd+bwd autodiff 32->16 24->48", &mut || {
        let _ = up2x2(&up_a, x32_24a.clone()).sum().backward();
    });
    use r2unet::ops::max_pool2x2::max_pool2x2;
    t("max_pool2x2 fwd @48 c16", &mut || {
        let _ = max_pool2x2(&pool, x16.clone());
    });
    t("max_pool2x2 fwd+bwd autodiff @48 c16", &mut || {
        let _ = max_pool2x2(&pool, xa.clone()).sum().backward();
    });
    t("sum fwd+bwd autodiff @48 c16", &mut || {
        let _ = xa.clone().sum().backward();
    });
    t("cat 16+16 @48", &mut || {
        let _ = Tensor::cat(vec![x16.clone(), x16.clone()], 1);
    });
    t("add @48 c16", &mut || {
        let _ = x16.clone() + x16.clone();
    });
    let norm = r2unet::model::step_norm::StepNorm::new(16, 3, &device);
    t("step norm eval + relu @48 c16", &mut || {
        let _ = norm.forward_relu(x16.clone(), 1);
    });
}
