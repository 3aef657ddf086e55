//! The same 3x3 convolution as [`super::kernel::forward`] by Winograd's minimal filtering
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
use super::kernel::{Dims, OutPtr, gemm};

/// Whether Winograd beats im2col + GEMM on this shape. Measured with the kernel bench
/// (`examples/kernel_bench.rs`, bench/NOTES.md): on a whole image's planes, where the transforms
/// run over long rows, it wins at every level (1.0-1.1x at 16 channels, 1.2x at 32, 1.4-1.6x at
/// 64 and 128); on the small planes of a batch of 48x48 patches the per-row overhead of the
/// transforms eats the saved multiplications, so training keeps im2col.
pub fn pays(d: &Dims) -> bool {
    d.c_in >= 16 && d.c_out >= 16 && d.w >= 64
}

/// Tiles per task: the task's transformed tiles (`16 * c * tiles` floats, for the larger of the
/// two channel counts) near 64 K floats (256 KiB), but at least 64 tiles for the GEMMs.
fn tile_rows_per_task(d: &Dims, tiles_per_row: usize) -> usize {
    let c = d.c_in.max(d.c_out).max(1);
    let tiles = (4096 / c).max(64);
    (tiles / tiles_per_row).max(1)
}

/// `U[xi][co][ci] = (G g G^T)[xi]` for every 3x3 kernel `g`.
fn transform_weights(weight: &[f32], d: &Dims) -> Vec<f32> {
    let pairs = d.c_out * d.c_in;
    let mut u = vec![0.0f32; 16 * pairs];
    for p in 0..pairs {
        let g = &weight[p * 9..p * 9 + 9];
        // t = G g: 4x3
        let mut t = [[0.0f32; 3]; 4];
        for l in 0..3 {
            let (g0, g1, g2) = (g[l], g[3 + l], g[6 + l]);
            t[0][l] = g0;
            t[1][l] = 0.5 * (g0 + g1 + g2);
            t[2][l] = 0.5 * (g0 - g1 + g2);
            t[3][l] = g2;
        }
        for (i, row) in t.iter().enumerate() {
            let (a, b, c) = (row[0], row[1], row[2]);
            let out = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
            for (j, v) in out.into_iter().enumerate() {
                u[(i * 4 + j) * pairs + p] = v;
            }
        }
    }
    u
}

/// Per-thread scratch: transformed inputs, products, and row buffers.
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

/// Splits input row `r` of `plane` (`h x w`, zero outside) into the zero-padded row's even
/// (`e[t] = x[2t - 1]`) and odd (`o[t] = x[2t]`) columns, `tw + 1` each.
fn split_row(plane: &[f32], h: usize, w: usize, r: isize, e: &mut [f32], o: &mut [f32]) {
    if r < 0 || r >= h as isize {
        e.fill(0.0);
        o.fill(0.0);
        return;
    }
    let row = &plane[r as usize * w..(r as usize + 1) * w];
    e.fill(0.0);
    o.fill(0.0);
    let pairs = row.chunks_exact(2);
    let tail = pairs.remainder().first().copied();
    for (t, p) in pairs.enumerate() {
        o[t] = p[0];
        e[t + 1] = p[1];
    }
    if let Some(v) = tail {
        o[w / 2] = v;
    }
}

// Element-wise helpers over equal-length slices, written with zips so that they vectorise.
fn add(dst: &mut [f32], a: &[f32], b: &[f32]) {
    dst.iter_mut()
        .zip(a)
        .zip(b)
        .for_each(|((d, a), b)| *d = a + b);
}
fn sub(dst: &mut [f32], a: &[f32], b: &[f32]) {
    dst.iter_mut()
        .zip(a)
        .zip(b)
        .for_each(|((d, a), b)| *d = a - b);
}
fn add3(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    dst.iter_mut()
        .zip(a)
        .zip(b)
        .zip(c)
        .for_each(|(((d, a), b), c)| *d = a + b + c);
}
/// `a - b - c`
fn sub3(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    dst.iter_mut()
        .zip(a)
        .zip(b)
        .zip(c)
        .for_each(|(((d, a), b), c)| *d = a - b - c);
}

