//! What the core's data tests share: the data folder, with a skip that `scripts/test.sh` sees.
use std::io::Write;
use std::path::PathBuf;

/// `$R2UNET_DATA/DRIVE/test` (default `../shared/data` beside the repository), or `None` after a
/// `SKIPPED:` line written straight to stderr, past the test harness's capture, so that
/// `scripts/test.sh` lists it; `R2UNET_REQUIRE_DATA=1` makes a missing set a failure instead.
/// `test` names the test in that line.
pub fn drive_test(test: &str) -> Option<PathBuf> {
    let root = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let dir = root.join("DRIVE/test");
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
