//! `r2unet export`: smaller precisions that say what they are.
use crate::util::*;

#[test]
fn f16_and_int8_exports_are_smaller_and_say_so() {
    let Some(run_dir) = tiny_drive_run() else {
        return;
    };
    let weights = run_dir.join("best.bpk");
    let dir = tempdir();
    let mut sizes = vec![std::fs::metadata(&weights).unwrap().len()];
    for precision in ["f16", "int8"] {
        let out_file = dir.path().join(format!("small.{precision}.bpk"));
        let out = run(bin()
            .args(["export", &format!("--{precision}"), "--weights"])
            .arg(&weights)
            .arg("--out")
            .arg(&out_file));
        assert_ok(&out);
        sizes.push(std::fs::metadata(&out_file).unwrap().len());
        let out = run(bin().arg("info").arg(&out_file));
        assert_ok(&out);
        assert!(
            stdout(&out).contains(&format!("precision:    {precision}")),
            "{}",
            stdout(&out)
        );
    }
    assert!(
        sizes[0] > sizes[1] && sizes[1] > sizes[2],
        "f32, f16, int8 sizes: {sizes:?}"
    );
}
