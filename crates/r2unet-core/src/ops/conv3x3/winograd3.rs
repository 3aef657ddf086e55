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
//! kernels fill along a row. Here the vector runs across images instead: a task takes sixteen
//! images, copies channel `c` of each into one lane of a zero-padded plane of `[f32; 16]`
//! pixels, and every transform step is then an element-wise operation on whole vectors, one tile
//! at a time. Column `t * 16 + lane` of the transformed arrays is tile `t` of the task's image
//! `lane`, so the GEMMs `M[xi] = U[xi] V[xi]` take all of a task's tiles at once, 64 columns for
//! a 6x6 plane.
use std::ops::Range;

use super::Dims;
use super::tiles::{
    PAIR_BLOCK, Pairs, accumulate_products, by_position, from_positions, products, with_scratch,
};
use crate::ops::parallel::{SharedOut, for_each_task, sum_over_tasks};
use crate::ops::simd::simd_copies;

/// Images per task: one per lane of an AVX-512 vector (two AVX2 vectors, four SIMD128 ones).
const LANES: usize = 16;

/// One pixel of sixteen images.
type Lanes = [f32; LANES];

/// Whether F(3x3) beats the other algorithms on this shape: small planes (at most 8 on a side,
/// where F(2x2) and F(4x4) waste most of their tiles), enough channels for the GEMMs, and a batch
/// that fills most lanes (measured with the kernel bench, bench/NOTES.md section 27).
pub fn pays(d: &Dims) -> bool {
    d.c_in.min(d.c_out) >= 32 && d.h.max(d.w) <= 8 && d.batch >= LANES
}

/// The same for the weights' gradient.
pub fn pays_for_weight_grad(d: &Dims) -> bool {
    pays(d)
}

/// Tiles down and across a plane.
fn tiles(d: &Dims) -> (usize, usize) {
    (d.h.div_ceil(3), d.w.div_ceil(3))
}

/// A task: a run of tile rows of sixteen images (fewer in the last group). Its transformed
/// columns are `(tile - first tile, image - first image)`, sixteen per tile whatever the number
/// of images (the lanes past the last image are zeros on the input side and ignored on the
/// output side).
#[derive(Clone, Copy, Debug)]
struct Task {
    first: usize,
    images: usize,
    ty: usize,
    rows: usize,
}

/// Transformed columns per task, near this: a task's transformed inputs and products, `25 x
/// 128 x 32` floats each at 128 channels, then stay in a core's L2 with some of the transformed
/// weights; with whole planes' 64 they did not, and the GEMMs ran at two thirds of their speed
/// (bench/NOTES.md section 27).
const TASK_COLUMNS: usize = 32;

/// The tasks: each group of sixteen images split into runs of tile rows.
fn tasks(d: &Dims) -> Vec<Task> {
    let (th, tw) = tiles(d);
    let per_task = (TASK_COLUMNS / (tw * LANES)).max(1);
    let mut tasks = Vec::new();
    for first in (0..d.batch).step_by(LANES) {
        for ty in (0..th).step_by(per_task) {
            tasks.push(Task {
                first,
                images: LANES.min(d.batch - first),
                ty,
                rows: per_task.min(th - ty),
            });
        }
    }
    tasks
}

/// Columns of the transformed arrays of `task`.
fn columns(d: &Dims, task: &Task) -> usize {
    task.rows * tiles(d).1 * LANES
}

