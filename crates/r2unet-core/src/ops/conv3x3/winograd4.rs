//! The same 3x3 convolution as [`super::im2col::forward`] by Winograd's F(4x4, 3x3) (Lavin &
//! Gray 2016, interpolation points 0, ±1, ±2): every 4x4 block of outputs from a 6x6 block of
//! inputs with 36 multiplications per (input, output) channel pair, 2.25 per output against
//! F(2x2, 3x3)'s 4 ([`super::winograd`]) and the direct convolution's 9.
//!
//! Why a second Winograd kernel: the GEMMs run near these cores' limit, so the work they are
//! given is what is left to cut; F(4x4) gives the 36 GEMMs `M[xi] = U[xi] V[xi]` 44 % fewer
//! multiply-adds than F(2x2)'s 16. The price is larger transforms, tiles that waste more of a
//! plane whose sides are not multiples of 4 (on 6x6 planes F(4x4) loses), and a larger f32
//! error (the transforms' factors reach 8 and 1/24): up to 7.6e-6 of the output scale on the
//! tests' shapes, against F(2x2)'s 7e-7.
//!
//! Forward pass (and through it the input gradient) and weight gradient as in
//! [`super::winograd`]. Layout as there: the transforms run over all of a task's tile rows at once
//! on contiguous arrays that the compiler vectorises. Each input row is split by column mod 4,
//! after which tile `t`'s six columns are `c0[t], c1[t], c2[t], c3[t], c0[t + 1], c1[t + 1]`
//! (the last two kept as shifted copies, so that every step is element-wise), and the output
//! transform's four columns per tile are interleaved back the same way. A task's tile rows lie
//! end to end in these arrays, `tw` tiles each.
use super::Dims;
use super::lanes::{self, Tile};
use super::tiles::{
    PAIR_BLOCK, Pairs, Task, accumulate_products, by_position, fill_output, from_positions,
    products, rows_mut, rows_ref, tile_rows, tile_rows_per_task, with_scratch,
};
use crate::ops::parallel::{SharedOut, sum_over_tasks};
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::Isa;
use crate::ops::simd::simd_copies;

/// Whether F(4x4) beats both F(2x2) and im2col + GEMM on this shape, measured with the kernel
/// bench (`examples/kernel_bench.rs`, bench/NOTES.md sections 18 and 26): from 16 channels on
/// planes at least 24 wide and high, and with the AVX-512 row transforms from 12x12. With those
/// it runs a batch of 12x12 planes at 64 channels at 1.44x F(2x2)'s speed (3x3 tiles cover the
/// plane exactly, where F(2x2)'s 6x6 tiles carry a junk column); the portable transforms only
/// tied with F(2x2) there (section 18), so without AVX-512 the 12x12 planes of fewer than
/// sixteen images stay on F(2x2); a batch's run on lanes (`on_lanes`) on any CPU. On 6x6
/// planes, where 2x2 tiles of 4x4 outputs cover 64 pixels for 36, F(4x4) runs at about 0.6x
/// F(2x2)'s speed.
pub fn pays(d: &Dims) -> bool {
    let (c, side) = (d.c_in.min(d.c_out), d.h.min(d.w));
    c >= 16 && (side >= 24 || (side >= 12 && (rows_by_hand() || on_lanes(d))))
}

/// Whether F(4x4) runs with sixteen images in the lanes (`lanes.rs`) rather than along the
/// rows: on planes up to 16 wide and high, whose rows hold four tiles or fewer (a 12x12 plane's
/// three fill 3 of the row transforms' 16 lanes). Kernel bench at 64 channels on 12x12 planes
/// (bench/NOTES.md section 27): forward 464 against 380 GFLOP/s, weight gradient 423 against
/// 352; at 24x24 the rows win (385 against 284). Without AVX-512 (its paths switched off on the
/// same Xeon: the transforms in their AVX2 copies, the copies into the lanes as plain loops),
/// F(4x4) on lanes ran at 303 against the F(2x2) that those CPUs used on 12x12 planes, 185.
fn on_lanes(d: &Dims) -> bool {
    d.h.max(d.w) <= 16 && d.batch >= lanes::LANES
}

/// Whether the per-row transforms run by hand on AVX-512 (`winograd4_avx512.rs`), what the
/// 12x12 rule of [`pays`] was measured with. With AVX2 they run by hand too
/// (`winograd4_avx2.rs`), but F(4x4) on 12x12 rows was not measured there against F(2x2).
fn rows_by_hand() -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::ops::simd::has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The same for the weights' gradient, where F(4x4) wins on more shapes than in the forward pass:
/// from 12x12 planes (1.35x F(2x2) there, 1.6x at 48x48 and 24x24), where im2col and F(2x2) run
/// their slowest; not on 6x6 planes (about half im2col's speed).
pub fn pays_for_weight_grad(d: &Dims) -> bool {
    d.c_in.min(d.c_out) >= 16 && d.h.min(d.w) >= 12
}

const SIXTH: f64 = 1.0 / 6.0;
const TWELFTH: f64 = 1.0 / 12.0;
const TWENTY_FOURTH: f64 = 1.0 / 24.0;

/// `G g` for one column `(g0, g1, g2)` of a kernel, in f64 (G's 1/6, 1/12 and 1/24 are not exact
/// in f32), by multiplications, so that the weight transforms vectorise across pairs.
#[inline(always)]
fn g_col(g0: f64, g1: f64, g2: f64) -> [f64; 6] {
    [
        0.25 * g0,
        -SIXTH * (g0 + g1 + g2),
        -SIXTH * (g0 - g1 + g2),
        TWENTY_FOURTH * g0 + TWELFTH * g1 + SIXTH * g2,
        TWENTY_FOURTH * g0 - TWELFTH * g1 + SIXTH * g2,
        g2,
    ]
}

