//! `r2unet predict`: the shipped models on real images, masks of the input's own size, and every
//! kind of bad input named, with no partial output.
use std::path::Path;

use r2unet::Task;

use crate::util::*;

#[test]
fn an_int8_export_writes_probability_mask_and_overlay_of_the_inputs_size() {
    let Some(run_dir) = tiny_drive_run() else {
        return;
    };
    let drive = needs_data("DRIVE").unwrap();
    let dir = tempdir();
    let int8 = dir.path().join("small.int8.bpk");
    assert_ok(&run(bin()
        .args(["export", "--int8", "--weights"])
        .arg(run_dir.join("best.bpk"))
        .arg("--out")
        .arg(&int8)));
    let pred = dir.path().join("pred");
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--overlay",
            "--backend",
            "flex",
        ])
        .arg("--weights")
        .arg(&int8)
        .arg("--out")
        .arg(&pred)
        .arg(drive.join("test/images/01_test.tif")));
    assert_ok(&out);
    for suffix in ["prob", "mask", "overlay"] {
        let img = image::open(pred.join(format!("01_test.{suffix}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (565, 584), "{suffix}");
    }
}

/// The shipped retina model on a real DRIVE test image: the mask must match the label.
#[test]
fn the_shipped_retina_model_segments_a_drive_image() {
    let Some(drive) = needs_data("DRIVE") else {
        return;
    };
    shipped("retina.bpk");
    let dir = tempdir();
    let out = run(bin()
        .args(["predict", "--task", "retina", "--backend", "flex", "--out"])
        .arg(dir.path())
        .arg(drive.join("test/images/03_test.tif")));
    assert_ok(&out);
    let dice = dice(
        &dir.path().join("03_test.mask.png"),
        &drive.join("test/1st_manual/03_manual1.gif"),
    );
    assert!(dice > 0.7, "Dice {dice}");
}

/// A photo from another camera at another scale (CHASE_DB1, 999x960, field of view about 900
/// pixels wide): the shipped DRIVE model resamples it to DRIVE's field-of-view width (536, kept
/// in the weights file) and finds the vessels; at the photo's native scale it misses most of
/// them. `--fov-width 0` asks for the native scale, so the two runs differ only in that.
#[test]
fn the_shipped_retina_model_rescales_a_photo_from_another_camera() {
    let Some(chase) = needs_data("CHASE_DB1") else {
        return;
    };
    let mut scores = Vec::new();
    for extra in [&[][..], &["--fov-width", "0"][..]] {
        let dir = tempdir();
        let out = run(bin()
            .args(["predict", "--task", "retina", "--backend", "flex", "--out"])
            .arg(dir.path())
            .args(extra)
            .arg(chase.join("Image_11L.jpg")));
        assert_ok(&out);
        scores.push(dice(
            &dir.path().join("Image_11L.mask.png"),
            &chase.join("Image_11L_1stHO.png"),
        ));
    }
    let (shipped, native) = (scores[0], scores[1]);
    assert!(
        shipped > 0.7,
        "Dice {shipped} with the shipped field-of-view width"
    );
    assert!(
        shipped > native + 0.15,
        "shipped {shipped} vs native scale {native}"
    );
}

/// A CT slice at the scanner's resolution: a test-split slice of the shared (256x256) LUNG set,
/// upscaled 2x to 512x512 as a signed 16-bit TIFF, gets a 512x512 mask lined up with its mask
/// upscaled the same way.
#[test]
fn the_shipped_lung_model_segments_a_512_slice_at_its_own_size() {
    let Some(lung) = needs_data("LUNG") else {
        return;
    };
    let model = shipped("lung.bpk");
    let dir = tempdir();
    let slice = "ID_0003_Z_0132";
    let image = r2unet::image_io::decode(
        &std::fs::read(lung.join(format!("2d_images/{slice}.tif"))).unwrap(),
    )
    .unwrap();
    assert_eq!((image.width, image.height), (256, 256));
    let up = |x: u32, y: u32| image.data[(y / 2 * 256 + x / 2) as usize];
    let big = dir.path().join(format!("{slice}_512.tif"));
    let pixels: Vec<i16> = (0..512 * 512)
        .map(|i| up(i % 512, i / 512) as i16)
        .collect();
    let mut encoder =
        tiff::encoder::TiffEncoder::new(std::fs::File::create(&big).unwrap()).unwrap();
    encoder
        .write_image::<tiff::encoder::colortype::GrayI16>(512, 512, &pixels)
        .unwrap();
    let label = image::open(lung.join(format!("2d_masks/{slice}.tif")))
        .unwrap()
        .to_luma8();
    let label = image::imageops::resize(&label, 512, 512, image::imageops::FilterType::Nearest);

    let out_dir = dir.path().join("out");
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "lung",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&out_dir)
        .arg(&big));
    assert_ok(&out);
    let mask = image::open(out_dir.join(format!("{slice}_512.mask.png")))
        .unwrap()
        .to_luma8();
    assert_eq!(mask.dimensions(), (512, 512));
    let dice = dice_of(&mask, &label);
    println!("lung slice {slice} upscaled to 512x512: Dice {dice:.4} against its upscaled mask");
    assert!(dice > 0.95, "Dice {dice} at 512x512");
    // Lined up: the mask shifted by 8 pixels scores clearly lower.
    let shifted = image::GrayImage::from_fn(512, 512, |x, y| *mask.get_pixel((x + 8).min(511), y));
    assert!(
        dice_of(&shifted, &label) < dice - 0.01,
        "a shifted mask scores as well"
    );
}

