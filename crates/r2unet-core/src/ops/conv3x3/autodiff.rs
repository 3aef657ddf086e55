//! The backward pass of the 3x3 convolution on burn's autodiff backend.
#![cfg(feature = "autodiff")]
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};

use super::Conv3x3Backend;

#[derive(Debug)]
struct Conv3x3Backward;

impl<B: Backend + Conv3x3Backend> Backward<B, 2> for Conv3x3Backward {
    /// The forward pass's input and weights (both needed by the two gradients).
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let ids = (node_x.map(|n| n.id), node_weight.map(|n| n.id));
        register_conv_grads::<B>(grads, ids, ops.state, dy);
    }
}

/// The input's and the weights' gradients from the output's, for those of the two that are
/// tracked (`ids`), from the forward pass's input and weights.
fn register_conv_grads<B: Backend + Conv3x3Backend>(
    grads: &mut Gradients,
    ids: (Option<NodeId>, Option<NodeId>),
    (x, weight): (FloatTensor<B>, FloatTensor<B>),
    dy: FloatTensor<B>,
) {
    let c_out = weight.shape()[0];
    if let Some(id) = ids.0 {
        grads.register::<B>(id, B::conv3x3_input_grad(dy.clone(), weight));
    }
    if let Some(id) = ids.1 {
        grads.register::<B>(id, B::conv3x3_weight_grad(x, dy, c_out));
    }
}

/// `addend + conv3x3(x, weight)`: the convolution's two gradients, and the output's gradient as
/// it is for the addend.
#[derive(Debug)]
struct Conv3x3AddBackward;

impl<B: Backend + Conv3x3Backend> Backward<B, 3> for Conv3x3AddBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_addend] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        if let Some(node) = node_addend {
            grads.register::<B>(node.id, dy.clone());
        }
        let ids = (node_x.map(|n| n.id), node_weight.map(|n| n.id));
        register_conv_grads::<B>(grads, ids, ops.state, dy);
    }
}

impl<B: Backend + Conv3x3Backend, C: CheckpointStrategy> Conv3x3Backend for Autodiff<B, C> {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let parents = [x.node(), weight.node()];
        match Conv3x3Backward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let y = B::conv3x3(x.clone(), weight.clone());
                prep.finish((x, weight), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::conv3x3(x.into_primitive(), weight.into_primitive()))
            }
        }
    }

    fn conv3x3_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        addend: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        crate::ops::tracked::x_weight_and_third::<B, C, _>(
            Conv3x3AddBackward,
            x,
            weight,
            addend,
            B::conv3x3_add,
        )
    }

    fn conv3x3_input_grad(_dy: FloatTensor<Self>, _weight: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of conv3x3 are not supported")
    }

    fn conv3x3_weight_grad(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _c_out: usize,
    ) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of conv3x3 are not supported")
    }
}
