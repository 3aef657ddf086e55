//! The JS API in headless Chromium (`wasm-pack test --headless --chrome --release`, run by
//! scripts/test-browser.sh; `webdriver.json` turns on WebGPU through SwiftShader).
//! Build with `-F webgpu,flex,simd`: the WebGPU tests fail, never skip, when there is no adapter.
#![cfg(target_family = "wasm")]

mod common;

use js_sys::{Float32Array, Object, Reflect, Uint8Array, Uint8ClampedArray};
use r2unet_wasm::Segmenter;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The shipped retina weights at native scale (`common::retina_native_scale`), made once.
fn retina() -> &'static [u8] {
    static WEIGHTS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    WEIGHTS.get_or_init(common::retina_native_scale)
}
const FIXTURE: &[u8] = include_bytes!("fixtures/retina_synthetic_48.f32");

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn error_text(e: &JsValue) -> String {
    format!(
        "{}: {}",
        field(e, "name").as_string().unwrap_or_default(),
        field(e, "message").as_string().unwrap_or_default()
    )
}

async fn create(backend: &str) -> Result<Segmenter, JsValue> {
    let weights = Uint8Array::from(retina());
    Segmenter::create(obj(&[
        ("backend", backend.into()),
        ("task", "retina".into()),
        ("weights", weights.into()),
    ]))
    .await
}

fn synthetic_input() -> JsValue {
    let data = Uint8ClampedArray::from(&common::synthetic_fundus_rgba()[..]);
    obj(&[
        ("width", common::SIDE.into()),
        ("height", common::SIDE.into()),
        ("data", data.into()),
    ])
}

fn synthetic_options() -> JsValue {
    obj(&[
        ("tile", (common::TILE as u32).into()),
        ("stride", (common::STRIDE as u32).into()),
    ])
}

fn probabilities(result: &JsValue) -> Vec<f32> {
    field(result, "probabilities")
        .dyn_into::<Float32Array>()
        .unwrap()
        .to_vec()
}

#[wasm_bindgen_test]
async fn cpu_matches_the_native_forward_pass() {
    let seg = create("cpu").await.map_err(|e| error_text(&e)).unwrap();
    assert_eq!(seg.backend(), "cpu");
    let r = seg
        .segment(synthetic_input(), synthetic_options())
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    let got = probabilities(&r);
    common::assert_not_trivial(&got);
    let diff = common::max_abs_diff(&got, &common::decode_f32_le(FIXTURE));
    assert!(
        diff <= 1e-3,
        "CPU (flex, wasm) vs native: max abs difference {diff}"
    );
    // `flips` reaches the model: four mirrored passes averaged, so a different map (core's
    // predict tests check the average itself).
    let options = synthetic_options();
    js_sys::Reflect::set(&options, &"flips".into(), &true.into()).unwrap();
    let flipped = probabilities(
        &seg.segment(synthetic_input(), options)
            .await
            .map_err(|e| error_text(&e))
            .unwrap(),
    );
    assert_eq!(flipped.len(), got.len());
    assert!(flipped.iter().all(|p| (0.0..=1.0).contains(p)));
    let moved = common::max_abs_diff(&flipped, &got);
    assert!(
        moved > 1e-4,
        "flips changed nothing (max difference {moved})"
    );
}

#[wasm_bindgen_test]
async fn webgpu_matches_the_cpu_and_the_native_forward_pass() {
    let gpu = create("webgpu").await.map_err(|e| {
        format!(
            "WebGPU must be available here (Chromium with --enable-unsafe-webgpu): {}",
            error_text(&e)
        )
    });
    let gpu = gpu.unwrap();
    assert_eq!(gpu.backend(), "webgpu");
    let r = gpu
        .segment(synthetic_input(), synthetic_options())
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(field(&r, "backend").as_string().unwrap(), "webgpu");
    let on_gpu = probabilities(&r);
    common::assert_not_trivial(&on_gpu);
    let native = common::decode_f32_le(FIXTURE);
    let diff = common::max_abs_diff(&on_gpu, &native);
    assert!(diff <= 1e-3, "WebGPU vs native: max abs difference {diff}");

    let cpu = create("cpu").await.map_err(|e| error_text(&e)).unwrap();
    let on_cpu = probabilities(
        &cpu.segment(synthetic_input(), synthetic_options())
            .await
            .unwrap(),
    );
    let diff = common::max_abs_diff(&on_gpu, &on_cpu);
    assert!(diff <= 1e-3, "WebGPU vs CPU: max abs difference {diff}");
}

