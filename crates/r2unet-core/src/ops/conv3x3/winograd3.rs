//! The same 3x3 convolution as [`super::im2col::forward`] by Winograd's F(3x3, 3x3)
//! (interpolation points 0, ±1, 2): every 3x3 block of outputs from a 5x5 block of inputs with
//! 25 multiplications per (input, output) channel pair, for the small planes at the bottom of
//! the U-Net, with sixteen images in the lanes of a vector.
//!
//! Why a third Winograd kernel: a training batch's deepest level is 6x6 planes at 128 channels,
//! and neither of the other two fits them. F(2x2)'s 2x2 tiles cover a 6x6 plane with 3x3 tiles
//! and, in its layout, a junk column: 192 products per plane and channel pair. F(4x4)'s 4x4 tiles
//! cover 8x8 for 6x6 (144), and its row transforms run 2 tiles in 16 lanes. F(3x3)'s tiles cover
//! 6x6 exactly with 2x2 of them: 100 products, against the direct convolution's 324. This was
//! the one level where PyTorch's direct convolution still beat ours (bench/NOTES.md sections 26
//! and 27).
//!
//! Layout: a plane of 6x6 has only two tiles to a row, too few for the vectors that the other
//! kernels fill along a row, so the vectors run across sixteen images (`lanes.rs`).
use super::Dims;
use super::lanes::{self, LANES, Tile};
use super::tiles::{PAIR_BLOCK, Pairs};
use crate::ops::simd::simd_copies;

/// Whether F(3x3) beats the other algorithms on this shape: small planes (at most 8 on a side,
/// where F(2x2) and F(4x4) waste most of their tiles), enough channels for the GEMMs, and a batch
/// that fills most of the lanes (measured with the kernel bench, bench/NOTES.md sections 27 and
/// 29).
pub fn pays(d: &Dims) -> bool {
    d.c_in.min(d.c_out) >= 32 && d.h.max(d.w) <= 8 && d.batch >= MIN_BATCH
}

/// The fewest images that F(3x3) runs: three quarters of the lanes. At 128 x 6 x 6, forward, it
/// ran at 206-279 GFLOP/s with 12-15 images against im2col's 138-154 (but for one run at 12:
/// 110), and at 8 images at best tied (80-148 against 135-150); below, the empty lanes cost more
/// than they save.
pub const MIN_BATCH: usize = LANES * 3 / 4;

/// The same for the weights' gradient.
pub fn pays_for_weight_grad(d: &Dims) -> bool {
    pays(d)
}

const SIXTH: f32 = 1.0 / 6.0;
const THIRD: f32 = 1.0 / 3.0;

/// `G g` for one column `(g0, g1, g2)` of a kernel; G's rows are [1/2 0 0], [-1/2 -1/2 -1/2],
/// [-1/6 1/6 -1/6], [1/6 1/3 2/3], [0 0 1].
#[inline(always)]
fn g_col(g0: f32, g1: f32, g2: f32) -> [f32; 5] {
    [
        0.5 * g0,
        -0.5 * (g0 + g1 + g2),
        SIXTH * (g1 - g0 - g2),
        SIXTH * g0 + THIRD * (g1 + 2.0 * g2),
        g2,
    ]
}

/// `G^T q` for five values `q`, G^T's rows [1/2 -1/2 -1/6 1/6 0], [0 -1/2 1/6 1/3 0],
/// [0 -1/2 -1/6 2/3 1].
#[inline(always)]
fn gt(q: [f32; 5]) -> [f32; 3] {
    [
        0.5 * (q[0] - q[1]) + SIXTH * (q[3] - q[2]),
        -0.5 * q[1] + SIXTH * q[2] + THIRD * q[3],
        -0.5 * q[1] - SIXTH * q[2] + 2.0 * THIRD * q[3] + q[4],
    ]
}

