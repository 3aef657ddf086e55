//! Adam's update of one parameter tensor as one op: the moments and the parameter in a single
//! pass, where burn's `Adam` runs 13 element-wise ops (each a pass over the tensor on the CPU and
//! a kernel launch on a GPU). The training crate's optimizer calls [`step`]; its state and
//! numbers are burn's `Adam`'s (r2unet-train's `adam.rs`).
//!
//! On burn-flex the op is one loop over the tensor ([`kernel`]); on burn's cubecl backend one
//! kernel (`cube.rs`); anywhere else, burn's tensor ops.
#[cfg(all(feature = "flex", feature = "wgpu"))]
mod cube;
pub mod kernel;

#[cfg(feature = "flex")]
use burn::backend::flex::FlexTensor;
#[cfg(feature = "flex")]
use burn::backend::tensor::FloatTensor;
#[cfg(feature = "flex")]
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
#[cfg(feature = "flex")]
use burn::tensor::TensorData;

/// The constants of one step, with the bias corrections folded in: `m = beta_1 m + (1 - beta_1)
/// g`, `v = beta_2 v + (1 - beta_2) g^2`, `param -= step_size * m / (sqrt(v) + epsilon)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constants {
    pub beta_1: f32,
    pub beta_2: f32,
    pub step_size: f32,
    pub epsilon: f32,
}

/// The fused update on the backends that have it.
#[cfg(feature = "flex")]
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"))]
pub trait AdamBackend: Backend {
    /// Returns the new parameter and moments.
    #[allow(clippy::too_many_arguments)]
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        beta_1: f32,
        beta_2: f32,
        step_size: f32,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

#[cfg(feature = "flex")]
impl AdamBackend for Flex {
    fn adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        beta_1: f32,
        beta_2: f32,
        step_size: f32,
        epsilon: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = param.layout().shape().to_vec();
        let [param, grad, m, v] = [param, grad, moment_1, moment_2].map(|t| t.to_contiguous());
        let c = Constants {
            beta_1,
            beta_2,
            step_size,
            epsilon,
        };
        let (p, m, v) = kernel::step(
            param.storage::<f32>(),
            grad.storage::<f32>(),
            m.storage::<f32>(),
            v.storage::<f32>(),
            c,
        );
        let tensor = |data: Vec<f32>| FlexTensor::from_data(TensorData::new(data, shape.clone()));
        (tensor(p), tensor(m), tensor(v))
    }
}

/// One Adam update of a parameter (flattened; any shape reshapes to this for free): returns
/// the new parameter, first and second moments.
pub fn step(
    param: Tensor<1>,
    grad: Tensor<1>,
    moment_1: Tensor<1>,
    moment_2: Tensor<1>,
    c: Constants,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    if !super::fused_ops_apply(&param.device(), param.dtype()) {
        let m = moment_1.mul_scalar(c.beta_1) + grad.clone().mul_scalar(1.0 - c.beta_1);
        let v = moment_2.mul_scalar(c.beta_2) + grad.square().mul_scalar(1.0 - c.beta_2);
        let update = m.clone().mul_scalar(c.step_size) / v.clone().sqrt().add_scalar(c.epsilon);
        return (param - update, m, v);
    }
    #[cfg(feature = "flex")]
    {
        let (p, m, v) = <Dispatch as AdamBackend>::adam_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            c.beta_1,
            c.beta_2,
            c.step_size,
            c.epsilon,
        );
        (
            Tensor::from_dispatch(p),
            Tensor::from_dispatch(m),
            Tensor::from_dispatch(v),
        )
    }
    #[cfg(not(feature = "flex"))]
    unreachable!("the fused op needs the flex feature")
}
