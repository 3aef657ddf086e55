//! The backward pass of the fused batch norm + ReLU on burn's autodiff backend.
#![cfg(feature = "autodiff")]
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::{BnReluBackend, RunningStatsBackend};

#[derive(Debug)]
struct BnReluBackward;

impl<B: Backend + BnReluBackend> Backward<B, 3> for BnReluBackward {
    /// Input, gamma, beta, batch mean, batch variance, epsilon.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        f64,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, gamma, beta, mean, variance, epsilon) = ops.state;
        let (dx, dgamma, dbeta) =
            B::bn_relu_train_backward(x, dy, gamma, beta, mean, variance, epsilon);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, dbeta);
        }
    }
}

impl<B: Backend + BnReluBackend, C: CheckpointStrategy> BnReluBackend for Autodiff<B, C> {
    fn bn_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let parents = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, variance) = B::bn_relu_train(x.clone(), gamma.clone(), beta.clone(), epsilon);
        let output = match BnReluBackward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((x, gamma, beta, mean.clone(), variance.clone(), epsilon), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        // The statistics feed running averages only: no gradient flows through them.
        (
            output,
            FloatTensor::<Self>::new(mean),
            FloatTensor::<Self>::new(variance),
        )
    }

    fn bn_relu_eval(
        _x: FloatTensor<Self>,
        _scale: FloatTensor<Self>,
        _shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unimplemented!("bn_relu_eval is for inference on a plain device")
    }

    fn bn_relu_train_backward(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _variance: FloatTensor<Self>,
        _epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("second-order gradients of bn_relu are not supported")
    }
}

/// The running statistics are no part of the graph: the update runs on the inner backend and its
/// results are constants.
impl<B: Backend + RunningStatsBackend, C: CheckpointStrategy> RunningStatsBackend
    for Autodiff<B, C>
{
    fn running_stats_update(
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        momentum: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (m, v) = B::running_stats_update(
            running_mean.into_primitive(),
            running_var.into_primitive(),
            mean.into_primitive(),
            variance.into_primitive(),
            momentum,
        );
        (FloatTensor::<Self>::new(m), FloatTensor::<Self>::new(v))
    }
}
