//! The same 3x3 convolution as [`super::im2col::forward`] by Winograd's minimal filtering
//! F(2x2, 3x3) (Lavin & Gray 2016): every 2x2 block of outputs from a 4x4 block of inputs with
//! 16 multiplications per (input, output) channel pair instead of 36.
//!
//! Why: on the CPU the convolution's GEMM already runs near the hardware's limit (and on wasm,
//! without FMA, onnxruntime-web's GEMM is as fast as ours), so fewer multiplications is the one
//! lever left. The 16 products of each tile position form 16 independent GEMMs
//! `M[xi] = U[xi] * V[xi]` over channels, with the transformed weights `U` `[c_out, c_in]` and the
//! transformed input tiles `V` `[c_in, tiles]`.
//!
//! Layout: the transforms run across a row of tiles at once, on contiguous arrays, so that the
//! compiler vectorises them (SSE2 natively, SIMD128 on wasm): each input row is split into its
//! even and odd columns first, after which a tile's four columns are `even[t], odd[t],
//! even[t + 1], odd[t + 1]`. Tiles are numbered by (image, tile row, tile column), and a task
//! takes consecutive tile rows, across images where the images are small, so that the 12x12 and
//! 6x6 planes of a batch of patches still make GEMMs of useful size.
use super::Dims;
use super::tiles::{
    PAIR_BLOCK, Pairs, Task, accumulate_products, by_position, fill_output, from_positions,
    products, rows_mut, tile_rows, tile_rows_per_task, with_scratch,
};
use crate::ops::parallel::{SharedOut, sum_over_tasks};
use crate::ops::simd::simd_copies;

/// Whether Winograd beats im2col + GEMM on this shape. Measured with the kernel bench
/// (`examples/kernel_bench.rs`, bench/NOTES.md section 10): from 32 channels it wins on every
/// plane (1.1-1.3x on a batch of 24x24 to 6x6 patches, 1.3-1.7x on a whole image's planes); at 16
/// channels only on wide planes (1.15x at 584 wide), while on a batch of 48x48 patches it ties
/// with im2col, whose GEMM then has the longer inner dimension.
pub fn pays(d: &Dims) -> bool {
    let c = d.c_in.min(d.c_out);
    c >= 32 || (c >= 16 && d.w >= 64)
}

/// The same for the weights' gradient, whose GEMMs sum over the tiles: on wide planes it wins
/// (1.2-1.45x at 584 to 146 wide), but a task's few tiles of small patches make short sums into
/// a large accumulator (16 x c_out x c_in), and there im2col is faster (0.6-1.1x).
pub fn pays_for_weight_grad(d: &Dims) -> bool {
    d.c_in.min(d.c_out) >= 16 && d.w >= 64
}