/// What the lung model must not take silently: a colour photo, a mask, an unsigned 16-bit slice
/// (its Hounsfield offset is unknown); and a lung model asked to do retina.
#[test]
fn the_lung_model_refuses_what_is_not_a_ct_slice() {
    let Some(lung) = needs_data("LUNG") else {
        return;
    };
    let model = shipped("lung.bpk");
    let dir = tempdir();
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 4) as u8, 90, (y * 4) as u8])
    })
    .save(&photo)
    .unwrap();
    let mask = lung.join("2d_masks/ID_0003_Z_0132.tif");
    let unsigned = dir.path().join("unsigned.png");
    image::ImageBuffer::<image::Luma<u16>, _>::from_fn(64, 64, |x, y| {
        image::Luma([(x * 40 + y) as u16])
    })
    .save(&unsigned)
    .unwrap();
    let out_dir = dir.path().join("out");
    for (input, why) in [
        (photo.as_path(), "colour"),
        (mask.as_path(), "mask"),
        (unsigned.as_path(), "unsigned 16-bit"),
    ] {
        let out = run(bin()
            .args([
                "predict",
                "--task",
                "lung",
                "--backend",
                "flex",
                "--weights",
            ])
            .arg(&model)
            .arg("--out")
            .arg(&out_dir)
            .arg(input));
        let name = input.file_name().unwrap().to_str().unwrap();
        assert_err(&out, &[name, why]);
    }
    assert!(!out_dir.exists() || std::fs::read_dir(&out_dir).unwrap().next().is_none());

    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&out_dir)
        .arg(&photo));
    assert_err(&out, &["lung.bpk", "lung model"]);
}

#[test]
fn bad_inputs_are_named_and_leave_no_partial_output() {
    let dir = tempdir();
    let corrupt = dir.path().join("w.bpk");
    std::fs::write(&corrupt, b"not weights at all").unwrap();
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&corrupt)
        .arg("--out")
        .arg(dir.path().join("o"))
        .arg("x.png"));
    assert_err(&out, &["w.bpk", "burnpack"]);

    let model = dir.path().join("tiny.bpk");
    untrained_model(&model, Task::Retina);
    // A retina model is refused for the skin task.
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "skin",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&model)
        .arg("--out")
        .arg(dir.path())
        .arg("x.png"));
    assert_err(&out, &["retina model"]);

    let good = dir.path().join("good.png");
    image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, 40])
    })
    .save(&good)
    .unwrap();
    let png = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.png");
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello").unwrap();
    let tiny = dir.path().join("tiny.png");
    image::RgbImage::new(1, 1).save(&tiny).unwrap();
    let out_dir = dir.path().join("out");
    let inputs: [&Path; 5] = [
        &good,
        &truncated,
        &text,
        &tiny,
        &dir.path().join("missing.png"),
    ];
    let out = run(bin()
        .args([
            "predict",
            "--task",
            "retina",
            "--backend",
            "flex",
            "--weights",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&out_dir)
        .args(inputs));
    assert_err(
        &out,
        &[
            "truncated.png",
            "notes.png",
            "tiny.png",
            "missing.png",
            "at least",
        ],
    );
    // The good input is written; the bad ones leave nothing, not even partial files.
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["good.mask.png", "good.prob.png"]);
}

