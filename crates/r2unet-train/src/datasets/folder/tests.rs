use std::path::Path;

use super::*;
use crate::datasets::Dataset;

/// A textured RGB picture (skin preprocessing takes anything of at least 16x16).
fn picture(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + y) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8])
    })
}

/// A 0/255 mask whose left `cols` columns are foreground.
fn mask(w: u32, h: u32, cols: u32) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |x, _| image::Luma([if x < cols { 255 } else { 0 }]))
}

fn spec(root: &Path, task: Task) -> FolderSpec {
    FolderSpec {
        images: root.join("images"),
        masks: root.join("masks"),
        fov: None,
        task,
        split_file: None,
        val_fraction: DEFAULT_VAL_FRACTION,
        test_fraction: DEFAULT_TEST_FRACTION,
        seed: 42,
        skip_bad: false,
    }
}

fn dirs(root: &Path, names: &[&str]) {
    for n in names {
        std::fs::create_dir_all(root.join(n)).unwrap();
    }
}

fn open(spec: &FolderSpec) -> Result<FolderSet> {
    FolderSet::open(spec, &PreprocessConfig::for_task(spec.task))
}

#[test]
fn drive_names_pair_as_published() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["images", "masks", "fov"]);
    for (id, tag) in [("01", "test"), ("02", "test"), ("21", "training")] {
        picture(40, 40)
            .save(root.join(format!("images/{id}_{tag}.png")))
            .unwrap();
        // GIF, as DRIVE's (the encoder takes RGB only).
        let gif = |m: image::GrayImage| image::DynamicImage::ImageLuma8(m).to_rgb8();
        gif(mask(40, 40, 10))
            .save(root.join(format!("masks/{id}_manual1.gif")))
            .unwrap();
        gif(mask(40, 40, 40))
            .save(root.join(format!("fov/{id}_{tag}_mask.gif")))
            .unwrap();
    }
    let mut s = spec(root, Task::Retina);
    s.fov = Some(root.join("fov"));
    s.val_fraction = 0.0;
    s.test_fraction = 0.0;
    let set = open(&s).unwrap();
    let got: Vec<(String, String, String)> = set
        .pairs
        .iter()
        .map(|p| {
            (
                p.stem.clone(),
                name_of(&p.mask),
                name_of(p.fov.as_deref().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("01_test", "01_manual1.gif", "01_test_mask.gif"),
            ("02_test", "02_manual1.gif", "02_test_mask.gif"),
            ("21_training", "21_manual1.gif", "21_training_mask.gif"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    assert!(set.pairs.iter().all(|p| p.split == Some("train")));
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn every_listed_suffix_pairs_and_same_names_pair() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["images", "masks"]);
    let mut expected = Vec::new();
    for (i, suffix) in MASK_SUFFIXES.iter().chain(&[""]).enumerate() {
        let stem = format!("case{i:02}");
        picture(20, 20)
            .save(root.join(format!("images/{stem}.png")))
            .unwrap();
        // Upper case too: suffixes match in any case.
        let suffix = if i % 2 == 0 {
            suffix.to_string()
        } else {
            suffix.to_uppercase()
        };
        let name = format!("{stem}{suffix}.png");
        mask(20, 20, 5)
            .save(root.join("masks").join(&name))
            .unwrap();
        expected.push((stem, name));
    }
    std::fs::write(root.join("images/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("images/.DS_Store"), "hidden").unwrap();
    let set = open(&spec(root, Task::Skin)).unwrap();
    let got: Vec<(String, String)> = set
        .pairs
        .iter()
        .map(|p| (p.stem.clone(), name_of(&p.mask)))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
    assert!(set.warnings[0].contains("notes.txt"), "{:?}", set.warnings);
}

#[test]
fn ambiguous_pairs_are_refused_naming_the_clashing_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["images", "masks"]);
    // One mask fits two images ...
    for name in ["1_test", "1_training"] {
        picture(20, 20)
            .save(root.join(format!("images/{name}.png")))
            .unwrap();
    }
    mask(20, 20, 5)
        .save(root.join("masks/1_manual1.png"))
        .unwrap();
    // ... and two masks fit one image.
    picture(20, 20).save(root.join("images/b.png")).unwrap();
    mask(20, 20, 5).save(root.join("masks/b_gt.png")).unwrap();
    mask(20, 20, 5).save(root.join("masks/b_seg.png")).unwrap();
    let err = open(&spec(root, Task::Skin)).unwrap_err().to_string();
    for name in [
        "1_manual1.png",
        "1_test.png",
        "1_training.png",
        "b_gt.png",
        "b_seg.png",
    ] {
        assert!(err.contains(name), "{name} not in: {err}");
    }
    assert!(
        err.contains("fits several images") && err.contains("several masks fit"),
        "{err}"
    );
}

/// A folder with every kind of problem: all are named in one error; with `skip_bad` they are
/// warnings and the good pair trains.
#[test]
fn every_problem_is_listed_at_once_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["images", "masks"]);
    picture(32, 32).save(root.join("images/good.png")).unwrap();
    mask(32, 32, 8)
        .save(root.join("masks/good_mask.png"))
        .unwrap();
    picture(32, 32)
        .save(root.join("images/lonely.png"))
        .unwrap();
    mask(32, 32, 8)
        .save(root.join("masks/orphan_mask.png"))
        .unwrap();
    picture(32, 32).save(root.join("images/cut.png")).unwrap();
    let bytes = std::fs::read(root.join("images/cut.png")).unwrap();
    std::fs::write(root.join("images/cut.png"), &bytes[..bytes.len() / 3]).unwrap();
    mask(32, 32, 8)
        .save(root.join("masks/cut_mask.png"))
        .unwrap();
    picture(32, 32).save(root.join("images/small.png")).unwrap();
    mask(24, 32, 8)
        .save(root.join("masks/small_mask.png"))
        .unwrap();
    picture(32, 32).save(root.join("images/twice.png")).unwrap();
    picture(32, 32).save(root.join("images/twice.bmp")).unwrap();
    mask(32, 32, 8).save(root.join("masks/twice.png")).unwrap();
    let mut s = spec(root, Task::Skin);
    let err = open(&s).unwrap_err().to_string();
    for name in [
        "lonely.png",
        "orphan_mask.png",
        "cut.png",
        "small_mask.png",
        "24x32",
        "twice.png",
        "twice.bmp",
        "--skip-bad",
    ] {
        assert!(err.contains(name), "{name} not in: {err}");
    }
    assert!(!err.contains("good"), "{err}");

    s.skip_bad = true;
    s.val_fraction = 0.0;
    s.test_fraction = 0.0;
    let set = open(&s).unwrap();
    assert_eq!(set.pairs.len(), 1);
    assert_eq!(set.pairs[0].stem, "good");
    let warnings = set.warnings.join("\n");
    for name in [
        "lonely.png",
        "orphan_mask.png",
        "cut.png",
        "small_mask.png",
        "twice",
    ] {
        assert!(warnings.contains(name), "{name} not in: {warnings}");
    }
    assert!(!warnings.contains("error:"), "{warnings}");
}

#[test]
fn empty_and_missing_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let err = open(&spec(root, Task::Skin)).unwrap_err().to_string();
    assert!(
        err.contains("--images") && err.contains("not a folder"),
        "{err}"
    );
    dirs(root, &["images", "masks"]);
    let err = open(&spec(root, Task::Skin)).unwrap_err().to_string();
    assert!(
        err.contains("--images") && err.contains("--masks") && err.contains("no image files"),
        "{err}"
    );
}

