//! The backward pass of the 2x2 max-pool on burn's autodiff backend.
#![cfg(feature = "autodiff")]
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::MaxPool2x2Backend;

#[derive(Debug)]
struct MaxPool2x2Backward;

impl<B: Backend + MaxPool2x2Backend> Backward<B, 1> for MaxPool2x2Backward {
    /// Input and output: the window's maximum is found again from them.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, y) = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::max_pool2x2_backward(x, y, dy));
        }
    }
}

impl<B: Backend + MaxPool2x2Backend, C: CheckpointStrategy> MaxPool2x2Backend for Autodiff<B, C> {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let parents = [x.node()];
        let x = x.into_primitive();
        let y = B::max_pool2x2(x.clone());
        match MaxPool2x2Backward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, y.clone()), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn max_pool2x2_backward(
        _x: FloatTensor<Self>,
        _y: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of max_pool2x2 are not supported")
    }
}