/// `G^T q` for six values `q` (G's columns applied to them), in f64 as [`g_col`].
#[inline(always)]
fn gt(q: [f64; 6]) -> [f64; 3] {
    [
        0.25 * q[0] - SIXTH * (q[1] + q[2]) + TWENTY_FOURTH * (q[3] + q[4]),
        SIXTH * (q[2] - q[1]) + TWELFTH * (q[3] - q[4]),
        SIXTH * (q[3] + q[4] - q[1] - q[2]) + q[5],
    ]
}

/// `U = G g G^T` for a block of pairs' kernels, one pair a lane, rounded to f32 once at the end.
#[inline(always)]
fn weight_transform_body(g: &[Pairs; 9], u: &mut [Pairs; 36]) {
    for i in 0..PAIR_BLOCK {
        let tap = |k: usize| f64::from(g[k][i]);
        // t = G g, a column of the kernel at a time; then U's row r is G applied to t's row r.
        let t0 = g_col(tap(0), tap(3), tap(6));
        let t1 = g_col(tap(1), tap(4), tap(7));
        let t2 = g_col(tap(2), tap(5), tap(8));
        for r in 0..6 {
            let row = g_col(t0[r], t1[r], t2[r]);
            for (j, v) in row.into_iter().enumerate() {
                u[r * 6 + j][i] = v as f32;
            }
        }
    }
}

/// `dW = G^T Wd G` for a block of pairs' 6x6 sums `wd`, one pair a lane, in f64.
#[inline(always)]
fn weight_grad_back_body(wd: &[Pairs; 36], dw: &mut [Pairs; 9]) {
    for i in 0..PAIR_BLOCK {
        // h = Wd G (6x3), a row at a time; then dW's column l is G^T applied to h's column l.
        let mut h = [[0.0; 3]; 6];
        for (r, h) in h.iter_mut().enumerate() {
            let q = |j: usize| f64::from(wd[r * 6 + j][i]);
            *h = gt([q(0), q(1), q(2), q(3), q(4), q(5)]);
        }
        for l in 0..3 {
            let col = gt([h[0][l], h[1][l], h[2][l], h[3][l], h[4][l], h[5][l]]);
            for (k, v) in col.into_iter().enumerate() {
                dw[k * 3 + l][i] = v as f32;
            }
        }
    }
}

/// Row `I` of B^T applied to `d`:
/// ```text
/// B^T = [4  0 -5  0 1 0]
///       [0 -4 -4  1 1 0]
///       [0  4 -4 -1 1 0]
///       [0 -2 -1  2 1 0]
///       [0  2 -1 -2 1 0]
///       [0  4  0 -5 0 1]
/// ```
#[inline(always)]
fn bt_row<const I: usize>(d: [f32; 6]) -> f32 {
    match I {
        0 => 4.0 * d[0] - 5.0 * d[2] + d[4],
        1 => (d[4] - 4.0 * d[2]) + (d[3] - 4.0 * d[1]),
        2 => (d[4] - 4.0 * d[2]) - (d[3] - 4.0 * d[1]),
        3 => (d[4] - d[2]) + 2.0 * (d[3] - d[1]),
        4 => (d[4] - d[2]) - 2.0 * (d[3] - d[1]),
        _ => 4.0 * d[1] - 5.0 * d[3] + d[5],
    }
}

/// Splits input rows `r0..r0 + 4 * count + 2` of `plane` (`h x w`, zero outside) by row mod 4
/// and column mod 4 of the zero-padded plane: `out[(a * 6 + k) * len + j * tw + t] =
/// x[r0 + 4j + a][4t + k - 1]` for `k` in 0..6, tile `t`'s six columns, `tw` each, and `len =
/// (count + 1) * tw`. `k` = 4 and 5 are 0 and 1 shifted by one tile, copies that spare the
/// transforms a junk column per tile row (which the GEMMs would also pay for: a quarter of their
/// work on 12x12 planes). One call for all the rows, read in order: on the training patches'
/// planes a row is only 12 or 24 floats wide, and the first read of each row waits on memory.
#[inline(always)]
fn split_rows_body(plane: &[f32], h: usize, w: usize, r0: isize, count: usize, out: &mut [f32]) {
    let tw = w.div_ceil(4);
    let len = (count + 1) * tw;
    for j in 0..=count {
        // The last group holds only rows 0 and 1 (rows 4 and 5 of the last tile row).
        for a in 0..if j < count { 4 } else { 2 } {
            let r = r0 + (4 * j + a) as isize;
            let c: [&mut [f32]; 6] = rows_mut(out, a * 6 * len + j * tw, len, tw);
            if r < 0 || r >= h as isize {
                c.into_iter().for_each(|c| c.fill(0.0));
            } else {
                let [c0, c1, c2, c3, c4, c5] = c;
                let row = &plane[r as usize * w..(r as usize + 1) * w];
                split_body(row, c0, c1, c2, c3, c4, c5);
            }
        }
    }
}

