//! Adam with each parameter's update as one op ([`r2unet::ops::adam`]): one pass over a
//! parameter on the CPU and one kernel launch on a GPU, where burn's `Adam` runs 13 element-wise
//! ops. Same rule, same defaults (`beta_1` 0.9, `beta_2` 0.999) and the same state type as
//! burn's (`AdamState`), so a checkpoint's optimizer record reads the same in both.
use r2unet::burn::optim::{
    AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use r2unet::burn::tensor::{Device, Tensor};
use r2unet::ops::adam::{self, Constants};

/// Adam without weight decay or AMSGrad, as the trainer and `r2unet bench` configure burn's.
#[derive(Clone, Debug)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
}

impl FusedAdam {
    /// burn's `AdamConfig` defaults with this `epsilon`.
    pub fn new(epsilon: f32) -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon,
        }
    }

    /// The optimizer of a whole module.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// Step `time`'s constants (burn's bias corrections: `sqrt(1 - beta_2^t) / (1 - beta_1^t)`
    /// on the step, `sqrt(1 - beta_2^t)` on epsilon).
    fn constants(&self, lr: LearningRate, time: usize) -> Constants {
        let t = i32::try_from(time).unwrap_or(i32::MAX);
        let correction_2 = (1.0 - self.beta_2.powi(t)).sqrt();
        let factor = correction_2 / (1.0 - self.beta_1.powi(t));
        Constants {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            step_size: lr as f32 * factor,
            epsilon: self.epsilon * correction_2,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let shape = tensor.shape();
        let n = shape.num_elements();
        // The first step's moments start from zero, which gives burn's `(1 - beta) g` exactly.
        let (time, moment_1, moment_2) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let (param, moment_1, moment_2) = adam::step(
            tensor.reshape([n]),
            grad.reshape([n]),
            moment_1.reshape([n]),
            moment_2.reshape([n]),
            self.constants(lr, time),
        );
        let momentum = AdaptiveMomentumState::new(
            time,
            moment_1.reshape(shape.clone()),
            moment_2.reshape(shape.clone()),
        );
        (param.reshape(shape), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use r2unet::burn::nn::{Linear, LinearConfig};
    use r2unet::burn::optim::{AdamConfig, GradientsParams, OptimizerRecord};
    use r2unet::burn::tensor::Distribution;

    fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst / scale < 1e-5,
            "{what} differs by {worst} (scale {scale})"
        );
    }

    /// Three steps of one parameter, from the same values and gradients: the parameter and both
    /// moments agree with burn's `Adam`, and the step count too.
    #[test]
    fn a_parameters_steps_match_burns_adam() {
        let device = Device::flex();
        let burns = AdamConfig::new().with_epsilon(1e-8).build();
        let ours = FusedAdam::new(1e-8);
        let random = |sd| Tensor::<2>::random([37, 129], Distribution::Normal(0.0, sd), &device);
        let start = random(1.0);
        let (mut p_burn, mut p_ours) = (start.clone(), start);
        let (mut s_burn, mut s_ours) = (None, None);
        for _ in 0..3 {
            let grad = random(0.1);
            (p_burn, s_burn) = burns.step(1e-3, p_burn, grad.clone(), s_burn);
            (p_ours, s_ours) = ours.step(1e-3, p_ours, grad, s_ours);
        }
        let (a, b) = (s_ours.unwrap().momentum, s_burn.unwrap().momentum);
        assert_eq!(a.time, b.time);
        assert_close("first moment", &floats(a.moment_1), &floats(b.moment_1));
        assert_close("second moment", &floats(a.moment_2), &floats(b.moment_2));
        assert_close("parameter", &floats(p_ours), &floats(p_burn));
    }

    /// A module's optimizer record saved by burn's Adam (as older checkpoints were) loads into
    /// this one, which continues from its state as burn's does.
    #[test]
    fn burns_adam_record_continues_here() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([8, 5], Distribution::Normal(0.0, 1.0), &device);
        let grads = |layer: &Linear| {
            // Quadratic, so that the gradient changes from step to step and the state matters.
            let loss = layer.forward(x.clone()).square().sum();
            GradientsParams::from_grads(loss.backward(), layer)
        };
        let mut layer = LinearConfig::new(5, 3).init(&device);
        let mut burns = AdamConfig::new().with_epsilon(1e-8).init();
        for _ in 0..2 {
            let g = grads(&layer);
            layer = burns.step(1e-2, layer, g);
        }
        let bytes = burns.to_record().into_bytes().unwrap();
        let mut ours = FusedAdam::new(1e-8)
            .init()
            .load_record(OptimizerRecord::from_bytes(bytes).unwrap());
        let next_ours = ours.step(1e-2, layer.clone(), grads(&layer));
        let next_burns = burns.step(1e-2, layer.clone(), grads(&layer));
        let weights = |l: Linear| floats(l.weight.val().inner());
        assert_close("weights", &weights(next_ours), &weights(next_burns.clone()));
        // Against a fresh start (no state), the step is different: the state was used.
        let fresh = FusedAdam::new(1e-8)
            .init()
            .step(1e-2, layer.clone(), grads(&layer));
        let (a, b) = (weights(fresh), weights(next_burns));
        assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4));
    }
}