/// 0/255, 0/1, 16-bit, coloured and palette (GIF) masks all give the same foreground; an
/// all-zero one none.
#[test]
fn masks_of_every_kind_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let fg = |x: u32, y: u32| x < 10 && y < 20;
    let gray = |on: u8| {
        image::GrayImage::from_fn(40, 30, |x, y| image::Luma([if fg(x, y) { on } else { 0 }]))
    };
    gray(255).save(p("a.png")).unwrap();
    gray(1).save(p("b.png")).unwrap();
    image::ImageBuffer::<image::Luma<u16>, _>::from_fn(40, 30, |x, y| {
        image::Luma([if fg(x, y) { 65535u16 } else { 0 }])
    })
    .save(p("c.png"))
    .unwrap();
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb(if fg(x, y) { [200, 0, 0] } else { [0, 0, 0] })
    })
    .save(p("d.png"))
    .unwrap();
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb(if fg(x, y) { [128, 0, 0] } else { [0, 0, 0] })
    })
    .save(p("e.gif"))
    .unwrap();
    gray(0).save(p("f.png")).unwrap();
    let want: Vec<bool> = (0..30)
        .flat_map(|y| (0..40).map(move |x| fg(x, y)))
        .collect();
    for name in ["a.png", "b.png", "c.png", "d.png", "e.gif"] {
        let img = image_io::decode(&std::fs::read(p(name)).unwrap()).unwrap();
        assert_eq!(MaskRule::HalfOfMax.apply(&img), want, "{name}");
    }
    // The rule of the named data sets reads a 0/1 mask as all background.
    let img = image_io::decode(&std::fs::read(p("b.png")).unwrap()).unwrap();
    assert!(MaskRule::HalfScale.apply(&img).iter().all(|&v| !v));
    let img = image_io::decode(&std::fs::read(p("f.png")).unwrap()).unwrap();
    assert!(MaskRule::HalfOfMax.apply(&img).iter().all(|&v| !v));
}

#[test]
fn a_0_1_mask_loads_as_its_foreground() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["images", "masks"]);
    picture(40, 40).save(root.join("images/x.png")).unwrap();
    image::GrayImage::from_fn(40, 40, |x, _| image::Luma([u8::from(x < 10)]))
        .save(root.join("masks/x_label.png"))
        .unwrap();
    let mut s = spec(root, Task::Skin);
    s.val_fraction = 0.0;
    s.test_fraction = 0.0;
    let loaded = open(&s).unwrap().list("train").unwrap()[0]
        .load(&PreprocessConfig::for_task(Task::Skin))
        .unwrap();
    let share = loaded.label.iter().filter(|&&v| v).count() as f64 / loaded.label.len() as f64;
    assert_eq!(share, 0.25);
}