/// `U = G g G^T` for a block of pairs' kernels, one pair a lane.
#[inline(always)]
fn weight_transform_body(g: &[Pairs; 9], u: &mut [Pairs; 25]) {
    for i in 0..PAIR_BLOCK {
        // t = G g, a column of the kernel at a time; then U's row r is G applied to t's row r.
        let t0 = g_col(g[0][i], g[3][i], g[6][i]);
        let t1 = g_col(g[1][i], g[4][i], g[7][i]);
        let t2 = g_col(g[2][i], g[5][i], g[8][i]);
        for r in 0..5 {
            let row = g_col(t0[r], t1[r], t2[r]);
            for (j, v) in row.into_iter().enumerate() {
                u[r * 5 + j][i] = v;
            }
        }
    }
}

/// `dW = G^T Wd G` for a block of pairs' 5x5 sums `wd`, one pair a lane.
#[inline(always)]
fn weight_grad_back_body(wd: &[Pairs; 25], dw: &mut [Pairs; 9]) {
    for i in 0..PAIR_BLOCK {
        // h = Wd G (5x3), a row at a time; then dW's column l is G^T applied to h's column l.
        let mut h = [[0.0; 3]; 5];
        for (r, h) in h.iter_mut().enumerate() {
            let q = &wd[r * 5..r * 5 + 5];
            *h = gt([q[0][i], q[1][i], q[2][i], q[3][i], q[4][i]]);
        }
        for l in 0..3 {
            let col = gt([h[0][l], h[1][l], h[2][l], h[3][l], h[4][l]]);
            for (k, v) in col.into_iter().enumerate() {
                dw[k * 3 + l][i] = v;
            }
        }
    }
}

/// F(3x3)'s transforms of a tile: B^T's rows [2 -1 -2 1 0], [0 -2 -1 1 0], [0 2 -3 1 0],
/// [0 -1 0 1 0], [0 2 -1 -2 1]; A^T's rows [1 1 1 1 0], [0 1 -1 2 0], [0 1 1 4 1].
struct F3;

impl Tile<3, 5> for F3 {
    #[inline(always)]
    fn bt([d0, d1, d2, d3, d4]: [f32; 5]) -> [f32; 5] {
        [
            2.0 * (d0 - d2) - d1 + d3,
            d3 - d2 - 2.0 * d1,
            2.0 * d1 - 3.0 * d2 + d3,
            d3 - d1,
            2.0 * (d1 - d3) - d2 + d4,
        ]
    }

    #[inline(always)]
    fn at([m0, m1, m2, m3, m4]: [f32; 5]) -> [f32; 3] {
        [
            m0 + m1 + m2 + m3,
            m1 - m2 + 2.0 * m3,
            m1 + m2 + 4.0 * m3 + m4,
        ]
    }

    #[inline(always)]
    fn a([y0, y1, y2]: [f32; 3]) -> [f32; 5] {
        [y0, y0 + y1 + y2, y0 - y1 + y2, y0 + 2.0 * y1 + 4.0 * y2, y2]
    }
}

// Each one call a block of pairs, compiled for the widest vectors the CPU has (see
// `super::simd`).
simd_copies! {
    fn weight_transform(g: &[Pairs; 9], u: &mut [Pairs; 25]) => weight_transform_body;
    fn weight_grad_back(wd: &[Pairs; 25], dw: &mut [Pairs; 9]) => weight_grad_back_body;
}

lanes::kernel!(KERNEL = F3, 3, 5, 25, weight_transform, weight_grad_back);

/// `y = conv3x3(x, weight)`, as [`super::im2col::forward`].
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    lanes::forward_add(&KERNEL, x, weight, None, d)
}

/// `addend + conv3x3(x, weight)`, the sum taken as each output row is written.
pub fn forward_add(x: &[f32], weight: &[f32], addend: Option<&[f32]>, d: Dims) -> Vec<f32> {
    lanes::forward_add(&KERNEL, x, weight, addend, d)
}

/// The weights' gradient, as [`super::im2col::weight_grad`].
pub fn weight_grad(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    lanes::weight_grad(&KERNEL, x, dy, d)
}