/// [`split_rows`] for one row inside the plane. `c0` and `c5` are read from the row at
/// an offset of three (`x[4t + 3]` and `x[4t + 4]` are `c0[t + 1]` and `c5[t]`) in the same
/// vectorised pass as the other four, not copied from `c4` and `c1` afterwards: those copies were
/// two `memcpy` calls of a few dozen bytes per row, 4-6 % of a training step (bench/NOTES.md
/// section 24).
#[inline(always)]
fn split_body(
    row: &[f32],
    c0: &mut [f32],
    c1: &mut [f32],
    c2: &mut [f32],
    c3: &mut [f32],
    c4: &mut [f32],
    c5: &mut [f32],
) {
    let tw = c0.len();
    let q = row.len() / 4;
    // Chunk t of the row is x[4t..4t + 4] = c1[t], c2[t], c3[t], c4[t].
    split_columns_body(row, c1, c2, c3, c4);
    // Chunk t of row[3..] is x[4t + 3], x[4t + 4], ... = c0[t + 1], c5[t], for the tiles whose
    // two columns both lie inside the row; the last one or two from c4 and c1.
    let m = q.saturating_sub(1);
    let shifted = row.get(3..3 + 4 * m).unwrap_or(&[]);
    for ((s, a), b) in shifted
        .chunks_exact(4)
        .zip(c0[1..=m].iter_mut())
        .zip(c5[..m].iter_mut())
    {
        *a = s[0];
        *b = s[1];
    }
    c0[0] = 0.0;
    // At most two elements: a loop, not the memcpy call this replaces.
    #[allow(clippy::manual_memcpy)]
    for t in m..tw - 1 {
        c0[t + 1] = c4[t];
        c5[t] = c1[t + 1];
    }
    c5[tw - 1] = 0.0;
}

/// `c_k[t] = row[4t + k]`, zero past the row's end.
#[inline(always)]
fn split_columns_body(row: &[f32], c0: &mut [f32], c1: &mut [f32], c2: &mut [f32], c3: &mut [f32]) {
    let q = row.len() / 4;
    deinterleave4_body(
        &row[..4 * q],
        &mut c0[..q],
        &mut c1[..q],
        &mut c2[..q],
        &mut c3[..q],
    );
    if q < c0.len() {
        for a in [&mut *c0, &mut *c1, &mut *c2, &mut *c3] {
            a[q..].fill(0.0);
        }
        for (a, &v) in [c0, c1, c2].into_iter().zip(&row[4 * q..]) {
            a[q] = v;
        }
    }
}

/// `v_i[e] = (B^T row i)(d0[e], ..., d5[e])` for the six rows of B^T in one pass: the
/// vertical step of the input transform (the `d` are six input rows) and the horizontal one (the
/// `d` are a row's six tile columns). Separate slice arguments, not arrays of slices: only
/// arguments carry the no-alias facts that let the compiler vectorise twelve streams without
/// run-time overlap checks (with arrays the loop ran scalar).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn bt_body(
    d0: &[f32],
    d1: &[f32],
    d2: &[f32],
    d3: &[f32],
    d4: &[f32],
    d5: &[f32],
    v0: &mut [f32],
    v1: &mut [f32],
    v2: &mut [f32],
    v3: &mut [f32],
    v4: &mut [f32],
    v5: &mut [f32],
) {
    let n = v0.len();
    let (d0, d1, d2, d3, d4, d5) = (&d0[..n], &d1[..n], &d2[..n], &d3[..n], &d4[..n], &d5[..n]);
    let (v1, v2, v3, v4, v5) = (
        &mut v1[..n],
        &mut v2[..n],
        &mut v3[..n],
        &mut v4[..n],
        &mut v5[..n],
    );
    for e in 0..n {
        let d = [d0[e], d1[e], d2[e], d3[e], d4[e], d5[e]];
        v0[e] = bt_row::<0>(d);
        v1[e] = bt_row::<1>(d);
        v2[e] = bt_row::<2>(d);
        v3[e] = bt_row::<3>(d);
        v4[e] = bt_row::<4>(d);
        v5[e] = bt_row::<5>(d);
    }
}

/// A^T applied to six values, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let (a, b) = (m[1] + m[2], m[1] - m[2]);
    let (c, e) = (m[3] + m[4], m[3] - m[4]);
    [m[0] + a + c, b + 2.0 * e, a + 4.0 * c, b + 8.0 * e + m[5]]
}

/// `y_r[t] = (A^T (m0[t], ..., m5[t]))[r]`: one step of the output transform Y = A^T M A, along
/// the rows or down the columns of every tile's product block. (The whole transform as one loop
/// over the tiles, 36 products in and 16 outputs out, stayed scalar.)
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn at_body(
    m0: &[f32],
    m1: &[f32],
    m2: &[f32],
    m3: &[f32],
    m4: &[f32],
    m5: &[f32],
    y0: &mut [f32],
    y1: &mut [f32],
    y2: &mut [f32],
    y3: &mut [f32],
) {
    let n = y0.len();
    let (m0, m1, m2, m3, m4, m5) = (&m0[..n], &m1[..n], &m2[..n], &m3[..n], &m4[..n], &m5[..n]);
    let (y1, y2, y3) = (&mut y1[..n], &mut y2[..n], &mut y3[..n]);
    for t in 0..n {
        let y = at([m0[t], m1[t], m2[t], m3[t], m4[t], m5[t]]);
        y0[t] = y[0];
        y1[t] = y[1];
        y2[t] = y[2];
        y3[t] = y[3];
    }
}