/// `y = conv3x3(x, weight)`, as [`super::kernel::forward`].
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(
        x.len(),
        d.batch * d.c_in * d.h * d.w,
        "conv3x3: input length"
    );
    assert_eq!(weight.len(), d.c_out * d.c_in * 9, "conv3x3: weight length");
    let (th, tw) = (d.h.div_ceil(2), d.w.div_ceil(2));
    let plane = d.h * d.w;
    let u = transform_weights(weight, &d);
    let total_rows = d.batch * th;
    let per_task = tile_rows_per_task(&d, tw);
    let tasks: Vec<(usize, usize, usize)> = (0..total_rows)
        .step_by(per_task)
        .map(|g0| (g0, 0, per_task.min(total_rows - g0)))
        .collect();
    let len = d.batch * d.c_out * plane;
    // Every output element is written exactly once by the output transform.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let out = OutPtr(y.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let (c_in, c_out) = (d.c_in, d.c_out);
    super::kernel::for_each_task(&tasks, |&(g0, _, nrows)| {
        let n = nrows * tw;
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            grow(&mut s.v, 16 * c_in * n);
            grow(&mut s.m, 16 * c_out * n);
            // 4 input rows x (even, odd) x (tw + 1), then 4 x 2 vertically combined rows.
            let rl = tw + 1;
            grow(&mut s.rows, 16 * rl);
            let (v, m, rows) = (
                &mut s.v[..16 * c_in * n],
                &mut s.m[..16 * c_out * n],
                &mut s.rows[..16 * rl],
            );

            // Input transform V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
            for ci in 0..c_in {
                for gi in 0..nrows {
                    let (b, ty) = ((g0 + gi) / th, (g0 + gi) % th);
                    let img = &x[(b * c_in + ci) * plane..(b * c_in + ci + 1) * plane];
                    let (raw, comb) = rows.split_at_mut(8 * rl);
                    for k in 0..4 {
                        let (e, o) = raw[2 * k * rl..(2 * k + 2) * rl].split_at_mut(rl);
                        split_row(img, d.h, d.w, 2 * ty as isize - 1 + k as isize, e, o);
                    }
                    // Vertical: for the even and the odd columns alike.
                    for par in 0..2 {
                        let r = |k: usize| &raw[(2 * k + par) * rl..(2 * k + par + 1) * rl];
                        let (d0, d1, d2, d3) = (r(0), r(1), r(2), r(3));
                        let dst = |i: usize| (2 * i + par) * rl..(2 * i + par + 1) * rl;
                        sub(&mut comb[dst(0)], d0, d2);
                        add(&mut comb[dst(1)], d1, d2);
                        sub(&mut comb[dst(2)], d2, d1);
                        sub(&mut comb[dst(3)], d1, d3);
                    }
                    // Horizontal: columns e[t], o[t], e[t+1], o[t+1].
                    let base = gi * tw;
                    for i in 0..4 {
                        let e = &comb[2 * i * rl..(2 * i + 1) * rl];
                        let o = &comb[(2 * i + 1) * rl..(2 * i + 2) * rl];
                        let at = |j: usize| {
                            ((i * 4 + j) * c_in + ci) * n + base
                                ..((i * 4 + j) * c_in + ci) * n + base + tw
                        };
                        sub(&mut v[at(0)], &e[..tw], &e[1..]);
                        add(&mut v[at(1)], &o[..tw], &e[1..]);
                        sub(&mut v[at(2)], &e[1..], &o[..tw]);
                        sub(&mut v[at(3)], &o[..tw], &o[1..]);
                    }
                }
            }

            // M[xi] = U[xi] V[xi]: [c_out, c_in] x [c_in, n].
            for xi in 0..16 {
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

            // Output transform Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1].
            let (s, rest) = rows.split_at_mut(8 * rl);
            let yb = &mut rest[..4 * rl];
            for co in 0..c_out {
                for gi in 0..nrows {
                    let (b, ty) = ((g0 + gi) / th, (g0 + gi) % th);
                    let base = gi * tw;
                    let mm = |i: usize, j: usize| &m[((i * 4 + j) * c_out + co) * n + base..][..tw];
                    for i in 0..4 {
                        let (m0, m1, m2, m3) = (mm(i, 0), mm(i, 1), mm(i, 2), mm(i, 3));
                        let (s0, s1) = s[2 * i * rl..(2 * i + 2) * rl].split_at_mut(rl);
                        add3(&mut s0[..tw], m0, m1, m2);
                        sub3(&mut s1[..tw], m1, m2, m3);
                    }
                    let sr = |i: usize, j: usize| &s[(2 * i + j) * rl..(2 * i + j) * rl + tw];
                    for j in 0..2 {
                        let (a, bb, c, dd) = (sr(0, j), sr(1, j), sr(2, j), sr(3, j));
                        let (top, bottom) = yb[2 * j * rl..(2 * j + 2) * rl].split_at_mut(rl);
                        add3(&mut top[..tw], a, bb, c);
                        sub3(&mut bottom[..tw], bb, c, dd);
                    }
                    // yb rows: (top, col 0), (bottom, col 0), (top, col 1), (bottom, col 1).
                    let out = out;
                    for (dy, (c0, c1)) in [(0usize, (0usize, 2usize)), (1, (1, 3))] {
                        let r = 2 * ty + dy;
                        if r >= d.h {
                            continue;
                        }
                        // SAFETY: row r of channel co of image b belongs to this task's tile rows
                        // only, and lies inside `y`'s allocation.
                        let row = unsafe {
                            std::slice::from_raw_parts_mut(
                                out.0.add((b * c_out + co) * plane + r * d.w),
                                d.w,
                            )
                        };
                        let (even, odd) = (&yb[c0 * rl..c0 * rl + tw], &yb[c1 * rl..c1 * rl + tw]);
                        let pairs = d.w / 2;
                        for t in 0..pairs {
                            row[2 * t] = even[t];
                            row[2 * t + 1] = odd[t];
                        }
                        if d.w % 2 == 1 {
                            row[d.w - 1] = even[pairs];
                        }
                    }
                }
            }
        });
    });
    // SAFETY: the tasks cover every tile row of every image once, and the output transform wrote
    // every column of both output rows of each (clipped at the bottom edge).
    unsafe { y.set_len(len) };
    y
}