/// The padded plane's sides: the tiles' 5x5 inputs overlap by 2, and the plane has a zero border
/// of one pixel on the top and left, and of at least one on the bottom and right.
fn padded(d: &Dims) -> (usize, usize) {
    let (th, tw) = tiles(d);
    (3 * th + 2, 3 * tw + 2)
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

// The steps below are loops over the lanes, not `std::array::from_fn`s: those stayed calls of
// their own, outside the SIMD copies that the steps are inlined into, and ran a lane at a time.

/// `o = B^T d` for five pixels `d` (a tile's row or column), B^T's rows [2 -1 -2 1 0],
/// [0 -2 -1 1 0], [0 2 -3 1 0], [0 -1 0 1 0], [0 2 -1 -2 1].
#[inline(always)]
fn bt(d: [&Lanes; 5], o: [&mut Lanes; 5]) {
    let [d0, d1, d2, d3, d4] = d;
    let [o0, o1, o2, o3, o4] = o;
    for l in 0..LANES {
        o0[l] = 2.0 * (d0[l] - d2[l]) - d1[l] + d3[l];
        o1[l] = d3[l] - d2[l] - 2.0 * d1[l];
        o2[l] = 2.0 * d1[l] - 3.0 * d2[l] + d3[l];
        o3[l] = d3[l] - d1[l];
        o4[l] = 2.0 * (d1[l] - d3[l]) - d2[l] + d4[l];
    }
}

/// `o = A^T m` for five products `m`, A^T's rows [1 1 1 1 0], [0 1 -1 2 0], [0 1 1 4 1].
#[inline(always)]
fn at(m: [&Lanes; 5], o: [&mut Lanes; 3]) {
    let [m0, m1, m2, m3, m4] = m;
    let [o0, o1, o2] = o;
    for l in 0..LANES {
        o0[l] = m0[l] + m1[l] + m2[l] + m3[l];
        o1[l] = m1[l] - m2[l] + 2.0 * m3[l];
        o2[l] = m1[l] + m2[l] + 4.0 * m3[l] + m4[l];
    }
}

/// `o = A y` for three output gradients `y` (the adjoint of [`at`]).
#[inline(always)]
fn a(y: [&Lanes; 3], o: [&mut Lanes; 5]) {
    let [y0, y1, y2] = y;
    let [o0, o1, o2, o3, o4] = o;
    for l in 0..LANES {
        o0[l] = y0[l];
        o1[l] = y0[l] + y1[l] + y2[l];
        o2[l] = y0[l] - y1[l] + y2[l];
        o3[l] = y0[l] + 2.0 * y1[l] + 4.0 * y2[l];
        o4[l] = y2[l];
    }
}

/// `buf` as pixels of sixteen lanes.
#[inline(always)]
fn as_lanes(buf: &mut [f32]) -> &mut [Lanes] {
    buf.as_chunks_mut::<LANES>().0
}

/// Copies rows `rows` (clipped to the plane) of plane `ci` of the task's images into the lanes
/// of `pad`, one pixel in from its top left corner (the rest of `pad`, the border, the rows that
/// the task does not read and the lanes past its last image, stays as the caller zeroed it).
#[inline(always)]
fn gather(x: &[f32], d: &Dims, task: &Task, ci: usize, rows: Range<usize>, pad: &mut [Lanes]) {
    let (plane, pw) = (d.plane(), padded(d).1);
    let rows = rows.start..rows.end.min(d.h);
    for l in 0..task.images {
        let src = &x[((task.first + l) * d.c_in + ci) * plane..][..plane];
        for r in rows.clone() {
            let dst = &mut pad[(r + 1) * pw + 1..][..d.w];
            for (p, &v) in dst.iter_mut().zip(&src[r * d.w..(r + 1) * d.w]) {
                p[l] = v;
            }
        }
    }
}

// The transforms are one call a task and direction, compiled for the widest vectors the CPU has
// (see `super::simd`): a `[f32; 16]` is one AVX-512 register.
simd_copies! {
    fn weight_transform(g: &[Pairs; 9], u: &mut [Pairs; 25]) => weight_transform_body;
    fn weight_grad_back(wd: &[Pairs; 25], dw: &mut [Pairs; 9]) => weight_grad_back_body;
    fn input_transform(x: &[f32], d: &Dims, task: &Task, v: &mut [f32], pad: &mut [f32])
        => input_transform_body;
    fn output_transform(m: &[f32], d: &Dims, task: &Task, addend: Option<&[f32]>, out: &SharedOut, yt: &mut [f32])
        => output_transform_body;
    fn output_grad_transform(dy: &[f32], d: &Dims, task: &Task, m: &mut [f32], yt: &mut [f32])
        => output_grad_transform_body;
}

/// V = B^T d B for every tile of the task's images: `v[(xi * c_in + ci) * n + t * 16 + lane]`,
/// `n` = [`columns`]. `pad` holds the padded plane, [`padded`] pixels of sixteen lanes.
#[inline(always)]
fn input_transform_body(x: &[f32], d: &Dims, task: &Task, v: &mut [f32], pad: &mut [f32]) {
    let (tw, (ph, pw)) = (tiles(d).1, padded(d));
    let (n, c_in) = (columns(d, task), d.c_in);
    let pad = &mut as_lanes(pad)[..ph * pw];
    pad.fill([0.0; LANES]);
    let tile_rows = task.ty..task.ty + task.rows;
    // The plane rows that these tile rows read: padded rows 3 ty to 3 (ty + rows) + 2.
    let read = (3 * task.ty).saturating_sub(1)..3 * (task.ty + task.rows) + 1;
    let v = as_lanes(v);
    let (mut rows, mut out) = ([[[0.0; LANES]; 5]; 5], [[0.0; LANES]; 5]);
    for ci in 0..c_in {
        gather(x, d, task, ci, read.clone(), pad);
        for ty in tile_rows.clone() {
            for tx in 0..tw {
                // Along the rows (five consecutive pixels each), then down the columns.
                for (k, row) in rows.iter_mut().enumerate() {
                    let p = &pad[(3 * ty + k) * pw + 3 * tx..][..5];
                    let [o0, o1, o2, o3, o4] = row;
                    bt([&p[0], &p[1], &p[2], &p[3], &p[4]], [o0, o1, o2, o3, o4]);
                }
                let col = ((ty - task.ty) * tw + tx) * LANES;
                for j in 0..5 {
                    let [o0, o1, o2, o3, o4] = &mut out;
                    let c = |k: usize| &rows[k][j];
                    bt([c(0), c(1), c(2), c(3), c(4)], [o0, o1, o2, o3, o4]);
                    for (i, o) in out.iter().enumerate() {
                        v[(((i * 5 + j) * c_in + ci) * n + col) / LANES] = *o;
                    }
                }
            }
        }
    }
}

/// Y = A^T M A for every tile of the task, written into its output rows of `out` (plus
/// `addend`'s, where given); `m[(xi * c_out + co) * n + t * 16 + lane]` as [`products`] leaves
/// it. `yt` holds `3 th x 3 tw` pixels of sixteen lanes.
#[inline(always)]
fn output_transform_body(
    m: &[f32],
    d: &Dims,
    task: &Task,
    addend: Option<&[f32]>,
    out: &SharedOut,
    yt: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let (n, c_out, plane, yw) = (columns(d, task), d.c_out, d.plane(), 3 * tw);
    let yt = &mut as_lanes(yt)[..3 * th * yw];
    let m = m.as_chunks::<LANES>().0;
    let (mut rows, mut y) = ([[[0.0; LANES]; 3]; 5], [[0.0; LANES]; 3]);
    // The task's output rows (the last tile row's clipped at the bottom edge).
    let out_rows = 3 * task.ty..(3 * (task.ty + task.rows)).min(d.h);
    for co in 0..c_out {
        for ty in task.ty..task.ty + task.rows {
            for tx in 0..tw {
                let col = ((ty - task.ty) * tw + tx) * LANES;
                let product =
                    |i: usize, j: usize| &m[(((i * 5 + j) * c_out + co) * n + col) / LANES];
                for (i, row) in rows.iter_mut().enumerate() {
                    let [o0, o1, o2] = row;
                    let p = |j| product(i, j);
                    at([p(0), p(1), p(2), p(3), p(4)], [o0, o1, o2]);
                }
                for c in 0..3 {
                    let [o0, o1, o2] = &mut y;
                    let r = |i: usize| &rows[i][c];
                    at([r(0), r(1), r(2), r(3), r(4)], [o0, o1, o2]);
                    for (r, y) in y.iter().enumerate() {
                        yt[(3 * ty + r) * yw + 3 * tx + c] = *y;
                    }
                }
            }
        }
        for l in 0..task.images {
            let at = ((task.first + l) * c_out + co) * plane;
            let rows = at + out_rows.start * d.w..at + out_rows.end * d.w;
            // SAFETY: the task's output rows of its images' planes, written by this task only
            // (the caller's contract with `fill_parts`).
            let dst = unsafe { out.slice_mut(rows.clone()) };
            for (r, row) in out_rows.clone().zip(dst.chunks_exact_mut(d.w)) {
                let src = &yt[r * yw..][..d.w];
                match addend {
                    Some(a) => {
                        let a = &a[at + r * d.w..][..d.w];
                        for ((o, y), a) in row.iter_mut().zip(src).zip(a) {
                            *o = y[l] + a;
                        }
                    }
                    None => {
                        for (o, y) in row.iter_mut().zip(src) {
                            *o = y[l];
                        }
                    }
                }
            }
        }
    }
}

/// A dY A^T for every tile of the task: from the 3x3 output gradients to the 25 product
/// positions, into `m[(xi * c_out + co) * n + t * 16 + lane]`. `yt` holds the padded plane
/// ([`padded`] pixels of sixteen lanes; the output gradient is zero outside the plane).
#[inline(always)]
fn output_grad_transform_body(dy: &[f32], d: &Dims, task: &Task, m: &mut [f32], yt: &mut [f32]) {
    let (tw, (ph, pw)) = (tiles(d).1, padded(d));
    let (n, c_out) = (columns(d, task), d.c_out);
    let yt = &mut as_lanes(yt)[..ph * pw];
    yt.fill([0.0; LANES]);
    let grads = Dims { c_in: c_out, ..*d };
    let m = as_lanes(m);
    let (mut rows, mut q) = ([[[0.0; LANES]; 5]; 3], [[0.0; LANES]; 5]);
    for co in 0..c_out {
        // The output gradient of the task's tile rows sits in the padded plane one pixel in, as
        // an input would.
        gather(
            dy,
            &grads,
            task,
            co,
            3 * task.ty..3 * (task.ty + task.rows),
            yt,
        );
        for ty in task.ty..task.ty + task.rows {
            for tx in 0..tw {
                for (r, row) in rows.iter_mut().enumerate() {
                    let p = &yt[(3 * ty + r + 1) * pw + 3 * tx + 1..][..3];
                    let [o0, o1, o2, o3, o4] = row;
                    a([&p[0], &p[1], &p[2]], [o0, o1, o2, o3, o4]);
                }
                let col = ((ty - task.ty) * tw + tx) * LANES;
                for j in 0..5 {
                    let [o0, o1, o2, o3, o4] = &mut q;
                    a(
                        [&rows[0][j], &rows[1][j], &rows[2][j]],
                        [o0, o1, o2, o3, o4],
                    );
                    for (i, q) in q.iter().enumerate() {
                        m[(((i * 5 + j) * c_out + co) * n + col) / LANES] = *q;
                    }
                }
            }
        }
    }
}

/// The `[batch, c_out, h, w]` output, filled by `task(t, out)` for every task `t`.
///
/// # Safety
///
/// `task(t, out)` writes every element of the output rows of task `t`'s tile rows (clipped at
/// the bottom edge) of its images' planes, and no other element; `tasks` cover every tile row
/// of every image once.
unsafe fn fill_parts(
    d: &Dims,
    tasks: &[Task],
    task: impl Fn(&Task, &SharedOut) + Send + Sync,
) -> Vec<f32> {
    let len = d.batch * d.c_out * d.plane();
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `y` has room for `len` floats and is left alone until `set_len`; each task writes
    // its own rows (the caller's contract).
    let out = unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len) };
    for_each_task(tasks, |t| task(t, &out));
    // SAFETY: by the caller's contract the tasks wrote every element.
    unsafe { y.set_len(len) };
    y
}