/// The raw module takes an explicit backend: 'auto' and the fallback are the package's
/// (`pkg/index.js`, tested through the page in tests/e2e).
#[wasm_bindgen_test]
async fn the_raw_module_refuses_auto() {
    let err = create("auto").await.err().expect("'auto' is refused");
    let text = error_text(&err);
    assert!(
        text.contains("ConfigError") && text.contains("'webgpu' or 'cpu'"),
        "{text}"
    );
}

/// Dice of a `segment` result's mask against a label file of the same size.
fn mask_dice(r: &JsValue, label: &[u8]) -> f64 {
    let mask = field(r, "mask").dyn_into::<Uint8Array>().unwrap().to_vec();
    let label = r2unet::image_io::decode_label(label).unwrap();
    assert_eq!(mask.len(), label.len());
    let (mut tp, mut pred, mut truth) = (0usize, 0usize, 0usize);
    for (&m, &l) in mask.iter().zip(&label) {
        tp += (m == 255 && l) as usize;
        pred += (m == 255) as usize;
        truth += l as usize;
    }
    2.0 * tp as f64 / (pred + truth) as f64
}

/// The shipped retina weights file as it is, field-of-view width 536 included: a CHASE_DB1 photo
/// (999x960, a field of view about 1.7 times DRIVE's) is resampled to DRIVE's scale in the
/// browser as natively, and its vessels found; the map comes back at the photo's size.
#[cfg(chase_data)]
#[wasm_bindgen_test]
async fn a_photo_from_another_camera_is_resampled_to_the_models_scale() {
    const SHIPPED: &[u8] = include_bytes!("../../../models/retina.bpk");
    const IMAGE: &[u8] = include_bytes!(env!("R2UNET_CHASE_IMAGE"));
    const LABEL: &[u8] = include_bytes!(env!("R2UNET_CHASE_LABEL"));
    let seg = Segmenter::create(obj(&[
        ("backend", "cpu".into()),
        ("task", "retina".into()),
        ("weights", Uint8Array::from(SHIPPED).into()),
    ]))
    .await
    .map_err(|e| error_text(&e))
    .unwrap();
    let r = seg
        .segment(
            Uint8Array::from(IMAGE).into(),
            obj(&[("threshold", 0.5.into())]),
        )
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(
        (
            field(&r, "width").as_f64().unwrap(),
            field(&r, "height").as_f64().unwrap()
        ),
        (999.0, 960.0)
    );
    let dice = mask_dice(&r, LABEL);
    web_sys_log(&format!(
        "CHASE_DB1 Image_11L in the browser (CPU, shipped weights): Dice {dice:.4}, {} ms",
        field(&r, "timeMs").as_f64().unwrap_or(f64::NAN)
    ));
    // At the photo's own scale this model scores about 0.38 (crates/r2unet-cli/tests).
    assert!(
        dice >= 0.70,
        "Dice {dice:.4} < 0.70 against Image_11L_1stHO.png"
    );
}

