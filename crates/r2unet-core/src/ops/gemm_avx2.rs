//! [`super::gemm_avx512`]'s two products for CPUs with AVX2 and FMA but no AVX-512: `dst = lhs *
//! rhs` for row-major operands (the Winograd forward products, im2col's) and the weight
//! gradients' accumulated `dst += lhs * rhs^T`.
//!
//! The same loop at half the width: a block of rows of `dst` keeps its accumulators in registers
//! while it walks the `k` rows of `rhs` (read in order) and broadcasts one `lhs` element per row
//! and step; nothing is packed but `gemm_nt_acc`'s `rhs`, transposed. AVX2 has 16 vector
//! registers, not 32, so a block is at most 12 accumulators (6 rows by 2 vectors) with room for
//! the row of `rhs` and the broadcast. Why not the `gemm` crate: its packing and dispatch
//! around the microkernel weigh on these products, small in two dimensions and one call of a few
//! microseconds each (bench/NOTES.md sections 22, 26 and 28).
use crate::ops::simd::{lanes8 as lanes, transpose8};
use std::arch::x86_64::{
    __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps,
    _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

/// Whether [`gemm`] and [`gemm_nt_acc`] can run here.
pub(super) fn available() -> bool {
    crate::ops::simd::cpu_isa() >= crate::ops::simd::Isa::Avx2
}

/// `dst[i][j] = sum over p of lhs[i][p] * rhs[p][j]` for `i < m`, `j < n`, `p < k`, with row
/// strides `ldd`, `lda` and `ldr` and unit column strides; the sum runs over `p` in order.
///
/// # Safety
///
/// The CPU has AVX2 and FMA ([`available`]); `lhs` is valid for reads of `m` rows of `k` floats
/// at stride `lda`, `rhs` of `k` rows of `n` at stride `ldr`, `dst` for writes of `m` rows of `n`
/// at stride `ldd`, and `dst` overlaps neither input.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    // SAFETY: the caller's contract.
    unsafe { blocks(m, n, k, dst, ldd, lhs, lda, rhs, ldr, false) }
}

/// `dst[i][j] += sum over p of lhs[i][p] * rhs[j][p]` for `i < m`, `j < n`, `p < k`, with row
/// strides `ldd`, `lda` and `ldr` and unit column strides: `rhs` is packed transposed, eight rows
/// by eight floats at a time through registers, and [`gemm`]'s blocks run on it, adding to `dst`.
///
/// # Safety
///
/// The CPU has AVX2 and FMA ([`available`]); `lhs` is valid for reads of `m` rows of `k` floats
/// at stride `lda`, `rhs` of `n` rows of `k` at stride `ldr`, `dst` for reads and writes of `m`
/// rows of `n` at stride `ldd`, and `dst` overlaps neither input.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemm_nt_acc(
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
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    PACKED.with(|packed| {
        let packed = &mut *packed.borrow_mut();
        if packed.len() < k * n {
            packed.resize(k * n, 0.0);
        }
        let out = packed.as_mut_ptr();
        // packed[p * n + j] = rhs[j][p]: whole 8 x 8 blocks through registers, the edges one
        // float at a time.
        let (n8, k8) = (n / 8 * 8, k / 8 * 8);
        for j in (0..n8).step_by(8) {
            for p in (0..k8).step_by(8) {
                // SAFETY: floats p..p + 8 of rows j..j + 8 of rhs; rows p..p + 8 of packed hold
                // floats j..j + 8.
                unsafe {
                    let block: [__m256; 8] =
                        std::array::from_fn(|r| _mm256_loadu_ps(rhs.add((j + r) * ldr + p)));
                    for (c, v) in transpose8(block).into_iter().enumerate() {
                        _mm256_storeu_ps(out.add((p + c) * n + j), v);
                    }
                }
            }
            for p in k8..k {
                for r in 0..8 {
                    // SAFETY: as above, one float.
                    unsafe { *out.add(p * n + j + r) = *rhs.add((j + r) * ldr + p) };
                }
            }
        }
        for j in n8..n {
            for p in 0..k {
                // SAFETY: float p of row j < n of rhs; float j of packed row p < k.
                unsafe { *out.add(p * n + j) = *rhs.add(j * ldr + p) };
            }
        }
        // SAFETY: packed holds k rows of n floats; the rest as the caller's contract.
        unsafe { blocks(m, n, k, dst, ldd, lhs, lda, packed.as_ptr(), n, true) };
    });
}

