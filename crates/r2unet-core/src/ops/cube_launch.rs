//! What the cubecl kernels of this crate (`adam/cube.rs`, `bn_relu/cube.rs`, `conv3x3/cube.rs`)
//! share on the host side: their output tensors and the launch of a GPU thread per element.
use burn::tensor::Shape;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::CubeCount;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

/// A new contiguous tensor of `shape` on `like`'s device, of its type.
pub(crate) fn empty(like: &CubeTensor, shape: Shape) -> CubeTensor {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// A new contiguous tensor of `like`'s shape and type.
pub(crate) fn empty_like(like: &CubeTensor) -> CubeTensor {
    empty(like, like.meta.shape().clone())
}

/// Work groups and their size for one GPU thread per element of `t`.
pub(crate) fn per_element(t: &CubeTensor) -> (CubeCount, CubeDim) {
    let n = t.meta.num_elements();
    let cube_dim = CubeDim::new(&t.client, n);
    (
        calculate_cube_count_elemwise(&t.client, n, cube_dim),
        cube_dim,
    )
}
