//! F(4x4)'s per-row work on AVX-512: the horizontal step of the input transform, straight from
//! an input row.
//!
//! Why by hand: a training patch's rows are 48 or 24 floats, 12 or 6 tiles, fewer than a vector's
//! 16 lanes, so the compiler's loops over one row's tiles ran in their scalar remainders, and the
//! portable path splits each row by column mod 4 into six arrays before a second pass transforms
//! them: 28 % of a training step went to those two passes and their per-row bookkeeping
//! (bench/NOTES.md section 26). Here sixteen tiles' 64 columns are four loads, their split eight
//! permutes, the tiles' shared edge columns two lane shifts, and the six outputs six masked
//! stores, with nothing in between.
use crate::ops::simd::lanes;
use std::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_alignr_epi32, _mm512_castps_si512, _mm512_castsi512_ps,
    _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_mul_ps,
    _mm512_permutex2var_ps, _mm512_set1_ps, _mm512_setr_epi32, _mm512_setzero_ps,
    _mm512_shuffle_f32x4, _mm512_sub_ps,
};

/// As [`super::winograd4`]'s `split_rows` followed by its horizontal transform:
/// `out[(a * 6 + i) * len + j * tw + t] = (B^T (x[4t - 1], ..., x[4t + 4]))[i]` for input row
/// `r = r0 + 4j + a` of `plane` (`h x w`, zero outside), `tw = ceil(w / 4)`, `len = (count + 1)
/// * tw`, for `j` in `0..count` and `a` in 0..4, and for `j = count` and `a` in 0..2.
///
/// # Safety
///
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transform_rows(
    plane: &[f32],
    h: usize,
    w: usize,
    r0: isize,
    count: usize,
    out: &mut [f32],
) {
    let tw = w.div_ceil(4);
    let len = (count + 1) * tw;
    assert!(plane.len() >= h * w, "winograd4: plane length");
    assert!(out.len() >= 24 * len, "winograd4: split rows' scratch");
    let base = out.as_mut_ptr();
    for j in 0..=count {
        for a in 0..if j < count { 4 } else { 2 } {
            let r = r0 + (4 * j + a) as isize;
            // SAFETY: rows a * 6 + i, i < 6, of `out` (each `len` long) from column j * tw, tw
            // floats each, lie inside `out` (asserted above).
            let dst = unsafe { base.add(a * 6 * len + j * tw) };
            if r < 0 || r >= h as isize {
                // Masked stores, not `write_bytes`: its `memset` calls for rows of a few dozen
                // bytes were half a percent of a training step.
                for i in 0..6 {
                    for t0 in (0..tw).step_by(16) {
                        // SAFETY: as above.
                        unsafe {
                            _mm512_mask_storeu_ps(
                                dst.add(i * len + t0),
                                lanes(tw - t0),
                                _mm512_setzero_ps(),
                            )
                        };
                    }
                }
            } else {
                let row = &plane[r as usize * w..(r as usize + 1) * w];
                // SAFETY: as above; AVX-512F by the caller's contract.
                unsafe { transform_row(row, dst, len) };
            }
        }
    }
}

