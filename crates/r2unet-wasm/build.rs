//! Finds the DRIVE test image and the CHASE_DB1 photo the browser tests segment (`tests/browser.rs`). wasm-pack tests
//! cannot read files, so the test embeds the image at compile time from the data folder
//! (`$R2UNET_DATA`, else `../shared/data` beside the repository); the data is never copied into
//! the repository. Without it, `cfg(drive_data)` is unset and scripts/test-browser.sh says SKIPPED.
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(drive_data)");
    println!("cargo:rustc-check-cfg=cfg(chase_data)");
    println!("cargo:rerun-if-env-changed=R2UNET_DATA");
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let data = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared/data"));
    let image = data.join("DRIVE/test/images/01_test.tif");
    let label = data.join("DRIVE/test/1st_manual/01_manual1.gif");
    println!("cargo:rerun-if-changed={}", image.display());
    if image.is_file() && label.is_file() {
        println!("cargo:rustc-cfg=drive_data");
        println!("cargo:rustc-env=R2UNET_DRIVE_IMAGE={}", image.display());
        println!("cargo:rustc-env=R2UNET_DRIVE_LABEL={}", label.display());
    }
    // A photo from another camera at another scale, for the shipped model's resampling.
    let image = data.join("CHASE_DB1/Image_11L.jpg");
    let label = data.join("CHASE_DB1/Image_11L_1stHO.png");
    println!("cargo:rerun-if-changed={}", image.display());
    if image.is_file() && label.is_file() {
        println!("cargo:rustc-cfg=chase_data");
        println!("cargo:rustc-env=R2UNET_CHASE_IMAGE={}", image.display());
        println!("cargo:rustc-env=R2UNET_CHASE_LABEL={}", label.display());
    }
}
