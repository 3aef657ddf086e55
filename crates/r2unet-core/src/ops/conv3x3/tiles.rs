//! The plumbing that the two Winograd kernels, [`super::winograd`] (F(2x2), 16 transform
//! positions) and [`super::winograd4`] (F(4x4), 36), share: tasks of whole tile rows, the
//! per-thread scratch, the output buffer that the tasks fill, and the per-position GEMMs. What
//! differs between them, the transforms and how a task's tiles lie in the scratch, stays in each
//! kernel's file; the `P` of the functions here is the number of transform positions, a constant
//! so that the GEMM loops unroll.
use super::Dims;
use crate::ops::gemm::gemm;
use crate::ops::parallel::{SharedOut, for_each_index, for_each_task};

/// A task: tile rows `first..first + count` of the batch, numbered by (image, tile row) so that
/// a task takes tile rows of several images where the images are small (the 12x12 and 6x6 planes
/// of a batch of patches), and its GEMMs are still of a useful size.
pub(super) type Task = (usize, usize);

/// Tile rows per task: the task's transformed tiles (`P * c * tiles` floats, for the larger of
/// the two channel counts) near `budget` floats, so that they stay in a core's L2, but at least
/// 64 tiles, below which the GEMMs slow down; a tile row takes `row_len` columns.
pub(super) fn tile_rows_per_task<const P: usize>(d: &Dims, budget: usize, row_len: usize) -> usize {
    let c = d.c_in.max(d.c_out).max(1);
    let tiles = (budget / (P * c)).max(64);
    (tiles / row_len.max(1)).max(1)
}

/// `(i, image, tile row in the image)` for the task's `i`-th tile row, `th` tile rows an image.
#[inline]
pub(super) fn tile_rows(
    (first, count): Task,
    th: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..count).map(move |i| (i, (first + i) / th, (first + i) % th))
}

/// `K` rows of `buf`, `len` floats each, row `i` starting at `first + i * stride`: the transforms'
/// arguments. By index, not as the `next()`s of a `chunks_exact_mut().skip().step_by()` chain,
/// whose calls the compiler left out of line: on the training patches' short rows they were 3 %
/// of a step (bench/NOTES.md section 25); and with two comparisons, not `get_disjoint_mut`'s
/// check of every pair of ranges, which stayed a call of its own inside the transforms' SIMD
/// copies (4 % of a step, section 26). Panics when the rows overlap or leave `buf`.
#[inline(always)]
pub(super) fn rows_mut<const K: usize>(
    buf: &mut [f32],
    first: usize,
    stride: usize,
    len: usize,
) -> [&mut [f32]; K] {
    assert!(
        K <= 1 || stride >= len,
        "rows_mut: rows of {len} floats {stride} apart overlap"
    );
    let end = K
        .checked_sub(1)
        .and_then(|last| last.checked_mul(stride))
        .and_then(|o| o.checked_add(first))
        .and_then(|o| o.checked_add(len));
    assert!(
        end.is_some_and(|end| end <= buf.len()),
        "rows_mut: rows outside the buffer"
    );
    let base = buf.as_mut_ptr();
    // Filled by a loop, not `std::array::from_fn`, whose generic code stayed a call of its own
    // inside the transforms' SIMD copies (1.4 % of a training step with `rows` below, bench/NOTES.md
    // section 27).
    let mut out: [std::mem::MaybeUninit<&mut [f32]>; K] =
        [const { std::mem::MaybeUninit::uninit() }; K];
    for (i, o) in out.iter_mut().enumerate() {
        // SAFETY: row i is `first + i * stride .. + len`, inside `buf` (the last one ends at
        // `end`, checked), and the rows are disjoint since `stride >= len`.
        o.write(unsafe { std::slice::from_raw_parts_mut(base.add(first + i * stride), len) });
    }
    // SAFETY: every element was written above; `MaybeUninit<T>` has `T`'s layout.
    unsafe { std::mem::transmute_copy(&out) }
}

/// `K` rows of `buf`, `len` floats each, row `i` starting at `first + i * stride`: the read-only
/// counterpart of [`rows_mut`].
#[inline(always)]
pub(super) fn rows_ref<const K: usize>(
    buf: &[f32],
    first: usize,
    stride: usize,
    len: usize,
) -> [&[f32]; K] {
    let mut out: [&[f32]; K] = [&[]; K];
    for (i, o) in out.iter_mut().enumerate() {
        *o = &buf[first + i * stride..][..len];
    }
    out
}