thread_local! {
    /// [`gemm_nt_acc`]'s transposed `rhs`, kept between calls.
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`gemm`], adding to `dst` (which must then be valid for reads too) where `accumulate`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn blocks(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    ldd: usize,
    lhs: *const f32,
    lda: usize,
    rhs: *const f32,
    ldr: usize,
    accumulate: bool,
) {
    let mut j = 0;
    while j < n {
        // Two vectors: three (4 rows by 3) left an accumulator on the stack, its chain of FMAs
        // through a store and a load each step.
        let width = (n - j).min(16);
        let vectors = width.div_ceil(8);
        // The last vector of the block holds the last 1 to 8 columns.
        let tail = width - 8 * (vectors - 1);
        let mut i = 0;
        while i < m {
            let rows = match (m - i, vectors) {
                (r, 1) if r >= 8 => 8,
                (r, 2) if r >= 6 => 6,
                (r, _) if r >= 4 => 4,
                _ => 1,
            };
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
                    tail,
                    accumulate,
                };
                // Whole vectors and a cut last one as two loops, not a test in every step.
                match (rows, vectors, tail == 8) {
                    (8, _, true) => b.run::<8, 1, false>(),
                    (8, _, false) => b.run::<8, 1, true>(),
                    (6, _, true) => b.run::<6, 2, false>(),
                    (6, _, false) => b.run::<6, 2, true>(),
                    (4, 2, true) => b.run::<4, 2, false>(),
                    (4, 2, false) => b.run::<4, 2, true>(),
                    (4, _, true) => b.run::<4, 1, false>(),
                    (4, _, false) => b.run::<4, 1, true>(),
                    (_, 2, true) => b.run::<1, 2, false>(),
                    (_, 2, false) => b.run::<1, 2, true>(),
                    (_, _, true) => b.run::<1, 1, false>(),
                    (_, _, false) => b.run::<1, 1, true>(),
                }
            }
            i += rows;
        }
        j += width;
    }
}

/// One block of `R` rows by `V` vectors of 8 columns of `dst`, the last vector cut to `tail`
/// where `CUT`.
struct Block {
    k: usize,
    dst: *mut f32,
    ldd: usize,
    lhs: *const f32,
    lda: usize,
    rhs: *const f32,
    ldr: usize,
    /// Columns in the last vector, 1 to 8.
    tail: usize,
    /// Start from `dst`'s values rather than zero.
    accumulate: bool,
}

impl Block {
    /// # Safety
    ///
    /// AVX2 and FMA, and the block's rows and columns inside the operands.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize, const V: usize, const CUT: bool>(&self) {
        let full = !CUT;
        let mask = lanes(self.tail);
        // SAFETY: vector v of a row of this block, masked past the last column.
        let load = |at: *const f32, v: usize| unsafe {
            if v + 1 < V || full {
                _mm256_loadu_ps(at.add(8 * v))
            } else {
                _mm256_maskload_ps(at.add(8 * v), mask)
            }
        };
        // SAFETY: as for `load`.
        let store = |at: *mut f32, v: usize, x: __m256| unsafe {
            if v + 1 < V || full {
                _mm256_storeu_ps(at.add(8 * v), x)
            } else {
                _mm256_maskstore_ps(at.add(8 * v), mask, x)
            }
        };
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        if self.accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (v, c) in row.iter_mut().enumerate() {
                    // SAFETY: row i of dst.
                    *c = load(unsafe { self.dst.add(i * self.ldd) }, v);
                }
            }
        }
        for p in 0..self.k {
            // SAFETY: row p of rhs.
            let row = unsafe { self.rhs.add(p * self.ldr) };
            let b: [__m256; V] = std::array::from_fn(|v| load(row, v));
            for (i, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY: element (i, p) of lhs.
                let a = _mm256_set1_ps(unsafe { *self.lhs.add(i * self.lda + p) });
                for (c, &bv) in acc_row.iter_mut().zip(&b) {
                    *c = _mm256_fmadd_ps(a, bv, *c);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, &c) in row.iter().enumerate() {
                // SAFETY: row i of dst.
                store(unsafe { self.dst.add(i * self.ldd) }, v, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::gemm::tests::compare_with;

    fn available() -> bool {
        if !super::available() {
            eprintln!("no AVX2 and FMA on this CPU (or R2UNET_MAX_CPU_ISA): nothing to compare");
            return false;
        }
        true
    }

    /// Rows not a multiple of 4, 6 or 8, columns not a multiple of 8 or 16, `k` of 0 and 1.
    #[test]
    fn matches_the_gemm_crate() {
        if !available() {
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
            (13, 41, 7),
            (6, 24, 10),
        ] {
            // SAFETY: AVX2 and FMA checked; the helper passes buffers of the sizes it states.
            compare_with(m, n, k, false, |m, n, k, dst, ldd, a, lda, b, ldr| unsafe {
                super::gemm(m, n, k, dst, ldd, a, lda, b, ldr)
            });
        }
    }

    /// The accumulated `lhs rhs^T`: edges of 1-7 rows and columns, `k` of 0, under 8, a multiple
    /// of 8 and not.
    #[test]
    fn nt_accumulate_matches_the_gemm_crate() {
        if !available() {
            return;
        }
        for (m, n, k) in [
            (16, 16, 170),
            (4, 4, 16),
            (7, 5, 33),
            (1, 1, 1),
            (5, 6, 0),
            (33, 18, 200),
            (128, 128, 36),
            (3, 9, 15),
            (20, 37, 47),
            (32, 32, 84),
        ] {
            // SAFETY: as above.
            compare_with(m, n, k, true, |m, n, k, dst, ldd, a, lda, b, ldr| unsafe {
                super::gemm_nt_acc(m, n, k, dst, ldd, a, lda, b, ldr)
            });
        }
    }
}