/// `y = conv3x3(x, weight)`, as [`super::im2col::forward`].
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    forward_add(x, weight, None, d)
}

/// `addend + conv3x3(x, weight)`, the sum taken as each output row is written.
pub fn forward_add(x: &[f32], weight: &[f32], addend: Option<&[f32]>, d: Dims) -> Vec<f32> {
    d.check_forward(x, weight);
    if let Some(a) = addend {
        assert_eq!(
            a.len(),
            d.batch * d.c_out * d.plane(),
            "conv3x3: addend length"
        );
    }
    let u = by_position(weight, weight_transform);
    let (c_in, c_out) = (d.c_in, d.c_out);
    let ((th, tw), (ph, pw)) = (tiles(&d), padded(&d));
    let rows = LANES * (ph * pw).max(9 * th * tw);
    let fill = |task: &Task, out: &SharedOut| {
        let n = columns(&d, task);
        with_scratch(25 * c_in * n, 25 * c_out * n, rows, |v, m, rows| {
            input_transform(x, &d, task, v, rows);
            products::<25>(&u, v, m, c_in, c_out, n);
            output_transform(m, &d, task, addend, out, rows);
        });
    };
    // SAFETY: the tasks cover every tile row of every image once, and `fill` writes the output
    // rows of its task's tile rows of its images (`output_transform`), and nothing else.
    unsafe { fill_parts(&d, &tasks(&d), fill) }
}

/// The weights' gradient, as [`super::im2col::weight_grad`]: per product position `xi`,
/// `sum over tiles of (A dY A^T)[xi] (B^T x B)[xi]^T`, then `G^T . G` back to 3x3.
pub fn weight_grad(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    d.check_weight_grad(x, dy);
    let (c_in, c_out) = (d.c_in, d.c_out);
    let (ph, pw) = padded(&d);
    let pairs = c_out * c_in;
    let task = |acc: &mut [f32], task: &Task| {
        let n = columns(&d, task);
        with_scratch(
            25 * c_in * n,
            25 * c_out * n,
            LANES * ph * pw,
            |v, m, pad| {
                input_transform(x, &d, task, v, pad);
                output_grad_transform(dy, &d, task, m, pad);
                accumulate_products::<25>(acc, m, v, c_in, c_out, n);
            },
        );
    };
    let acc = sum_over_tasks(&tasks(&d), 25 * pairs, task);
    from_positions(&acc, pairs, weight_grad_back)
}
