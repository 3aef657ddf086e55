//! Run-time choice of the instruction set for the CPU kernels' element-wise loops (the Winograd
//! transforms, the batch norm).
//!
//! Native x86-64 builds target SSE2 only, so plain loops vectorise four lanes wide. Copies of the
//! same loop bodies compiled for AVX-512 or AVX2 run sixteen or eight wide where the CPU has
//! them (bench/NOTES.md sections 10 and 20); other targets (wasm) keep the one plain copy.

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The mask of the first `k` lanes of a 16-lane AVX-512 vector (all 16 from `k` = 16 on): the
/// masked loads and stores at the ends of rows and blocks.
#[cfg(target_arch = "x86_64")]
pub(crate) fn lanes(k: usize) -> std::arch::x86_64::__mmask16 {
    if k >= 16 {
        0xffff
    } else {
        ((1u32 << k) - 1) as std::arch::x86_64::__mmask16
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Defines `$name(args)`, which runs `$body(args)` from a copy compiled for AVX-512 or AVX2
/// where the CPU has it. `$body` should be `#[inline(always)]`: the copies are only as wide as
/// what is inlined into them. One `const` generic parameter is passed through.
macro_rules! simd_copies {
    ($(
        fn $name:ident $(<const $g:ident: $gt:ty>)? ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident;
    )*) => {$(
        #[allow(clippy::too_many_arguments)]
        fn $name $(<const $g: $gt>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f")]
                fn avx512 $(<const $g: $gt>)? ($($arg: $ty),*) $(-> $ret)? {
                    $body $(::<$g>)? ($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2")]
                fn avx2 $(<const $g: $gt>)? ($($arg: $ty),*) $(-> $ret)? {
                    $body $(::<$g>)? ($($arg),*)
                }
                if $crate::ops::simd::has_avx512() {
                    // SAFETY: the CPU has AVX-512F (checked at run time).
                    return unsafe { avx512 $(::<$g>)? ($($arg),*) };
                }
                if $crate::ops::simd::has_avx2() {
                    // SAFETY: the CPU has AVX2 (checked at run time).
                    return unsafe { avx2 $(::<$g>)? ($($arg),*) };
                }
            }
            $body $(::<$g>)? ($($arg),*)
        }
    )*};
}

pub(crate) use simd_copies;
