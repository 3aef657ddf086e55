//! [`super::lanes_avx512`]'s copies for CPUs with AVX2 but no AVX-512: eight columns at a time,
//! each pixel of sixteen lanes as two 8 x 8 register transposes (images 0-7 and 8-15). As plain
//! loops they copy one float at a time (AVX2 has no scatter).
use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

use crate::ops::simd::{load_first8, store_first8, transpose8};

/// Columns per call.
pub(super) const COLS: usize = 8;

/// As [`super::lanes_avx512::to_lanes`], for `cols` of at most 8.
///
/// # Safety
///
/// The CPU has AVX2; `src(l)` is valid for reads of `cols` floats for every `l < images` (at
/// most 16); `dst` holds at least `cols` pixels.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn to_lanes(
    src: impl Fn(usize) -> *const f32,
    images: usize,
    cols: usize,
    dst: &mut [[f32; 16]],
) {
    assert!(cols <= COLS, "lanes: {cols} columns");
    for half in 0..2 {
        let rows: [__m256; 8] = std::array::from_fn(|r| {
            let l = 8 * half + r;
            if l < images {
                // SAFETY: `cols` floats of image l's run (the caller's contract).
                unsafe { load_first8(src(l), cols) }
            } else {
                _mm256_setzero_ps()
            }
        });
        for (p, v) in dst[..cols].iter_mut().zip(transpose8(rows)) {
            // SAFETY: lanes 8 * half .. 8 * half + 8 of a pixel of 16.
            unsafe { _mm256_storeu_ps(p.as_mut_ptr().add(8 * half), v) };
        }
    }
}

/// As [`super::lanes_avx512::from_lanes`], for `cols` of at most 8.
///
/// # Safety
///
/// The CPU has AVX2; `dst(l)` is valid for writes and `addend(l)` for reads of `cols` floats
/// for every `l < images` (at most 16); `src` holds at least `cols` pixels.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn from_lanes(
    src: &[[f32; 16]],
    images: usize,
    cols: usize,
    dst: impl Fn(usize) -> *mut f32,
    addend: Option<&dyn Fn(usize) -> *const f32>,
) {
    assert!(cols <= COLS, "lanes: {cols} columns");
    if cols == 0 {
        return;
    }
    for half in 0..images.div_ceil(8).min(2) {
        let pixels: [__m256; 8] = std::array::from_fn(|c| {
            if c < cols {
                // SAFETY: lanes 8 * half .. 8 * half + 8 of a pixel of 16.
                unsafe { _mm256_loadu_ps(src[c].as_ptr().add(8 * half)) }
            } else {
                _mm256_setzero_ps()
            }
        });
        for (r, mut row) in transpose8(pixels).into_iter().enumerate() {
            let l = 8 * half + r;
            if l >= images {
                break;
            }
            if let Some(a) = addend {
                // SAFETY: `cols` floats of image l's addend (the caller's contract).
                row = _mm256_add_ps(row, unsafe { load_first8(a(l), cols) });
            }
            // SAFETY: `cols` floats of image l's output (the caller's contract).
            unsafe { store_first8(dst(l), cols, row) };
        }
    }
}
