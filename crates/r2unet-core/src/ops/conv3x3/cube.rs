//! The columns of the GPU convolution ([`super::lowered`]) as one cubecl kernel: a GPU thread per
//! column element reads its input pixel or writes zero outside the plane, where burn's ops take a
//! zero fill, a copy into the padded planes and a gather (three launches, and an index tensor
//! sent to the GPU each time).
use burn::backend::Cube;
use burn::backend::tensor::FloatTensor;
use burn_cubecl::kernel::into_contiguous;
use cubecl::prelude::*;

use super::lowered::Columns;
use crate::ops::cube_launch::{empty, per_element};

/// `out[b, 9 c + 3 ky + kx, y w + x] = input[b, c, y + ky - 1, x + kx - 1]`, zero outside.
#[cube(launch)]
fn columns_kernel(input: &Tensor<f32>, out: &mut Tensor<f32>, h: u32, w: u32) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let (h, w) = (h as usize, w as usize);
    let plane = h * w;
    let pixel = i % plane;
    let row = i / plane;
    let tap = row % 9;
    // `row / 9` is `b * c + channel`: the input plane.
    let source = row / 9;
    // In the zero-padded plane's coordinates, 0..h + 2 and 0..w + 2.
    let y = pixel / w + tap / 3;
    let x = pixel % w + tap % 3;
    let mut value = 0.0;
    if y >= 1 && y <= h && x >= 1 && x <= w {
        value = input[source * plane + (y - 1) * w + (x - 1)];
    }
    out[i] = value;
}

impl Columns for Cube {
    fn columns(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let x = into_contiguous(x);
        let shape = x.meta.shape().clone();
        let (batch, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        let out = empty(&x, [batch, 9 * c, h * w].into());
        let (cube_count, cube_dim) = per_element(&out);
        let fit = |v: usize| u32::try_from(v).expect("a plane's sides fit in u32");
        columns_kernel::launch(
            &out.client,
            cube_count,
            cube_dim,
            x.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            fit(h),
            fit(w),
        );
        out
    }
}