/// `v_j[t] = (A (y0[t], ..., y3[t]))[j]`: one step of the weight gradient's `A dY A^T`, the
/// adjoint of the output transform, along the rows or down the columns of every tile's 4x4
/// output gradient.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn a_body(
    y0: &[f32],
    y1: &[f32],
    y2: &[f32],
    y3: &[f32],
    v0: &mut [f32],
    v1: &mut [f32],
    v2: &mut [f32],
    v3: &mut [f32],
    v4: &mut [f32],
    v5: &mut [f32],
) {
    let n = v0.len();
    let (y0, y1, y2, y3) = (&y0[..n], &y1[..n], &y2[..n], &y3[..n]);
    let (v1, v2, v3, v4, v5) = (
        &mut v1[..n],
        &mut v2[..n],
        &mut v3[..n],
        &mut v4[..n],
        &mut v5[..n],
    );
    for t in 0..n {
        // Rows of A (columns of A^T): 1; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1.
        let (e, o) = (y0[t] + y2[t], y1[t] + y3[t]);
        let (e2, o2) = (y0[t] + 4.0 * y2[t], 2.0 * y1[t] + 8.0 * y3[t]);
        v0[t] = y0[t];
        v1[t] = e + o;
        v2[t] = e - o;
        v3[t] = e2 + o2;
        v4[t] = e2 - o2;
        v5[t] = y3[t];
    }
}

/// The runs of a task's tile rows that lie in one image: (first tile row of the task's, image,
/// its tile row there, how many).
fn runs(task: Task, th: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut gi = 0;
    std::iter::from_fn(move || {
        (gi < task.1).then(|| {
            let (b, ty0) = ((task.0 + gi) / th, (task.0 + gi) % th);
            let count = (th - ty0).min(task.1 - gi);
            gi += count;
            (gi - count, b, ty0, count)
        })
    })
}

/// Writes the output rows in `dst` (`w` wide, as many as it holds) from a run of tile rows'
/// output columns: row `4j + r`, column `4t + c` is `yb[(r * 4 + c) * n + first + j * tw + t]`.
/// One call for the whole run: an output row of a training patch is 48 or 24 floats.
#[inline(always)]
fn write_rows_body(dst: &mut [f32], yb: &[f32], n: usize, first: usize, w: usize) {
    let (tw, q) = (w.div_ceil(4), w / 4);
    for (row_i, row) in dst.chunks_exact_mut(w).enumerate() {
        let (j, r) = (row_i / 4, row_i % 4);
        // Spelled out: as an `array::from_fn`, its closure stayed a call per column.
        let at = r * 4 * n + first + j * tw;
        let src: [&[f32]; 4] = [
            &yb[at..][..tw],
            &yb[at + n..][..tw],
            &yb[at + 2 * n..][..tw],
            &yb[at + 3 * n..][..tw],
        ];
        let [s0, s1, s2, s3] = src.map(|s| &s[..q]);
        interleave4_body(&mut row[..4 * q], s0, s1, s2, s3);
        for (c, v) in row[4 * q..].iter_mut().enumerate() {
            *v = src[c][q];
        }
    }
}

/// `dst[4t + k] = s_k[t]`, as a loop the compiler turns into shuffles.
#[inline(always)]
fn interleave4_body(dst: &mut [f32], s0: &[f32], s1: &[f32], s2: &[f32], s3: &[f32]) {
    let it = dst.chunks_exact_mut(4).zip(s0.iter().zip(s1));
    for ((d, (a, b)), (c, e)) in it.zip(s2.iter().zip(s3)) {
        d[0] = *a;
        d[1] = *b;
        d[2] = *c;
        d[3] = *e;
    }
}

/// `d_k[t] = src[4t + k]`.
#[inline(always)]
fn deinterleave4_body(src: &[f32], d0: &mut [f32], d1: &mut [f32], d2: &mut [f32], d3: &mut [f32]) {
    let it = src.chunks_exact(4).zip(d0.iter_mut().zip(d1.iter_mut()));
    for ((s, (a, b)), (c, e)) in it.zip(d2.iter_mut().zip(d3.iter_mut())) {
        *a = s[0];
        *b = s[1];
        *c = s[2];
        *e = s[3];
    }
}

// Each task's transforms run from copies for the widest vectors the CPU has (see `super::simd`),
// one call a task and direction: as separate copies of each step, called per channel and row
// run, the calls' argument passing took as many samples as the steps' work (bench/NOTES.md
// section 26).
simd_copies! {
    fn weight_transform(g: &[Pairs; 9], u: &mut [Pairs; 36]) => weight_transform_body;
    fn weight_grad_back(wd: &[Pairs; 36], dw: &mut [Pairs; 9]) => weight_grad_back_body;
    fn input_transform(x: &[f32], d: &Dims, task: Task, v: &mut [f32], scratch: &mut [f32])
        => input_transform_body;
    fn output_transform(
        m: &[f32], d: &Dims, task: Task, addend: Option<&[f32]>, out: &SharedOut,
        scratch: &mut [f32]
    ) => output_transform_body;
    fn output_grad_transform(
        dy: &[f32], d: &Dims, task: Task, m: &mut [f32], scratch: &mut [f32]
    ) => output_grad_transform_body;
}

/// [`bt_body`] on arrays of slices.
#[inline(always)]
fn bt6(d: [&[f32]; 6], v: [&mut [f32]; 6]) {
    let [v0, v1, v2, v3, v4, v5] = v;
    bt_body(d[0], d[1], d[2], d[3], d[4], d[5], v0, v1, v2, v3, v4, v5);
}

/// [`at_body`] on arrays of slices.
#[inline(always)]
fn at6(m: [&[f32]; 6], y: [&mut [f32]; 4]) {
    let [y0, y1, y2, y3] = y;
    at_body(m[0], m[1], m[2], m[3], m[4], m[5], y0, y1, y2, y3);
}

