//! [`super::winograd4_avx512`]'s three per-row steps for CPUs with AVX2 but no AVX-512, eight
//! tiles to a vector: the input transform's horizontal step straight from an input row, the
//! output transform's written into the output rows, and the output gradient's.
//!
//! Why by hand here too: the portable path splits each row by column mod 4 into scratch arrays
//! and transforms them in a second pass, and a training patch's rows (48 or 24 floats, 12 or 6
//! tiles) leave the compiler's loops mostly in their scalar remainders. These transforms were 29 %
//! of a training step held to AVX2 (bench/NOTES.md section 28). AVX2 has no cross-lane shift or
//! two-source permute, so the tiles' shared edge columns are a rotation and a blend, and the
//! split by column mod 4 an exchange of 128-bit halves and a 4 x 4 transpose within them.
//! Partial vectors are loaded with `maskload` and stored by halves ([`store_first8`]): AMD's
//! `maskstore` is microcoded.
use crate::ops::simd::{load_first8, store_first8};
use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_blend_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_mul_ps,
    _mm256_permute2f128_ps, _mm256_permutevar8x32_ps, _mm256_set1_ps, _mm256_setr_epi32,
    _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_sub_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
};

/// As [`super::winograd4_avx512::transform_rows`] (the same layout of `out`).
///
/// # Safety
///
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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
                for i in 0..6 {
                    for t0 in (0..tw).step_by(8) {
                        // SAFETY: as above.
                        unsafe {
                            store_first8(dst.add(i * len + t0), tw - t0, _mm256_setzero_ps())
                        };
                    }
                }
            } else {
                let row = &plane[r as usize * w..(r as usize + 1) * w];
                // SAFETY: as above; AVX2 and FMA by the caller's contract.
                unsafe { transform_row(row, dst, len) };
            }
        }
    }
}

/// `dst[i * stride + t] = (B^T (x[4t - 1], ..., x[4t + 4]))[i]` for the `ceil(w / 4)` tiles `t`
/// of `row` (`w` floats, zero outside), eight tiles at a time.
///
/// # Safety
///
/// AVX2 and FMA; `dst` is valid for writes of six rows of `ceil(row.len() / 4)` floats at
/// `stride`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_row(row: &[f32], dst: *mut f32, stride: usize) {
    let w = row.len();
    let tw = w.div_ceil(4);
    let x = row.as_ptr();
    let (four, five, two) = (
        _mm256_set1_ps(4.0),
        _mm256_set1_ps(5.0),
        _mm256_set1_ps(2.0),
    );
    // Lane k to lane k + 1 (the last to the first), and back.
    let right = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6);
    let left = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
    // Lane 7: x[4 t0 - 1], the first tile's left column (zero left of the row).
    let mut before = _mm256_setzero_ps();
    let mut t0 = 0;
    while t0 < tw {
        let at = 4 * t0;
        // c_k[t] = x[4 (t0 + t) + k].
        let [c0, c1, c2, c3] = columns(row, t0);
        let after = if at + 32 < w {
            // SAFETY: inside the row.
            _mm256_set1_ps(unsafe { *x.add(at + 32) })
        } else {
            _mm256_setzero_ps()
        };
        // The tiles' six columns 4t - 1 .. 4t + 4: the first is c3 one tile to the left, the last
        // c0 one tile to the right.
        let d0 = _mm256_blend_ps::<0x01>(
            _mm256_permutevar8x32_ps(c3, right),
            _mm256_permutevar8x32_ps(before, right),
        );
        let d5 = _mm256_blend_ps::<0x80>(_mm256_permutevar8x32_ps(c0, left), after);
        let (d1, d2, d3, d4) = (c0, c1, c2, c3);
        // The rows of B^T, as in `winograd4::bt_row`.
        let p = _mm256_fnmadd_ps(four, d2, d4);
        let q = _mm256_fnmadd_ps(four, d1, d3);
        let s = _mm256_sub_ps(d4, d2);
        let e = _mm256_mul_ps(two, _mm256_sub_ps(d3, d1));
        let outs: [__m256; 6] = [
            _mm256_fmadd_ps(four, d0, _mm256_fnmadd_ps(five, d2, d4)),
            _mm256_add_ps(p, q),
            _mm256_sub_ps(p, q),
            _mm256_add_ps(s, e),
            _mm256_sub_ps(s, e),
            _mm256_fmadd_ps(four, d1, _mm256_fnmadd_ps(five, d3, d5)),
        ];
        for (i, o) in outs.into_iter().enumerate() {
            // SAFETY: row i of dst, tiles t0.. up to tw (the caller's contract).
            unsafe { store_first8(dst.add(i * stride + t0), tw - t0, o) };
        }
        before = c3;
        t0 += 8;
    }
}

/// `c_k[t] = row[4 (t0 + t) + k]` for the eight tiles from `t0`, zero past the row's end.
#[inline]
#[target_feature(enable = "avx2")]
fn columns(row: &[f32], t0: usize) -> [__m256; 4] {
    let w = row.len();
    // SAFETY: at most the floats from `at` to the row's end.
    let load =
        |at: usize| unsafe { load_first8(row.as_ptr().add(at.min(w)), w.saturating_sub(at)) };
    let at = 4 * t0;
    split4([load(at), load(at + 8), load(at + 16), load(at + 24)])
}

