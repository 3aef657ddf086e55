//! Adam's update as one cubecl kernel on burn's cubecl backend (wgpu): a GPU thread per element
//! reads the parameter, the gradient and both moments once and writes the three new tensors.
use burn::backend::Cube;
use burn::backend::tensor::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use cubecl::prelude::*;

use super::AdamBackend;
use crate::ops::cube_launch::{empty_like, per_element};

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn adam_kernel(
    param: &Tensor<f32>,
    grad: &Tensor<f32>,
    moment_1: &Tensor<f32>,
    moment_2: &Tensor<f32>,
    param_out: &mut Tensor<f32>,
    moment_1_out: &mut Tensor<f32>,
    moment_2_out: &mut Tensor<f32>,
    beta_1: f32,
    beta_2: f32,
    step_size: f32,
    epsilon: f32,
) {
    let i = ABSOLUTE_POS;
    if i >= param_out.len() {
        terminate!();
    }
    let g = grad[i];
    let m = beta_1 * moment_1[i] + (1.0 - beta_1) * g;
    let v = beta_2 * moment_2[i] + (1.0 - beta_2) * (g * g);
    moment_1_out[i] = m;
    moment_2_out[i] = v;
    param_out[i] = param[i] - step_size * m / (f32::sqrt(v) + epsilon);
}

impl AdamBackend for Cube {
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        beta_1: f32,
        beta_2: f32,
        step_size: f32,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [param, grad, moment_1, moment_2] =
            [param, grad, moment_1, moment_2].map(into_contiguous);
        let outputs = [empty_like(&param), empty_like(&param), empty_like(&param)];
        let client = param.client.clone();
        let (cube_count, cube_dim) = per_element(&param);
        adam_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            param.into_tensor_arg(),
            grad.into_tensor_arg(),
            moment_1.into_tensor_arg(),
            moment_2.into_tensor_arg(),
            outputs[0].clone().into_tensor_arg(),
            outputs[1].clone().into_tensor_arg(),
            outputs[2].clone().into_tensor_arg(),
            beta_1,
            beta_2,
            step_size,
            epsilon,
        );
        let [p, m, v] = outputs;
        (p, m, v)
    }
}