#[cfg(drive_data)]
#[wasm_bindgen_test]
async fn drive_test_image_matches_its_label() {
    const IMAGE: &[u8] = include_bytes!(env!("R2UNET_DRIVE_IMAGE"));
    const LABEL: &[u8] = include_bytes!(env!("R2UNET_DRIVE_LABEL"));
    let seg = create("cpu").await.map_err(|e| error_text(&e)).unwrap();
    let progress = js_sys::Array::new();
    let log = progress.clone();
    let on_progress = Closure::<dyn Fn(u32, u32)>::new(move |done: u32, total: u32| {
        log.push(&js_sys::Array::of2(&done.into(), &total.into()));
    });
    let options = obj(&[
        ("threshold", 0.5.into()),
        ("onProgress", on_progress.as_ref().clone()),
        ("measure", true.into()),
    ]);
    let r = seg
        .segment(Uint8Array::from(IMAGE).into(), options)
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(
        (
            field(&r, "width").as_f64().unwrap(),
            field(&r, "height").as_f64().unwrap()
        ),
        (565.0, 584.0)
    );
    let dice = mask_dice(&r, LABEL);
    web_sys_log(&format!(
        "DRIVE 01_test in the browser (CPU): Dice {dice:.4}, {} ms",
        field(&r, "timeMs").as_f64().unwrap_or(f64::NAN)
    ));
    assert!(dice >= 0.70, "Dice {dice:.4} < 0.70 against 01_manual1.gif");
    // The stage times account for the call: each measured, the model the largest, none over the whole.
    let total = field(&r, "timeMs").as_f64().unwrap();
    let timings = field(&r, "timings");
    let stages: Vec<f64> = [
        "decodeMs",
        "preprocessMs",
        "modelMs",
        "finishMs",
        "measureMs",
    ]
    .iter()
    .map(|k| {
        field(&timings, k)
            .as_f64()
            .unwrap_or_else(|| panic!("timings.{k} missing"))
    })
    .collect();
    assert!(
        stages.iter().all(|&t| t >= 0.0) && stages.iter().sum::<f64>() <= total + 1.0,
        "{stages:?} of {total}"
    );
    assert!(
        stages[2] > stages[0].max(stages[1]).max(stages[3]).max(stages[4]),
        "{stages:?}"
    );
    drive_measurements_are_the_cores(&r);
    // On the CPU the image fits the whole-image budget: one pass, reported once, as done.
    assert_eq!(
        progress.length(),
        1,
        "onProgress calls: {:?}",
        progress.to_vec()
    );
    let last = js_sys::Array::from(&progress.get(0));
    assert_eq!(
        (last.get(0).as_f64(), last.get(1).as_f64()),
        (Some(1.0), Some(1.0))
    );

    // Asking for tiles tiles it, with progress tile by tile, and gives nearly the same mask.
    progress.set_length(0);
    let options = obj(&[
        ("tile", 256.into()),
        ("onProgress", on_progress.as_ref().clone()),
    ]);
    let tiled = seg
        .segment(Uint8Array::from(IMAGE).into(), options)
        .await
        .map_err(|e| error_text(&e))
        .unwrap();
    assert_eq!(
        progress.length(),
        9,
        "onProgress calls: {:?}",
        progress.to_vec()
    );
    let mask = field(&r, "mask").dyn_into::<Uint8Array>().unwrap().to_vec();
    let tiled = field(&tiled, "mask")
        .dyn_into::<Uint8Array>()
        .unwrap()
        .to_vec();
    let both = mask
        .iter()
        .zip(&tiled)
        .filter(|(a, b)| **a == 255 && **b == 255)
        .count();
    let either = mask.iter().chain(&tiled).filter(|v| **v == 255).count();
    let agreement = 2.0 * both as f64 / either as f64;
    web_sys_log(&format!("whole image against 9 tiles: Dice {agreement:.4}"));
    assert!(
        agreement >= 0.97,
        "the whole-image and tiled masks differ: Dice {agreement:.4}"
    );
}