/// Per-thread scratch: transformed inputs, products, and row buffers. One for both kernels: a
/// task never runs inside another (nothing in a task waits on rayon), so one is borrowed at a
/// time, and a thread holds the larger of the two kernels' needs rather than their sum.
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    rows: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new(Scratch { v: Vec::new(), m: Vec::new(), rows: Vec::new() }) };
}

fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Runs `f(v, m, rows)` on this thread's scratch, `v_len`, `m_len` and `rows_len` floats (left
/// over from earlier tasks: the kernels write before they read).
#[inline]
pub(super) fn with_scratch<R>(
    v_len: usize,
    m_len: usize,
    rows_len: usize,
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        grow(&mut s.v, v_len);
        grow(&mut s.m, m_len);
        grow(&mut s.rows, rows_len);
        f(
            &mut s.v[..v_len],
            &mut s.m[..m_len],
            &mut s.rows[..rows_len],
        )
    })
}

/// The `[batch, c_out, h, w]` output of a forward pass, filled by `task(t, out)` for every task
/// `t`; not zeroed first, since the output transform writes every element.
///
/// # Safety
///
/// `task(t, out)` writes, through `out` ([`SharedOut::slice_mut`]), every element of the output
/// rows of task `t`'s tile rows (clipped at the bottom edge) and no other element, and `tasks`
/// cover every tile row of the batch once.
pub(super) unsafe fn fill_output(
    d: &Dims,
    tasks: &[Task],
    task: impl Fn(Task, &SharedOut) + Send + Sync,
) -> Vec<f32> {
    let len = d.batch * d.c_out * d.plane();
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `y` has room for `len` floats and is left alone until `set_len` below, after the
    // tasks; each task writes the output rows of its own tile rows (the caller's contract).
    let out = unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len) };
    for_each_task(tasks, |&t| task(t, &out));
    // SAFETY: by the caller's contract the tasks wrote every element.
    unsafe { y.set_len(len) };
    y
}

/// `M[xi] = U[xi] V[xi]` (`[c_out, c_in] x [c_in, n]`) for the `P` positions `xi`, each a block
/// of `u`, `v` and `m` in turn.
#[inline]
pub(super) fn products<const P: usize>(
    u: &[f32],
    v: &[f32],
    m: &mut [f32],
    c_in: usize,
    c_out: usize,
    n: usize,
) {
    assert!(u.len() >= P * c_out * c_in && v.len() >= P * c_in * n && m.len() >= P * c_out * n);
    for xi in 0..P {
        let lhs = u[xi * c_out * c_in..].as_ptr();
        let rhs = v[xi * c_in * n..].as_ptr();
        let dst = m[xi * c_out * n..].as_mut_ptr();
        gemm(
            c_out,
            n,
            c_in,
            dst,
            (n as isize, 1),
            false,
            lhs,
            (c_in as isize, 1),
            rhs,
            (n as isize, 1),
        );
    }
}

/// `acc[xi] (c_out x c_in) += M[xi] (c_out x n) V[xi]^T (n x c_in)` for the `P` positions `xi`:
/// a task's share of the weight gradient, summed over its `n` tiles.
#[inline]
pub(super) fn accumulate_products<const P: usize>(
    acc: &mut [f32],
    m: &[f32],
    v: &[f32],
    c_in: usize,
    c_out: usize,
    n: usize,
) {
    assert!(acc.len() >= P * c_out * c_in && m.len() >= P * c_out * n && v.len() >= P * c_in * n);
    for xi in 0..P {
        let dst = acc[xi * c_out * c_in..].as_mut_ptr();
        let lhs = m[xi * c_out * n..].as_ptr();
        let rhs = v[xi * c_in * n..].as_ptr();
        gemm(
            c_out,
            c_in,
            n,
            dst,
            (c_in as isize, 1),
            true,
            lhs,
            (n as isize, 1),
            rhs,
            (1, n as isize),
        );
    }
}

/// (Output, input) channel pairs per block of [`by_position`] and [`from_positions`].
pub(super) const PAIR_BLOCK: usize = 64;

/// One value of each of a block's [`PAIR_BLOCK`] channel pairs: the weight transforms run over
/// these, a pair in each lane, since a kernel's 3x3 taps are too few to vectorise along. One pair
/// at a time, in f64 with divisions, F(3x3)'s transform at 128 channels took as long as the
/// products of the 6x6 convolution it served (bench/NOTES.md section 27).
pub(super) type Pairs = [f32; PAIR_BLOCK];

