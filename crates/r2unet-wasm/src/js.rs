//! The JS boundary: `Segmenter`, option parsing, inputs, results and errors.
#[cfg(feature = "webgpu")]
use std::cell::RefCell;

use js_sys::{
    Array, ArrayBuffer, Float32Array, Function, Object, Reflect, Uint8Array, Uint8ClampedArray,
};
use r2unet::image_io::{self, RawImage};
use r2unet::inference::tiling::TilingConfig;
use r2unet::measure::{MeasureOptions, Measurements};
use r2unet::{Error, ModelBundle, Task};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::engine::{self, BackendKind, Engine, SegmentOptions};

#[wasm_bindgen(start)]
fn start() {
    // A Rust panic otherwise reaches JS only as "RuntimeError: unreachable".
    console_error_panic_hook::set_once();
}

/// A JS `Error` whose `name` says what kind of failure it is: `InputError` (the image),
/// `WeightsError` (the weights file), `ConfigError` (an option), `BackendError` (the device).
/// (A cancelled run is an `AbortError`: [`abort_error`].)
fn js_error(name: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name(name);
    e.into()
}

fn to_js(e: Error) -> JsValue {
    let name = match &e {
        Error::Empty
        | Error::Decode(_)
        | Error::TooSmall { .. }
        | Error::TooLarge { .. }
        | Error::SizeMismatch { .. }
        | Error::Unsuitable { .. } => "InputError",
        Error::Weights(_)
        | Error::WeightsMismatch(_)
        | Error::DigestMismatch
        | Error::NoDigest
        | Error::NotBurnpack(_)
        | Error::WeightsTensor { .. } => "WeightsError",
        Error::Config(_) => "ConfigError",
        Error::Backend(_) | Error::ReadBack { .. } => "BackendError",
        _ => "Error",
    };
    // The message and its causes, as the CLI prints them.
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    js_error(name, &message)
}

fn config_error(message: String) -> JsValue {
    js_error("ConfigError", &message)
}

fn type_name(v: &JsValue) -> String {
    v.js_typeof()
        .as_string()
        .unwrap_or_else(|| "unknown".into())
}

/// `Segmenter.create`'s options. The public contract is written once, as JSDoc in `pkg/index.js`
/// (`CreateOptions`); the raw module takes an explicit backend, and the package picks it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateOptions {
    backend: String,
    task: Option<String>,
    #[serde(with = "serde_wasm_bindgen::preserve", default)]
    weights: JsValue,
}

impl JsOptions for CreateOptions {
    const KEYS: &'static [&'static str] = &["backend", "task", "weights"];
}

/// `segment`'s options: `SegmentOptions` in `pkg/index.js`. Unknown keys are refused, so a typo
/// (`onprogress`) is an error instead of an option silently ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SegmentJsOptions {
    threshold: Option<f64>,
    tile: Option<f64>,
    stride: Option<f64>,
    flips: Option<bool>,
    #[serde(with = "serde_wasm_bindgen::preserve", default)]
    on_progress: JsValue,
    #[serde(with = "serde_wasm_bindgen::preserve", default)]
    signal: JsValue,
    measure: Option<bool>,
    /// Checked on its own (`MeasureScale`): serde-wasm-bindgen does not refuse a nested
    /// object's unknown keys either.
    #[serde(with = "serde_wasm_bindgen::preserve", default)]
    scale: JsValue,
}

impl JsOptions for SegmentJsOptions {
    const KEYS: &'static [&'static str] = &[
        "threshold",
        "tile",
        "stride",
        "flips",
        "onProgress",
        "signal",
        "measure",
        "scale",
    ];
}

/// The `scale` of `segment`'s and `measure`'s options (`MeasureScale` in `pkg/index.js`): the
/// core's options as they are, camelCase.
impl JsOptions for MeasureOptions {
    const KEYS: &'static [&'static str] = &["pixelSizeUm", "fovAngleDeg", "pixelSpacingMm"];
}