/// [`a_body`] on arrays of slices.
#[inline(always)]
fn a6(y: [&[f32]; 4], v: [&mut [f32]; 6]) {
    let [v0, v1, v2, v3, v4, v5] = v;
    a_body(y[0], y[1], y[2], y[3], v0, v1, v2, v3, v4, v5);
}

/// The tasks: each's transformed tiles near 96 K floats (384 KiB, well inside a core's 2 MiB L2)
/// but at least 64 tiles (with 19, one tile row of a 73x73 plane at 128 channels, the GEMMs ran at
/// two thirds of their speed); and at least 8 tasks, an even number of them, all of one size give
/// or take a tile row: a batch of 12x12 planes made 5 tasks of 21 tile rows, three on one thread
/// and two on the other.
fn tasks(d: &Dims) -> Vec<Task> {
    let (th, tw) = (d.h.div_ceil(4), d.w.div_ceil(4));
    let total_rows = d.batch * th;
    let mut count = total_rows
        .div_ceil(tile_rows_per_task::<36>(d, 96 * 1024, tw))
        .max(8);
    count = (count + count % 2).min(total_rows);
    (0..count)
        .map(|i| {
            (
                i * total_rows / count,
                (i + 1) * total_rows / count - i * total_rows / count,
            )
        })
        .collect()
}

/// The scratch floats that [`input_transform`] needs for `n` tiles, `tw` per tile row.
fn input_scratch(n: usize, tw: usize) -> usize {
    48 * (n + tw)
}

/// V = B^T d B for the task's tile rows of `x`: `v[(xi * c_in + ci) * n + gi * tw + t]` for its
/// `gi`-th tile row, `n` = its tile rows times `tw`. `scratch` holds [`input_scratch`] floats.
///
/// The horizontal step first, once per input row; then the vertical one, over all of a run's
/// tile rows at once and straight into `v`. For the vertical step, a run of consecutive tile rows
/// of one image is split by input row mod 4: the six input rows of tile row `ty` are rows 0-3 of
/// its own group of four and rows 0-1 of the next, so every input row is transformed once (not
/// once for each of the one or two tile rows it belongs to), and each of the vertical step's six
/// inputs is one contiguous array.
#[inline(always)]
fn input_transform_body(x: &[f32], d: &Dims, task: Task, v: &mut [f32], scratch: &mut [f32]) {
    let (th, tw) = (d.h.div_ceil(4), d.w.div_ceil(4));
    let (plane, c_in) = (d.h * d.w, d.c_in);
    let n = task.1 * tw;
    for ci in 0..c_in {
        for (gi, b, ty0, count) in runs(task, th) {
            let img = &x[(b * c_in + ci) * plane..(b * c_in + ci + 1) * plane];
            // rows[(a * 6 + i) * len + j * tw + t]: the horizontal step's output i for tile
            // column t of input row 4 (ty0 + j) + a - 1, for tile rows ty0..=ty0 + count (the
            // last for rows 4 and 5 only).
            let len = (count + 1) * tw;
            let (rows, split) = scratch[..input_scratch(n, tw)].split_at_mut(24 * len);
            transform_rows(img, d, 4 * ty0 as isize - 1, count, rows, split);
            // Input row k of tile row j is row k mod 4 of group j + k / 4; position (k, i) is
            // row 6 k + i of v.
            for i in 0..6 {
                let row = |k: usize| &rows[((k % 4) * 6 + i) * len + (k / 4) * tw..][..count * tw];
                let d = [row(0), row(1), row(2), row(3), row(4), row(5)];
                let at = (i * c_in + ci) * n + gi * tw;
                bt6(d, rows_mut(v, at, 6 * c_in * n, count * tw));
            }
        }
    }
}

/// The horizontal step of [`input_transform`] for input rows `r0..r0 + 4 * count + 2` of `img`:
/// `rows[(a * 6 + i) * len + j * tw + t] = (B^T (x[4t - 1], ..., x[4t + 4]))[i]` for row `r0 +
/// 4j + a`, `len = (count + 1) * tw`. By hand on AVX-512 (`winograd4_avx512.rs`); elsewhere
/// each row is split by column mod 4 into `split` (24 `len` floats) and transformed from there.
#[inline(always)]
fn transform_rows(
    img: &[f32],
    d: &Dims,
    r0: isize,
    count: usize,
    rows: &mut [f32],
    split: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    match crate::ops::simd::cpu_isa() {
        Isa::Avx512 => {
            // SAFETY: the CPU has AVX-512F (checked at run time).
            return unsafe {
                super::winograd4_avx512::transform_rows(img, d.h, d.w, r0, count, rows)
            };
        }
        Isa::Avx2 => {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            return unsafe {
                super::winograd4_avx2::transform_rows(img, d.h, d.w, r0, count, rows)
            };
        }
        Isa::Baseline => {}
    }
    portable_transform_rows(img, d, r0, count, rows, split);
}

/// [`transform_rows`] without AVX-512.
#[inline(always)]
fn portable_transform_rows(
    img: &[f32],
    d: &Dims,
    r0: isize,
    count: usize,
    rows: &mut [f32],
    split: &mut [f32],
) {
    let len = (count + 1) * d.w.div_ceil(4);
    // split[(a * 6 + p) * len + j * tw + t]: input row r0 + 4j + a, column 4t + p - 1.
    let split = &mut split[..24 * len];
    split_rows_body(img, d.h, d.w, r0, count, split);
    // The last group's rows 2 and 3 are not split, and what their transform computes from the
    // scratch's old contents is never read.
    for a in 0..4 {
        let c: [&[f32]; 6] = rows_ref(split, a * 6 * len, len, len);
        bt6(c, rows_mut(rows, a * 6 * len, len, len));
    }
}