/// `--fov-width` is checked before any image is read: retina models only, and a sane width.
#[test]
fn fov_width_is_refused_for_skin_models_and_silly_widths() {
    let dir = tempdir();
    let png = dir.path().join("x.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([120, 80, 60]))
        .save(&png)
        .unwrap();
    for (task, width, message) in [
        ("skin", "500", "--fov-width is for retina models"),
        ("retina", "20", "must be 0 (native size) or 64 to 8192"),
    ] {
        let out = run(bin()
            .args([
                "predict",
                "--task",
                task,
                "--backend",
                "flex",
                "--fov-width",
                width,
            ])
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg(&png));
        assert_err(&out, &[message]);
    }
    assert!(!dir.path().join("out/x.mask.png").exists());
}

/// The default `--backend auto` probes for a GPU; where `XDG_RUNTIME_DIR` is unset (containers,
/// CI, ssh), the Vulkan drivers' Wayland support used to print "error: XDG_RUNTIME_DIR is
/// invalid" twice during that probe. Only real errors say "error".
#[test]
fn the_gpu_probe_raises_no_false_alarm() {
    let dir = tempdir();
    let png = dir.path().join("x.png");
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 2) as u8, 90])
    })
    .save(&png)
    .unwrap();
    let model = dir.path().join("tiny.bpk");
    untrained_model(&model, Task::Retina);
    let out = run(bin()
        .env_remove("XDG_RUNTIME_DIR")
        .args(["predict", "--task", "retina", "--weights"])
        .arg(&model)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg(&png));
    assert_ok(&out);
    assert!(stderr(&out).contains("backend: "), "{}", stderr(&out));
}

/// The binary carries the shipped models: a copy of it in another folder, run from there with no
/// checkout in sight of its working directory (as after `cargo install`), segments with the
/// built-in model; `R2UNET_MODELS` still overrides it, and names the file it could not read.
#[test]
fn an_installed_binary_carries_its_models() {
    let dir = tempdir();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let installed = bin_dir.join("r2unet");
    std::fs::copy(env!("CARGO_BIN_EXE_r2unet"), &installed).unwrap();
    let png = dir.path().join("lesion.png");
    image::RgbImage::from_fn(96, 96, |x, y| {
        let d = (x as i32 - 48).pow(2) + (y as i32 - 48).pow(2);
        if d < 600 {
            image::Rgb([90, 50, 40])
        } else {
            image::Rgb([220, 170, 150])
        }
    })
    .save(&png)
    .unwrap();
    let out = run(std::process::Command::new(&installed)
        .current_dir(dir.path())
        .env_remove("R2UNET_MODELS")
        .args([
            "predict",
            "--task",
            "skin",
            "--backend",
            "flex",
            "--out",
            "out",
            "lesion.png",
        ]));
    assert_ok(&out);
    assert!(
        stderr(&out).contains("the built-in skin model"),
        "{}",
        stderr(&out)
    );
    assert!(dir.path().join("out/lesion.mask.png").is_file());

    let out = run(std::process::Command::new(&installed)
        .current_dir(dir.path())
        .env("R2UNET_MODELS", dir.path().join("nowhere"))
        .args([
            "predict",
            "--task",
            "skin",
            "--backend",
            "flex",
            "--out",
            "out2",
            "lesion.png",
        ]));
    assert_err(&out, &["nowhere/skin.bpk"]);
}