/// `dst[i * stride + t] = (B^T (x[4t - 1], ..., x[4t + 4]))[i]` for the `ceil(w / 4)` tiles `t`
/// of `row` (`w` floats, zero outside), sixteen tiles at a time.
///
/// # Safety
///
/// AVX-512F; `dst` is valid for writes of six rows of `ceil(row.len() / 4)` floats at `stride`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn transform_row(row: &[f32], dst: *mut f32, stride: usize) {
    let w = row.len();
    let tw = w.div_ceil(4);
    let x = row.as_ptr();
    let (four, five, two) = (
        _mm512_set1_ps(4.0),
        _mm512_set1_ps(5.0),
        _mm512_set1_ps(2.0),
    );
    // Lane 15: x[4 t0 - 1], the first tile's left column (zero left of the row).
    let mut before = _mm512_setzero_ps();
    let mut t0 = 0;
    while t0 < tw {
        let at = 4 * t0;
        // c_k[t] = x[4 (t0 + t) + k].
        let [c0, c1, c2, c3] = columns(row, t0);
        // The tiles' six columns 4t - 1 .. 4t + 4: the first is c3 one tile to the left, the last
        // c0 one tile to the right.
        let after = if at + 64 < w {
            // SAFETY: inside the row.
            _mm512_set1_ps(unsafe { *x.add(at + 64) })
        } else {
            _mm512_setzero_ps()
        };
        let d0 = _mm512_castsi512_ps(_mm512_alignr_epi32::<15>(
            _mm512_castps_si512(c3),
            _mm512_castps_si512(before),
        ));
        let d5 = _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(
            _mm512_castps_si512(after),
            _mm512_castps_si512(c0),
        ));
        let (d1, d2, d3, d4) = (c0, c1, c2, c3);
        // The rows of B^T, as in `winograd4::bt_row`.
        let p = _mm512_fnmadd_ps(four, d2, d4);
        let q = _mm512_fnmadd_ps(four, d1, d3);
        let s = _mm512_sub_ps(d4, d2);
        let e = _mm512_mul_ps(two, _mm512_sub_ps(d3, d1));
        let outs: [__m512; 6] = [
            _mm512_fmadd_ps(four, d0, _mm512_fnmadd_ps(five, d2, d4)),
            _mm512_add_ps(p, q),
            _mm512_sub_ps(p, q),
            _mm512_add_ps(s, e),
            _mm512_sub_ps(s, e),
            _mm512_fmadd_ps(four, d1, _mm512_fnmadd_ps(five, d3, d5)),
        ];
        let mask = lanes(tw - t0);
        for (i, o) in outs.into_iter().enumerate() {
            // SAFETY: row i of dst, tiles t0.. up to tw (the caller's contract).
            unsafe { _mm512_mask_storeu_ps(dst.add(i * stride + t0), mask, o) };
        }
        before = c3;
        t0 += 16;
    }
}

/// `c_k[t] = row[4 (t0 + t) + k]` for the sixteen tiles from `t0`, zero past the row's end.
#[inline]
#[target_feature(enable = "avx512f")]
fn columns(row: &[f32], t0: usize) -> [__m512; 4] {
    let w = row.len();
    let load = |at: usize| {
        if at >= w {
            _mm512_setzero_ps()
        } else {
            // SAFETY: the mask keeps the load inside the row.
            unsafe { _mm512_maskz_loadu_ps(lanes(w - at), row.as_ptr().add(at)) }
        }
    };
    let at = 4 * t0;
    split4([load(at), load(at + 16), load(at + 32), load(at + 48)])
}

/// `c_k[t] = x[at + 4t + k]` for sixteen tiles from four vectors of 64 floats.
#[inline]
#[target_feature(enable = "avx512f")]
fn split4(r: [__m512; 4]) -> [__m512; 4] {
    let even = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    let odd = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    let lo01 = _mm512_permutex2var_ps(r[0], even, r[1]);
    let lo23 = _mm512_permutex2var_ps(r[0], odd, r[1]);
    let hi01 = _mm512_permutex2var_ps(r[2], even, r[3]);
    let hi23 = _mm512_permutex2var_ps(r[2], odd, r[3]);
    [
        _mm512_shuffle_f32x4::<0x44>(lo01, hi01),
        _mm512_shuffle_f32x4::<0xEE>(lo01, hi01),
        _mm512_shuffle_f32x4::<0x44>(lo23, hi23),
        _mm512_shuffle_f32x4::<0xEE>(lo23, hi23),
    ]
}

/// The inverse of [`split4`]: four vectors of 64 floats, float `4t + k` from `c[k][t]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn join4(c: [__m512; 4]) -> [__m512; 4] {
    // Pairs (c0[t], c1[t]) and (c2[t], c3[t]) for tiles 0-7 and 8-15, then pairs of pairs.
    let pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    let quad_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    let p01_lo = _mm512_permutex2var_ps(c[0], pair_lo, c[1]);
    let p01_hi = _mm512_permutex2var_ps(c[0], pair_hi, c[1]);
    let p23_lo = _mm512_permutex2var_ps(c[2], pair_lo, c[3]);
    let p23_hi = _mm512_permutex2var_ps(c[2], pair_hi, c[3]);
    [
        _mm512_permutex2var_ps(p01_lo, quad_lo, p23_lo),
        _mm512_permutex2var_ps(p01_lo, quad_hi, p23_lo),
        _mm512_permutex2var_ps(p01_hi, quad_lo, p23_hi),
        _mm512_permutex2var_ps(p01_hi, quad_hi, p23_hi),
    ]
}

