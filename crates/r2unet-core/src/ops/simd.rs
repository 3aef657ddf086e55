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

/// The transpose of a 16 x 16 block: `out[c]` lane `r` is `rows[r]` lane `c`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn transpose16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::{
        _mm512_castpd_ps, _mm512_castps_pd, _mm512_shuffle_f32x4, _mm512_unpackhi_pd,
        _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
    };
    // t[2q], t[2q + 1]: rows 2q and 2q + 1 interleaved, columns 4L + (0, 1) and 4L + (2, 3) of
    // each 128-bit lane L.
    let t: [std::arch::x86_64::__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    // u[4g + x], lane L: column 4L + x of rows 4g..4g + 4.
    let u: [std::arch::x86_64::__m512; 16] = std::array::from_fn(|i| {
        let (g, x) = (i / 4, i % 4);
        let (a, b) = (
            _mm512_castps_pd(t[4 * g + x / 2]),
            _mm512_castps_pd(t[4 * g + 2 + x / 2]),
        );
        _mm512_castpd_ps(if x % 2 == 0 {
            _mm512_unpacklo_pd(a, b)
        } else {
            _mm512_unpackhi_pd(a, b)
        })
    });
    // Column 4L + x: lane L of u[x], u[4 + x], u[8 + x], u[12 + x].
    std::array::from_fn(|c| {
        let (l, x) = (c / 4, c % 4);
        let (a, b) = if l < 2 {
            (
                _mm512_shuffle_f32x4::<0x44>(u[x], u[4 + x]),
                _mm512_shuffle_f32x4::<0x44>(u[8 + x], u[12 + x]),
            )
        } else {
            (
                _mm512_shuffle_f32x4::<0xEE>(u[x], u[4 + x]),
                _mm512_shuffle_f32x4::<0xEE>(u[8 + x], u[12 + x]),
            )
        };
        if l % 2 == 0 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(a, b)
        }
    })
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
