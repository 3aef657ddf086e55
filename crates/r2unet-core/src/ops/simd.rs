//! Run-time choice of the instruction set for the CPU kernels (the Winograd transforms, the batch
//! norm, the GEMM loops), which `R2UNET_MAX_CPU_ISA` can cap.
//!
//! Native x86-64 builds target SSE2 only, so plain loops vectorise four lanes wide. Copies of the
//! same loop bodies compiled for AVX-512 or AVX2 run sixteen or eight wide where the CPU has
//! them (bench/NOTES.md sections 10 and 20); other targets (wasm) keep the one plain copy.

/// The instruction sets that the CPU kernels choose between at run time, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// The target's own: SSE2 on x86-64 (four lanes), SIMD128 on wasm with `simd`.
    Baseline,
    /// AVX2 (eight lanes).
    Avx2,
    /// AVX-512F (sixteen lanes; our own GEMM loops and hand-written transforms).
    Avx512,
}

/// The environment variable that caps [`cpu_isa`], like oneDNN's `ONEDNN_MAX_CPU_ISA`: so that
/// one machine can measure the code paths of a CPU with less (`scripts/bench.sh`'s `ISA=avx2`).
pub const MAX_CPU_ISA_VAR: &str = "R2UNET_MAX_CPU_ISA";

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "baseline" | "sse2" => Ok(Isa::Baseline),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx512f" => Ok(Isa::Avx512),
            _ => Err(format!(
                "{MAX_CPU_ISA_VAR}={s}: expected avx512, avx2 or baseline"
            )),
        }
    }
}

/// The cap that [`MAX_CPU_ISA_VAR`] sets: `Ok(None)` when it is unset or empty, an error naming
/// the variable and the value when the value is not an instruction set. Front ends check this
/// once at start: [`cpu_isa`] ignores a value it cannot read rather than fail inside a kernel.
pub fn max_cpu_isa_from_env() -> Result<Option<Isa>, String> {
    match std::env::var(MAX_CPU_ISA_VAR) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!(
            "{MAX_CPU_ISA_VAR}={v:?}: expected avx512, avx2 or baseline"
        )),
    }
}

/// The widest instruction set that this CPU has, capped by [`MAX_CPU_ISA_VAR`]: what every
/// kernel of this crate runs on (decided once per process).
pub fn cpu_isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let has = detected_isa();
        match max_cpu_isa_from_env() {
            Ok(Some(cap)) => has.min(cap),
            _ => has,
        }
    })
}

fn detected_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    cpu_isa() >= Isa::Avx2
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
    cpu_isa() >= Isa::Avx512
}

