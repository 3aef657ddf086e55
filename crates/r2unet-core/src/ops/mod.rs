//! This project's CPU kernels for burn-flex, which the network in [`crate::model`] calls: each
//! takes its fast path where the kernels apply (burn-flex, `f32`) and burn's own layer elsewhere.
pub mod adam;
pub mod bn_relu;
pub mod conv1x1;
pub mod conv3x3;
#[cfg(all(feature = "flex", feature = "wgpu"))]
mod cube_launch;
mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm_avx2;
#[cfg(target_arch = "x86_64")]
mod gemm_avx512;
pub mod max_pool2x2;
pub(crate) mod parallel;
pub(crate) mod simd;
#[cfg(feature = "flex")]
mod tracked;
pub mod up2x2;

pub use simd::{Isa, MAX_CPU_ISA_VAR, cpu_isa, max_cpu_isa_from_env};

/// Whether this project's CPU kernels (`conv3x3`, `bn_relu`, `conv1x1`, `up2x2`, `max_pool2x2`) can run on `device`: burn-flex, and
/// on an autodiff device only when this crate is built with `autodiff` (the backward pass is
/// only routed then).
pub(crate) fn cpu_kernels_apply(device: &burn::tensor::Device) -> bool {
    #[cfg(feature = "flex")]
    let on_flex = matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    );
    #[cfg(not(feature = "flex"))]
    let on_flex = false;
    on_flex && (cfg!(feature = "autodiff") || !device.is_autodiff())
}

/// Whether the small fused ops that this crate has for both backends (Adam's update, the running
/// statistics' update) run for an `f32` tensor on `device`: burn-flex, or in builds with wgpu
/// burn's cubecl backend (which has their kernels); elsewhere burn's tensor ops do their work.
pub(crate) fn fused_ops_apply(device: &burn::tensor::Device, dtype: burn::tensor::DType) -> bool {
    #[cfg(feature = "flex")]
    {
        use burn::backend::DispatchDevice;
        let on = match device.clone().inner().as_dispatch() {
            DispatchDevice::Flex(_) => true,
            #[cfg(feature = "wgpu")]
            DispatchDevice::Cube(_) => true,
            #[allow(unreachable_patterns)]
            _ => false,
        };
        on && dtype == burn::tensor::DType::F32
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (device, dtype);
        false
    }
}

/// Which ops train the network on a backend that this crate's CPU kernels do not cover (wgpu).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuOps {
    /// The 3x3 convolution as im2col + matmul and the batch norm from per-plane sums, in burn's
    /// tensor ops (`conv3x3::lowered`, `bn_relu::lowered`): what a GPU runs best, in theory.
    Lowered,
    /// burn's own: its direct convolution kernel (WGSL has no implicit-GEMM path) and its
    /// generic training batch norm. A lent H200 trained at 95 patches/s with these (bench/NOTES.md
    /// section 14).
    Burn,
}

static GPU_OPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the ops of every later GPU training step (process-wide; the CLI times both on the
/// user's GPU and keeps the faster). The default is [`GpuOps::Lowered`].
pub fn set_gpu_ops(ops: GpuOps) {
    GPU_OPS.store(ops == GpuOps::Burn, std::sync::atomic::Ordering::Relaxed);
}

/// The ops GPU training runs with now (see [`set_gpu_ops`]).
pub fn gpu_ops() -> GpuOps {
    if GPU_OPS.load(std::sync::atomic::Ordering::Relaxed) {
        GpuOps::Burn
    } else {
        GpuOps::Lowered
    }
}

/// Whether training on `device` runs the [`GpuOps::Lowered`] versions of the 3x3 convolution and
/// the batch norm: on an autodiff device that this crate's CPU kernels do not cover, unless
/// [`set_gpu_ops`] chose burn's, and only in builds with both flex and wgpu, where their backend
/// extensions reach burn's cubecl backend. Inference keeps burn's direct convolution: on a whole
/// image the im2col columns are 9x the input, and a lent H200 already ran inference at 12x the
/// 2-core CPU with it.
pub(crate) fn lowered_for_gpu_training(device: &burn::tensor::Device) -> bool {
    cfg!(all(feature = "flex", feature = "wgpu"))
        && gpu_ops() == GpuOps::Lowered
        && device.is_autodiff()
        && !cpu_kernels_apply(device)
}

/// Checks a fast path against burn's own layer: the outputs, then the gradients that `wrt` picks
/// out (input, weights, bias) of a loss that weights every output differently.
#[cfg(all(test, feature = "flex", feature = "autodiff"))]
pub(crate) fn assert_same_layer(
    fast: burn::tensor::Tensor<4>,
    slow: burn::tensor::Tensor<4>,
    wrt: impl Fn(&burn::tensor::Gradients) -> Vec<burn::tensor::TensorData>,
) {
    use burn::tensor::{Distribution, Tensor, Tolerance};
    fast.clone()
        .into_data()
        .assert_approx_eq::<f32>(&slow.clone().into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    let probe = Tensor::<4>::random(fast.dims(), Distribution::Normal(0.0, 1.0), &fast.device());
    let g_fast = (fast * probe.clone()).sum().backward();
    let g_slow = (slow * probe).sum().backward();
    let (a, b) = (wrt(&g_fast), wrt(&g_slow));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        a.assert_approx_eq::<f32>(b, Tolerance::rel_abs(1e-4, 1e-4));
    }
}