/// `c_k[t] = x[at + 4t + k]` for eight tiles from four vectors of 32 floats (two tiles each).
#[inline]
#[target_feature(enable = "avx2")]
fn split4(r: [__m256; 4]) -> [__m256; 4] {
    // Tiles (0, 4), (1, 5), (2, 6), (3, 7), one to each 128-bit half.
    let a = _mm256_permute2f128_ps::<0x20>(r[0], r[2]);
    let b = _mm256_permute2f128_ps::<0x31>(r[0], r[2]);
    let c = _mm256_permute2f128_ps::<0x20>(r[1], r[3]);
    let d = _mm256_permute2f128_ps::<0x31>(r[1], r[3]);
    // Then a 4 x 4 transpose within each half.
    let (t0, t1) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    let (t2, t3) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    [
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xEE>(t0, t2),
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xEE>(t1, t3),
    ]
}

/// The inverse of [`split4`]: four vectors of 32 floats, float `4t + k` from `c[k][t]`.
#[inline]
#[target_feature(enable = "avx2")]
fn join4(c: [__m256; 4]) -> [__m256; 4] {
    let (t0, t1) = (
        _mm256_unpacklo_ps(c[0], c[1]),
        _mm256_unpackhi_ps(c[0], c[1]),
    );
    let (t2, t3) = (
        _mm256_unpacklo_ps(c[2], c[3]),
        _mm256_unpackhi_ps(c[2], c[3]),
    );
    // Tiles (0, 4), (1, 5), (2, 6), (3, 7), each tile's four floats in order.
    let a = _mm256_shuffle_ps::<0x44>(t0, t2);
    let b = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let c = _mm256_shuffle_ps::<0x44>(t1, t3);
    let d = _mm256_shuffle_ps::<0xEE>(t1, t3);
    [
        _mm256_permute2f128_ps::<0x20>(a, b),
        _mm256_permute2f128_ps::<0x20>(c, d),
        _mm256_permute2f128_ps::<0x31>(a, b),
        _mm256_permute2f128_ps::<0x31>(c, d),
    ]
}

/// As [`super::winograd4_avx512::write_output_rows`].
///
/// # Safety
///
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
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
        _mm256_set1_ps(2.0),
        _mm256_set1_ps(4.0),
        _mm256_set1_ps(8.0),
    );
    for row_i in 0..rows {
        let (j, r) = (row_i / 4, row_i % 4);
        let y = dst[row_i * w..].as_mut_ptr();
        let add = addend.map(|a| a[row_i * w..].as_ptr());
        let src = s[r * 6 * n + first + j * tw..].as_ptr();
        let mut t0 = 0;
        while t0 < tw {
            // SAFETY: position p's tiles t0.. up to tw (asserted above).
            let m: [__m256; 6] =
                std::array::from_fn(|p| unsafe { load_first8(src.add(p * n + t0), tw - t0) });
            // A^T, as in `winograd4::at`.
            let (a, b) = (_mm256_add_ps(m[1], m[2]), _mm256_sub_ps(m[1], m[2]));
            let (c, e) = (_mm256_add_ps(m[3], m[4]), _mm256_sub_ps(m[3], m[4]));
            let cols = [
                _mm256_add_ps(_mm256_add_ps(m[0], a), c),
                _mm256_fmadd_ps(two, e, b),
                _mm256_fmadd_ps(four, c, a),
                _mm256_add_ps(_mm256_fmadd_ps(eight, e, b), m[5]),
            ];
            for (k, mut v) in join4(cols).into_iter().enumerate() {
                let at = 4 * t0 + 8 * k;
                if at >= w {
                    break;
                }
                if let Some(add) = add {
                    // SAFETY: floats at.. of this row of the addend, up to the row's end.
                    v = _mm256_add_ps(v, unsafe { load_first8(add.add(at), w - at) });
                }
                // SAFETY: floats at.. of this output row, up to the row's end.
                unsafe { store_first8(y.add(at), w - at, v) };
            }
            t0 += 8;
        }
    }
}

/// As [`super::winograd4_avx512::grad_row`].
///
/// # Safety
///
/// AVX2 and FMA; `dst` is valid for writes of six rows of `ceil(row.len() / 4)` floats at
/// `stride`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn grad_row(row: &[f32], dst: *mut f32, stride: usize) {
    let w = row.len();
    let tw = w.div_ceil(4);
    let (two, four, eight) = (
        _mm256_set1_ps(2.0),
        _mm256_set1_ps(4.0),
        _mm256_set1_ps(8.0),
    );
    let mut t0 = 0;
    while t0 < tw {
        let [y0, y1, y2, y3] = columns(row, t0);
        // A's rows, as in `winograd4::a_body`.
        let (e, o) = (_mm256_add_ps(y0, y2), _mm256_add_ps(y1, y3));
        let (e2, o2) = (
            _mm256_fmadd_ps(four, y2, y0),
            _mm256_fmadd_ps(eight, y3, _mm256_mul_ps(two, y1)),
        );
        let outs = [
            y0,
            _mm256_add_ps(e, o),
            _mm256_sub_ps(e, o),
            _mm256_add_ps(e2, o2),
            _mm256_sub_ps(e2, o2),
            y3,
        ];
        for (j, v) in outs.into_iter().enumerate() {
            // SAFETY: row j of dst, tiles t0.. up to tw (the caller's contract).
            unsafe { store_first8(dst.add(j * stride + t0), tw - t0, v) };
        }
        t0 += 8;
    }
}