/// Y = A^T M A for the task's tile rows, written into their output rows of `out` (plus
/// `addend`'s, where given); `m[(xi * c_out + co) * n + t]` as [`products`] leaves it. `scratch`
/// holds `40 n` floats.
///
/// The vertical step first, over all of the task's tiles at once; then the horizontal one, row
/// by output row, straight into the output on AVX-512 (`winograd4_avx512.rs`).
#[inline(always)]
fn output_transform_body(
    m: &[f32],
    d: &Dims,
    task: Task,
    addend: Option<&[f32]>,
    out: &SharedOut,
    scratch: &mut [f32],
) {
    let (th, tw) = (d.h.div_ceil(4), d.w.div_ceil(4));
    let (n, c_out) = (task.1 * tw, d.c_out);
    let (s, yb) = scratch[..40 * n].split_at_mut(24 * n);
    for co in 0..c_out {
        // s[(r * 6 + j) * n + t]: down column j of tile t's products (A^T, row r).
        for j in 0..6 {
            let src = rows_ref(m, (j * c_out + co) * n, 6 * c_out * n, n);
            at6(src, rows_mut(s, j * n, 6 * n, n));
        }
        // One call per run of tile rows in one image, whose output rows are contiguous.
        for (gi, b, ty0, count) in runs(task, th) {
            let rows = (4 * count).min(d.h - 4 * ty0);
            let at = ((b * c_out + co) * d.h + 4 * ty0) * d.w;
            // SAFETY: output rows 4 ty0 .. 4 ty0 + rows of channel co of image b belong to this
            // task's tile rows only (the caller's contract with `fill_output`).
            let dst = unsafe { out.slice_mut(at..at + rows * d.w) };
            let addend = addend.map(|a| &a[at..at + rows * d.w]);
            write_output_rows(dst, s, n, gi * tw, d.w, addend, yb);
        }
    }
}

/// Output rows `dst` (`w` wide) of a run of tile rows from the vertical step's `s` (see
/// [`output_transform_body`]), the run's first tile at `first`: the horizontal step, the
/// columns interleaved back into rows, and `addend` added. Without AVX-512, the horizontal
/// step runs over all of the run's tiles into `yb` (`16 n` floats) first.
#[inline(always)]
fn write_output_rows(
    dst: &mut [f32],
    s: &[f32],
    n: usize,
    first: usize,
    w: usize,
    addend: Option<&[f32]>,
    yb: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    match crate::ops::simd::cpu_isa() {
        Isa::Avx512 => {
            // SAFETY: the CPU has AVX-512F (checked at run time).
            return unsafe {
                super::winograd4_avx512::write_output_rows(dst, s, n, first, w, addend)
            };
        }
        Isa::Avx2 => {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time).
            return unsafe {
                super::winograd4_avx2::write_output_rows(dst, s, n, first, w, addend)
            };
        }
        Isa::Baseline => {}
    }
    portable_write_output_rows(dst, s, n, first, w, addend, yb);
}

/// [`write_output_rows`] without AVX-512.
#[inline(always)]
fn portable_write_output_rows(
    dst: &mut [f32],
    s: &[f32],
    n: usize,
    first: usize,
    w: usize,
    addend: Option<&[f32]>,
    yb: &mut [f32],
) {
    let tw = w.div_ceil(4);
    let len = dst.len().div_ceil(4 * w) * tw;
    // yb[(r * 4 + c) * n + first + j * tw + t]: output row 4j + r, column 4t + c.
    for r in 0..4 {
        let src = rows_ref(s, r * 6 * n + first, n, len);
        at6(src, rows_mut(yb, r * 4 * n + first, n, len));
    }
    write_rows_body(dst, &yb[..16 * n], n, first, w);
    if let Some(a) = addend {
        dst.iter_mut().zip(a).for_each(|(y, a)| *y += a);
    }
}

/// A dY A^T for the task's tile rows of the output gradient `dy`, into `m[(xi * c_out + co) * n
/// + t]` (the layout of [`products`]' output). `scratch` holds `40 n` floats.
#[inline(always)]
fn output_grad_transform_body(
    dy: &[f32],
    d: &Dims,
    task: Task,
    m: &mut [f32],
    scratch: &mut [f32],
) {
    let (th, tw) = (d.h.div_ceil(4), d.w.div_ceil(4));
    let (n, c_out, plane) = (task.1 * tw, d.c_out, d.h * d.w);
    let (h, split) = scratch[..40 * n].split_at_mut(24 * n);
    for co in 0..c_out {
        // h[(r * 6 + j) * n + gi * tw + t]: along output gradient row 4 ty + r of tile t (A,
        // column j; zero outside the plane).
        for (gi, b, ty) in tile_rows(task, th) {
            for r in 0..4 {
                let at = r * 6 * n + gi * tw;
                let row_i = 4 * ty + r;
                if row_i < d.h {
                    let row = &dy[(b * c_out + co) * plane + row_i * d.w..][..d.w];
                    grad_row(row, h, at, n, split);
                } else {
                    let rows: [&mut [f32]; 6] = rows_mut(h, at, n, tw);
                    rows.into_iter().for_each(|c| c.fill(0.0));
                }
            }
        }
        // Then down each column j into M.
        for j in 0..6 {
            let src = rows_ref(h, j * n, 6 * n, n);
            a6(src, rows_mut(m, (j * c_out + co) * n, 6 * c_out * n, n));
        }
    }
}