/// `measure: true` on the DRIVE image: the measurements are the core's for this mask inside the
/// field of view the preprocessing finds (the CLI's rule), computed here again by the core
/// (compiled into this test) and compared as JSON, every field; the figures are DRIVE-like; the
/// `fov` given back is that field of view; the `measure` export gives the same, and applies a
/// scale.
#[cfg(drive_data)]
fn drive_measurements_are_the_cores(r: &JsValue) {
    use r2unet::measure::{self, MeasureOptions};
    const IMAGE: &[u8] = include_bytes!(env!("R2UNET_DRIVE_IMAGE"));
    let m = field(r, "measurements");
    let num = |k: &str| {
        field(&m, k)
            .as_f64()
            .unwrap_or_else(|| panic!("measurements.{k} is not a number"))
    };
    assert_eq!(field(&m, "task").as_string().as_deref(), Some("retina"));
    let (fov_px, vessel_px, fraction) = (
        num("fovPixels"),
        num("vesselPixels"),
        num("vesselAreaFraction"),
    );
    web_sys_log(&format!(
        "DRIVE 01_test measured in the browser: vessels {:.2} % of the field of view ({vessel_px} \
         of {fov_px} px), {} segments, fractal dimension {:.3}, {:.1} ms",
        100.0 * fraction,
        num("segments"),
        num("fractalDimension"),
        field(&field(r, "timings"), "measureMs").as_f64().unwrap()
    ));
    assert!((0.06..=0.2).contains(&fraction), "vessel area {fraction}");
    assert_eq!(fraction, vessel_px / fov_px);
    assert!(field(&m, "umPerPixel").is_null(), "a scale without one");

    // The same mask through the core, with the field of view that `prepare` finds.
    let bundle = r2unet::weights::read_bundle(retina()).unwrap();
    let image = r2unet::image_io::decode(IMAGE).unwrap();
    let prepared = r2unet::preprocess::prepare(&bundle.preprocess, &image, None).unwrap();
    let fov = &prepared.source_fov;
    let mask: Vec<bool> = field(r, "mask")
        .dyn_into::<Uint8Array>()
        .unwrap()
        .to_vec()
        .iter()
        .map(|&v| v == 255)
        .collect();
    let inside = fov.iter().filter(|&&f| f).count();
    assert!(
        inside < mask.len() * 9 / 10,
        "FOV {inside} of {}",
        mask.len()
    );
    assert_eq!(fov_px, inside as f64, "the field of view counted");
    let native = measure::measure(
        r2unet::Task::Retina,
        &mask,
        565,
        584,
        Some(fov),
        &MeasureOptions::default(),
    )
    .unwrap();
    let json = |v: &JsValue| String::from(js_sys::JSON::stringify(v).unwrap());
    let native_js = js_sys::JSON::parse(&native.to_json()).unwrap();
    assert_eq!(json(&m), json(&native_js));
    let given: Vec<bool> = field(r, "fov")
        .dyn_into::<Uint8Array>()
        .unwrap()
        .to_vec()
        .iter()
        .map(|&v| v == 255)
        .collect();
    assert!(&given == fov, "the result's fov is not the preprocessing's");

    // The export measures a result again: the same without a scale; with the camera's angle,
    // micrometres (45 x 288 µm over the field of view's width, about 540 px: ~24 µm a pixel).
    let again = r2unet_wasm::measure_mask("retina".into(), r.clone(), JsValue::UNDEFINED).unwrap();
    assert_eq!(json(&again), json(&m));
    let scaled = r2unet_wasm::measure_mask(
        "retina".into(),
        r.clone(),
        obj(&[("fovAngleDeg", 45.into())]),
    )
    .map_err(|e| error_text(&e))
    .unwrap();
    let um = field(&scaled, "umPerPixel").as_f64().unwrap();
    assert!((20.0..30.0).contains(&um), "{um} µm per pixel");
    assert_eq!(
        field(&scaled, "scaleSource").as_string().as_deref(),
        Some("fovAngle")
    );
    let length_um = field(&scaled, "skeletonLengthUm").as_f64().unwrap();
    assert!((length_um - num("skeletonLengthPx") * um).abs() < 1e-6 * length_um);
}

fn web_sys_log(s: &str) {
    wasm_bindgen_test::console_log!("{s}");
}

fn png(width: u32, height: u32, color: image::ExtendedColorType, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        bytes,
        width,
        height,
        color,
    )
    .unwrap();
    out
}

