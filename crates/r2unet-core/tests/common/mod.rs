//! What the core's data tests share: the data folder, with a skip that `scripts/test.sh` sees.
use std::io::Write;
use std::path::PathBuf;

/// `$R2UNET_DATA/DRIVE/test` (default `../shared/data` beside the repository), or `None` after a
/// `SKIPPED:` line written straight to stderr, past the test harness's capture, so that
/// `scripts/test.sh` lists it; `R2UNET_REQUIRE_DATA=1` makes a missing set a failure instead.
/// `test` names the test in that line.
#[allow(dead_code)]
pub fn drive_test(test: &str) -> Option<PathBuf> {
    data_dir(test, "DRIVE/test")
}

/// `$R2UNET_DATA/<sub>`, or `None` after a `SKIPPED:` line, as [`drive_test`].
pub fn data_dir(test: &str, sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let dir = root.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let line = format!(
        "SKIPPED: {test}: {} not found (set R2UNET_DATA)",
        dir.display()
    );
    assert!(
        std::env::var_os("R2UNET_REQUIRE_DATA").is_none_or(|v| v != "1"),
        "{line}, and R2UNET_REQUIRE_DATA=1"
    );
    let _ = writeln!(std::io::stderr(), "{line}");
    None
}

/// Two probability maps compared: the largest absolute difference and the Dice of their masks
/// at 0.5, inside `fov`.
#[allow(dead_code)]
pub fn compare(a: &[f32], b: &[f32], fov: &[bool]) -> (f32, f64) {
    let (mut max, mut both, mut ones) = (0.0f32, 0usize, 0usize);
    for ((&x, &y), &inside) in a.iter().zip(b).zip(fov) {
        if !inside {
            continue;
        }
        max = max.max((x - y).abs());
        let (p, q) = (x >= 0.5, y >= 0.5);
        both += usize::from(p && q);
        ones += usize::from(p) + usize::from(q);
    }
    let dice = if ones == 0 {
        1.0
    } else {
        2.0 * both as f64 / ones as f64
    };
    (max, dice)
}