/// A `scale` object, checked: known keys, numbers, each a finite number above 0 (and within the
/// core's bounds), an error naming the key otherwise. Checked before any work, so a bad scale
/// does not cost a forward pass.
fn measure_scale(v: JsValue, what: &str) -> Result<MeasureOptions, JsValue> {
    let scale: MeasureOptions = parse_options(v, what)?;
    let each = [
        (
            "pixelSizeUm",
            MeasureOptions {
                pixel_size_um: scale.pixel_size_um,
                ..Default::default()
            },
        ),
        (
            "fovAngleDeg",
            MeasureOptions {
                fov_angle_deg: scale.fov_angle_deg,
                ..Default::default()
            },
        ),
        (
            "pixelSpacingMm",
            MeasureOptions {
                pixel_spacing_mm: scale.pixel_spacing_mm,
                ..Default::default()
            },
        ),
    ];
    for (key, one) in each {
        match one.validate() {
            Ok(()) => {}
            Err(Error::Config(e)) => {
                return Err(config_error(format!("option 'scale.{key}': {e}")));
            }
            Err(e) => return Err(to_js(e)),
        }
    }
    Ok(scale)
}

/// Measurements as JS reads them: the very object `r2unet predict --measure` writes in
/// `measurements.json` (camelCase fields, `null` for an undefined value, `notes`), parsed from
/// the core's JSON.
fn measurements_js(m: &Measurements) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&m.to_json())
}

/// A field of view (or mask) as JS bytes: 255 inside, 0 outside.
fn bytes_255(on: &[bool]) -> Uint8Array {
    let bytes: Vec<u8> = on.iter().map(|&b| if b { 255 } else { 0 }).collect();
    Uint8Array::from(&bytes[..])
}

/// An options object of the JS API.
trait JsOptions: DeserializeOwned + Default {
    /// Its keys as JS spells them. serde-wasm-bindgen reads a struct's own fields only and never
    /// sees the others, so `deny_unknown_fields` alone does not refuse a misspelt key; this list
    /// does (the browser tests pass every key, and a misspelt one).
    const KEYS: &'static [&'static str];
}

/// Options from JS: `undefined` and `null` mean the defaults; anything else must be an object whose
/// keys and value types match `T`.
fn parse_options<T: JsOptions>(v: JsValue, what: &str) -> Result<T, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    if !v.is_object() {
        return Err(config_error(format!(
            "{what} options must be an object, got {}",
            type_name(&v)
        )));
    }
    for key in Object::keys(v.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !T::KEYS.contains(&key.as_str()) {
            return Err(config_error(format!(
                "{what} options: unknown option '{key}'; expected one of {}",
                T::KEYS.join(", ")
            )));
        }
    }
    serde_path_to_error::deserialize(serde_wasm_bindgen::Deserializer::from(v)).map_err(|e| {
        let at = e.path().to_string();
        // serde-wasm-bindgen's errors are JS `Error`s, displayed with an "Error: " prefix.
        let e = e.into_inner().to_string();
        let e = e.strip_prefix("Error: ").unwrap_or(&e);
        if at == "." {
            config_error(format!("{what} options: {e}"))
        } else {
            config_error(format!("{what} options: '{at}': {e}"))
        }
    })
}

fn finite(value: Option<f64>, key: &str) -> Result<Option<f64>, JsValue> {
    match value {
        Some(x) if !x.is_finite() => Err(config_error(format!(
            "option '{key}' must be a finite number, got {x}"
        ))),
        other => Ok(other),
    }
}

fn size(value: Option<f64>, key: &str) -> Result<Option<usize>, JsValue> {
    match finite(value, key)? {
        None => Ok(None),
        Some(x) if x >= 1.0 && x.fract() == 0.0 && x <= 1e6 => Ok(Some(x as usize)),
        Some(x) => Err(config_error(format!(
            "option '{key}' must be a positive integer, got {x}"
        ))),
    }
}