/// A PNG whose header claims `width x height` (and no pixel data): the size check must refuse it
/// before anything is allocated.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = png(16, 16, image::ExtendedColorType::L8, &[0; 256]);
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[wasm_bindgen_test]
async fn bad_input_gives_js_errors_and_the_module_keeps_working() {
    let seg = create("cpu").await.map_err(|e| error_text(&e)).unwrap();
    let none = JsValue::UNDEFINED;
    let cases: Vec<(&str, JsValue, JsValue, &str)> = vec![
        (
            "0 bytes",
            Uint8Array::new_with_length(0).into(),
            none.clone(),
            "InputError: the input is empty",
        ),
        (
            "not an image",
            Uint8Array::from(&b"this is a text file, not an image"[..]).into(),
            none.clone(),
            "InputError: cannot decode",
        ),
        (
            "truncated PNG",
            Uint8Array::from(&png(32, 32, image::ExtendedColorType::L8, &[7; 1024])[..40]).into(),
            none.clone(),
            "InputError",
        ),
        (
            "1x1",
            Uint8Array::from(&png(1, 1, image::ExtendedColorType::L8, &[9])[..]).into(),
            none.clone(),
            "at least 16x16",
        ),
        (
            "12000x12000",
            Uint8Array::from(&png_header_only(12000, 12000)[..]).into(),
            none.clone(),
            "the limit is 36000000 pixels",
        ),
        (
            "a string",
            JsValue::from_str("retina.png"),
            none.clone(),
            "InputError: segment() takes",
        ),
        (
            "RGBA of the wrong length",
            obj(&[
                ("width", 20.into()),
                ("height", 20.into()),
                ("data", Uint8ClampedArray::new_with_length(7).into()),
            ]),
            none.clone(),
            "needs 1600",
        ),
        (
            "threshold 2",
            synthetic_input(),
            obj(&[("threshold", 2.into())]),
            "ConfigError: invalid configuration: threshold",
        ),
        (
            "flips not a boolean",
            synthetic_input(),
            obj(&[("flips", 1.into())]),
            "ConfigError: segment options: 'flips': invalid type",
        ),
        (
            "a misspelt option",
            synthetic_input(),
            obj(&[("treshold", 0.5.into())]),
            "ConfigError: segment options: unknown option 'treshold'; expected one of threshold,",
        ),
        (
            "onProgress not a function",
            synthetic_input(),
            obj(&[("onProgress", 3.into())]),
            "ConfigError",
        ),
        (
            "signal not an AbortSignal",
            synthetic_input(),
            obj(&[("signal", "stop".into())]),
            "ConfigError: option 'signal' must be an AbortSignal, got string",
        ),
        (
            "measure not a boolean",
            synthetic_input(),
            obj(&[("measure", "yes".into())]),
            "ConfigError: segment options: 'measure': invalid type",
        ),
        (
            "a scale of 0",
            synthetic_input(),
            obj(&[
                ("measure", true.into()),
                ("scale", obj(&[("pixelSizeUm", 0.into())])),
            ]),
            "ConfigError: option 'scale.pixelSizeUm': the pixel size (µm) must be a number above 0",
        ),
        (
            "a negative angle",
            synthetic_input(),
            obj(&[
                ("measure", true.into()),
                ("scale", obj(&[("fovAngleDeg", (-45).into())])),
            ]),
            "ConfigError: option 'scale.fovAngleDeg'",
        ),
        (
            "a scale as a string",
            synthetic_input(),
            obj(&[
                ("measure", true.into()),
                ("scale", obj(&[("pixelSpacingMm", "0.7".into())])),
            ]),
            "ConfigError: segment 'scale' options: 'pixelSpacingMm': invalid type",
        ),
        (
            "a misspelt scale",
            synthetic_input(),
            obj(&[
                ("measure", true.into()),
                ("scale", obj(&[("pixelSize", 10.into())])),
            ]),
            "ConfigError: segment 'scale' options: unknown option 'pixelSize'; expected one of \
             pixelSizeUm, fovAngleDeg, pixelSpacingMm",
        ),
        (
            "a scale without measure",
            synthetic_input(),
            obj(&[("scale", obj(&[("pixelSizeUm", 10.into())]))]),
            "ConfigError: option 'scale' is the scale of the measurements",
        ),
    ];
    for (what, input, options, expected) in cases {
        let err = seg
            .segment(input, options)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: no error"));
        assert!(
            err.is_instance_of::<js_sys::Error>(),
            "{what}: not a JS Error"
        );
        let text = error_text(&err);
        assert!(
            text.contains(expected),
            "{what}: {text:?} does not contain {expected:?}"
        );
        // The same Segmenter still works after each bad call.
        let ok = seg
            .segment(synthetic_input(), synthetic_options())
            .await
            .map_err(|e| error_text(&e));
        assert!(ok.is_ok(), "after {what}: {ok:?}");
    }

    // Every documented option at once is accepted (the key list and SegmentOptions agree).
    let all = obj(&[
        ("threshold", 0.5.into()),
        ("tile", (common::TILE as u32).into()),
        ("stride", (common::STRIDE as u32).into()),
        ("flips", false.into()),
        ("onProgress", js_sys::Function::new_no_args("").into()),
        ("signal", field(&abort_controller(), "signal")),
        ("measure", true.into()),
        (
            "scale",
            obj(&[
                ("pixelSizeUm", 10.into()),
                ("fovAngleDeg", 45.into()),
                ("pixelSpacingMm", 0.7.into()),
            ]),
        ),
    ]);
    let ok = seg
        .segment(synthetic_input(), all)
        .await
        .map_err(|e| error_text(&e));
    let ok = ok.unwrap_or_else(|e| panic!("every option at once: {e}"));
    // The retina measurements, at the pixel size given (which wins over the angle); the lung's
    // spacing is noted as ignored. Without `measure`, no measurements and no work.
    let m = field(&ok, "measurements");
    assert_eq!(field(&m, "umPerPixel").as_f64(), Some(10.0));
    assert_eq!(
        field(&m, "scaleSource").as_string().as_deref(),
        Some("pixelSize")
    );
    let notes = js_sys::JSON::stringify(&field(&m, "notes")).unwrap();
    assert!(
        String::from(notes.clone()).contains("pixelSpacingMm"),
        "{notes:?}"
    );
    let plain = seg
        .segment(synthetic_input(), synthetic_options())
        .await
        .unwrap();
    for key in ["measurements", "fov"] {
        assert!(field(&plain, key).is_undefined(), "{key} without measure");
    }
    assert_eq!(
        field(&field(&plain, "timings"), "measureMs").as_f64(),
        Some(0.0)
    );

    // The measure export: a named error for a bad task, mask or scale.
    let mask = |n: u32| {
        obj(&[
            ("width", 4.into()),
            ("height", 4.into()),
            ("mask", Uint8Array::new_with_length(n).into()),
        ])
    };
    for (what, task, image, scale, expected) in [
        (
            "unknown task",
            "brain",
            mask(16),
            JsValue::UNDEFINED,
            "ConfigError: invalid configuration: unknown task 'brain'",
        ),
        (
            "short mask",
            "skin",
            mask(15),
            JsValue::UNDEFINED,
            "InputError: measure() takes",
        ),
        (
            "no mask",
            "lung",
            obj(&[("width", 4.into()), ("height", 4.into())]),
            JsValue::UNDEFINED,
            "'mask' must be a Uint8Array, got undefined",
        ),
        (
            "bad scale",
            "lung",
            mask(16),
            obj(&[("pixelSpacingMm", f64::NAN.into())]),
            "ConfigError: option 'scale.pixelSpacingMm'",
        ),
    ] {
        let err = r2unet_wasm::measure_mask(task.into(), image, scale)
            .err()
            .unwrap_or_else(|| panic!("{what}: no error"));
        let text = error_text(&err);
        assert!(text.contains(expected), "{what}: {text:?}");
    }
    let empty = r2unet_wasm::measure_mask("lung".into(), mask(16), JsValue::UNDEFINED).unwrap();
    assert_eq!(field(&empty, "areaPx").as_f64(), Some(0.0));
    assert!(field(&empty, "patientLeftAreaPx").is_null());

    // Grey, RGBA and 16-bit images are segmented, at their own size.
    let grey: Vec<u8> = (0..64 * 64).map(|i| (i % 251) as u8).collect();
    let rgba: Vec<u8> = (0..64 * 64 * 4).map(|i| (i % 253) as u8).collect();
    let grey16: Vec<u8> = (0..64 * 64)
        .flat_map(|i: u32| ((i * 17) as u16).to_be_bytes())
        .collect();
    for (what, bytes) in [
        ("grey PNG", png(64, 64, image::ExtendedColorType::L8, &grey)),
        (
            "RGBA PNG",
            png(64, 64, image::ExtendedColorType::Rgba8, &rgba),
        ),
        (
            "16-bit grey PNG",
            png(64, 64, image::ExtendedColorType::L16, &grey16),
        ),
    ] {
        let r = seg
            .segment(Uint8Array::from(&bytes[..]).into(), none.clone())
            .await
            .map_err(|e| error_text(&e));
        let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(field(&r, "width").as_f64(), Some(64.0), "{what}");
        assert_eq!(probabilities(&r).len(), 64 * 64, "{what}");
    }

    // Bad weights and options at create time are JS errors too.
    for (what, options, expected) in [
        (
            "no weights",
            obj(&[("backend", "cpu".into())]),
            "WeightsError",
        ),
        (
            "no backend",
            obj(&[]),
            "ConfigError: Segmenter.create options: missing field `backend`",
        ),
        (
            "garbage weights",
            obj(&[
                ("backend", "cpu".into()),
                ("weights", Uint8Array::from(&b"PK\x03\x04 zip"[..]).into()),
            ]),
            "WeightsError: invalid weights",
        ),
        (
            "weights with one byte changed",
            obj(&[
                ("backend", "cpu".into()),
                ("weights", {
                    let mut bytes = retina().to_vec();
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x10;
                    Uint8Array::from(&bytes[..]).into()
                }),
            ]),
            "WeightsError: invalid weights: the file's bytes do not match its SHA-256 digest",
        ),
        (
            "empty weights",
            obj(&[
                ("backend", "cpu".into()),
                ("weights", Uint8Array::new_with_length(0).into()),
            ]),
            "empty",
        ),
        (
            "wrong task",
            obj(&[
                ("backend", "cpu".into()),
                ("weights", Uint8Array::from(retina()).into()),
                ("task", "skin".into()),
            ]),
            "for task 'retina', not 'skin'",
        ),
        (
            "unknown task",
            obj(&[
                ("backend", "cpu".into()),
                ("weights", Uint8Array::from(retina()).into()),
                ("task", "brain".into()),
            ]),
            "unknown task 'brain'",
        ),
        (
            "unknown backend",
            obj(&[
                ("weights", Uint8Array::from(retina()).into()),
                ("backend", "cuda".into()),
            ]),
            "backend 'cuda'",
        ),
        (
            "options not an object",
            JsValue::from_f64(3.0),
            "ConfigError",
        ),
    ] {
        let err = Segmenter::create(options)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: no error"));
        let text = error_text(&err);
        assert!(
            text.contains(expected),
            "{what}: {text:?} does not contain {expected:?}"
        );
    }
    let ok = seg.segment(synthetic_input(), synthetic_options()).await;
    assert!(ok.is_ok(), "the Segmenter stopped working");
}

