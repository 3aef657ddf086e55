//! The backward pass of the 1x1 convolution on burn's autodiff backend.
#![cfg(feature = "autodiff")]
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};

use super::Conv1x1Backend;

#[derive(Debug)]
struct Conv1x1Backward;

impl<B: Backend + Conv1x1Backend> Backward<B, 3> for Conv1x1Backward {
    /// The forward pass's input and weights.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::conv1x1_input_grad(dy.clone(), weight.clone()));
        }
        if node_weight.is_some() || node_bias.is_some() {
            let (dw, dbias) = B::conv1x1_param_grads(x, dy, weight.shape()[0]);
            if let Some(node) = node_weight {
                grads.register::<B>(node.id, dw);
            }
            if let Some(node) = node_bias {
                grads.register::<B>(node.id, dbias);
            }
        }
    }
}

impl<B: Backend + Conv1x1Backend, C: CheckpointStrategy> Conv1x1Backend for Autodiff<B, C> {
    fn conv1x1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        crate::ops::tracked::x_weight_and_third::<B, C, _>(
            Conv1x1Backward,
            x,
            weight,
            bias,
            B::conv1x1,
        )
    }

    fn conv1x1_input_grad(_dy: FloatTensor<Self>, _weight: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of conv1x1 are not supported")
    }

    fn conv1x1_param_grads(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _c_out: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("second-order gradients of conv1x1 are not supported")
    }
}