/// An optional function option (`undefined` and `null` mean none).
fn function(value: JsValue, key: &str) -> Result<Option<Function>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.dyn_into::<Function>().map(Some).map_err(|v| {
        config_error(format!(
            "option '{key}' must be a function, got {}",
            type_name(&v)
        ))
    })
}

/// An `AbortSignal` passed as the `signal` option (anything with a boolean `aborted`: the
/// browser's and Node's alike).
struct Signal(JsValue);

impl Signal {
    fn parse(value: JsValue) -> Result<Option<Signal>, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let aborted = Reflect::get(&value, &"aborted".into()).unwrap_or(JsValue::UNDEFINED);
        if !value.is_object() || aborted.as_bool().is_none() {
            return Err(config_error(format!(
                "option 'signal' must be an AbortSignal, got {}",
                type_name(&value)
            )));
        }
        Ok(Some(Signal(value)))
    }

    fn aborted(&self) -> bool {
        Reflect::get(&self.0, &"aborted".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// The error a run stopped by this signal rejects with: a `DOMException` named `AbortError`
    /// (as `fetch` gives; a plain `Error` of that name where there is no `DOMException`), its
    /// `cause` the signal's `reason`.
    fn error(&self, message: &str) -> JsValue {
        let e = Reflect::get(&js_sys::global(), &"DOMException".into())
            .ok()
            .and_then(|c| c.dyn_into::<Function>().ok())
            .and_then(|c| {
                Reflect::construct(&c, &Array::of2(&message.into(), &"AbortError".into())).ok()
            })
            .unwrap_or_else(|| js_error("AbortError", message));
        let reason = Reflect::get(&self.0, &"reason".into()).unwrap_or(JsValue::UNDEFINED);
        if !reason.is_undefined() {
            let _ = Reflect::set(&e, &"cause".into(), &reason);
        }
        e
    }
}

/// The longest the CPU path computes without giving the event loop a turn (milliseconds): an
/// abort (a worker's "cancel" message, a timer) is delivered within about this long plus one
/// forward pass. A turn costs 0.05 ms in Node.js and 0.07-0.09 ms in Chromium with the package's
/// CPU build (2026-12-05, loops of 200 and 1000 turns), about 0.2 % of a run. (In the module of
/// the wasm-pack browser tests every await is slow, 3 ms for a resolved promise and 18 ms for a
/// turn: a cost of that test build, not of the package.) WebGPU needs no extra turns: each
/// tile's read-back already waits on the event loop.
const YIELD_EVERY_MS: f64 = 50.0;

/// Resolves in a later task of the event loop (after the messages already queued): a
/// `MessageChannel` round trip (not clamped to 4 ms as nested `setTimeout`s are), else
/// `setTimeout(0)`. Works in windows, workers and Node.js.
async fn next_task() {
    fn get(o: &JsValue, key: &str) -> JsValue {
        Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED)
    }
    fn call(o: &JsValue, method: &str, args: &Array) {
        if let Ok(f) = get(o, method).dyn_into::<Function>() {
            let _ = f.apply(o, args);
        }
    }
    let promise = js_sys::Promise::new(&mut |resolve: Function, _reject| {
        let global = js_sys::global();
        let channel = get(&global, "MessageChannel")
            .dyn_into::<Function>()
            .ok()
            .and_then(|c| Reflect::construct(&c, &Array::new()).ok());
        if let Some(channel) = channel {
            let (port1, port2) = (get(&channel, "port1"), get(&channel, "port2"));
            let (p1, p2) = (port1.clone(), port2.clone());
            let woken = Closure::once_into_js(move || {
                // Closed, so that Node.js does not stay alive for the ports.
                call(&p1, "close", &Array::new());
                call(&p2, "close", &Array::new());
                let _ = resolve.call0(&JsValue::UNDEFINED);
            });
            let _ = Reflect::set(&port1, &"onmessage".into(), &woken);
            call(&port2, "postMessage", &Array::of1(&JsValue::NULL));
        } else if let Ok(set_timeout) = get(&global, "setTimeout").dyn_into::<Function>() {
            let _ = set_timeout.call2(&global, &resolve, &0.into());
        } else {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Bytes from a `Uint8Array`, an `ArrayBuffer` or a typed-array view.
fn bytes_of(v: &JsValue) -> Option<Vec<u8>> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Some(a.to_vec());
    }
    if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        return Some(Uint8Array::new(b).to_vec());
    }
    if ArrayBuffer::is_view(v) {
        let buffer: ArrayBuffer = Reflect::get(v, &"buffer".into()).ok()?.dyn_into().ok()?;
        let offset = Reflect::get(v, &"byteOffset".into()).ok()?.as_f64()? as u32;
        let len = Reflect::get(v, &"byteLength".into()).ok()?.as_f64()? as u32;
        return Some(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, len).to_vec());
    }
    None
}

