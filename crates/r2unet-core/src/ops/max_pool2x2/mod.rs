//! 2x2, stride-2 max-pooling for the CPU backend as one backend-extension op with its own
//! backward pass; [`max_pool2x2`] runs burn's `MaxPool2d` where the op does not apply (WebGPU,
//! odd sizes).
#[cfg(feature = "flex")]
mod autodiff;
pub mod kernel;

#[cfg(feature = "flex")]
use burn::backend::flex::FlexTensor;
#[cfg(feature = "flex")]
use burn::backend::tensor::FloatTensor;
#[cfg(feature = "flex")]
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::pool::MaxPool2d;
#[cfg(feature = "flex")]
use burn::tensor::TensorData;
use burn::tensor::{DType, Tensor};

#[cfg(feature = "flex")]
#[backend_extension(Flex, Autodiff: cfg(feature = "autodiff"))]
pub trait MaxPool2x2Backend: Backend {
    /// `[b, c, h, w]` (h, w even) to `[b, c, h/2, w/2]`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The input gradient, from the input, the output and the output gradient.
    fn max_pool2x2_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
fn plane_dims(x: &FlexTensor) -> (usize, usize, usize) {
    let s = x.layout().shape();
    (s[0] * s[1], s[2], s[3])
}

#[cfg(feature = "flex")]
impl MaxPool2x2Backend for Flex {
    fn max_pool2x2(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let (planes, h, w) = plane_dims(&x);
        let y = kernel::forward(x.storage(), planes, h, w);
        let s = x.layout().shape();
        FlexTensor::from_data(TensorData::new(y, vec![s[0], s[1], h / 2, w / 2]))
    }

    fn max_pool2x2_backward(x: FlexTensor, y: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let [x, y, dy] = [x, y, dy].map(|t| t.to_contiguous());
        let (planes, h, w) = plane_dims(&x);
        let dx = kernel::backward(x.storage(), y.storage(), dy.storage(), planes, h, w);
        FlexTensor::from_data(TensorData::new(dx, x.layout().shape().to_vec()))
    }
}

fn applies(pool: &MaxPool2d, x: &Tensor<4>) -> bool {
    let [_, _, h, w] = x.dims();
    super::cpu_kernels_apply(&x.device())
        && x.dtype() == DType::F32
        && pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && pool.padding == burn::nn::PaddingConfig2d::Valid
        && h % 2 == 0
        && w % 2 == 0
}

/// `pool.forward(x)`, on burn-flex by this project's kernel when `pool` is 2x2 with stride 2.
pub fn max_pool2x2(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    if !applies(pool, &x) {
        return pool.forward(x);
    }
    #[cfg(not(feature = "flex"))]
    unreachable!("the fast path needs the flex feature");
    #[cfg(feature = "flex")]
    Tensor::from_dispatch(<Dispatch as MaxPool2x2Backend>::max_pool2x2(
        x.into_dispatch(),
    ))
}

#[cfg(all(test, feature = "flex", feature = "autodiff"))]
mod tests {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn forward_and_gradient_match_burns_max_pool() {
        let device = burn::tensor::Device::flex().autodiff();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        for shape in [[3, 5, 6, 10], [32, 16, 48, 48], [1, 1, 2, 2]] {
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            assert!(applies(&pool, &x));
            let fast = max_pool2x2(&pool, x.clone());
            let slow = pool.forward(x.clone());
            crate::ops::assert_same_layer(fast, slow, |g| vec![x.grad(g).unwrap().into_data()]);
        }
        let odd = Tensor::<4>::zeros([1, 1, 5, 4], &device);
        assert!(!applies(&pool, &odd), "odd planes go to burn's pooling");
        assert_eq!(max_pool2x2(&pool, odd).dims(), [1, 1, 2, 2]);
    }
}