fn abort_controller() -> JsValue {
    let class: js_sys::Function = field(&js_sys::global(), "AbortController")
        .dyn_into()
        .expect("AbortController exists");
    Reflect::construct(&class, &js_sys::Array::new()).unwrap()
}

fn abort(controller: &JsValue) {
    let abort: js_sys::Function = field(controller, "abort").dyn_into().unwrap();
    abort.call0(controller).unwrap();
}

fn now_ms() -> f64 {
    let performance = field(&js_sys::global(), "performance");
    let now: js_sys::Function = field(&performance, "now").dyn_into().unwrap();
    now.call0(&performance).unwrap().as_f64().unwrap()
}

/// `options` with `key` set.
fn with(options: JsValue, key: &str, value: &JsValue) -> JsValue {
    Reflect::set(&options, &key.into(), value).unwrap();
    options
}

fn assert_abort_error(err: &JsValue, message: &str) {
    assert!(err.is_instance_of::<js_sys::Error>(), "not an Error");
    let text = error_text(err);
    assert!(
        text.starts_with("AbortError: ") && text.contains(message),
        "{text:?} is not an AbortError containing {message:?}"
    );
}

/// An abort from the progress callback after the first of four tiles stops the run there, with an
/// `AbortError`; the next call on the same Segmenter gives the same map as before; a signal already
/// aborted rejects at once, before any tile.
#[wasm_bindgen_test]
async fn an_abort_stops_between_tiles_and_the_segmenter_keeps_working() {
    let seg = create("cpu").await.map_err(|e| error_text(&e)).unwrap();
    let before = probabilities(
        &seg.segment(synthetic_input(), synthetic_options())
            .await
            .map_err(|e| error_text(&e))
            .unwrap(),
    );

    let controller = abort_controller();
    let signal = field(&controller, "signal");
    let calls = js_sys::Array::new();
    let (log, c) = (calls.clone(), controller.clone());
    let on_progress = Closure::<dyn Fn(u32, u32)>::new(move |done: u32, total: u32| {
        log.push(&js_sys::Array::of2(&done.into(), &total.into()));
        if done == 1 {
            abort(&c);
        }
    });
    let options = with(
        with(synthetic_options(), "onProgress", on_progress.as_ref()),
        "signal",
        &signal,
    );
    let err = seg
        .segment(synthetic_input(), options.clone())
        .await
        .expect_err("an aborted run rejects");
    assert_abort_error(&err, "after 1 of 4 tiles");
    assert_eq!(calls.length(), 1, "tiles run: {:?}", calls.to_vec());

    let after = probabilities(
        &seg.segment(synthetic_input(), synthetic_options())
            .await
            .map_err(|e| error_text(&e))
            .unwrap(),
    );
    assert_eq!(after, before, "the run after the abort differs");

    calls.set_length(0);
    let err = seg
        .segment(synthetic_input(), options)
        .await
        .expect_err("an aborted signal rejects");
    assert_abort_error(&err, "before it started");
    assert_eq!(calls.length(), 0, "tiles run: {:?}", calls.to_vec());
}