/// `G g` for one column `(g0, g1, g2)` of a kernel, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
#[inline(always)]
fn g_col(g0: f32, g1: f32, g2: f32) -> [f32; 4] {
    [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
}

/// `G^T q` for four values `q`, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1].
#[inline(always)]
fn gt(q: [f32; 4]) -> [f32; 3] {
    [
        q[0] + 0.5 * (q[1] + q[2]),
        0.5 * (q[1] - q[2]),
        0.5 * (q[1] + q[2]) + q[3],
    ]
}

/// `U = G g G^T` for a block of pairs' kernels, one pair a lane.
#[inline(always)]
fn weight_transform_body(g: &[Pairs; 9], u: &mut [Pairs; 16]) {
    for i in 0..PAIR_BLOCK {
        // t = G g, a column of the kernel at a time; then U's row r is G applied to t's row r.
        let t0 = g_col(g[0][i], g[3][i], g[6][i]);
        let t1 = g_col(g[1][i], g[4][i], g[7][i]);
        let t2 = g_col(g[2][i], g[5][i], g[8][i]);
        for r in 0..4 {
            let row = g_col(t0[r], t1[r], t2[r]);
            for (j, v) in row.into_iter().enumerate() {
                u[r * 4 + j][i] = v;
            }
        }
    }
}

/// `dW = G^T Wd G` for a block of pairs' 4x4 sums `wd`, one pair a lane.
#[inline(always)]
fn weight_grad_back_body(wd: &[Pairs; 16], dw: &mut [Pairs; 9]) {
    for i in 0..PAIR_BLOCK {
        // h = Wd G (4x3), a row at a time; then dW's column l is G^T applied to h's column l.
        let mut h = [[0.0; 3]; 4];
        for (r, h) in h.iter_mut().enumerate() {
            let q = &wd[r * 4..r * 4 + 4];
            *h = gt([q[0][i], q[1][i], q[2][i], q[3][i]]);
        }
        for l in 0..3 {
            let col = gt([h[0][l], h[1][l], h[2][l], h[3][l]]);
            for (k, v) in col.into_iter().enumerate() {
                dw[k * 3 + l][i] = v;
            }
        }
    }
}

/// `a[t] = row[2t]`, `b[t] = row[2t + 1]`, zero past the row's end.
#[inline(always)]
fn split_columns(row: &[f32], a: &mut [f32], b: &mut [f32]) {
    let half = row.len() / 2;
    deinterleave_body(&row[..2 * half], &mut a[..half], &mut b[..half]);
    a[half..].fill(0.0);
    b[half..].fill(0.0);
    if row.len() % 2 == 1 {
        a[half] = row[row.len() - 1];
    }
}

/// Splits input row `r` of `plane` (`h x w`, zero outside) into the zero-padded row's even
/// (`e[t] = x[2t - 1]`) and odd (`o[t] = x[2t]`) columns, `tw + 1` each.
#[inline(always)]
fn split_row(plane: &[f32], h: usize, w: usize, r: isize, e: &mut [f32], o: &mut [f32]) {
    if r < 0 || r >= h as isize {
        e.fill(0.0);
        o.fill(0.0);
        return;
    }
    split_columns(&plane[r as usize * w..(r as usize + 1) * w], o, &mut e[1..]);
    e[0] = 0.0;
}

/// One row combination `i` of the input transform over a task's tiles: with the combined rows
/// `ce = ea +- eb` (even columns) and `co = oa +- ob` (odd), tile `t` gets
/// `ce[t] - ce[t+1], co[t] + ce[t+1], ce[t+1] - co[t], co[t] - co[t+1]` (B^T along the row).
/// The last element of each output (the junk column) is set to zero.
#[inline(always)]
fn tile_row_body<const PLUS: bool>(rows: [&[f32]; 4], outs: [&mut [f32]; 4], l: usize) {
    let [ea, eb, oa, ob] = rows;
    let comb = |a: f32, b: f32| if PLUS { a + b } else { a - b };
    let [v0, v1, v2, v3] = outs;
    let (ea, eb, oa, ob) = (&ea[..l + 1], &eb[..l + 1], &oa[..l + 1], &ob[..l + 1]);
    let (v0, v1, v2, v3) = (
        &mut v0[..l + 1],
        &mut v1[..l + 1],
        &mut v2[..l + 1],
        &mut v3[..l + 1],
    );
    for t in 0..l {
        let (ce0, ce1) = (comb(ea[t], eb[t]), comb(ea[t + 1], eb[t + 1]));
        let (co0, co1) = (comb(oa[t], ob[t]), comb(oa[t + 1], ob[t + 1]));
        v0[t] = ce0 - ce1;
        v1[t] = co0 + ce1;
        v2[t] = ce1 - co0;
        v3[t] = co0 - co1;
    }
    v0[l] = 0.0;
    v1[l] = 0.0;
    v2[l] = 0.0;
    v3[l] = 0.0;
}

/// Y = A^T M A for every tile of a task at once, A^T = [1 1 1 0; 0 1 -1 -1]: `m[i * 4 + j]` is
/// product `(i, j)` of every tile; `y` gets (top left, top right, bottom left, bottom right).
#[inline(always)]
fn output_body(m: &[&[f32]; 16], y: [&mut [f32]; 4]) {
    let n = y[0].len();
    let m: [&[f32]; 16] = std::array::from_fn(|k| &m[k][..n]);
    let [y0, y1, y2, y3] = y;
    let (y1, y2, y3) = (&mut y1[..n], &mut y2[..n], &mut y3[..n]);
    for t in 0..n {
        // Along the rows of each product block: s_i0 = m_i0 + m_i1 + m_i2, s_i1 = m_i1 - m_i2 - m_i3.
        let s = |i: usize| {
            let (a, b, c, d) = (
                m[4 * i][t],
                m[4 * i + 1][t],
                m[4 * i + 2][t],
                m[4 * i + 3][t],
            );
            (a + b + c, b - c - d)
        };
        let (s0, s1, s2, s3) = (s(0), s(1), s(2), s(3));
        y0[t] = s0.0 + s1.0 + s2.0;
        y1[t] = s0.1 + s1.1 + s2.1;
        y2[t] = s1.0 - s2.0 - s3.0;
        y3[t] = s1.1 - s2.1 - s3.1;
    }
}

/// `dst[2t] = a[t], dst[2t + 1] = b[t]`, as loops the compiler turns into shuffles.
#[inline(always)]
fn interleave_body(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for ((d, a), b) in dst.chunks_exact_mut(2).zip(a).zip(b) {
        d[0] = *a;
        d[1] = *b;
    }
}

/// `a[t] = src[2t], b[t] = src[2t + 1]`.
#[inline(always)]
fn deinterleave_body(src: &[f32], a: &mut [f32], b: &mut [f32]) {
    for ((s, a), b) in src.chunks_exact(2).zip(a.iter_mut()).zip(b.iter_mut()) {
        *a = s[0];
        *b = s[1];
    }
}

// The transforms are plain loops that the compiler vectorises, run from copies for the widest
// vectors the CPU has (see `super::simd`): one call a task and direction, since per row (a
// 6x6 plane's row is 6 floats) the calls cost more than the work (bench/NOTES.md section 26).
simd_copies! {
    fn weight_transform(g: &[Pairs; 9], u: &mut [Pairs; 16]) => weight_transform_body;
    fn weight_grad_back(wd: &[Pairs; 16], dw: &mut [Pairs; 9]) => weight_grad_back_body;
    fn input_transform(x: &[f32], d: &Dims, task: Task, v: &mut [f32], raw: &mut [f32])
        => input_transform_body;
    fn output_transform(m: &[f32], d: &Dims, task: Task, out: &SharedOut, yb: &mut [f32])
        => output_transform_body;
    fn output_grad_transform(dy: &[f32], d: &Dims, task: Task, m: &mut [f32], y4: &mut [f32])
        => output_grad_transform_body;
}

/// The tasks, of equal size but the last: each's transformed tiles near 64 K floats (256 KiB).
fn tasks(d: &Dims) -> Vec<Task> {
    let (th, tw) = (d.h.div_ceil(2), d.w.div_ceil(2));
    let total_rows = d.batch * th;
    let per_task = tile_rows_per_task::<16>(d, 64 * 1024, tw + 1);
    (0..total_rows)
        .step_by(per_task)
        .map(|g0| (g0, per_task.min(total_rows - g0)))
        .collect()
}

// In the transformed arrays a tile row takes `tw + 1` columns, `tw` tiles and one junk column,
// so that a task's tile rows lie end to end and every transform is one pass over all of them
// (the junk column is where a row's last tile would read the next row's first; its values are
// zero on the input side and never written out).

/// V = B^T d B (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]) for the task's tile rows of
/// `x`: `v[(xi * c_in + ci) * n + gi * (tw + 1) + t]` for its `gi`-th tile row, `n` = its tile
/// rows times `tw + 1`. `raw` is scratch of `8 * n` floats.
#[inline(always)]
fn input_transform_body(x: &[f32], d: &Dims, task: Task, v: &mut [f32], raw: &mut [f32]) {
    let (th, tw) = (d.h.div_ceil(2), d.w.div_ceil(2));
    let (rl, plane, c_in) = (tw + 1, d.h * d.w, d.c_in);
    let n = task.1 * rl;
    for ci in 0..c_in {
        // raw[(2k + parity) * n + gi * rl ..]: input row 2 ty - 1 + k of tile row gi, split into
        // even and odd columns.
        for (gi, b, ty) in tile_rows(task, th) {
            let img = &x[(b * c_in + ci) * plane..(b * c_in + ci + 1) * plane];
            for k in 0..4 {
                let (e, o) = raw[2 * k * n..(2 * k + 2) * n].split_at_mut(n);
                let at = gi * rl..(gi + 1) * rl;
                split_row(
                    img,
                    d.h,
                    d.w,
                    2 * ty as isize - 1 + k as isize,
                    &mut e[at.clone()],
                    &mut o[at],
                );
            }
        }
        // Vertical and horizontal steps in one pass per row combination `i`.
        let l = n - 1;
        let r = |k: usize, par: usize| &raw[(2 * k + par) * n..(2 * k + par + 1) * n];
        for i in 0..4 {
            // Rows of B^T: d0 - d2, d1 + d2, d2 - d1, d1 - d3.
            let (ka, kb, plus) = [(0, 2, false), (1, 2, true), (2, 1, false), (1, 3, false)][i];
            let at = |j: usize| ((i * 4 + j) * c_in + ci) * n;
            let (v0, rest) = v[at(0)..].split_at_mut(c_in * n);
            let (v1, rest) = rest.split_at_mut(c_in * n);
            let (v2, rest) = rest.split_at_mut(c_in * n);
            let v3 = &mut rest[..n];
            let rows = [r(ka, 0), r(kb, 0), r(ka, 1), r(kb, 1)];
            let outs = [&mut v0[..n], &mut v1[..n], &mut v2[..n], v3];
            if plus {
                tile_row_body::<true>(rows, outs, l);
            } else {
                tile_row_body::<false>(rows, outs, l);
            }
        }
    }
}

/// A dY A^T for every tile (A = [1 0; 1 1; 1 -1; 0 -1], the adjoint of the output transform):
/// from the 2x2 output gradients (top left, top right, bottom left, bottom right) to the 16
/// product positions.
#[inline(always)]
fn grad_body(y: [&[f32]; 4], out: &mut [&mut [f32]; 16]) {
    let n = y[0].len();
    let [y0, y1, y2, y3] = y.map(|a| &a[..n]);
    for t in 0..n {
        // Columns c of the 2x2 block: (y0, y2) and (y1, y3); rows of A: a, a + b, a - b, -b.
        let col = |a: f32, b: f32| [a, a + b, a - b, -b];
        let (c0, c1) = (col(y0[t], y2[t]), col(y1[t], y3[t]));
        for i in 0..4 {
            let q = col(c0[i], c1[i]);
            for j in 0..4 {
                out[i * 4 + j][t] = q[j];
            }
        }
    }
}

/// A dY A^T for the task's tile rows of the output gradient `dy`, into `m[(xi * c_out + co) * n
/// + t]` (the layout of [`products`]' output). `y4` holds `4 n` floats.
#[inline(always)]
fn output_grad_transform_body(dy: &[f32], d: &Dims, task: Task, m: &mut [f32], y4: &mut [f32]) {
    let (th, tw) = (d.h.div_ceil(2), d.w.div_ceil(2));
    let (rl, plane, c_out) = (tw + 1, d.h * d.w, d.c_out);
    let n = task.1 * rl;
    for co in 0..c_out {
        // The output gradient of every tile, split into its four corners (zero outside).
        for (gi, b, ty) in tile_rows(task, th) {
            for dr in 0..2 {
                let (e, rest) = y4[2 * dr * n..].split_at_mut(n);
                let (e, o) = (
                    &mut e[gi * rl..(gi + 1) * rl],
                    &mut rest[gi * rl..(gi + 1) * rl],
                );
                let r = 2 * ty + dr;
                if r < d.h {
                    split_columns(&dy[(b * c_out + co) * plane + r * d.w..][..d.w], e, o);
                } else {
                    e.fill(0.0);
                    o.fill(0.0);
                }
            }
        }
        let corners = [
            &y4[..n],
            &y4[n..2 * n],
            &y4[2 * n..3 * n],
            &y4[3 * n..4 * n],
        ];
        let mut out: [&mut [f32]; 16] = rows_mut(m, co * n, c_out * n, n);
        grad_body(corners, &mut out);
    }
}

/// Y = A^T M A (A^T = [1 1 1 0; 0 1 -1 -1]) for the task's tile rows, written into their output
/// rows of `out`; `m[(xi * c_out + co) * n + t]` as [`products`] leaves it. `yb` holds `4 n`
/// floats.
#[inline(always)]
fn output_transform_body(m: &[f32], d: &Dims, task: Task, out: &SharedOut, yb: &mut [f32]) {
    let (th, tw) = (d.h.div_ceil(2), d.w.div_ceil(2));
    let (rl, plane, c_out) = (tw + 1, d.h * d.w, d.c_out);
    let n = task.1 * rl;
    let yb = &mut yb[..4 * n];
    for co in 0..c_out {
        let mm: [&[f32]; 16] = std::array::from_fn(|k| &m[(k * c_out + co) * n..][..n]);
        let (y0, rest) = yb.split_at_mut(n);
        let (y1, rest) = rest.split_at_mut(n);
        let (y2, y3) = rest.split_at_mut(n);
        output_body(&mm, [y0, y1, y2, y3]);
        // yb: (top, col 0), (top, col 1), (bottom, col 0), (bottom, col 1).
        for (gi, b, ty) in tile_rows(task, th) {
            for (dy, (c0, c1)) in [(0usize, (0usize, 1usize)), (1, (2, 3))] {
                let r = 2 * ty + dy;
                if r >= d.h {
                    continue;
                }
                let at = (b * c_out + co) * plane + r * d.w;
                // SAFETY: row r of channel co of image b belongs to this task's tile rows only
                // (the caller's contract with `fill_output`).
                let row = unsafe { out.slice_mut(at..at + d.w) };
                let even = &yb[c0 * n + gi * rl..][..tw];
                let odd = &yb[c1 * n + gi * rl..][..tw];
                let pairs = d.w / 2;
                interleave_body(&mut row[..2 * pairs], &even[..pairs], &odd[..pairs]);
                if d.w % 2 == 1 {
                    row[d.w - 1] = even[pairs];
                }
            }
        }
    }
}

/// The weights' gradient, as [`super::im2col::weight_grad`]: per product position `xi`,
/// `sum over tiles of (A dY A^T)[xi] (B^T x B)[xi]^T` (a GEMM with the tiles as its long inner
/// dimension), then `G^T . G` back to 3x3.
pub fn weight_grad(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    d.check_weight_grad(x, dy);
    let rl = d.w.div_ceil(2) + 1;
    let (c_in, c_out) = (d.c_in, d.c_out);
    let pairs = c_out * c_in;
    let task = |acc: &mut [f32], &task: &Task| {
        let n = task.1 * rl;
        with_scratch(16 * c_in * n, 16 * c_out * n, 8 * n, |v, m, rows| {
            input_transform(x, &d, task, v, rows);
            output_grad_transform(dy, &d, task, m, &mut rows[..4 * n]);
            accumulate_products::<16>(acc, m, v, c_in, c_out, n);
        });
    };
    let acc = sum_over_tasks(&tasks(&d), 16 * pairs, task);
    from_positions(&acc, pairs, weight_grad_back)
}

/// `y = conv3x3(x, weight)`, as [`super::im2col::forward`].
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    d.check_forward(x, weight);
    let u = by_position(weight, weight_transform);
    let (c_in, c_out) = (d.c_in, d.c_out);
    let rl = d.w.div_ceil(2) + 1;
    let fill = |task: Task, out: &SharedOut| {
        let n = task.1 * rl;
        with_scratch(16 * c_in * n, 16 * c_out * n, 16 * n, |v, m, rows| {
            input_transform(x, &d, task, v, &mut rows[..8 * n]);
            products::<16>(&u, v, m, c_in, c_out, n);
            output_transform(m, &d, task, out, &mut rows[..4 * n]);
        });
    };
    // SAFETY: the tasks cover every tile row of every image once, and `fill` writes every column
    // of both output rows of each of its tile rows (clipped at the bottom edge), and nothing else.
    unsafe { fill_output(&d, &tasks(&d), fill) }
}