/// An `ImageData` (or any `{width, height, data}` with RGBA bytes), or the bytes of an encoded
/// image file.
fn read_input(input: &JsValue) -> Result<RawImage, JsValue> {
    const EXPECTED: &str = "segment() takes an ImageData (or {width, height, data} with RGBA bytes) \
                            or the bytes of an image file as a Uint8Array or ArrayBuffer";
    if let Some(bytes) = bytes_of(input) {
        return image_io::decode(&bytes).map_err(to_js);
    }
    if !input.is_object() {
        return Err(js_error(
            "InputError",
            &format!("{EXPECTED}; got {}", type_name(input)),
        ));
    }
    let field = |k: &str| Reflect::get(input, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    let (w, h, data) = (field("width"), field("height"), field("data"));
    let dim = |v: &JsValue| {
        v.as_f64()
            .filter(|x| *x >= 0.0 && x.fract() == 0.0 && *x <= u32::MAX as f64)
    };
    let (Some(w), Some(h)) = (dim(&w), dim(&h)) else {
        return Err(js_error(
            "InputError",
            &format!("{EXPECTED}; the object has no integer width and height"),
        ));
    };
    let rgba = if let Some(c) = data.dyn_ref::<Uint8ClampedArray>() {
        c.to_vec()
    } else if let Some(u) = data.dyn_ref::<Uint8Array>() {
        u.to_vec()
    } else {
        return Err(js_error(
            "InputError",
            &format!("{EXPECTED}; 'data' must be a Uint8ClampedArray or Uint8Array of RGBA bytes"),
        ));
    };
    RawImage::from_rgba8(w as u32, h as u32, &rgba).map_err(to_js)
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    Reflect::set(obj, &JsValue::from_str(key), &value.into())
        .expect("setting a property of a plain object cannot fail");
}

fn now_ms() -> f64 {
    // `performance` exists in windows and workers alike; Date is the fallback.
    let perf = Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .filter(|p| p.is_object());
    if let Some(perf) = perf
        && let Ok(now) = Reflect::get(&perf, &"now".into()).and_then(|f| f.dyn_into::<Function>())
        && let Some(t) = now.call0(&perf).ok().and_then(|v| v.as_f64())
    {
        return t;
    }
    js_sys::Date::now()
}

/// `navigator.gpu.requestAdapter()` is not null: checked before burn's init, so that a browser
/// without WebGPU gets a clear message (and `auto` the CPU).
#[cfg(feature = "webgpu")]
async fn has_webgpu_adapter() -> Result<(), String> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser has no WebGPU (navigator.gpu is missing)".into());
    }
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("navigator.gpu.requestAdapter is missing")?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?
        .dyn_into()
        .map_err(|_| "requestAdapter did not return a promise")?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(
            "no WebGPU adapter is available (navigator.gpu.requestAdapter() returned null)".into(),
        );
    }
    Ok(())
}