/// As [`super::winograd4`]'s portable output rows: row `4j + r` of `dst` (`w` wide, as many
/// rows as it holds), column `4t + c`, is `(A^T (s[(r * 6) * n + at], ..., s[(r * 6 + 5) * n +
/// at]))[c]` with `at = first + j * tw + t`, plus `addend`'s element where given: the output
/// transform's horizontal step, written into the output rows as it is computed.
///
/// # Safety
///
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn write_output_rows(
    dst: &mut [f32],
    s: &[f32],
    n: usize,
    first: usize,
    w: usize,
    addend: Option<&[f32]>,
) {
    let tw = w.div_ceil(4);
    let rows = dst.len() / w;
    assert_eq!(rows * w, dst.len(), "winograd4: output rows");
    assert!(
        rows == 0 || 23 * n + first + (rows - 1) / 4 * tw + tw <= s.len(),
        "winograd4: output rows' sources"
    );
    if let Some(a) = addend {
        assert_eq!(a.len(), dst.len(), "winograd4: addend rows");
    }
    let (two, four, eight) = (
        _mm512_set1_ps(2.0),
        _mm512_set1_ps(4.0),
        _mm512_set1_ps(8.0),
    );
    for row_i in 0..rows {
        let (j, r) = (row_i / 4, row_i % 4);
        let y = dst[row_i * w..].as_mut_ptr();
        let add = addend.map(|a| a[row_i * w..].as_ptr());
        let src = s[r * 6 * n + first + j * tw..].as_ptr();
        let mut t0 = 0;
        while t0 < tw {
            let mask = lanes(tw - t0);
            // SAFETY: position p's tiles t0.. up to tw (asserted above).
            let m: [__m512; 6] = std::array::from_fn(|p| unsafe {
                _mm512_maskz_loadu_ps(mask, src.add(p * n + t0))
            });
            // A^T, as in `winograd4::at`.
            let (a, b) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
            let (c, e) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
            let cols = [
                _mm512_add_ps(_mm512_add_ps(m[0], a), c),
                _mm512_fmadd_ps(two, e, b),
                _mm512_fmadd_ps(four, c, a),
                _mm512_add_ps(_mm512_fmadd_ps(eight, e, b), m[5]),
            ];
            for (k, mut v) in join4(cols).into_iter().enumerate() {
                let at = 4 * t0 + 16 * k;
                if at >= w {
                    break;
                }
                let mask = lanes(w - at);
                if let Some(add) = add {
                    // SAFETY: floats at.. of this row of the addend, masked to the row.
                    v = _mm512_add_ps(v, unsafe { _mm512_maskz_loadu_ps(mask, add.add(at)) });
                }
                // SAFETY: floats at.. of this output row, masked to the row.
                unsafe { _mm512_mask_storeu_ps(y.add(at), mask, v) };
            }
            t0 += 16;
        }
    }
}

/// The horizontal step of the weight gradient's `A dY A^T` for one output-gradient row:
/// `dst[j * stride + t] = (A (y[4t], ..., y[4t + 3]))[j]` for its `ceil(w / 4)` tiles, `y` zero
/// past the row's end.
///
/// # Safety
///
/// AVX-512F; `dst` is valid for writes of six rows of `ceil(row.len() / 4)` floats at `stride`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn grad_row(row: &[f32], dst: *mut f32, stride: usize) {
    let w = row.len();
    let tw = w.div_ceil(4);
    let (two, four, eight) = (
        _mm512_set1_ps(2.0),
        _mm512_set1_ps(4.0),
        _mm512_set1_ps(8.0),
    );
    let mut t0 = 0;
    while t0 < tw {
        let [y0, y1, y2, y3] = columns(row, t0);
        // A's rows, as in `winograd4::a_body`.
        let (e, o) = (_mm512_add_ps(y0, y2), _mm512_add_ps(y1, y3));
        let (e2, o2) = (
            _mm512_fmadd_ps(four, y2, y0),
            _mm512_fmadd_ps(eight, y3, _mm512_mul_ps(two, y1)),
        );
        let outs = [
            y0,
            _mm512_add_ps(e, o),
            _mm512_sub_ps(e, o),
            _mm512_add_ps(e2, o2),
            _mm512_sub_ps(e2, o2),
            y3,
        ];
        let mask = lanes(tw - t0);
        for (j, v) in outs.into_iter().enumerate() {
            // SAFETY: row j of dst, tiles t0.. up to tw (the caller's contract).
            unsafe { _mm512_mask_storeu_ps(dst.add(j * stride + t0), mask, v) };
        }
        t0 += 16;
    }
}
