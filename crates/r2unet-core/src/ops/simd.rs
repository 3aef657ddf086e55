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
