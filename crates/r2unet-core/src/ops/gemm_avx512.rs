//! `dst = lhs * rhs` for row-major operands on AVX-512: the product of the Winograd forward
//! passes (`M[xi] = U[xi] V[xi]`, `[c_out, c_in] x [c_in, tiles]`) and of im2col's.
//!
//! Why not the `gemm` crate here: these products are small in two dimensions (16 to 128 channels)
//! and a few hundred tiles in the third, and each is one call of a few microseconds, so the
//! crate's packing and dispatch around its microkernel weigh: on [16, 16] x [16, 170], a
//! training batch's first level, it ran at 64 GFLOP/s on one Zen 4 core where this loop runs at
//! 108 (bench/NOTES.md section 22). Nothing is packed: a block of 4 rows of `dst` by 64 columns
//! keeps its 16 accumulators in registers while it walks the `k` rows of `rhs` (each 64 floats,
//! read in order) and broadcasts one `lhs` element per row and step.
use std::arch::x86_64::{
    __m512, __mmask16, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_set1_ps, _mm512_setzero_ps,
};

/// Whether [`gemm`] can run here.
pub(super) fn available() -> bool {
    crate::ops::simd::has_avx512()
}

/// `dst[i][j] = sum over p of lhs[i][p] * rhs[p][j]` for `i < m`, `j < n`, `p < k`, with row
/// strides `ldd`, `lda` and `ldr` and unit column strides; the sum runs over `p` in order.
///
/// # Safety
///
/// The CPU has AVX-512F ([`available`]); `lhs` is valid for reads of `m` rows of `k` floats at
/// stride `lda`, `rhs` of `k` rows of `n` at stride `ldr`, `dst` for writes of `m` rows of `n`
/// at stride `ldd`, and `dst` overlaps neither input.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    ldd: usize,
    lhs: *const f32,
    lda: usize,
    rhs: *const f32,
    ldr: usize,
) {
    let mut j = 0;
    while j < n {
        let width = (n - j).min(64);
        let vectors = width.div_ceil(16);
        // The last vector of the block holds the last 1 to 16 columns.
        let mask = ((1u32 << (width - 16 * (vectors - 1))) - 1) as __mmask16;
        let mut i = 0;
        while i < m {
            let rows = if m - i >= 4 { 4 } else { 1 };
            // SAFETY: rows i..i + rows and columns j..j + width lie inside the operands, as the
            // caller's contract gives them.
            unsafe {
                let b = Block {
                    k,
                    dst: dst.add(i * ldd + j),
                    ldd,
                    lhs: lhs.add(i * lda),
                    lda,
                    rhs: rhs.add(j),
                    ldr,
                    mask,
                };
                match (rows, vectors) {
                    (4, 4) => b.run::<4, 4>(),
                    (4, 3) => b.run::<4, 3>(),
                    (4, 2) => b.run::<4, 2>(),
                    (4, _) => b.run::<4, 1>(),
                    (_, 4) => b.run::<1, 4>(),
                    (_, 3) => b.run::<1, 3>(),
                    (_, 2) => b.run::<1, 2>(),
                    _ => b.run::<1, 1>(),
                }
            }
            i += rows;
        }
        j += width;
    }
}

/// One block of `R` rows by `V` vectors of 16 columns of `dst`, the last vector cut to `mask`.
struct Block {
    k: usize,
    dst: *mut f32,
    ldd: usize,
    lhs: *const f32,
    lda: usize,
    rhs: *const f32,
    ldr: usize,
    mask: __mmask16,
}

impl Block {
    /// # Safety
    ///
    /// AVX-512F, and the block's rows and columns inside the operands.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const R: usize, const V: usize>(&self) {
        let lane_mask = |v: usize| if v + 1 == V { self.mask } else { 0xffff };
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..self.k {
            // SAFETY: row p of rhs, columns of this block (masked past the last one).
            let b: [__m512; V] = std::array::from_fn(|v| unsafe {
                _mm512_maskz_loadu_ps(lane_mask(v), self.rhs.add(p * self.ldr + 16 * v))
            });
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: element (i, p) of lhs.
                let a = _mm512_set1_ps(unsafe { *self.lhs.add(i * self.lda + p) });
                for (c, &bv) in row.iter_mut().zip(&b) {
                    *c = _mm512_fmadd_ps(a, bv, *c);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, &c) in row.iter().enumerate() {
                // SAFETY: row i of dst, columns of this block (masked past the last one).
                unsafe {
                    _mm512_mask_storeu_ps(self.dst.add(i * self.ldd + 16 * v), lane_mask(v), c)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Against the `gemm` crate on shapes with every kind of edge: rows not a multiple of 4,
    /// columns not a multiple of 16 or 64, row strides wider than the rows, `k` of 0 and 1.
    #[test]
    fn matches_the_gemm_crate() {
        if !super::available() {
            eprintln!("no AVX-512 on this CPU: nothing to compare");
            return;
        }
        for (m, n, k) in [
            (16, 170, 16),
            (4, 64, 3),
            (7, 65, 5),
            (1, 1, 1),
            (5, 17, 0),
            (33, 200, 32),
            (128, 36, 128),
            (3, 15, 9),
        ] {
            let (ldd, lda, ldr) = (n + 3, k + 1, n + 5);
            let lhs: Vec<f32> = (0..m * lda)
                .map(|i| ((i * 37) % 19) as f32 / 7.0 - 1.0)
                .collect();
            let rhs: Vec<f32> = (0..k * ldr)
                .map(|i| ((i * 11) % 23) as f32 / 9.0 - 1.2)
                .collect();
            let mut ours = vec![f32::NAN; m * ldd];
            let mut theirs = ours.clone();
            // SAFETY: the buffers hold m x ldd, m x lda and k x ldr floats; AVX-512 checked.
            unsafe {
                super::gemm(
                    m,
                    n,
                    k,
                    ours.as_mut_ptr(),
                    ldd,
                    lhs.as_ptr(),
                    lda,
                    rhs.as_ptr(),
                    ldr,
                );
                ::gemm::gemm(
                    m,
                    n,
                    k,
                    theirs.as_mut_ptr(),
                    1,
                    ldd as isize,
                    false,
                    lhs.as_ptr(),
                    1,
                    lda as isize,
                    rhs.as_ptr(),
                    1,
                    ldr as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    ::gemm::Parallelism::None,
                );
            }
            for i in 0..m {
                for j in 0..ldd {
                    let (a, b) = (ours[i * ldd + j], theirs[i * ldd + j]);
                    if j < n {
                        assert!(
                            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{m}x{n}x{k}: ({i}, {j}) {a} against {b}"
                        );
                    } else {
                        assert!(a.is_nan(), "{m}x{n}x{k}: wrote past row {i}'s end at {j}");
                    }
                }
            }
        }
    }
}