fn split_of(text: &str, known: &[&str]) -> Result<BTreeMap<String, Option<&'static str>>> {
    let known: BTreeSet<&str> = known.iter().copied().collect();
    read_split_file(Path::new("splits.csv"), text, &known)
}

#[test]
fn split_files_with_and_without_a_header() {
    let known = ["a", "b", "c", "d"];
    let want: BTreeMap<String, Option<&str>> = [
        ("a", Some("train")),
        ("b", Some("val")),
        ("c", Some("test")),
        ("d", None),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let plain = "a,train\nb,val\n\n# a comment\nc,TEST\nd,none\n";
    assert_eq!(split_of(plain, &known).unwrap(), want);
    let header = "\u{feff}stem,split\na,train\nb , val\nc,test\nd,none\n";
    assert_eq!(split_of(header, &known).unwrap(), want);
    // A run's files.csv: other columns, quoted cells.
    let files = format!(
        "{FILES_CSV_HEADER}\ntrain,a,\"/x,y/a.png\",m,,1,2,\nval,b,i,m,,1,2,\ntest,c,i,m,,1,2,\nnone,d,i,m,,1,2,\n"
    );
    assert_eq!(split_of(&files, &known).unwrap(), want);
}

#[test]
fn split_file_errors_name_their_lines() {
    let err = split_of(
        "stem,split\na,train\nzz,test\nb,holdout\na,val\nc\n",
        &["a", "b", "c"],
    )
    .unwrap_err()
    .to_string();
    for part in [
        "4 problem(s)",
        "splits.csv:3: no image with the stem 'zz'",
        "splits.csv:4: unknown split 'holdout'",
        "splits.csv:5: 'a' is listed again (first on line 2)",
        "splits.csv:6: expected the columns stem,split",
    ] {
        assert!(err.contains(part), "{part} not in: {err}");
    }
}

/// Lung slices in the Kaggle layout: the seeded fractions (0.1, 0.1, seed 42) give exactly the
/// named `lung` reader's split, and a run's files.csv changes when a file does.
#[test]
fn fractions_reproduce_the_lung_split_and_files_csv_tracks_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["2d_images", "2d_masks"]);
    for i in 0..30 {
        let name = format!("ID_{i:04}_Z_0142.tif");
        let hu: Vec<i16> = (0..48 * 48)
            .map(|p| ((p % 48) * 30 - 1000 + (p % 7)) as i16)
            .collect();
        let mut f = std::fs::File::create(root.join("2d_images").join(&name)).unwrap();
        tiff::encoder::TiffEncoder::new(&mut f)
            .unwrap()
            .write_image::<tiff::encoder::colortype::GrayI16>(48, 48, &hu)
            .unwrap();
        mask(48, 48, 20)
            .save(root.join("2d_masks").join(&name))
            .unwrap();
    }
    let mut s = spec(root, Task::Lung);
    s.images = root.join("2d_images");
    s.masks = root.join("2d_masks");
    let set = open(&s).unwrap();
    for split in ["train", "val", "test"] {
        let ids = |v: Vec<Sample>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(set.list(split).unwrap()),
            ids(Dataset::Lung.list(root, split).unwrap()),
            "{split}"
        );
    }
    let csv = set.files_csv();
    assert_eq!(csv.lines().count(), 31);
    assert!(csv.starts_with(FILES_CSV_HEADER));
    set.check_unchanged(&csv, Path::new("files.csv")).unwrap();
    // The same files elsewhere are the same data; a changed mask is not.
    mask(48, 48, 21)
        .save(root.join("2d_masks/ID_0007_Z_0142.tif"))
        .unwrap();
    let err = open(&s)
        .unwrap()
        .check_unchanged(&csv, Path::new("files.csv"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed: ID_0007_Z_0142"), "{err}");
    // A split file that is the run's files.csv gives the same split.
    std::fs::write(root.join("files.csv"), &csv).unwrap();
    s.split_file = Some(root.join("files.csv"));
    mask(48, 48, 20)
        .save(root.join("2d_masks/ID_0007_Z_0142.tif"))
        .unwrap();
    let again = open(&s).unwrap();
    assert_eq!(again.files_csv(), csv);
}

#[test]
fn bad_fractions_and_empty_splits_say_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    dirs(root, &["images", "masks"]);
    picture(20, 20).save(root.join("images/a.png")).unwrap();
    mask(20, 20, 4).save(root.join("masks/a.png")).unwrap();
    let mut s = spec(root, Task::Skin);
    s.val_fraction = 0.6;
    s.test_fraction = 0.4;
    let err = open(&s).unwrap_err().to_string();
    assert!(err.contains("--val-fraction"), "{err}");
    s.val_fraction = 0.1;
    let err = open(&s).unwrap().list("val").unwrap_err().to_string();
    assert!(
        err.contains("no pairs in split 'val'") && err.contains("--val-fraction"),
        "{err}"
    );
    s.fov = Some(root.join("masks"));
    let err = open(&s).unwrap_err().to_string();
    assert!(err.contains("--fov is for retina"), "{err}");
}
