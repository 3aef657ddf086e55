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
use crate::ops::simd::{lanes, transpose16};
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
    // SAFETY: the caller's contract.
    unsafe { blocks(m, n, k, dst, ldd, lhs, lda, rhs, ldr, false) }
}

/// `dst[i][j] += sum over p of lhs[i][p] * rhs[j][p]` for `i < m`, `j < n`, `p < k`: the
/// weight gradients' products (`dW += dY X^T`, a task's tiles or pixels as the long `k`), with
/// row strides `ldd`, `lda` and `ldr` and unit column strides.
///
/// Why not the `gemm` crate here either: on the 16-channel layers' shapes (16 x 16, `k` a
/// task's 170 tiles) it ran at 57-63 GFLOP/s (bench/NOTES.md section 26). `rhs` is packed
/// transposed, sixteen rows by sixteen floats at a time through registers, and [`gemm`]'s
/// blocks run on it, adding to `dst`.
///
/// # Safety
///
/// The CPU has AVX-512F ([`available`]); `lhs` is valid for reads of `m` rows of `k` floats at
/// stride `lda`, `rhs` of `n` rows of `k` at stride `ldr`, `dst` for reads and writes of `m`
/// rows of `n` at stride `ldd`, and `dst` overlaps neither input.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
        // packed[p * n + j] = rhs[j][p], a 16 x 16 block at a time.
        for j in (0..n).step_by(16) {
            let rows = (n - j).min(16);
            for p in (0..k).step_by(16) {
                let cols = (k - p).min(16);
                let block: [__m512; 16] = std::array::from_fn(|r| {
                    if r < rows {
                        // SAFETY: floats p..p + cols of row j + r of rhs.
                        unsafe { _mm512_maskz_loadu_ps(lanes(cols), rhs.add((j + r) * ldr + p)) }
                    } else {
                        _mm512_setzero_ps()
                    }
                });
                for (c, v) in transpose16(block).into_iter().take(cols).enumerate() {
                    // SAFETY: floats j..j + rows of packed row p + c < k.
                    unsafe {
                        _mm512_mask_storeu_ps(
                            packed.as_mut_ptr().add((p + c) * n + j),
                            lanes(rows),
                            v,
                        )
                    };
                }
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
#[target_feature(enable = "avx512f")]
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
        let width = (n - j).min(64);
        let vectors = width.div_ceil(16);
        // The last vector of the block holds the last 1 to 16 columns.
        let mask = lanes(width - 16 * (vectors - 1));
        let mut i = 0;
        while i < m {
            // At least eight accumulators where the rows allow: the FMAs' four cycles of latency
            // on two ports keep eight in flight, and a block of 4 rows by one vector (the
            // weight gradients' 16 input channels) has only four.
            let rows = match m - i {
                r if r >= 16 && vectors == 1 => 16,
                r if r >= 8 && vectors <= 2 => 8,
                r if r >= 4 => 4,
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
                    mask,
                    accumulate,
                };
                match (rows, vectors) {
                    (16, _) => b.run::<16, 1>(),
                    (8, 2) => b.run::<8, 2>(),
                    (8, _) => b.run::<8, 1>(),
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
    /// Start from `dst`'s values rather than zero.
    accumulate: bool,
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
        if self.accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (v, c) in row.iter_mut().enumerate() {
                    // SAFETY: row i of dst, columns of this block (masked past the last one).
                    *c = unsafe {
                        _mm512_maskz_loadu_ps(lane_mask(v), self.dst.add(i * self.ldd + 16 * v))
                    };
                }
            }
        }
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
    use crate::ops::gemm::tests::compare_with;

    fn compare(m: usize, n: usize, k: usize, nt: bool) {
        // SAFETY: the callers checked for AVX-512; the helper passes buffers of the sizes it
        // states.
        compare_with(m, n, k, nt, |m, n, k, dst, ldd, a, lda, b, ldr| unsafe {
            if nt {
                super::gemm_nt_acc(m, n, k, dst, ldd, a, lda, b, ldr)
            } else {
                super::gemm(m, n, k, dst, ldd, a, lda, b, ldr)
            }
        });
    }

    /// Rows not a multiple of 4, columns not a multiple of 16 or 64, `k` of 0 and 1.
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
            compare(m, n, k, false);
        }
    }

    /// The accumulated `lhs rhs^T`: edges of 1-15 rows and columns, `k` of 0, under 16, a
    /// multiple of 16 and not.
    #[test]
    fn nt_accumulate_matches_the_gemm_crate() {
        if !super::available() {
            eprintln!("no AVX-512 on this CPU: nothing to compare");
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
        ] {
            compare(m, n, k, true);
        }
    }
}
