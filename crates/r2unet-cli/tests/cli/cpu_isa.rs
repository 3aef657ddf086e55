//! `R2UNET_MAX_CPU_ISA`, the cap on the CPU kernels' instruction set: a value that is not one is
//! refused before any work, and a capped run gives the mask that the widest kernels give.
use crate::util::*;

#[test]
fn an_unknown_instruction_set_is_refused_by_name() {
    let out = run(bin()
        .env("R2UNET_MAX_CPU_ISA", "avx3")
        .args(["zoo", "--widths", "16,32"]));
    assert_err(&out, &["R2UNET_MAX_CPU_ISA", "avx3", "avx2"]);
}

/// The same DRIVE image through the narrowest kernels (portable loops, the `gemm` crate) and the
/// widest this CPU has: the kernels sum in other orders, so a few pixels at the threshold may
/// flip, no more.
#[test]
fn the_baseline_kernels_give_the_widest_kernels_mask() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    shipped("retina.bpk");
    let image = drive.join("test/images/02_test.tif");
    let mask = |isa: &str| {
        let dir = tempdir();
        let out = run(bin()
            .env("R2UNET_MAX_CPU_ISA", isa)
            .args(["predict", "--task", "retina", "--backend", "flex", "--out"])
            .arg(dir.path())
            .arg(&image));
        assert_ok(&out);
        image::open(dir.path().join("02_test.mask.png"))
            .unwrap()
            .into_luma8()
    };
    let (narrow, wide) = (mask("baseline"), mask(""));
    assert_eq!(narrow.dimensions(), wide.dimensions());
    let differ = narrow
        .pixels()
        .zip(wide.pixels())
        .filter(|(a, b)| a != b)
        .count();
    let vessels = wide.pixels().filter(|p| p.0[0] > 0).count();
    assert!(vessels > 10_000, "{vessels} vessel pixels");
    assert!(
        differ * 1000 <= vessels,
        "{differ} of {vessels} vessel pixels differ"
    );
}

/// `bench --json` and the backend line say which kernels ran, so a figure cannot be taken for
/// another instruction set's.
#[test]
fn bench_reports_the_capped_instruction_set() {
    let dir = tempdir();
    let json = dir.path().join("bench.json");
    let out = run(bin()
        .env("R2UNET_MAX_CPU_ISA", "baseline")
        .args([
            "bench",
            "--backend",
            "flex",
            "--steps",
            "1",
            "--batch",
            "2",
            "--images",
            "0",
        ])
        .arg("--json")
        .arg(&json));
    assert_ok(&out);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["cpu_isa"], "baseline", "{r}");
    assert!(stdout(&out).contains("| baseline |"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("backend: CPU kernels: baseline (R2UNET_MAX_CPU_ISA=baseline)"),
        "{}",
        stderr(&out)
    );
}
