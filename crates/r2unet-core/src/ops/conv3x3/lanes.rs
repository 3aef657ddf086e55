//! Winograd F(MxM, 3x3) on small planes with sixteen images in the lanes of a vector: the tasks,
//! the copies of planes into and out of the lanes, and the tile loops, shared by
//! [`super::winograd3`]'s F(3x3) and [`super::winograd4`]'s F(4x4) on small planes. Each kernel
//! gives its transforms as formulas on one lane ([`Tile`]); the loops here run them on sixteen.
//!
//! Why: a 6x6 or 12x12 plane has two or three tiles to a row, too few for the vectors that the
//! row-wise transforms fill along a row ([`super::winograd`], [`super::winograd4`]). Here the
//! vector runs across images instead: a task takes sixteen images, copies channel `c` of each
//! into one lane of a zero-padded plane of `[f32; 16]` pixels, and every transform step is then
//! an element-wise operation on whole vectors, a tile at a time. Column `t * 16 + lane` of the
//! transformed arrays is the task's tile `t` of its image `lane`.
use std::ops::Range;

use super::Dims;
use super::tiles::{
    Pairs, accumulate_products, by_position, from_positions, products, with_scratch,
};
use crate::ops::parallel::{SharedOut, for_each_task, sum_over_tasks};
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::Isa;

/// Images per task: one per lane of an AVX-512 vector (two AVX2 vectors, four SIMD128 ones).
pub(super) const LANES: usize = 16;

/// One pixel of sixteen images.
pub(super) type Lanes = [f32; LANES];

/// The transforms of F(MxM, 3x3), `A = M + 2`, as formulas on one lane's values; the loops below
/// run them on every lane, where the compiler vectorises them.
pub(super) trait Tile<const M: usize, const A: usize> {
    /// `B^T d` for a tile's row or column of inputs.
    fn bt(d: [f32; A]) -> [f32; A];
    /// `A^T m` for a row or column of products.
    fn at(m: [f32; A]) -> [f32; M];
    /// `A y` (the adjoint of [`Tile::at`]) for a row or column of output gradients.
    fn a(y: [f32; M]) -> [f32; A];
}

/// A task: a run of tile rows of sixteen images (fewer in the last group). Its transformed
/// columns are `(tile - first tile, image - first image)`, sixteen per tile whatever the number
/// of images (the lanes past the last image are zeros on the input side and ignored on the
/// output side).
#[derive(Clone, Copy, Debug)]
pub(super) struct Task {
    first: usize,
    images: usize,
    ty: usize,
    rows: usize,
}

/// Transformed columns per task, near this: a task's transformed inputs and products (`25 x 128
/// x 32` floats each for F(3x3) at 128 channels) then stay in a core's L2 with some of the
/// transformed weights; with whole 6x6 planes' 64 they did not, and the GEMMs ran at two thirds
/// of their speed (bench/NOTES.md section 27).
const TASK_COLUMNS: usize = 32;

/// A task's input transform: `(x, d, task, v, plane scratch)`.
type InputTransform = fn(&[f32], &Dims, &Task, &mut [f32], &mut [f32]);
/// A task's output transform: `(m, d, task, addend, out, plane scratch)`.
type OutputTransform = fn(&[f32], &Dims, &Task, Option<&[f32]>, &SharedOut, &mut [f32]);

/// One kernel's parts: its tile side `m`, its weight transforms and its transforms of a task's
/// tiles (the lane loops below, compiled for the widest vectors the CPU has; see `super::simd`).
pub(super) struct Kernel<const P: usize> {
    pub m: usize,
    pub weight_transform: fn(&[Pairs; 9], &mut [Pairs; P]),
    pub weight_grad_back: fn(&[Pairs; P], &mut [Pairs; 9]),
    pub input: InputTransform,
    pub output: OutputTransform,
    /// `(dy, d, task, m, plane scratch)`, the shape of an input transform.
    pub output_grad: InputTransform,
}

