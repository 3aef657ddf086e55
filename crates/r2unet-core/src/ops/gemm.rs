//! The matrix product under the 3x3 convolution's algorithms and the 1x1 convolution: the `gemm` crate (the GEMM burn-flex uses, same
//! version), called on raw strided pointers and on one thread, since the callers' tasks are the
//! parallelism; row-major products without accumulation and the weight gradients' accumulated
//! `lhs rhs^T` go to loops of our own instead, [`super::gemm_avx512`] on AVX-512 CPUs and
//! [`super::gemm_avx2`] on AVX2 ones.

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
    {
        let args = (
            dst_strides.0 as usize,
            lhs_strides.0 as usize,
            rhs_strides.0 as usize,
        );
        if super::gemm_avx512::available() {
            // SAFETY: AVX-512F is there (just checked); the extents as below.
            unsafe { super::gemm_avx512::gemm(m, n, k, dst, args.0, lhs, args.1, rhs, args.2) };
            return;
        }
        if super::gemm_avx2::available() {
            // SAFETY: AVX2 and FMA are there (just checked); the extents as below.
            unsafe { super::gemm_avx2::gemm(m, n, k, dst, args.0, lhs, args.1, rhs, args.2) };
            return;
        }
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
    {
        // rhs's columns are rows of k floats at stride rhs_strides.1.
        let args = (
            dst_strides.0 as usize,
            lhs_strides.0 as usize,
            rhs_strides.1 as usize,
        );
        if super::gemm_avx512::available() {
            // SAFETY: AVX-512F is there (just checked); the extents as below.
            unsafe {
                super::gemm_avx512::gemm_nt_acc(m, n, k, dst, args.0, lhs, args.1, rhs, args.2)
            };
            return;
        }
        if super::gemm_avx2::available() {
            // SAFETY: AVX2 and FMA are there (just checked); the extents as below.
            unsafe {
                super::gemm_avx2::gemm_nt_acc(m, n, k, dst, args.0, lhs, args.1, rhs, args.2)
            };
            return;
        }
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

// Our loops against the crate: x86-64 only.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) mod tests {
    /// `ours(m, n, k, dst, ldd, lhs, lda, rhs, ldr)` against the `gemm` crate on one shape: `dst
    /// = lhs rhs`, or with `nt`, `dst += lhs rhs^T` (`rhs` stored as `n` rows of `k`); row
    /// strides wider than the rows, and every element past a row's `n` left as it was. `ours`
    /// gets buffers of `m x ldd`, `m x lda` and (`k` or `n`) `x ldr` floats.
    #[allow(clippy::type_complexity)]
    pub(in crate::ops) fn compare_with(
        m: usize,
        n: usize,
        k: usize,
        nt: bool,
        ours_fn: impl Fn(usize, usize, usize, *mut f32, usize, *const f32, usize, *const f32, usize),
    ) {
        let (ldd, lda) = (n + 3, k + 1);
        let (rhs_rows, ldr) = if nt { (n, k + 5) } else { (k, n + 5) };
        let lhs: Vec<f32> = (0..m * lda)
            .map(|i| ((i * 37) % 19) as f32 / 7.0 - 1.0)
            .collect();
        let rhs: Vec<f32> = (0..rhs_rows * ldr)
            .map(|i| ((i * 11) % 23) as f32 / 9.0 - 1.2)
            .collect();
        let start: Vec<f32> = if nt {
            (0..m * ldd).map(|i| (i % 5) as f32 - 2.0).collect()
        } else {
            vec![f32::NAN; m * ldd]
        };
        let (mut ours, mut theirs) = (start.clone(), start.clone());
        // The crate's (column, row) strides of rhs.
        let (rhs_cs, rhs_rs) = if nt {
            (ldr as isize, 1)
        } else {
            (1, ldr as isize)
        };
        let (a, b) = (lhs.as_ptr(), rhs.as_ptr());
        ours_fn(m, n, k, ours.as_mut_ptr(), ldd, a, lda, b, ldr);
        // SAFETY: the buffers hold m x ldd, m x lda and rhs_rows x ldr floats.
        unsafe {
            ::gemm::gemm(
                m,
                n,
                k,
                theirs.as_mut_ptr(),
                1,
                ldd as isize,
                nt,
                a,
                1,
                lda as isize,
                b,
                rhs_cs,
                rhs_rs,
                if nt { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                ::gemm::Parallelism::None,
            );
        }
        for i in 0..m {
            for j in 0..ldd {
                let (a, b) = (ours[i * ldd + j], theirs[i * ldd + j]);
                if j < n {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{m}x{n}x{k} (nt: {nt}): ({i}, {j}) {a} against {b}"
                    );
                } else {
                    assert_eq!(
                        a.to_bits(),
                        start[i * ldd + j].to_bits(),
                        "{m}x{n}x{k} (nt: {nt}): wrote past row {i}'s end at {j}"
                    );
                }
            }
        }
    }

    /// Not a test: the rates of the AVX-512 and AVX2 loops and of the `gemm` crate on the
    /// convolutions' shapes (the Winograd forward products `dst = lhs rhs`, the weight
    /// gradients' `dst += lhs rhs^T`), in turn, best of five rounds, for bench/NOTES.md
    /// sections 26 and 28 (`R2UNET_MAX_CPU_ISA` leaves the crate alone, so on an AVX-512 CPU it
    /// keeps its AVX-512 kernels):
    /// `cargo test --release -p r2unet-core --features native -- gemm::tests::rates --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: run with --ignored --nocapture"]
    fn rates() {
        type Product =
            unsafe fn(usize, usize, usize, *mut f32, usize, *const f32, usize, *const f32, usize);
        /// The crate's `dst (+)= lhs rhs(^T)`, row-major, on one thread.
        #[allow(clippy::too_many_arguments)]
        fn crate_product<const NT: bool>(
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
            let (cs, rs) = if NT {
                (ldr as isize, 1)
            } else {
                (1, ldr as isize)
            };
            // SAFETY: the caller's buffers, as for ours.
            unsafe {
                ::gemm::gemm(
                    m,
                    n,
                    k,
                    dst,
                    1,
                    ldd as isize,
                    NT,
                    lhs,
                    1,
                    lda as isize,
                    rhs,
                    cs,
                    rs,
                    if NT { 1.0 } else { 0.0 },
                    1.0,
                    false,
                    false,
                    false,
                    ::gemm::Parallelism::None,
                )
            }
        }
        let mut ours: Vec<(&str, Product, Product)> = Vec::new();
        if crate::ops::gemm_avx512::available() {
            ours.push((
                "avx512",
                crate::ops::gemm_avx512::gemm,
                crate::ops::gemm_avx512::gemm_nt_acc,
            ));
        }
        if crate::ops::gemm_avx2::available() {
            ours.push((
                "avx2",
                crate::ops::gemm_avx2::gemm,
                crate::ops::gemm_avx2::gemm_nt_acc,
            ));
        }
        // (m, n, k): a task's forward products at 16 to 128 channels, then the weight
        // gradients' (channels x channels, a task's tiles as k; im2col's at 128 channels; a
        // 1x1 convolution's).
        let shapes = [
            (false, 16, 170, 16),
            (false, 32, 84, 32),
            (false, 64, 63, 64),
            (false, 128, 32, 128),
            (true, 16, 16, 170),
            (true, 32, 32, 84),
            (true, 64, 64, 63),
            (true, 128, 128, 64),
            (true, 128, 1152, 36),
            (true, 16, 64, 2304),
        ];
        for (nt, m, n, k) in shapes {
            let lhs: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32).collect();
            let rhs: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32).collect();
            let ldr = if nt { k } else { n };
            let mut dst = vec![0.0f32; m * n];
            let reps = (200_000_000 / (2 * m * n * k)).max(1);
            let mut contenders: Vec<(&str, Product)> = ours
                .iter()
                .map(|&(name, nn, ntf)| (name, if nt { ntf } else { nn }))
                .collect();
            contenders.push((
                "gemm crate",
                if nt {
                    crate_product::<true>
                } else {
                    crate_product::<false>
                },
            ));
            let mut best = vec![f64::MAX; contenders.len()];
            for _round in 0..5 {
                for (b, &(_, f)) in best.iter_mut().zip(&contenders) {
                    let t = std::time::Instant::now();
                    for _ in 0..reps {
                        // SAFETY: m x n, m x k and k x n (n x k) floats; each loop's CPU
                        // features were checked above.
                        unsafe {
                            f(
                                m,
                                n,
                                k,
                                dst.as_mut_ptr(),
                                n,
                                lhs.as_ptr(),
                                k,
                                rhs.as_ptr(),
                                ldr,
                            )
                        };
                    }
                    *b = b.min(t.elapsed().as_secs_f64() / reps as f64);
                }
            }
            let rates: Vec<String> = contenders
                .iter()
                .zip(&best)
                .map(|(&(name, _), &t)| format!("{name} {:.1}", 2.0 * (m * n * k) as f64 / t / 1e9))
                .collect();
            let what = if nt {
                "dst += lhs rhs^T"
            } else {
                "dst = lhs rhs"
            };
            println!("{what}, {m} x {n} x {k}: GFLOP/s {}", rates.join(", "));
        }
    }
}
