//! The backward pass of the 2x2 transposed convolution on burn's autodiff backend.
#![cfg(feature = "autodiff")]
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::tensor::FloatTensor;

use super::Up2x2Backend;

#[derive(Debug)]
struct Up2x2Backward;

impl<B: Backend + Up2x2Backend> Backward<B, 3> for Up2x2Backward {
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
        // One pass gives all three (the output gradient's gather is shared).
        let (dx, dw, dbias) = B::up2x2_backward(x, dy, weight);
        for (node, grad) in [(node_x, dx), (node_weight, dw), (node_bias, dbias)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + Up2x2Backend, C: CheckpointStrategy> Up2x2Backend for Autodiff<B, C> {
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        crate::ops::tracked::x_weight_and_third::<B, C, _>(Up2x2Backward, x, weight, bias, B::up2x2)
    }

    fn up2x2_backward(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("second-order gradients of up2x2 are not supported")
    }
}