/// `const $name: Kernel<$p>`: F($m x $m, 3x3) on lanes with `$tile`'s transforms (a
/// [`Tile<$m, $a>`]) and the weight transforms `$weight_transform` and `$weight_grad_back`; the
/// task transforms are the loops below, compiled for the widest vectors the CPU has (see
/// `crate::ops::simd`).
macro_rules! kernel {
    ($name:ident = $tile:ty, $m:literal, $a:literal, $p:literal, $weight_transform:expr, $weight_grad_back:expr) => {
        const $name: $crate::ops::conv3x3::lanes::Kernel<$p> = {
            use $crate::ops::conv3x3::Dims;
            use $crate::ops::conv3x3::lanes::{self, Task};
            use $crate::ops::parallel::SharedOut;

            #[inline(always)]
            fn input_body(x: &[f32], d: &Dims, task: &Task, v: &mut [f32], pad: &mut [f32]) {
                lanes::input_transform_body::<$m, $a, $tile>(x, d, task, v, pad);
            }

            #[inline(always)]
            fn output_body(
                m: &[f32],
                d: &Dims,
                task: &Task,
                addend: Option<&[f32]>,
                out: &SharedOut,
                yt: &mut [f32],
            ) {
                lanes::output_transform_body::<$m, $a, $tile>(m, d, task, addend, out, yt);
            }

            #[inline(always)]
            fn output_grad_body(dy: &[f32], d: &Dims, task: &Task, m: &mut [f32], pad: &mut [f32]) {
                lanes::output_grad_transform_body::<$m, $a, $tile>(dy, d, task, m, pad);
            }

            $crate::ops::simd::simd_copies! {
                fn input(x: &[f32], d: &Dims, task: &Task, v: &mut [f32], pad: &mut [f32])
                    => input_body;
                fn output(
                    m: &[f32], d: &Dims, task: &Task, addend: Option<&[f32]>, out: &SharedOut,
                    yt: &mut [f32]
                ) => output_body;
                fn output_grad(dy: &[f32], d: &Dims, task: &Task, m: &mut [f32], pad: &mut [f32])
                    => output_grad_body;
            }

            $crate::ops::conv3x3::lanes::Kernel {
                m: $m,
                weight_transform: $weight_transform,
                weight_grad_back: $weight_grad_back,
                input,
                output,
                output_grad,
            }
        };
    };
}

pub(super) use kernel;

/// Tiles down and across a plane.
fn tiles(d: &Dims, m: usize) -> (usize, usize) {
    (d.h.div_ceil(m), d.w.div_ceil(m))
}

/// The padded plane's sides: the tiles' inputs overlap by 2, and the plane has a zero border of
/// one pixel on the top and left, and of at least one on the bottom and right.
fn padded(d: &Dims, m: usize) -> (usize, usize) {
    let (th, tw) = tiles(d, m);
    (m * th + 2, m * tw + 2)
}

/// The tasks: each group of sixteen images split into runs of tile rows.
fn tasks(d: &Dims, m: usize) -> Vec<Task> {
    let (th, tw) = tiles(d, m);
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
fn columns(d: &Dims, m: usize, task: &Task) -> usize {
    task.rows * tiles(d, m).1 * LANES
}

/// Floats of scratch for a task's planes of lanes: the padded input plane, or the output plane.
fn plane_scratch(d: &Dims, m: usize) -> usize {
    let ((th, tw), (ph, pw)) = (tiles(d, m), padded(d, m));
    LANES * (ph * pw).max(m * th * m * tw)
}

/// `buf` as pixels of sixteen lanes.
#[inline(always)]
fn as_lanes(buf: &mut [f32]) -> &mut [Lanes] {
    buf.as_chunks_mut::<LANES>().0
}

/// Where a task's pixels come from and go to: rows `rows` (clipped to the plane) of channel `c`
/// of the task's images, `channels` channels to an image, and the padded plane of lanes' rows,
/// `pw` pixels long.
#[derive(Clone)]
struct Rows<'a> {
    d: &'a Dims,
    task: &'a Task,
    channels: usize,
    c: usize,
    rows: Range<usize>,
}

impl Rows<'_> {
    /// Where row `r` of image `l`'s plane starts.
    #[inline(always)]
    fn at(&self, l: usize, r: usize) -> usize {
        ((self.task.first + l) * self.channels + self.c) * self.d.plane() + r * self.d.w
    }

    /// The rows, clipped to the plane.
    #[inline(always)]
    fn rows(&self) -> Range<usize> {
        self.rows.start..self.rows.end.min(self.d.h)
    }
}