/// `h[at + j * stride + t] = (A (y[4t], ..., y[4t + 3]))[j]` for the tiles `t` of the output
/// gradient row `row`: by hand on AVX-512, elsewhere split by column mod 4 into `split` first.
#[inline(always)]
fn grad_row(row: &[f32], h: &mut [f32], at: usize, stride: usize, split: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::cpu_isa() >= Isa::Avx2 {
        let tw = row.len().div_ceil(4);
        assert!(stride >= tw, "winograd4: gradient rows overlap");
        let rows = h[at..at + 5 * stride + tw].as_mut_ptr();
        // SAFETY: the CPU has the instruction set (checked at run time), and `rows` holds six
        // rows of `tw` floats `stride` apart.
        return unsafe {
            if crate::ops::simd::cpu_isa() == Isa::Avx512 {
                super::winograd4_avx512::grad_row(row, rows, stride)
            } else {
                super::winograd4_avx2::grad_row(row, rows, stride)
            }
        };
    }
    portable_grad_row(row, h, at, stride, split);
}

/// [`grad_row`] without AVX-512.
#[inline(always)]
fn portable_grad_row(row: &[f32], h: &mut [f32], at: usize, stride: usize, split: &mut [f32]) {
    let tw = row.len().div_ceil(4);
    let dst: [&mut [f32]; 6] = rows_mut(h, at, stride, tw);
    let [c0, c1, c2, c3] = rows_mut(split, 0, tw, tw);
    split_columns_body(row, c0, c1, c2, c3);
    a6([c0, c1, c2, c3].map(|c| &*c), dst);
}

/// `y = conv3x3(x, weight)`, as [`super::im2col::forward`].
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    forward_add(x, weight, None, d)
}

/// [`forward`] plus `addend` (of the output's shape), added to each run of output rows as it is
/// written, while those rows are in cache.
pub fn forward_add(x: &[f32], weight: &[f32], addend: Option<&[f32]>, d: Dims) -> Vec<f32> {
    d.check_forward(x, weight);
    if let Some(a) = addend {
        assert_eq!(
            a.len(),
            d.batch * d.c_out * d.h * d.w,
            "conv3x3: addend length"
        );
    }
    if on_lanes(&d) {
        return forward_add_lanes(x, weight, addend, d);
    }
    let tw = d.w.div_ceil(4);
    let u = by_position(weight, weight_transform);
    let (c_in, c_out) = (d.c_in, d.c_out);
    let fill = |task: Task, out: &SharedOut| {
        let n = task.1 * tw;
        let rows_len = input_scratch(n, tw).max(40 * n);
        with_scratch(36 * c_in * n, 36 * c_out * n, rows_len, |v, m, rows| {
            input_transform(x, &d, task, v, rows);
            products::<36>(&u, v, m, c_in, c_out, n);
            output_transform(m, &d, task, addend, out, rows);
        });
    };
    // SAFETY: the tasks cover every tile row of every image once, and `fill` writes every column
    // of the four output rows of each of its tile rows (clipped at the bottom edge), and nothing
    // else.
    unsafe { fill_output(&d, &tasks(&d), fill) }
}

/// The weights' gradient, as [`super::im2col::weight_grad`]: per product position `xi`,
/// `sum over tiles of (A dY A^T)[xi] (B^T x B)[xi]^T` (a GEMM with the tiles as its long inner
/// dimension), then `G^T . G` back to 3x3.
pub fn weight_grad(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    if on_lanes(&d) {
        return weight_grad_lanes(x, dy, d);
    }
    d.check_weight_grad(x, dy);
    let tw = d.w.div_ceil(4);
    let (c_in, c_out) = (d.c_in, d.c_out);
    let pairs = c_out * c_in;
    let task = |acc: &mut [f32], &task: &Task| {
        let n = task.1 * tw;
        let rows_len = input_scratch(n, tw).max(40 * n);
        with_scratch(36 * c_in * n, 36 * c_out * n, rows_len, |v, m, rows| {
            input_transform(x, &d, task, v, rows);
            output_grad_transform(dy, &d, task, m, rows);
            accumulate_products::<36>(acc, m, v, c_in, c_out, n);
        });
    };
    let acc = sum_over_tasks(&tasks(&d), 36 * pairs, task);
    from_positions(&acc, pairs, weight_grad_back)
}

/// F(4x4)'s transforms of a tile on lanes of images (`lanes.rs`): [`bt_row`], [`at`], and
/// A's rows 1; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1.
struct F4;

impl Tile<4, 6> for F4 {
    #[inline(always)]
    fn bt(d: [f32; 6]) -> [f32; 6] {
        [
            bt_row::<0>(d),
            bt_row::<1>(d),
            bt_row::<2>(d),
            bt_row::<3>(d),
            bt_row::<4>(d),
            bt_row::<5>(d),
        ]
    }

    #[inline(always)]
    fn at(m: [f32; 6]) -> [f32; 4] {
        at(m)
    }

    #[inline(always)]
    fn a([y0, y1, y2, y3]: [f32; 4]) -> [f32; 6] {
        let (e, o) = (y0 + y2, y1 + y3);
        let (e2, o2) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
        [y0, e + o, e - o, e2 + o2, e2 - o2, y3]
    }
}

lanes::kernel!(
    LANES_KERNEL = F4,
    4,
    6,
    36,
    weight_transform,
    weight_grad_back
);

