//! Recording the backend-extension ops on burn's autodiff graph, where several share one shape.
#![cfg(feature = "autodiff")]
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::tensor::FloatTensor;

/// `op(x, weight, third)` on the autodiff backend with `step` as its backward pass, which keeps
/// `(x, weight)`: the ops whose third input, the 1x1 and transposed convolutions' bias or
/// `conv3x3_add`'s addend, their backward pass does not read.
pub(crate) fn x_weight_and_third<B, C, S>(
    step: S,
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    third: FloatTensor<Autodiff<B, C>>,
    op: impl FnOnce(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    S: Backward<B, 3, State = (FloatTensor<B>, FloatTensor<B>)>,
{
    let parents = [x.node(), weight.node(), third.node()];
    match step.prepare::<C>(parents).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (x, weight) = (x.into_primitive(), weight.into_primitive());
            let y = op(x.clone(), weight.clone(), third.into_primitive());
            prep.finish((x, weight), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(op(
            x.into_primitive(),
            weight.into_primitive(),
            third.into_primitive(),
        )),
    }
}
