//! The matrix product under the 3x3 convolution's algorithms and the 1x1 convolution: the `gemm` crate (the GEMM burn-flex uses, same
//! version), called on raw strided pointers and on one thread, since the callers' tasks are the
//! parallelism; on AVX-512 CPUs, row-major products without accumulation and the weight
//! gradients' accumulated `lhs rhs^T` go to [`super::gemm_avx512`] instead.

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]` with explicit strides (row stride, column stride).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_strides: (isize, isize),
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: (isize, isize),
    rhs: *const f32,
    rhs_strides: (isize, isize),
) {
    #[cfg(target_arch = "x86_64")]
    if !accumulate
        && dst_strides.0 >= 0
        && lhs_strides.0 >= 0
        && rhs_strides.0 >= 0
        && dst_strides.1 == 1
        && lhs_strides.1 == 1
        && rhs_strides.1 == 1
        && super::gemm_avx512::available()
    {
        // SAFETY: AVX-512F is there (checked above); the extents as below.
        unsafe {
            super::gemm_avx512::gemm(
                m,
                n,
                k,
                dst,
                dst_strides.0 as usize,
                lhs,
                lhs_strides.0 as usize,
                rhs,
                rhs_strides.0 as usize,
            )
        };
        return;
    }
    // Where `n` is at most 256: on im2col's weight gradient at 128 channels (128 x 1152, a
    // task's 36 pixels as `k`) the crate ran at 133 GFLOP/s against 108 (bench/NOTES.md section
    // 26); on the Winograd weight gradients' (at most 128 x 128) and the 1x1 and transposed
    // convolutions' it is the slower one.
    #[cfg(target_arch = "x86_64")]
    if accumulate
        && n <= 256
        && dst_strides.0 >= 0
        && lhs_strides.0 >= 0
        && rhs_strides.1 >= 0
        && dst_strides.1 == 1
        && lhs_strides.1 == 1
        && rhs_strides.0 == 1
        && super::gemm_avx512::available()
    {
        // SAFETY: AVX-512F is there (checked above); rhs's columns are rows of k floats at
        // stride rhs_strides.1; the extents as below.
        unsafe {
            super::gemm_avx512::gemm_nt_acc(
                m,
                n,
                k,
                dst,
                dst_strides.0 as usize,
                lhs,
                lhs_strides.0 as usize,
                rhs,
                rhs_strides.1 as usize,
            )
        };
        return;
    }
    // SAFETY: every caller passes pointers into live buffers whose extents cover
    // `m x k`, `k x n` and `m x n` elements at the given strides, and `dst` does not alias
    // the inputs.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_strides.1,
            dst_strides.0,
            accumulate,
            lhs,
            lhs_strides.1,
            lhs_strides.0,
            rhs,
            rhs_strides.1,
            rhs_strides.0,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}