/// AVX2 helpers: an 8 x 8 transpose, and loads and stores of the first `k` floats of a vector.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm_castps_si128, _mm_movehl_ps, _mm_store_ss, _mm_storel_epi64,
        _mm_storeu_ps, _mm256_castps256_ps128, _mm256_cmpgt_epi32, _mm256_extractf128_ps,
        _mm256_loadu_ps, _mm256_maskload_ps, _mm256_permute2f128_ps, _mm256_set1_epi32,
        _mm256_setr_epi32, _mm256_setzero_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    /// The transpose of an 8 x 8 block: `out[c]` lane `r` is `rows[r]` lane `c`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        // t: rows 2q and 2q + 1 interleaved within each 128-bit half.
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        // u: columns x and x + 4 of four rows (0-3 or 4-7), one per 128-bit half.
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        [
            _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
            _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
        ]
    }

    /// The first `k` floats at `src` (`k` from 0; all eight from 8 on), zero in the other lanes.
    ///
    /// # Safety
    ///
    /// AVX2; `src` is valid for reads of `k.min(8)` floats.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn load_first8(src: *const f32, k: usize) -> __m256 {
        if k >= 8 {
            // SAFETY: eight floats (the caller's contract).
            unsafe { _mm256_loadu_ps(src) }
        } else if k == 0 {
            _mm256_setzero_ps()
        } else {
            // SAFETY: the mask keeps the load to the first k floats.
            unsafe { _mm256_maskload_ps(src, lanes8(k)) }
        }
    }

    /// The `maskload`/`maskstore` mask of the first `k` of 8 lanes: their sign bits set, the
    /// other lanes zero.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn lanes8(k: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(k as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    /// Writes the first `k` lanes of `v` to `dst` (`k` from 1; all eight from 8 on).
    ///
    /// # Safety
    ///
    /// AVX2; `dst` is valid for writes of `k.min(8)` floats.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn store_first8(dst: *mut f32, k: usize, v: __m256) {
        // SAFETY: every store below is inside the first k floats at dst.
        unsafe {
            if k >= 8 {
                return _mm256_storeu_ps(dst, v);
            }
            let (mut q, mut at) = (_mm256_castps256_ps128(v), 0);
            if k >= 4 {
                _mm_storeu_ps(dst, q);
                q = _mm256_extractf128_ps::<1>(v);
                at = 4;
            }
            if k - at >= 2 {
                _mm_storel_epi64(dst.add(at).cast(), _mm_castps_si128(q));
                q = _mm_movehl_ps(q, q);
                at += 2;
            }
            if k > at {
                _mm_store_ss(dst.add(at), q);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        /// [`super::store_first8`] writes exactly `k` floats, [`super::load_first8`] reads
        /// them back and zeroes the rest.
        #[test]
        fn partial_vectors_are_exact() {
            if crate::ops::simd::cpu_isa() < crate::ops::simd::Isa::Avx2 {
                eprintln!("no AVX2 here (or R2UNET_MAX_CPU_ISA): nothing to check");
                return;
            }
            let src: Vec<f32> = (1..=8).map(|i| i as f32).collect();
            for k in 0..=9usize {
                let mut out = [f32::NAN; 10];
                // SAFETY: AVX2 checked; at most 8 floats read from src, written to out.
                let v = unsafe { super::load_first8(src.as_ptr(), k) };
                if k > 0 {
                    // SAFETY: as above.
                    unsafe { super::store_first8(out.as_mut_ptr(), k, v) };
                }
                for (i, &o) in out.iter().enumerate() {
                    if i < k.min(8) {
                        assert_eq!(o, (i + 1) as f32, "k {k}, float {i}");
                    } else {
                        assert!(o.is_nan(), "k {k}: wrote float {i}");
                    }
                }
                let mut all = [f32::NAN; 8];
                // SAFETY: AVX2 checked; 8 floats written.
                unsafe { super::store_first8(all.as_mut_ptr(), 8, v) };
                for (i, &o) in all.iter().enumerate() {
                    let want = if i < k { (i + 1) as f32 } else { 0.0 };
                    assert_eq!(o, want, "k {k}: lane {i} loaded");
                }
            }
        }

        #[test]
        fn masks_have_k_lanes() {
            if crate::ops::simd::cpu_isa() < crate::ops::simd::Isa::Avx2 {
                eprintln!("no AVX2 here (or R2UNET_MAX_CPU_ISA): nothing to check");
                return;
            }
            for k in 1..=8 {
                let mut bits = [0i32; 8];
                // SAFETY: AVX2 checked; 8 ints' room.
                unsafe {
                    std::arch::x86_64::_mm256_storeu_si256(
                        bits.as_mut_ptr().cast(),
                        super::lanes8(k),
                    )
                };
                for (lane, &b) in bits.iter().enumerate() {
                    assert_eq!(b, if lane < k { -1 } else { 0 }, "k {k}, lane {lane}");
                }
            }
        }

        /// [`super::transpose8`] on a block of distinct values.
        #[test]
        fn transpose8_transposes() {
            if crate::ops::simd::cpu_isa() < crate::ops::simd::Isa::Avx2 {
                eprintln!("no AVX2 here (or R2UNET_MAX_CPU_ISA): nothing to check");
                return;
            }
            let m: Vec<f32> = (0..64).map(|i| i as f32).collect();
            // SAFETY: AVX2 checked; 64 floats read and written.
            let out = unsafe {
                let rows = std::array::from_fn(|r| super::load_first8(m.as_ptr().add(8 * r), 8));
                let mut out = [0.0f32; 64];
                for (c, v) in super::transpose8(rows).into_iter().enumerate() {
                    super::store_first8(out.as_mut_ptr().add(8 * c), 8, v);
                }
                out
            };
            for r in 0..8 {
                for c in 0..8 {
                    assert_eq!(out[c * 8 + r], m[r * 8 + c], "({r}, {c})");
                }
            }
        }
    }
}
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::{lanes8, load_first8, store_first8, transpose8};

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