/// [`forward_add`] with sixteen images in the lanes.
pub fn forward_add_lanes(x: &[f32], weight: &[f32], addend: Option<&[f32]>, d: Dims) -> Vec<f32> {
    lanes::forward_add(&LANES_KERNEL, x, weight, addend, d)
}

/// [`weight_grad`] with sixteen images in the lanes.
pub fn weight_grad_lanes(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    lanes::weight_grad(&LANES_KERNEL, x, dy, d)
}

// The AVX-512 and AVX2 paths against the portable ones: x86-64 only.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX-512 output rows (the output transform's horizontal step, the interleave and the
    /// addend) and output-gradient rows against the portable ones, on the same widths.
    /// The instruction sets with per-row transforms by hand that this CPU has.
    fn by_hand() -> Vec<Isa> {
        let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .filter(|&isa| crate::ops::simd::cpu_isa() >= isa)
            .collect();
        if isas.is_empty() {
            eprintln!("no AVX2 here: only the portable path runs");
        }
        isas
    }

    #[test]
    fn output_rows_match_the_portable_path() {
        for isa in by_hand() {
            output_rows_match_on(isa);
        }
    }

    fn output_rows_match_on(isa: Isa) {
        let close = |g: f32, e: f32| (g - e).abs() <= 1e-5 * (1.0 + e.abs());
        for w in [1usize, 3, 7, 24, 32, 33, 48, 63, 64, 65, 68, 130, 301] {
            let tw = w.div_ceil(4);
            // A run of 2 tile rows from tile 3 of a task of 5 tile rows; its last row cut at 7.
            let (n, first, rows) = (5 * tw, 3 * tw, 7);
            let s: Vec<f32> = (0..24 * n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let addend: Vec<f32> = (0..rows * w).map(|i| (i % 13) as f32 - 6.0).collect();
            for addend in [None, Some(&addend[..])] {
                let mut want = vec![0.0; rows * w];
                let mut yb = vec![0.0; 16 * n];
                portable_write_output_rows(&mut want, &s, n, first, w, addend, &mut yb);
                let mut got = vec![f32::NAN; rows * w];
                // SAFETY: the CPU has `isa` (the caller checked).
                unsafe {
                    if isa == Isa::Avx512 {
                        super::super::winograd4_avx512::write_output_rows(
                            &mut got, &s, n, first, w, addend,
                        )
                    } else {
                        super::super::winograd4_avx2::write_output_rows(
                            &mut got, &s, n, first, w, addend,
                        )
                    }
                };
                for (k, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        close(g, e),
                        "{isa}: width {w}, element {k}: {g} against {e}"
                    );
                }
            }
            let row = &s[..w];
            let (at, stride) = (tw + 1, 2 * tw + 3);
            let mut want = vec![0.0; 6 * stride + at];
            let mut split = vec![0.0; 4 * tw];
            portable_grad_row(row, &mut want, at, stride, &mut split);
            let mut got = vec![0.0; want.len()];
            // SAFETY: the CPU has `isa`; six rows of tw at stride from `at`.
            unsafe {
                let rows = got[at..].as_mut_ptr();
                if isa == Isa::Avx512 {
                    super::super::winograd4_avx512::grad_row(row, rows, stride)
                } else {
                    super::super::winograd4_avx2::grad_row(row, rows, stride)
                }
            };
            for (k, (&g, &e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    close(g, e),
                    "{isa}: gradient row of width {w}, element {k}: {g} against {e}"
                );
            }
        }
    }

    /// The AVX-512 horizontal step against the portable one, on widths around the 16-tile
    /// blocks' edges (partial tiles, one block, several, a last block of one tile) and on runs
    /// that start above, inside and below the plane.
    #[test]
    fn transform_rows_match_the_portable_path() {
        for isa in by_hand() {
            transform_rows_match_on(isa);
        }
    }

    fn transform_rows_match_on(isa: Isa) {
        for (h, w) in [
            (1, 1),
            (5, 3),
            (6, 7),
            (6, 24),
            (5, 32),
            (7, 33),
            (9, 48),
            (7, 63),
            (8, 64),
            (13, 65),
            (4, 68),
            (3, 130),
            (2, 301),
        ] {
            let d = Dims {
                batch: 1,
                c_in: 1,
                c_out: 1,
                h,
                w,
            };
            let img: Vec<f32> = (0..h * w)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let tw = w.div_ceil(4);
            for (r0, count) in [(-1, 1), (-1, h.div_ceil(4)), (3, 1), (h as isize - 2, 2)] {
                let len = (count + 1) * tw;
                let mut split = vec![0.0; 24 * len];
                let mut want = vec![0.0; 24 * len];
                portable_transform_rows(&img, &d, r0, count, &mut want, &mut split);
                let mut got = vec![f32::NAN; 24 * len];
                // SAFETY: the CPU has `isa` (the caller checked).
                unsafe {
                    if isa == Isa::Avx512 {
                        super::super::winograd4_avx512::transform_rows(
                            &img, h, w, r0, count, &mut got,
                        )
                    } else {
                        super::super::winograd4_avx2::transform_rows(
                            &img, h, w, r0, count, &mut got,
                        )
                    }
                };
                // Rows 2 and 3 of the last group are not computed.
                for (k, (g, e)) in got.iter().zip(&want).enumerate() {
                    let (a, j) = (k / (6 * len), k % len / tw);
                    if j == count && a >= 2 {
                        continue;
                    }
                    assert!(
                        (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{isa}: {h}x{w} from row {r0}, {count} tile rows: element {k}: {g} against {e}"
                    );
                }
            }
        }
    }
}