/// The WebGPU device, initialised once per module instance (burn's runtime refuses a second
/// initialisation).
#[cfg(feature = "webgpu")]
async fn webgpu_device() -> Result<r2unet::burn::tensor::Device, String> {
    use r2unet::burn::tensor::Device;
    use r2unet::burn::tensor::wgpu::WgpuBackend;
    thread_local! {
        static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
        static INITIALISING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if let Some(device) = DEVICE.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    if INITIALISING.with(|i| i.replace(true)) {
        return Err(
            "WebGPU is being initialised by another Segmenter.create call; await that one first"
                .into(),
        );
    }
    let result = async {
        has_webgpu_adapter().await?;
        Device::wgpu_options()
            .graphics_api(WgpuBackend::WebGpu)
            .init_async()
            .await
            .map_err(|e| format!("WebGPU initialisation failed: {e}"))
    }
    .await;
    INITIALISING.with(|i| i.set(false));
    let device = result?;
    DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// Model on WebGPU, warmed up (shaders compiled, device proven) before it is handed out.
#[cfg(feature = "webgpu")]
async fn webgpu_engine(weights: &[u8]) -> Result<(Engine, ModelBundle), JsValue> {
    let device = webgpu_device()
        .await
        .map_err(|m| js_error("BackendError", &m))?;
    let (engine, bundle) = Engine::load(weights, device, BackendKind::WebGpu).map_err(to_js)?;
    engine.warm_up(&bundle).await.map_err(to_js)?;
    Ok((engine, bundle))
}

#[cfg(not(feature = "webgpu"))]
async fn webgpu_engine(_weights: &[u8]) -> Result<(Engine, ModelBundle), JsValue> {
    Err(js_error(
        "BackendError",
        "this build of r2unet-wasm has no WebGPU backend",
    ))
}

/// Largest image (pixels, after preprocessing) that the CPU path runs as one tile: DRIVE
/// (565x584) and STARE (700x605) fit. The network holds about 100 floats per input pixel at its
/// widest (`TilePlan::batch_for_memory`), so about 180 MB of wasm memory at the limit.
const CPU_WHOLE_IMAGE_PIXELS: usize = 450_000;

fn cpu_engine(weights: &[u8]) -> Result<(Engine, ModelBundle), JsValue> {
    #[cfg(feature = "flex")]
    {
        Engine::cpu(weights).map_err(to_js)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = weights;
        Err(js_error(
            "BackendError",
            "this build of r2unet-wasm has no CPU backend",
        ))
    }
}

/// Backends this build contains: `['webgpu', 'cpu']`, `['cpu']` or `['webgpu']`.
#[wasm_bindgen(js_name = compiledBackends)]
pub fn compiled_backends() -> Array {
    engine::compiled_backends()
        .into_iter()
        .map(|k| JsValue::from_str(k.name()))
        .collect()
}

/// Decodes an image file for display: `{width, height, data: Uint8ClampedArray}` (RGBA;
/// 16-bit and signed images stretched to 0..255). For formats the browser cannot show (TIFF).
#[wasm_bindgen(js_name = decodePreview)]
pub fn decode_preview(bytes: &[u8]) -> Result<JsValue, JsValue> {
    let image = image_io::decode(bytes).map_err(to_js)?;
    let out = Object::new();
    set(&out, "width", image.width);
    set(&out, "height", image.height);
    set(
        &out,
        "data",
        Uint8ClampedArray::from(&engine::display_rgba(&image)[..]),
    );
    Ok(out.into())
}

/// Measures a mask without a model: `measure(task, { width, height, mask, fov? }, scale?)`, with
/// `mask` (and the retina task's `fov`) `Uint8Array`s of `width * height`, non-zero inside; a
/// `segment` result made with `measure: true` fits as it is. Gives what `segment`'s `measure`
/// gives for the same mask, so a page can measure again at another threshold or scale without
/// running the model. Without `fov`, the retina task counts the whole image.
#[wasm_bindgen(js_name = measure)]
pub fn measure_mask(task: JsValue, image: JsValue, scale: JsValue) -> Result<JsValue, JsValue> {
    const EXPECTED: &str = "measure() takes { width, height, mask: Uint8Array, fov?: Uint8Array } \
                            (a segment() result fits)";
    let task = match task.as_string() {
        Some(name) => Task::parse(&name).map_err(to_js)?,
        None => {
            return Err(config_error(format!(
                "measure() takes a task ('retina', 'skin' or 'lung') first, got {}",
                type_name(&task)
            )));
        }
    };
    let scale = measure_scale(scale, "measure 'scale'")?;
    let input = |what: String| js_error("InputError", &format!("{EXPECTED}; {what}"));
    if !image.is_object() {
        return Err(input(format!("got {}", type_name(&image))));
    }
    let field = |k: &str| Reflect::get(&image, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    let dim = |k: &str| {
        field(k)
            .as_f64()
            .filter(|x| *x >= 1.0 && x.fract() == 0.0 && *x <= u32::MAX as f64)
            .map(|x| x as usize)
            .ok_or_else(|| input(format!("'{k}' must be a positive integer")))
    };
    let (width, height) = (dim("width")?, dim("height")?);
    let pixels = width.saturating_mul(height);
    let plane = |k: &str, v: JsValue| -> Result<Vec<u8>, JsValue> {
        let bytes = v
            .dyn_ref::<Uint8Array>()
            .map(Uint8Array::to_vec)
            .ok_or_else(|| input(format!("'{k}' must be a Uint8Array, got {}", type_name(&v))))?;
        if bytes.len() != pixels {
            return Err(input(format!(
                "'{k}' has {} values, but {width}x{height} = {pixels}",
                bytes.len()
            )));
        }
        Ok(bytes)
    };
    let mask = plane("mask", field("mask"))?;
    let fov = match field("fov") {
        v if v.is_undefined() || v.is_null() => None,
        v => Some(
            plane("fov", v)?
                .iter()
                .map(|&b| b > 0)
                .collect::<Vec<bool>>(),
        ),
    };
    let m =
        engine::measure_mask(task, &mask, width, height, fov.as_deref(), &scale).map_err(to_js)?;
    measurements_js(&m)
}

/// A loaded model on one backend. Create with `await Segmenter.create({weights, backend})`.
/// The backend is explicit: choosing one (`'auto'`) and falling back from WebGPU to the CPU is
/// `pkg/index.js`'s job, in one place.
#[wasm_bindgen]
pub struct Segmenter {
    bundle: ModelBundle,
    engine: Engine,
}

#[wasm_bindgen]
impl Segmenter {
    /// `options`: `{ weights: Uint8Array | ArrayBuffer, backend: 'webgpu' | 'cpu', task?: 'retina'
    /// | 'skin' | 'lung' }`. With `task`, weights for another task are refused.
    pub async fn create(options: JsValue) -> Result<Segmenter, JsValue> {
        let options: CreateOptions = parse_options(options, "Segmenter.create")?;
        let kind = BackendKind::parse(&options.backend).map_err(to_js)?;
        let task = options
            .task
            .map(|t| Task::parse(&t).map_err(to_js))
            .transpose()?;
        let weights = bytes_of(&options.weights).ok_or_else(|| {
            js_error("WeightsError", "Segmenter.create needs 'weights': the bytes of an r2unet weights file (Uint8Array)")
        })?;
        // Refuse a bad file before touching any device.
        let bundle = r2unet::weights::read_bundle(&weights).map_err(to_js)?;
        if let Some(task) = task
            && bundle.preprocess.task != task
        {
            return Err(js_error(
                "WeightsError",
                &format!(
                    "these weights are for task '{}', not '{}'",
                    bundle.preprocess.task.name(),
                    task.name()
                ),
            ));
        }
        let (engine, bundle) = match kind {
            BackendKind::Cpu => cpu_engine(&weights)?,
            BackendKind::WebGpu => webgpu_engine(&weights).await?,
        };
        Ok(Segmenter { bundle, engine })
    }

    /// `'webgpu'` or `'cpu'`: the backend the next `segment` runs on.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.engine.kind.name().into()
    }

    /// The task the weights were trained for: `'retina'`, `'skin'` or `'lung'`.
    #[wasm_bindgen(getter)]
    pub fn task(&self) -> String {
        self.bundle.preprocess.task.name().into()
    }

    /// The weights file's provenance (dataset, epochs, metrics), as an object of strings.
    #[wasm_bindgen(getter)]
    pub fn info(&self) -> JsValue {
        let out = Object::new();
        for (k, v) in &self.bundle.info {
            set(&out, k, v.as_str());
        }
        set(&out, "architecture", self.bundle.model.architecture());
        out.into()
    }

    /// Segments one image. `input`: an `ImageData`, `{width, height, data}` with RGBA bytes,
    /// or the bytes of a PNG, JPEG, TIFF, BMP, GIF or PPM file. `options`: `{ threshold?: number
    /// (0.5), onProgress?: (done, total) => void, tile?: number, stride?: number, flips?: boolean,
    /// signal?: AbortSignal, measure?: boolean, scale?: { pixelSizeUm?, fovAngleDeg?,
    /// pixelSpacingMm? } }`; without `tile` and `stride`, the CPU runs images up to
    /// [`CPU_WHOLE_IMAGE_PIXELS`] in one pass. Resolves to `{ width, height, probabilities:
    /// Float32Array, mask: Uint8Array, timeMs, timings: { decodeMs, preprocessMs, modelMs,
    /// finishMs, measureMs }, backend }`, and with `measure: true` also `measurements` (the core's
    /// [`Measurements`] of the mask, as `r2unet predict --measure` writes them) and for the
    /// retina task `fov` (the field of view they count in, 255 inside, for [`measure_mask`]).
    /// An aborted `signal` rejects with an `AbortError` at once, or
    /// after the forward pass running when it fires (on the CPU the run gives the event loop a
    /// turn at least every [`YIELD_EVERY_MS`], so an abort from another task gets through).
    pub async fn segment(&self, input: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
        let started = now_ms();
        let run = self.run_options(options)?;
        if let Some(signal) = &run.signal
            && signal.aborted()
        {
            return Err(signal.error("segment() was aborted before it started"));
        }
        let image = read_input(&input)?;
        let decode_ms = now_ms() - started;
        let seg = self.run(&image, &run).await?;
        self.result(
            &seg,
            run.options.threshold,
            run.measure.as_ref(),
            started,
            decode_ms,
        )
    }
}

impl Segmenter {
    /// What `segment` resolves to, for a segmentation made by this Segmenter (in one call, or in
    /// pieces): measured when `measure` gives a scale; `started` is when the call began.
    fn result(
        &self,
        seg: &engine::Segmentation,
        threshold: f32,
        measure: Option<&MeasureOptions>,
        started: f64,
        decode_ms: f64,
    ) -> Result<JsValue, JsValue> {
        let backend = self.engine.kind.name();
        let task = self.bundle.preprocess.task;
        let measure_started = now_ms();
        let measured = match measure {
            Some(scale) => Some(engine::measure(task, seg, scale).map_err(to_js)?),
            None => None,
        };
        let measure_ms = if measured.is_some() {
            now_ms() - measure_started
        } else {
            0.0
        };

        let out = Object::new();
        set(&out, "width", seg.width);
        set(&out, "height", seg.height);
        set(
            &out,
            "probabilities",
            Float32Array::from(&seg.probabilities[..]),
        );
        set(&out, "mask", Uint8Array::from(&seg.mask[..]));
        set(&out, "threshold", threshold);
        set(&out, "backend", backend);
        if let Some(m) = &measured {
            set(&out, "measurements", measurements_js(m)?);
            if task == Task::Retina {
                set(&out, "fov", bytes_255(&seg.fov));
            }
        }
        set(&out, "timeMs", now_ms() - started);
        let timings = Object::new();
        set(&timings, "decodeMs", decode_ms);
        set(&timings, "preprocessMs", seg.preprocess_ms);
        set(&timings, "modelMs", seg.model_ms);
        set(&timings, "finishMs", seg.finish_ms);
        set(&timings, "measureMs", measure_ms);
        set(&out, "timings", timings);
        Ok(out.into())
    }
}

/// `segment`'s options, checked: what one run needs.
struct RunOptions {
    options: SegmentOptions,
    progress: Option<Function>,
    signal: Option<Signal>,
    /// With `measure: true`: the scale to measure the mask at.
    measure: Option<MeasureOptions>,
}

impl Segmenter {
    /// Checks `segment`'s options (`SegmentOptions` in `pkg/index.js`) and fills in the defaults.
    fn run_options(&self, options: JsValue) -> Result<RunOptions, JsValue> {
        let options: SegmentJsOptions = parse_options(options, "segment")?;
        let mut opts = SegmentOptions::default();
        if let Some(t) = finite(options.threshold, "threshold")? {
            opts.threshold = t as f32;
        }
        let tile = size(options.tile, "tile")?;
        let stride = size(options.stride, "stride")?;
        let default_tiles = tile.is_none() && stride.is_none();
        let base = TilingConfig::new();
        let tile_side = tile.unwrap_or(base.tile);
        let stride = stride
            .unwrap_or(if tile.is_some() {
                tile_side * 3 / 4
            } else {
                base.stride
            })
            .max(1);
        // One tile per forward pass, so the progress callback moves tile by tile.
        opts.tiling = TilingConfig::new()
            .with_tile(tile_side)
            .with_stride(stride)
            .with_batch(1);
        if let Some(flips) = options.flips {
            opts.tiling = opts.tiling.with_flips(flips);
        }
        if default_tiles && self.engine.kind == BackendKind::Cpu {
            // On the CPU a fundus photo the size of DRIVE's or STARE's runs as one pass: 1.8x
            // less work than overlapping tiles.
            opts.tiling = opts.tiling.with_whole_up_to(CPU_WHOLE_IMAGE_PIXELS);
        }
        opts.validate().map_err(to_js)?;
        let given_scale = !(options.scale.is_undefined() || options.scale.is_null());
        let measure = match options.measure {
            Some(true) => Some(measure_scale(options.scale, "segment 'scale'")?),
            _ if given_scale => {
                return Err(config_error(
                    "option 'scale' is the scale of the measurements: give it with measure: true"
                        .into(),
                ));
            }
            _ => None,
        };
        Ok(RunOptions {
            options: opts,
            progress: function(options.on_progress, "onProgress")?,
            signal: Signal::parse(options.signal)?,
            measure,
        })
    }

    async fn run(
        &self,
        image: &RawImage,
        run: &RunOptions,
    ) -> Result<engine::Segmentation, JsValue> {
        // Tiles done and in all, for the abort message.
        let tiles = std::cell::Cell::new((0, 0));
        let report = |done: usize, total: usize| {
            tiles.set((done, total));
            if let Some(f) = &run.progress {
                // A throwing callback must not abort the segmentation.
                let _ = f.call2(
                    &JsValue::NULL,
                    &JsValue::from(done as u32),
                    &JsValue::from(total as u32),
                );
            }
        };
        // The first pause (after the preprocessing) always gives the event loop a turn, so an
        // abort made while the image was decoded gets through before the first forward pass.
        let mut turn = f64::NEG_INFINITY;
        let cpu = self.engine.kind == BackendKind::Cpu;
        let pause = async || {
            if cpu && now_ms() - turn >= YIELD_EVERY_MS {
                next_task().await;
                turn = now_ms();
            }
            match &run.signal {
                Some(signal) if signal.aborted() => Err(signal.error(&match tiles.get() {
                    (_, 0) => "segment() was aborted before its first tile was done".into(),
                    (done, total) => format!("segment() was aborted after {done} of {total} tiles"),
                })),
                _ => Ok(()),
            }
        };
        engine::segment(
            &self.engine,
            &self.bundle,
            image,
            &run.options,
            report,
            pause,
            now_ms,
        )
        .await
        .map_err(|halt| match halt {
            engine::Halt::Failed(e) => to_js(e),
            engine::Halt::Stopped(e) => e,
        })
    }
}

/// The pieces of an image for the package's pool of workers (its threads on the CPU).
mod pieces;
pub use pieces::*;
