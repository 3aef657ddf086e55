//! Training-mode batch norm + ReLU for the CPU backend as one backend-extension op with its own
//! backward pass; [`bn_relu_train`] falls back to burn's ops where the op does not apply.
#[cfg(feature = "flex")]
mod autodiff;
#[cfg(all(feature = "flex", feature = "wgpu"))]
mod cube;
pub mod kernel;
pub mod lowered;

#[cfg(feature = "flex")]
use burn::backend::flex::FlexTensor;
#[cfg(feature = "flex")]
use burn::backend::tensor::FloatTensor;
#[cfg(feature = "flex")]
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::module::RunningState;
#[cfg(feature = "flex")]
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use burn::tensor::module::batch_norm_train;
use burn::tensor::{DType, Tensor};

/// Batch norm with batch statistics over `[batch, channels, ...]`, then ReLU.
#[cfg(feature = "flex")]
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff: cfg(feature = "autodiff"))]
pub trait BnReluBackend: Backend {
    /// Returns the output, the batch mean and the biased batch variance (`[channels]` each).
    fn bn_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Inference: `max(0, x * scale + shift)` with per-channel `scale` and `shift`.
    fn bn_relu_eval(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Returns the gradients of the input, gamma and beta. The ReLU's mask comes from `x`,
    /// the parameters and the statistics (not from the output, which would be one more stream
    /// to read).
    #[allow(clippy::too_many_arguments)]
    fn bn_relu_train_backward(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The running statistics' update of [`update_running_stats`] as one op: on a GPU one launch
/// where burn's tensor ops take six (bench/NOTES.md section 30).
#[cfg(feature = "flex")]
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff: cfg(feature = "autodiff"))]
pub trait RunningStatsBackend: Backend {
    /// `(1 - momentum) * running + momentum * batch`, for the mean and for the variance.
    fn running_stats_update(
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        momentum: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

#[cfg(feature = "flex")]
impl RunningStatsBackend for Flex {
    fn running_stats_update(
        running_mean: FlexTensor,
        running_var: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        momentum: f32,
    ) -> (FlexTensor, FlexTensor) {
        let shape = mean.layout().shape().to_vec();
        let [running_mean, running_var, mean, variance] =
            [running_mean, running_var, mean, variance].map(|t| t.to_contiguous());
        let blend = |running: &FlexTensor, batch: &FlexTensor| {
            let values = running
                .storage::<f32>()
                .iter()
                .zip(batch.storage::<f32>())
                .map(|(r, b)| (1.0 - momentum) * r + momentum * b)
                .collect();
            tensor(values, shape.clone())
        };
        (blend(&running_mean, &mean), blend(&running_var, &variance))
    }
}

#[cfg(feature = "flex")]
fn dims(x: &FlexTensor) -> kernel::Dims {
    let s = x.layout().shape();
    kernel::Dims {
        batch: s[0],
        channels: s[1],
        plane: s.iter().skip(2).product(),
    }
}

#[cfg(feature = "flex")]
fn tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(feature = "flex")]
impl BnReluBackend for Flex {
    fn bn_relu_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, gamma, beta) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
        );
        let d = dims(&x);
        let (y, mean, var) =
            kernel::forward(x.storage(), gamma.storage(), beta.storage(), epsilon, d);
        let shape = x.layout().shape().to_vec();
        (
            tensor(y, shape),
            tensor(mean, vec![d.channels]),
            tensor(var, vec![d.channels]),
        )
    }

    fn bn_relu_eval(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let (x, scale, shift) = (
            x.to_contiguous(),
            scale.to_contiguous(),
            shift.to_contiguous(),
        );
        let y = kernel::eval(x.storage(), scale.storage(), shift.storage(), dims(&x));
        tensor(y, x.layout().shape().to_vec())
    }

    fn bn_relu_train_backward(
        x: FlexTensor,
        dy: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [x, dy, gamma, beta, mean, variance] =
            [x, dy, gamma, beta, mean, variance].map(|t| t.to_contiguous());
        let d = dims(&x);
        let (dx, dgamma, dbeta) = kernel::backward(
            x.storage(),
            dy.storage(),
            gamma.storage(),
            beta.storage(),
            mean.storage(),
            variance.storage(),
            epsilon,
            d,
        );
        (
            tensor(dx, x.layout().shape().to_vec()),
            tensor(dgamma, vec![d.channels]),
            tensor(dbeta, vec![d.channels]),
        )
    }
}

