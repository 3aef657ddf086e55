//! `r2unet info` on weights files that are not: empty, truncated, not a burnpack.
use r2unet::Task;

use crate::util::*;

#[test]
fn broken_weights_files_are_named_with_what_is_wrong() {
    let dir = tempdir();
    let empty = dir.path().join("empty.bpk");
    std::fs::write(&empty, b"").unwrap();
    assert_err(&run(bin().arg("info").arg(&empty)), &["empty.bpk", "empty"]);

    let text = dir.path().join("text.bpk");
    std::fs::write(&text, b"not weights at all").unwrap();
    assert_err(
        &run(bin().arg("info").arg(&text)),
        &["text.bpk", "burnpack"],
    );

    let bytes = untrained_model(&dir.path().join("good.bpk"), Task::Retina);
    let cut = dir.path().join("cut.bpk");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_err(&run(bin().arg("info").arg(&cut)), &["cut.bpk"]);
    assert_ok(&run(bin().arg("info").arg(dir.path().join("good.bpk"))));
}