/// `u[xi * pairs + p] = (G g_p G^T)[xi]` for the `P` positions `xi` and the 3x3 kernel `g_p` of
/// every (output, input) channel pair `p` of `weight` (`[c_out, c_in, 3, 3]`): the weights'
/// transform, position-major as [`products`] reads it. `kernel(g, u)` transforms a block of
/// pairs, `g[k]` holding their tap `k` (zero past the last pair).
///
/// Blocks of pairs run as parallel tasks, each writing each position's row of its pairs in one
/// run. Written a pair at a time, the `P` rows lie `pairs` floats apart, a power of two (16 to 64
/// KiB on the 64- and 128-channel layers), so all `P` fall into the same few cache sets; and on
/// one thread, this took a fifth of a 6x6 plane's forward pass at 128 channels (bench/NOTES.md
/// section 25).
pub(super) fn by_position<const P: usize>(
    weight: &[f32],
    kernel: impl Fn(&[Pairs; 9], &mut [Pairs; P]) + Send + Sync,
) -> Vec<f32> {
    assert_eq!(weight.len() % 9, 0, "by_position: 3x3 kernels");
    let pairs = weight.len() / 9;
    let mut u: Vec<f32> = Vec::with_capacity(P * pairs);
    // SAFETY: `u` has room for `P * pairs` floats and is left alone until `set_len`; block `b`
    // writes elements `xi * pairs + p` for its own pairs `p` only.
    let out = unsafe { SharedOut::new(u.spare_capacity_mut().as_mut_ptr().cast(), P * pairs) };
    for_each_index(pairs.div_ceil(PAIR_BLOCK), |b| {
        let first = b * PAIR_BLOCK;
        let len = PAIR_BLOCK.min(pairs - first);
        let mut taps = [[0.0f32; PAIR_BLOCK]; 9];
        for (i, g) in weight[9 * first..9 * (first + len)]
            .chunks_exact(9)
            .enumerate()
        {
            for (tap, &v) in taps.iter_mut().zip(g) {
                tap[i] = v;
            }
        }
        let mut block = [[0.0f32; PAIR_BLOCK]; P];
        kernel(&taps, &mut block);
        for (xi, row) in block.iter().enumerate() {
            let at = xi * pairs + first;
            // SAFETY: these pairs belong to this block only.
            unsafe { out.slice_mut(at..at + len) }.copy_from_slice(&row[..len]);
        }
    });
    // SAFETY: the blocks cover every pair, each writing all `P` of its positions.
    unsafe { u.set_len(P * pairs) };
    u
}

/// The way back, for the weights' gradient: `dw[p * 9 + k] = w[k]` for every pair `p`, where
/// `kernel(q, w)` takes a block of pairs' `q[xi] = acc[xi * pairs + p]` to their 3x3 gradients;
/// in parallel blocks that read each position's row in one run, for the same reason as
/// [`by_position`].
pub(super) fn from_positions<const P: usize>(
    acc: &[f32],
    pairs: usize,
    kernel: impl Fn(&[Pairs; P], &mut [Pairs; 9]) + Send + Sync,
) -> Vec<f32> {
    assert!(acc.len() >= P * pairs, "from_positions: accumulator length");
    let mut dw: Vec<f32> = Vec::with_capacity(9 * pairs);
    // SAFETY: as in `by_position`; block `b` writes the 9 weights of its own pairs only.
    let out = unsafe { SharedOut::new(dw.spare_capacity_mut().as_mut_ptr().cast(), 9 * pairs) };
    for_each_index(pairs.div_ceil(PAIR_BLOCK), |b| {
        let first = b * PAIR_BLOCK;
        let len = PAIR_BLOCK.min(pairs - first);
        let mut block = [[0.0f32; PAIR_BLOCK]; P];
        for (xi, row) in block.iter_mut().enumerate() {
            row[..len].copy_from_slice(&acc[xi * pairs + first..][..len]);
        }
        let mut taps = [[0.0f32; PAIR_BLOCK]; 9];
        kernel(&block, &mut taps);
        // SAFETY: these pairs belong to this block only.
        let dst = unsafe { out.slice_mut(9 * first..9 * (first + len)) };
        for (i, w) in dst.chunks_exact_mut(9).enumerate() {
            for (w, tap) in w.iter_mut().zip(&taps) {
                *w = tap[i];
            }
        }
    });
    // SAFETY: the blocks cover every pair, each writing its 9 weights.
    unsafe { dw.set_len(9 * pairs) };
    dw
}