#[cfg(all(feature = "flex", feature = "wgpu"))]
impl RunningStatsBackend for burn::backend::Cube {
    fn running_stats_update(
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        momentum: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        cube::running_stats_update(running_mean, running_var, mean, variance, momentum)
    }
}

/// On a GPU, for training: [`lowered`]'s arithmetic (the statistics as per-plane sums, the
/// backward pass by hand, so that burn's autodiff records one op per batch norm) with its
/// element-wise passes as cubecl kernels (`cube.rs`). Inference on a GPU keeps burn's batch norm.
#[cfg(all(feature = "flex", feature = "wgpu"))]
impl BnReluBackend for burn::backend::Cube {
    fn bn_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        cube::train(x, gamma, beta, epsilon)
    }

    fn bn_relu_eval(
        _x: FloatTensor<Self>,
        _scale: FloatTensor<Self>,
        _shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unimplemented!("bn_relu_eval runs on flex only; a GPU's inference uses burn's batch norm")
    }

    fn bn_relu_train_backward(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        cube::backward(x, dy, gamma, beta, mean, variance, epsilon)
    }
}

/// Output, batch mean and biased batch variance of `relu(batch_norm(x))` in training mode.
pub struct BnRelu {
    pub output: Tensor<4>,
    pub mean: Tensor<1>,
    pub variance: Tensor<1>,
}

fn fast_path_applies(x: &Tensor<4>, gamma: &Tensor<1>) -> bool {
    let usable = super::cpu_kernels_apply(&x.device());
    usable && x.dtype() == DType::F32 && gamma.dtype() == DType::F32
}