/// Copies `at`'s rows of `x` into the lanes of `pad` (rows `pw` pixels long), one pixel in from
/// its top left corner; the rest of `pad` (the border, the rows that the task does not read, and
/// the lanes past its last image) stays as the caller zeroed it.
#[inline(always)]
fn gather(x: &[f32], at: &Rows, pad: &mut [Lanes], pw: usize) {
    #[cfg(target_arch = "x86_64")]
    match crate::ops::simd::cpu_isa() {
        Isa::Baseline => {}
        isa => return gather_by_hand(x, at, pad, pw, isa),
    }
    gather_portable(x, at, pad, pw);
}

/// The columns that one copy by hand moves on `isa`.
#[cfg(target_arch = "x86_64")]
fn cols_by_hand(isa: Isa) -> usize {
    if isa == Isa::Avx512 {
        LANES
    } else {
        super::lanes_avx2::COLS
    }
}

/// [`gather`] by register transposes: 16 x 16 on AVX-512 (`lanes_avx512.rs`), two of 8 x 8 on
/// AVX2 (`lanes_avx2.rs`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn gather_by_hand(x: &[f32], at: &Rows, pad: &mut [Lanes], pw: usize, isa: Isa) {
    let w = at.d.w;
    let step = cols_by_hand(isa);
    for r in at.rows() {
        for c0 in (0..w).step_by(step) {
            let cols = step.min(w - c0);
            let at_l = |l: usize| at.at(l, r) + c0;
            let src = |l: usize| x[at_l(l)..at_l(l) + cols].as_ptr();
            let dst = &mut pad[(r + 1) * pw + 1 + c0..][..cols];
            // SAFETY: the callers checked that the CPU has `isa`; `cols` floats of row r of each
            // image's plane (bounds-checked), into `cols` pixels of `pad` (bounds-checked).
            unsafe {
                if isa == Isa::Avx512 {
                    super::lanes_avx512::to_lanes(src, at.task.images, cols, dst)
                } else {
                    super::lanes_avx2::to_lanes(src, at.task.images, cols, dst)
                }
            };
        }
    }
}

/// [`gather`] as plain loops, a float at a time.
#[inline(always)]
fn gather_portable(x: &[f32], at: &Rows, pad: &mut [Lanes], pw: usize) {
    let w = at.d.w;
    for l in 0..at.task.images {
        for r in at.rows() {
            let dst = &mut pad[(r + 1) * pw + 1..][..w];
            for (p, &v) in dst.iter_mut().zip(&x[at.at(l, r)..][..w]) {
                p[l] = v;
            }
        }
    }
}

/// Writes `at`'s rows of the task's images' output planes in `out` from the output plane of
/// lanes `yt` (rows `yw` pixels long), plus `addend`'s where given.
#[inline(always)]
fn scatter(yt: &[Lanes], yw: usize, at: &Rows, addend: Option<&[f32]>, out: &SharedOut) {
    #[cfg(target_arch = "x86_64")]
    match crate::ops::simd::cpu_isa() {
        Isa::Baseline => {}
        isa => return scatter_by_hand(yt, yw, at, addend, out, isa),
    }
    scatter_portable(yt, yw, at, addend, out);
}

/// [`scatter`] by register transposes, as [`gather_by_hand`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scatter_by_hand(
    yt: &[Lanes],
    yw: usize,
    at: &Rows,
    addend: Option<&[f32]>,
    out: &SharedOut,
    isa: Isa,
) {
    let (w, images) = (at.d.w, at.task.images);
    let step = cols_by_hand(isa);
    for r in at.rows() {
        for c0 in (0..w).step_by(step) {
            let cols = step.min(w - c0);
            let dst = |l: usize| at.at(l, r) + c0;
            let src = &yt[r * yw + c0..][..cols];
            // SAFETY: the callers checked that the CPU has `isa`; `cols` floats of row r of each
            // image's plane, inside `out` (checked by `SharedOut::at`) and written by this task
            // only (the caller's contract with `fill_parts`); the addend's likewise
            // (bounds-checked).
            unsafe {
                let to = |l: usize| out.at(dst(l) + cols).sub(cols);
                let a = addend.map(|a| move |l: usize| a[dst(l)..dst(l) + cols].as_ptr());
                let a = a.as_ref().map(|a| a as &dyn Fn(usize) -> *const f32);
                if isa == Isa::Avx512 {
                    super::lanes_avx512::from_lanes(src, images, cols, to, a)
                } else {
                    super::lanes_avx2::from_lanes(src, images, cols, to, a)
                }
            };
        }
    }
}

