//! The copies of [`super::lanes`] between sixteen images' planes and a plane of lanes, by
//! 16 x 16 register transposes on AVX-512. Written as plain loops, they compiled to scatters and
//! gathers of one float per lane, slow on these CPUs: half of F(4x4)'s input transform on
//! lanes at 24x24 (bench/NOTES.md section 27).
use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_setzero_ps, _mm512_storeu_ps,
};

use crate::ops::simd::{lanes, transpose16};

/// `dst[c][l] = src(l)[c]` for `c < cols` (at most 16) and `l < images`, zero in the lanes from
/// `images` on: sixteen images' runs of `cols` floats into `cols` pixels of lanes.
///
/// # Safety
///
/// The CPU has AVX-512F; `src(l)` is valid for reads of `cols` floats for every `l < images`
/// (at most 16); `dst` holds at least `cols` pixels.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn to_lanes(
    src: impl Fn(usize) -> *const f32,
    images: usize,
    cols: usize,
    dst: &mut [[f32; 16]],
) {
    let mask = lanes(cols);
    let rows: [__m512; 16] = std::array::from_fn(|l| {
        if l < images {
            // SAFETY: `cols` floats of image l's run (the caller's contract).
            unsafe { _mm512_maskz_loadu_ps(mask, src(l)) }
        } else {
            _mm512_setzero_ps()
        }
    });
    for (p, v) in dst[..cols].iter_mut().zip(transpose16(rows)) {
        // SAFETY: a pixel of lanes is 16 floats.
        unsafe { _mm512_storeu_ps(p.as_mut_ptr(), v) };
    }
}

/// The way back: `dst(l)[c] = src[c][l]` (plus `addend(l)[c]`, where given) for `c < cols` (at
/// most 16) and `l < images`.
///
/// # Safety
///
/// The CPU has AVX-512F; `dst(l)` is valid for writes and `addend(l)` for reads of `cols`
/// floats for every `l < images` (at most 16); `src` holds at least `cols` pixels.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn from_lanes(
    src: &[[f32; 16]],
    images: usize,
    cols: usize,
    dst: impl Fn(usize) -> *mut f32,
    addend: Option<&dyn Fn(usize) -> *const f32>,
) {
    let mask = lanes(cols);
    let pixels: [__m512; 16] = std::array::from_fn(|c| {
        if c < cols {
            // SAFETY: a pixel of lanes is 16 floats.
            unsafe { _mm512_loadu_ps(src[c].as_ptr()) }
        } else {
            _mm512_setzero_ps()
        }
    });
    for (l, mut row) in transpose16(pixels).into_iter().enumerate().take(images) {
        if let Some(a) = addend {
            // SAFETY: `cols` floats of image l's addend (the caller's contract).
            row = _mm512_add_ps(row, unsafe { _mm512_maskz_loadu_ps(mask, a(l)) });
        }
        // SAFETY: `cols` floats of image l's output (the caller's contract).
        unsafe { _mm512_mask_storeu_ps(dst(l), mask, row) };
    }
}