/// `relu(batch_norm_train(x, gamma, beta))`, fused on burn-flex, with its gradients by hand on
/// a GPU (see [`lowered`]).
pub fn bn_relu_train(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> BnRelu {
    if !fast_path_applies(&x, &gamma) && !crate::ops::lowered_for_gpu_training(&x.device()) {
        let r = batch_norm_train(x, gamma, beta, epsilon);
        return BnRelu {
            output: relu(r.output),
            mean: r.mean,
            variance: r.variance,
        };
    }
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature");
    #[cfg(feature = "flex")]
    let (y, mean, variance) = <Dispatch as BnReluBackend>::bn_relu_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    #[cfg(feature = "flex")]
    BnRelu {
        output: Tensor::from_dispatch(y),
        mean: Tensor::from_dispatch(mean),
        variance: Tensor::from_dispatch(variance),
    }
}

/// `relu(batch_norm(x, gamma, beta, mean, variance))` with given statistics (inference), fused
/// on burn-flex.
pub fn bn_relu_eval(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    epsilon: f64,
) -> Tensor<4> {
    if !fast_path_applies(&x, &gamma) || x.device().is_autodiff() {
        return relu(burn::tensor::module::batch_norm(
            x, gamma, beta, mean, variance, epsilon,
        ));
    }
    let scale = gamma / (variance + epsilon).sqrt();
    let shift = beta - mean * scale.clone();
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature {scale}{shift}");
    #[cfg(feature = "flex")]
    Tensor::from_dispatch(<Dispatch as BnReluBackend>::bn_relu_eval(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    ))
}

/// Moves running statistics towards a batch's: `running = (1 - momentum) * running + momentum *
/// batch`, burn's BatchNorm rule, shared by the plain layers and the per-step norms of the RCLs.
pub fn update_running_stats(
    running: (&RunningState<Tensor<1>>, &RunningState<Tensor<1>>),
    batch: (Tensor<1>, Tensor<1>),
    momentum: f64,
) {
    let (running_mean, running_var) = running;
    let (mean, variance) = (batch.0.detach(), batch.1.detach());
    let device = mean.device();
    let old_mean = running_mean.value_sync().to_device(&device);
    let old_var = running_var.value_sync().to_device(&device);
    let fused = super::fused_ops_apply(&device, mean.dtype())
        && [&old_mean, &old_var, &variance]
            .iter()
            .all(|t| t.dtype() == mean.dtype());
    let (new_mean, new_var) = if fused {
        running_update(old_mean, old_var, mean, variance, momentum)
    } else {
        (
            old_mean.mul_scalar(1.0 - momentum) + mean.mul_scalar(momentum),
            old_var.mul_scalar(1.0 - momentum) + variance.mul_scalar(momentum),
        )
    };
    running_mean.update(new_mean.detach());
    running_var.update(new_var.detach());
}

/// [`RunningStatsBackend::running_stats_update`] on tensors.
fn running_update(
    old_mean: Tensor<1>,
    old_var: Tensor<1>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    momentum: f64,
) -> (Tensor<1>, Tensor<1>) {
    #[cfg(feature = "flex")]
    {
        let (m, v) = <Dispatch as RunningStatsBackend>::running_stats_update(
            old_mean.into_dispatch(),
            old_var.into_dispatch(),
            mean.into_dispatch(),
            variance.into_dispatch(),
            momentum as f32,
        );
        (Tensor::from_dispatch(m), Tensor::from_dispatch(v))
    }
    #[cfg(not(feature = "flex"))]
    unreachable!(
        "the fused update needs the flex feature {old_mean}{old_var}{mean}{variance}{momentum}"
    )
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn inference_matches_burns_batch_norm_and_relu() {
        let device = burn::tensor::Device::flex();
        let x = Tensor::<4>::random([2, 5, 9, 11], Distribution::Normal(0.5, 2.0), &device);
        let stat = |m: f64, s: f64| Tensor::<1>::random([5], Distribution::Normal(m, s), &device);
        let (gamma, beta, mean) = (stat(1.0, 0.3), stat(0.0, 0.3), stat(0.5, 0.5));
        let variance = stat(0.0, 1.0).abs() + 0.1;
        let fast = bn_relu_eval(
            x.clone(),
            gamma.clone(),
            beta.clone(),
            mean.clone(),
            variance.clone(),
            1e-5,
        );
        let slow = relu(burn::tensor::module::batch_norm(
            x, gamma, beta, mean, variance, 1e-5,
        ));
        fast.into_data()
            .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::rel_abs(1e-5, 1e-5));
    }

    /// The GPU-training lowering, forward and backward, run on burn-flex's primitives against
    /// this module's CPU kernels (which the test below holds to burn's batch norm).
    #[test]
    fn lowered_matches_the_cpu_kernels() {
        use burn::backend::flex::FlexTensor;
        let floats = |t: FlexTensor| t.into_data().try_to_vec::<f32>().unwrap();
        let close = |name: &str, a: FlexTensor, b: FlexTensor| {
            let (a, b) = (floats(a), floats(b));
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let err = a
                .iter()
                .zip(&b)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(err / scale < 1e-5, "{name} off by {err} (scale {scale})");
        };
        let device = burn::tensor::Device::flex();
        for shape in [[3, 4, 5, 7], [8, 16, 12, 12]] {
            let random = |shape: &[usize], mean, sd| -> FlexTensor {
                let t = Tensor::<1>::random(
                    [shape.iter().product::<usize>()],
                    Distribution::Normal(mean, sd),
                    &device,
                );
                let values = t.into_data().try_to_vec::<f32>().unwrap();
                FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
            };
            let x = random(&shape, 1.5, 2.0);
            let dy = random(&shape, 0.0, 1.0);
            let gamma = random(&[shape[1]], 1.0, 0.3);
            let beta = random(&[shape[1]], 0.0, 0.3);
            let (y, mean, var) =
                lowered::train::<Flex>(x.clone(), gamma.clone(), beta.clone(), 1e-5);
            let (y_cpu, mean_cpu, var_cpu) =
                Flex::bn_relu_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
            close("output", y, y_cpu);
            close("mean", mean.clone(), mean_cpu);
            close("variance", var.clone(), var_cpu);
            let args = (x, dy, gamma, beta, mean, var);
            let (dx, dgamma, dbeta) = lowered::backward::<Flex>(
                args.0.clone(),
                args.1.clone(),
                args.2.clone(),
                args.3.clone(),
                args.4.clone(),
                args.5.clone(),
                1e-5,
            );
            let (dx_cpu, dgamma_cpu, dbeta_cpu) =
                Flex::bn_relu_train_backward(args.0, args.1, args.2, args.3, args.4, args.5, 1e-5);
            close("input gradient", dx, dx_cpu);
            close("gamma gradient", dgamma, dgamma_cpu);
            close("beta gradient", dbeta, dbeta_cpu);
        }
    }

    #[test]
    fn forward_and_gradients_match_burns_batch_norm_and_relu() {
        let device = burn::tensor::Device::flex().autodiff();
        for shape in [[3, 4, 5, 7], [32, 16, 48, 48], [2, 128, 6, 6]] {
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(1.5, 2.0), &device).require_grad();
            let gamma = Tensor::<1>::random([shape[1]], Distribution::Normal(1.0, 0.3), &device)
                .require_grad();
            let beta = Tensor::<1>::random([shape[1]], Distribution::Normal(0.0, 0.3), &device)
                .require_grad();
            assert!(
                fast_path_applies(&x, &gamma),
                "the fused op must be the one under test"
            );

            let fast = bn_relu_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
            let slow = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
            let pre_activation: Vec<f32> = slow
                .output
                .clone()
                .inner()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            // The output gradient, zero where the pre-activation is within rounding of zero:
            // there the two may take the other side of the ReLU, and one element's gradient on
            // the other side moves every gradient (through the batch sums) by far more than
            // rounding, which made this test fail about one run in six.
            let probe: Vec<f32> =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
                    .into_iter()
                    .zip(&pre_activation)
                    .map(|(p, z)| if z.abs() > 1e-4 { p } else { 0.0 })
                    .collect();
            let probe = Tensor::<4>::from_data(TensorData::new(probe, shape), &device);
            let slow_out = relu(slow.output);
            let tol = Tolerance::rel_abs(1e-4, 1e-4);
            fast.output
                .clone()
                .inner()
                .into_data()
                .assert_approx_eq::<f32>(&slow_out.clone().inner().into_data(), tol);
            fast.mean
                .inner()
                .into_data()
                .assert_approx_eq::<f32>(&slow.mean.inner().into_data(), tol);
            fast.variance
                .inner()
                .into_data()
                .assert_approx_eq::<f32>(&slow.variance.inner().into_data(), tol);

            let g_fast = (fast.output * probe.clone()).sum().backward();
            let g_slow = (slow_out * probe).sum().backward();
            let tol = Tolerance::rel_abs(1e-3, 1e-3);
            // Where the pre-activation is within rounding of zero the two may take the other
            // side of the ReLU; compare everywhere else.
            let dx_fast: Vec<f32> = x
                .grad(&g_fast)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let dx_slow: Vec<f32> = x
                .grad(&g_slow)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let mut compared = 0;
            for ((a, b), z) in dx_fast.iter().zip(&dx_slow).zip(&pre_activation) {
                if z.abs() > 1e-4 {
                    compared += 1;
                    assert!(
                        (a - b).abs() <= 1e-3 + 1e-3 * b.abs(),
                        "dx {a} != {b} (pre-activation {z})"
                    );
                }
            }
            assert!(
                compared * 100 > dx_fast.len() * 99,
                "only {compared} of {} compared",
                dx_fast.len()
            );
            gamma
                .grad(&g_fast)
                .unwrap()
                .into_data()
                .assert_approx_eq::<f32>(&gamma.grad(&g_slow).unwrap().into_data(), tol);
            beta.grad(&g_fast)
                .unwrap()
                .into_data()
                .assert_approx_eq::<f32>(&beta.grad(&g_slow).unwrap().into_data(), tol);
        }
    }
}