/// The CPU pass gives the event loop a turn between forward passes, so an abort from another task
/// (a timer here; a worker's "cancel" message on the page) stops a long run early.
#[wasm_bindgen_test]
async fn an_abort_from_another_task_stops_a_long_cpu_run() {
    let seg = create("cpu").await.map_err(|e| error_text(&e)).unwrap();
    // 256x256 in 64-pixel tiles with stride 32 (49 tiles), four flips each: about 200 passes.
    let side = 256u32;
    let rgba: Vec<u8> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = (i % side, i / side);
            [(x ^ y) as u8, (x + y) as u8 / 2, 40, 255]
        })
        .collect();
    let input = obj(&[
        ("width", side.into()),
        ("height", side.into()),
        ("data", Uint8ClampedArray::from(&rgba[..]).into()),
    ]);
    let controller = abort_controller();
    let tiles = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let seen = tiles.clone();
    let on_progress =
        Closure::<dyn Fn(u32, u32)>::new(move |done: u32, _total: u32| seen.set(done));
    let options = obj(&[
        ("tile", 64.into()),
        ("stride", 32.into()),
        ("flips", true.into()),
        ("onProgress", on_progress.as_ref().clone()),
        ("signal", field(&controller, "signal")),
    ]);
    let c = controller.clone();
    let fire = Closure::once_into_js(move || abort(&c));
    let set_timeout: js_sys::Function = field(&js_sys::global(), "setTimeout").dyn_into().unwrap();
    set_timeout.call2(&JsValue::NULL, &fire, &0.into()).unwrap();
    let started = now_ms();
    let err = seg
        .segment(input, options)
        .await
        .expect_err("the timer's abort stops the run");
    let ms = now_ms() - started;
    web_sys_log(&format!(
        "abort from a timer: stopped after {} of 49 tiles, {ms:.0} ms",
        tiles.get()
    ));
    assert_abort_error(&err, "segment() was aborted");
    assert!(tiles.get() < 49, "the whole run went through ({ms:.0} ms)");
    // And the Segmenter still works.
    assert!(
        seg.segment(synthetic_input(), synthetic_options())
            .await
            .is_ok()
    );
}