/// [`scatter`] as plain loops, a float at a time.
#[inline(always)]
fn scatter_portable(yt: &[Lanes], yw: usize, at: &Rows, addend: Option<&[f32]>, out: &SharedOut) {
    let w = at.d.w;
    for l in 0..at.task.images {
        for r in at.rows() {
            let start = at.at(l, r);
            // SAFETY: row r of image l's plane, written by this task only (the caller's contract
            // with `fill_parts`).
            let row = unsafe { out.slice_mut(start..start + w) };
            let src = &yt[r * yw..][..w];
            match addend {
                Some(a) => {
                    for ((o, y), a) in row.iter_mut().zip(src).zip(&a[start..start + w]) {
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

/// `out[i][l] = f(src[first][l], src[first + stride][l], ..)[i]` (N sources) on every lane `l`:
/// a loop over the lanes with the sources read in place, which the compiler turns into N vector
/// loads, the formula on vectors, and K vector stores.
#[inline(always)]
fn on_lanes<const N: usize, const K: usize>(
    src: &[Lanes],
    first: usize,
    stride: usize,
    f: impl Fn([f32; N]) -> [f32; K],
    out: &mut [Lanes; K],
) {
    let src = &src[first..=first + (N - 1) * stride];
    for l in 0..LANES {
        let mut e = [0.0; N];
        for (k, e) in e.iter_mut().enumerate() {
            *e = src[k * stride][l];
        }
        for (o, v) in out.iter_mut().zip(f(e)) {
            o[l] = v;
        }
    }
}

/// V = B^T d B for every tile of the task: `v[(xi * c_in + ci) * n + t * 16 + lane]`, `n` its
/// columns. `pad` holds the padded plane, [`padded`] pixels of sixteen lanes.
#[inline(always)]
pub(super) fn input_transform_body<const M: usize, const A: usize, T: Tile<M, A>>(
    x: &[f32],
    d: &Dims,
    task: &Task,
    v: &mut [f32],
    pad: &mut [f32],
) {
    let (tw, (ph, pw)) = (tiles(d, M).1, padded(d, M));
    let (n, c_in) = (columns(d, M, task), d.c_in);
    let pad = &mut as_lanes(pad)[..ph * pw];
    pad.fill([0.0; LANES]);
    // The plane rows that the task's tiles read: padded rows M ty to M (ty + rows) + 1.
    let read = (M * task.ty).saturating_sub(1)..M * (task.ty + task.rows) + 1;
    let v = as_lanes(v);
    let (mut rows, mut out) = ([[[0.0; LANES]; A]; A], [[0.0; LANES]; A]);
    for ci in 0..c_in {
        let at = Rows {
            d,
            task,
            channels: c_in,
            c: ci,
            rows: read.clone(),
        };
        gather(x, &at, pad, pw);
        for ty in task.ty..task.ty + task.rows {
            for tx in 0..tw {
                // Along the tile's rows (A consecutive pixels each), then down its columns.
                for (k, row) in rows.iter_mut().enumerate() {
                    on_lanes(pad, (M * ty + k) * pw + M * tx, 1, T::bt, row);
                }
                let col = ((ty - task.ty) * tw + tx) * LANES;
                for j in 0..A {
                    on_lanes(rows.as_flattened(), j, A, T::bt, &mut out);
                    for (i, o) in out.iter().enumerate() {
                        v[(((i * A + j) * c_in + ci) * n + col) / LANES] = *o;
                    }
                }
            }
        }
    }
}

/// Y = A^T M A for every tile of the task, written into its output rows of `out` (plus
/// `addend`'s, where given); `m[(xi * c_out + co) * n + t * 16 + lane]` as [`products`] leaves
/// it. `yt` holds the output plane, `M th x M tw` pixels of sixteen lanes.
#[inline(always)]
pub(super) fn output_transform_body<const M: usize, const A: usize, T: Tile<M, A>>(
    m: &[f32],
    d: &Dims,
    task: &Task,
    addend: Option<&[f32]>,
    out: &SharedOut,
    yt: &mut [f32],
) {
    let (th, tw) = tiles(d, M);
    let (n, c_out, yw) = (columns(d, M, task), d.c_out, M * tw);
    let yt = &mut as_lanes(yt)[..M * th * yw];
    let products = m.as_chunks::<LANES>().0;
    let (mut rows, mut y) = ([[[0.0; LANES]; M]; A], [[0.0; LANES]; M]);
    // The task's output rows (the last tile row's clipped at the bottom edge).
    let out_rows = M * task.ty..(M * (task.ty + task.rows)).min(d.h);
    for co in 0..c_out {
        for ty in task.ty..task.ty + task.rows {
            for tx in 0..tw {
                let col = ((ty - task.ty) * tw + tx) * LANES;
                // Product xi of the tile is pixel `xi * step + first` of `products`.
                let (step, first) = (c_out * n / LANES, (co * n + col) / LANES);
                for (i, row) in rows.iter_mut().enumerate() {
                    on_lanes(products, i * A * step + first, step, T::at, row);
                }
                for c in 0..M {
                    on_lanes(rows.as_flattened(), c, M, T::at, &mut y);
                    for (r, y) in y.iter().enumerate() {
                        yt[(M * ty + r) * yw + M * tx + c] = *y;
                    }
                }
            }
        }
        let at = Rows {
            d,
            task,
            channels: c_out,
            c: co,
            rows: out_rows.clone(),
        };
        scatter(yt, yw, &at, addend, out);
    }
}

/// A dY A^T for every tile of the task: from the MxM output gradients to the `A x A` product
/// positions, into `m[(xi * c_out + co) * n + t * 16 + lane]`. `pad` holds a padded plane
/// ([`padded`] pixels of sixteen lanes; the output gradient is zero outside the plane).
#[inline(always)]
pub(super) fn output_grad_transform_body<const M: usize, const A: usize, T: Tile<M, A>>(
    dy: &[f32],
    d: &Dims,
    task: &Task,
    m: &mut [f32],
    pad: &mut [f32],
) {
    let (tw, (ph, pw)) = (tiles(d, M).1, padded(d, M));
    let (n, c_out) = (columns(d, M, task), d.c_out);
    let pad = &mut as_lanes(pad)[..ph * pw];
    pad.fill([0.0; LANES]);
    let m = as_lanes(m);
    let (mut rows, mut q) = ([[[0.0; LANES]; A]; M], [[0.0; LANES]; A]);
    for co in 0..c_out {
        // The output gradient of the task's tile rows sits in the padded plane one pixel in, as
        // an input would.
        let at = Rows {
            d,
            task,
            channels: c_out,
            c: co,
            rows: M * task.ty..M * (task.ty + task.rows),
        };
        gather(dy, &at, pad, pw);
        for ty in task.ty..task.ty + task.rows {
            for tx in 0..tw {
                for (r, row) in rows.iter_mut().enumerate() {
                    on_lanes(pad, (M * ty + r + 1) * pw + M * tx + 1, 1, T::a, row);
                }
                let col = ((ty - task.ty) * tw + tx) * LANES;
                for j in 0..A {
                    on_lanes(rows.as_flattened(), j, A, T::a, &mut q);
                    for (i, q) in q.iter().enumerate() {
                        m[(((i * A + j) * c_out + co) * n + col) / LANES] = *q;
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

/// `addend + conv3x3(x, weight)` by `kernel` (`P` = its product positions), the sum taken as
/// each output row is written.
pub(super) fn forward_add<const P: usize>(
    kernel: &Kernel<P>,
    x: &[f32],
    weight: &[f32],
    addend: Option<&[f32]>,
    d: Dims,
) -> Vec<f32> {
    d.check_forward(x, weight);
    if let Some(a) = addend {
        assert_eq!(
            a.len(),
            d.batch * d.c_out * d.plane(),
            "conv3x3: addend length"
        );
    }
    let u = by_position(weight, kernel.weight_transform);
    let (c_in, c_out, tile) = (d.c_in, d.c_out, kernel.m);
    let plane = plane_scratch(&d, tile);
    let fill = |task: &Task, out: &SharedOut| {
        let n = columns(&d, tile, task);
        with_scratch(P * c_in * n, P * c_out * n, plane, |v, m, plane| {
            (kernel.input)(x, &d, task, v, plane);
            products::<P>(&u, v, m, c_in, c_out, n);
            (kernel.output)(m, &d, task, addend, out, plane);
        });
    };
    // SAFETY: the tasks cover every tile row of every image once, and `fill` writes the output
    // rows of its task's tile rows of its images (`kernel.output`), and nothing else.
    unsafe { fill_parts(&d, &tasks(&d, tile), fill) }
}

/// The weights' gradient by `kernel`, as [`super::im2col::weight_grad`]: per product position
/// `xi`, `sum over tiles of (A dY A^T)[xi] (B^T x B)[xi]^T`, then `G^T . G` back to 3x3.
pub(super) fn weight_grad<const P: usize>(
    kernel: &Kernel<P>,
    x: &[f32],
    dy: &[f32],
    d: Dims,
) -> Vec<f32> {
    d.check_weight_grad(x, dy);
    let (c_in, c_out, tile) = (d.c_in, d.c_out, kernel.m);
    let plane = plane_scratch(&d, tile);
    let pairs = c_out * c_in;
    let task = |acc: &mut [f32], task: &Task| {
        let n = columns(&d, tile, task);
        with_scratch(P * c_in * n, P * c_out * n, plane, |v, m, plane| {
            (kernel.input)(x, &d, task, v, plane);
            (kernel.output_grad)(dy, &d, task, m, plane);
            accumulate_products::<P>(acc, m, v, c_in, c_out, n);
        });
    };
    let acc = sum_over_tasks(&tasks(&d, tile), P * pairs, task);
    from_positions(&acc, pairs, kernel.weight_grad_back)
}

// The copies by hand against the portable ones: x86-64 only.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Gather and scatter by transposes against the plain loops, bit for bit: plane widths
    /// under, at and past a vector's 16 (two transposes, the last one short), full and partial
    /// groups of images, a run of rows clipped at the bottom, with and without an addend.
    #[test]
    fn copies_by_hand_match_the_portable_ones() {
        for isa in [Isa::Avx512, Isa::Avx2] {
            if crate::ops::simd::cpu_isa() >= isa {
                copies_by_hand_match_on(isa);
            } else {
                eprintln!("no {isa} here: its copies are not checked");
            }
        }
    }

    fn copies_by_hand_match_on(isa: Isa) {
        for (w, images) in [
            (1, 16),
            (5, 7),
            (6, 16),
            (8, 9),
            (9, 16),
            (12, 1),
            (16, 16),
            (17, 9),
            (33, 16),
        ] {
            let d = Dims {
                batch: images + 2,
                c_in: 3,
                c_out: 3,
                h: 7,
                w,
            };
            let task = Task {
                first: 2,
                images,
                ty: 0,
                rows: 1,
            };
            let x: Vec<f32> = (0..d.batch * 3 * d.plane())
                .map(|i| (i % 101) as f32 - 50.0)
                .collect();
            let at = Rows {
                d: &d,
                task: &task,
                channels: 3,
                c: 1,
                rows: 2..9,
            };
            let pw = w + 2;
            let (mut ours, mut plain) = (vec![[0.0; LANES]; 9 * pw], vec![[0.0; LANES]; 9 * pw]);
            gather_by_hand(&x, &at, &mut ours, pw, isa);
            gather_portable(&x, &at, &mut plain, pw);
            assert_eq!(ours, plain, "{isa} gather: {w} wide, {images} images");

            let yt: Vec<Lanes> = (0..d.h * w)
                .map(|p| std::array::from_fn(|l| (p * 16 + l) as f32 * 0.5))
                .collect();
            let addend: Vec<f32> = x.iter().map(|v| v * 0.25).collect();
            for a in [None, Some(&addend[..])] {
                let (mut ours, mut plain) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
                // SAFETY: the buffers outlive the calls, which run on this thread only.
                let (o, p) = unsafe {
                    (
                        SharedOut::new(ours.as_mut_ptr(), ours.len()),
                        SharedOut::new(plain.as_mut_ptr(), plain.len()),
                    )
                };
                scatter_by_hand(&yt, w, &at, a, &o, isa);
                scatter_portable(&yt, w, &at, a, &p);
                let same = ours
                    .iter()
                    .zip(&plain)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{isa} scatter: {w} wide, {images} images, addend {}",
                    a.is_some()
                );
            }
        }
    }
}
