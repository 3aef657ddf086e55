use std::path::PathBuf;

use super::*;

/// `../shared/data` beside the checkout, or `R2UNET_DATA`.
pub(crate) fn data_root() -> Option<PathBuf> {
    let root = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if root.join("DRIVE").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "SKIPPED: real data not found at {} (set R2UNET_DATA)",
            root.display()
        );
        None
    }
}

#[test]
fn real_split_sizes_match_the_data_readme() {
    let Some(root) = data_root() else { return };
    let count = |d: Dataset, dir: &str, split: &str| d.list(&root.join(dir), split).unwrap().len();
    assert_eq!(count(Dataset::Drive, "DRIVE", "train"), 20);
    assert_eq!(count(Dataset::Drive, "DRIVE", "test"), 20);
    assert_eq!(count(Dataset::Stare, "STARE", "train"), 10);
    assert_eq!(count(Dataset::Stare, "STARE", "test"), 10);
    assert_eq!(count(Dataset::Chase, "CHASE_DB1", "train"), 20);
    assert_eq!(count(Dataset::Chase, "CHASE_DB1", "test"), 8);
    assert_eq!(count(Dataset::Isic2017, "ISIC2017", "train"), 1800);
    assert_eq!(count(Dataset::Isic2017, "ISIC2017", "holdout"), 200);
    assert_eq!(count(Dataset::Isic2017, "ISIC2017", "validation"), 150);
    assert_eq!(count(Dataset::Isic2016, "ISIC2017", "train"), 675);
    assert_eq!(count(Dataset::Isic2016, "ISIC2017", "holdout"), 74);
    assert_eq!(count(Dataset::Isic2016, "ISIC2017", "test"), 305);
    let test = Dataset::Chase
        .list(&root.join("CHASE_DB1"), "test")
        .unwrap();
    assert_eq!(test[0].id, "Image_11L");
}

#[test]
fn real_images_load_at_their_published_sizes() {
    let Some(root) = data_root() else { return };
    let cases = [
        (Dataset::Drive, "DRIVE", 565, 584),
        (Dataset::Stare, "STARE", 700, 605),
        (Dataset::Chase, "CHASE_DB1", 999, 960),
    ];
    for (d, dir, w, h) in cases {
        let s = &d.list(&root.join(dir), "test").unwrap()[0];
        let loaded = s.load(&PreprocessConfig::for_task(Task::Retina)).unwrap();
        assert_eq!(
            (loaded.prepared.width, loaded.prepared.height),
            (w, h),
            "{dir}"
        );
        let fov = loaded.prepared.source_fov.iter().filter(|&&v| v).count() as f64 / (w * h) as f64;
        assert!((0.6..0.9).contains(&fov), "{dir}: FOV covers {fov}");
        let vessels = loaded.label.iter().filter(|&&v| v).count() as f64 / (w * h) as f64;
        assert!(
            (0.04..0.2).contains(&vessels),
            "{dir}: vessels cover {vessels}"
        );
    }
    let s = &Dataset::Isic2017
        .list(&root.join("ISIC2017"), "validation")
        .unwrap()[0];
    let loaded = s.load(&PreprocessConfig::for_task(Task::Skin)).unwrap();
    assert_eq!((loaded.prepared.channels, loaded.prepared.width), (3, 128));
    assert_eq!(loaded.model_label.len(), 128 * 128);
}

#[test]
fn unknown_dataset_and_split_are_refused_with_choices() {
    assert!(
        Dataset::parse("kvasir")
            .unwrap_err()
            .to_string()
            .contains("drive")
    );
    let err = Dataset::Drive
        .list(std::path::Path::new("/"), "validation")
        .unwrap_err()
        .to_string();
    assert!(err.contains("train, test, all"), "{err}");
}

#[test]
fn empty_folder_and_missing_labels_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let err = Dataset::Stare
        .list(dir.path(), "all")
        .unwrap_err()
        .to_string();
    assert!(err.contains("images"), "{err}");
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    let err = Dataset::Stare
        .list(dir.path(), "all")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no stare images"), "{err}");
    let img = image::RgbImage::new(32, 32);
    img.save(dir.path().join("images/im0001.png")).unwrap();
    let err = Dataset::Stare
        .list(dir.path(), "all")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing label") && err.contains("im0001.ah.png"),
        "{err}"
    );
}

#[test]
fn truncated_images_and_mismatched_labels_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::create_dir_all(dir.path().join("labels-ah")).unwrap();
    image::RgbImage::new(40, 40)
        .save(dir.path().join("images/im0001.png"))
        .unwrap();
    image::GrayImage::new(30, 40)
        .save(dir.path().join("labels-ah/im0001.ah.png"))
        .unwrap();
    let s = &Dataset::Stare.list(dir.path(), "all").unwrap()[0];
    let err = s
        .load(&PreprocessConfig::for_task(Task::Retina))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("im0001.ah.png") && err.contains("size mismatch"),
        "{err}"
    );
    let bytes = std::fs::read(dir.path().join("images/im0001.png")).unwrap();
    std::fs::write(
        dir.path().join("images/im0001.png"),
        &bytes[..bytes.len() / 3],
    )
    .unwrap();
    let err = s
        .load(&PreprocessConfig::for_task(Task::Retina))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("im0001.png") && err.contains("decode"),
        "{err}"
    );
}

/// The reader on slices made in the Kaggle layout, with known values (the shared LUNG folder itself
/// is read end to end by the CLI's tests).
#[test]
fn lung_reader_splits_generated_kaggle_slices_80_10_10() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("2d_images")).unwrap();
    std::fs::create_dir_all(dir.path().join("2d_masks")).unwrap();
    for i in 0..20 {
        let name = format!("ID_{i:04}_Z_0142.tif");
        let (w, h) = (64u32, 64u32);
        let hu: Vec<i16> = (0..w * h)
            .map(|p| {
                // A few HU of texture: a picture with two levels only is refused as a mask.
                let texture = (p % 5) as i16;
                if (p % w) > 16 && (p % w) < 48 {
                    -800 + texture
                } else {
                    40 + texture
                }
            })
            .collect();
        let mut f = std::fs::File::create(dir.path().join("2d_images").join(&name)).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(&mut f).unwrap();
        enc.write_image::<tiff::encoder::colortype::GrayI16>(w, h, &hu)
            .unwrap();
        let mask: Vec<u8> = hu.iter().map(|&v| if v < -500 { 255 } else { 0 }).collect();
        let mut f = std::fs::File::create(dir.path().join("2d_masks").join(&name)).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(&mut f).unwrap();
        enc.write_image::<tiff::encoder::colortype::Gray8>(w, h, &mask)
            .unwrap();
    }
    let n = |s| Dataset::Lung.list(dir.path(), s).unwrap().len();
    assert_eq!((n("train"), n("val"), n("test")), (16, 2, 2));
    let loaded = Dataset::Lung.list(dir.path(), "test").unwrap()[0]
        .load(&PreprocessConfig::for_task(Task::Lung))
        .unwrap();
    assert_eq!((loaded.prepared.width, loaded.prepared.height), (256, 256));
    // -800 HU windowed to [-1000, 400] is 0.14; 40 HU is 0.74.
    let row = &loaded.prepared.data[128 * 256..129 * 256];
    assert!((row[128] - 200.0 / 1400.0).abs() < 0.02, "{}", row[128]);
    assert!((row[2] - 1040.0 / 1400.0).abs() < 0.02, "{}", row[2]);
}
