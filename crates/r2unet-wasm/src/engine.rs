//! The model on one device, and one image through it. Plain Rust (no JS types), so the native
//! tests run the very code the browser runs.
use r2unet::burn::tensor::{Device, Tensor};
use r2unet::image_io::RawImage;
use r2unet::inference::predict;
use r2unet::inference::tiling::TilingConfig;
use r2unet::measure::{MeasureOptions, Measurements};
use r2unet::{Error, ModelBundle, R2UNet, Result, Task, preprocess, weights};

/// Which compute backend an [`Engine`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// WebGPU (the browser's GPU, or SwiftShader's emulation of one).
    WebGpu,
    /// burn-flex on the CPU.
    Cpu,
}

impl BackendKind {
    /// The name the JS API uses: `'webgpu'` or `'cpu'`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::WebGpu => "webgpu",
            BackendKind::Cpu => "cpu",
        }
    }

    /// A backend by its JS name. `'auto'` is refused: choosing a backend, and falling back from
    /// WebGPU to the CPU, is the package's job (`pkg/index.js`), in one place.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "webgpu" => Ok(BackendKind::WebGpu),
            "cpu" => Ok(BackendKind::Cpu),
            other => Err(Error::Config(format!(
                "backend '{other}': the raw module takes 'webgpu' or 'cpu' ('auto' and the \
                 fallback to the CPU are the package's: import Segmenter from r2unet-wasm)"
            ))),
        }
    }
}

/// Which backends this build of the module contains.
pub fn compiled_backends() -> Vec<BackendKind> {
    let mut kinds = Vec::new();
    if cfg!(feature = "webgpu") {
        kinds.push(BackendKind::WebGpu);
    }
    if cfg!(feature = "flex") {
        kinds.push(BackendKind::Cpu);
    }
    kinds
}

/// A loaded model on a device.
pub struct Engine {
    pub model: R2UNet,
    pub device: Device,
    pub kind: BackendKind,
}

impl Engine {
    /// Builds the model described by `bytes` directly on `device` (built elsewhere and moved,
    /// burn's BatchNorm panics on WebGPU: TOOLCHAIN.md).
    pub fn load(bytes: &[u8], device: Device, kind: BackendKind) -> Result<(Self, ModelBundle)> {
        let (model, bundle) = weights::from_bytes(bytes, &device)?;
        Ok((
            Self {
                model,
                device,
                kind,
            },
            bundle,
        ))
    }

    /// The CPU engine (burn-flex).
    #[cfg(feature = "flex")]
    pub fn cpu(bytes: &[u8]) -> Result<(Self, ModelBundle)> {
        Self::load(bytes, Device::flex(), BackendKind::Cpu)
    }

    /// One small forward pass read back asynchronously: on WebGPU this compiles the shaders and
    /// proves the device works before the first real image.
    pub async fn warm_up(&self, bundle: &ModelBundle) -> Result<()> {
        let side = bundle.model.size_multiple().max(8) * 2;
        let x = Tensor::<4>::zeros([1, bundle.model.in_channels, side, side], &self.device);
        let y = self.model.forward(x);
        let data = y.into_data_async().await.map_err(|e| Error::ReadBack {
            what: "the warm-up pass",
            source: Box::new(e),
        })?;
        let values = data.try_to_vec::<f32>().map_err(|e| Error::ReadBack {
            what: "the warm-up pass",
            source: Box::new(e),
        })?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::Backend(
                "warm-up forward pass gave non-finite values".into(),
            ));
        }
        Ok(())
    }
}

/// What one segmentation gives back, at the input's size.
pub struct Segmentation {
    pub width: u32,
    pub height: u32,
    /// Row-major, `width * height`, 0..1 (0 outside the field of view for retina).
    pub probabilities: Vec<f32>,
    /// 0 or 255: `probability >= threshold`.
    pub mask: Vec<u8>,
    /// Milliseconds spent in preprocessing, the model (tiles and blending) and restoring to the
    /// input's size with the threshold, by the clock `segment` was given (zero without one).
    pub preprocess_ms: f64,
    pub model_ms: f64,
    pub finish_ms: f64,
    /// The field of view at the input's size (the retina task's dark border excluded; all true
    /// for skin and lung): what [`measure`] counts in.
    pub fov: Vec<bool>,
}

/// Options of one segmentation.
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    pub threshold: f32,
    pub tiling: TilingConfig,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            tiling: TilingConfig::new(),
        }
    }
}

impl SegmentOptions {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(Error::Config(format!(
                "threshold must be in 0..1, got {}",
                self.threshold
            )));
        }
        self.tiling.validate()
    }
}

/// Why [`segment`] did not finish: the image, the weights or the device failed, or the caller's
/// `pause` stopped it (a cancelled run), with the error `pause` gave.
#[derive(Debug)]
pub enum Halt<E> {
    Failed(Error),
    Stopped(E),
}

impl<E> From<Error> for Halt<E> {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

/// The whole path for one decoded image: preprocess (the task's definition from the weights
/// file), tiled forward pass with async read-back, back to the input's size, threshold. `now`
/// is a millisecond clock for the stage times (`performance.now` in the browser).
/// `progress(done, total)` is called after each batch of tiles; `pause` is awaited after the
/// preprocessing and after every forward pass (each tile, each of the four flips): the browser
/// yields to its event loop there and stops a cancelled run by returning an error.
pub async fn segment<E>(
    engine: &Engine,
    bundle: &ModelBundle,
    image: &RawImage,
    options: &SegmentOptions,
    progress: impl FnMut(usize, usize),
    mut pause: impl AsyncFnMut() -> std::result::Result<(), E>,
    now: impl Fn() -> f64,
) -> std::result::Result<Segmentation, Halt<E>> {
    options.validate()?;
    let t0 = now();
    let prepared = preprocess::prepare(&bundle.preprocess, image, None)?;
    let t1 = now();
    pause().await.map_err(Halt::Stopped)?;
    let probs = predict::probabilities_async_with(
        &engine.model,
        &engine.device,
        &prepared,
        &options.tiling,
        progress,
        async || pause().await.map_err(Halt::Stopped),
    )
    .await?;
    let t2 = now();
    let mut seg = finish(image, &prepared, &probs, options.threshold);
    (seg.preprocess_ms, seg.model_ms, seg.finish_ms) = (t1 - t0, t2 - t1, now() - t2);
    Ok(seg)
}

/// The same, blocking (native only: synchronous reads panic on WebGPU in the browser).
#[cfg(not(target_family = "wasm"))]
pub fn segment_blocking(
    engine: &Engine,
    bundle: &ModelBundle,
    image: &RawImage,
    options: &SegmentOptions,
) -> Result<Segmentation> {
    options.validate()?;
    let prepared = preprocess::prepare(&bundle.preprocess, image, None)?;
    let probs = predict::probabilities(
        &engine.model,
        &engine.device,
        &prepared,
        &options.tiling,
        |_, _| {},
    )?;
    Ok(finish(image, &prepared, &probs, options.threshold))
}

/// One image's forward passes as pieces for several workers (the package's pool of CPU modules,
/// each with its own [`Engine`]): made by [`split`], each piece run by [`forward_piece`] on any
/// engine with the same weights, its output handed back with [`Pieces::set`], then
/// [`Pieces::finish`] puts them together and restores the input's size, as [`segment`] does.
pub struct Pieces {
    image: RawImage,
    prepared: preprocess::Prepared,
    split: r2unet::inference::split::Split,
    outputs: Vec<Option<Vec<f32>>>,
    threshold: f32,
    /// Milliseconds of the preprocessing, by the clock [`split`] was given.
    pub preprocess_ms: f64,
}

/// Preprocesses `image` and cuts its forward passes into pieces for `parts` workers
/// (`r2unet::inference::split`: bands of a one-pass image, else the plan's tiles).
pub fn split(
    engine: &Engine,
    bundle: &ModelBundle,
    image: RawImage,
    options: &SegmentOptions,
    parts: usize,
    now: impl Fn() -> f64,
) -> Result<Pieces> {
    options.validate()?;
    let t0 = now();
    let prepared = preprocess::prepare(&bundle.preprocess, &image, None)?;
    let split = r2unet::inference::split::Split::for_model(
        &engine.model,
        bundle.preprocess.task,
        &prepared,
        &options.tiling,
        parts.max(1),
    )?;
    Ok(Pieces {
        outputs: vec![None; split.len()],
        image,
        prepared,
        split,
        threshold: options.threshold,
        preprocess_ms: now() - t0,
    })
}

impl Pieces {
    /// Pieces in all.
    pub fn len(&self) -> usize {
        self.split.len()
    }

    pub fn is_empty(&self) -> bool {
        self.split.is_empty()
    }

    /// Bands (a one-pass image cut in rows) or tiles.
    pub fn regions(&self) -> usize {
        self.split.regions()
    }

    pub fn is_bands(&self) -> bool {
        self.split.is_bands()
    }

    /// Piece `i`'s shape and mirroring, and its input.
    pub fn piece(&self, i: usize) -> Result<(r2unet::inference::split::Piece, Vec<f32>)> {
        self.check(i)?;
        Ok((
            self.split.piece(i),
            self.split.input(&self.prepared.data, i),
        ))
    }

    fn check(&self, i: usize) -> Result<()> {
        if i >= self.len() {
            return Err(Error::Config(format!(
                "piece {i} of {}: no such piece",
                self.len()
            )));
        }
        Ok(())
    }

    /// Piece `i`'s output (what [`forward_piece`] gave).
    pub fn set(&mut self, i: usize, output: Vec<f32>) -> Result<()> {
        self.check(i)?;
        let [n, _, h, w] = self.split.piece(i).shape;
        if output.len() != n * h * w {
            return Err(Error::Config(format!(
                "piece {i}'s output has {} values, expected {}",
                output.len(),
                n * h * w
            )));
        }
        self.outputs[i] = Some(output);
        Ok(())
    }

    /// Every piece's output put together, at the input's size, thresholded; `model_ms` is what
    /// the caller measured for the pieces.
    pub fn finish(self, model_ms: f64, now: impl Fn() -> f64) -> Result<Segmentation> {
        let t0 = now();
        let missing = self.outputs.iter().filter(|o| o.is_none()).count();
        if missing > 0 {
            return Err(Error::Config(format!(
                "{missing} of {} pieces have no output",
                self.len()
            )));
        }
        let outputs: Vec<Vec<f32>> = self.outputs.into_iter().flatten().collect();
        let probs = self.split.assemble(&outputs)?;
        let mut seg = finish(&self.image, &self.prepared, &probs, self.threshold);
        (seg.preprocess_ms, seg.model_ms) = (self.preprocess_ms, model_ms);
        seg.finish_ms = now() - t0;
        Ok(seg)
    }
}

/// One piece through `engine`'s model: sigmoid probabilities `[1, 1, rows, width]`.
pub async fn forward_piece(
    engine: &Engine,
    input: Vec<f32>,
    piece: r2unet::inference::split::Piece,
) -> Result<Vec<f32>> {
    r2unet::inference::split::forward_piece(&engine.model, &engine.device, input, piece).await
}

fn finish(
    image: &RawImage,
    prepared: &preprocess::Prepared,
    probs: &[f32],
    threshold: f32,
) -> Segmentation {
    let probabilities = prepared.restore(probs);
    let mask = predict::mask(&probabilities, threshold);
    Segmentation {
        width: image.width,
        height: image.height,
        probabilities,
        mask,
        preprocess_ms: 0.0,
        model_ms: 0.0,
        finish_ms: 0.0,
        fov: prepared.source_fov.clone(),
    }
}

/// The measurements of a segmentation's mask for `task`, as `r2unet predict --measure` makes
/// them: the core's [`r2unet::measure::measure`], counting inside the field of view for the
/// retina task and over the whole image for the others.
pub fn measure(task: Task, seg: &Segmentation, options: &MeasureOptions) -> Result<Measurements> {
    measure_mask(
        task,
        &seg.mask,
        seg.width as usize,
        seg.height as usize,
        Some(&seg.fov),
        options,
    )
}

/// The same for any mask (row-major, non-zero = in the mask) and, for the retina task, its field
/// of view (`None`: the whole image). A field of view given for another task is dropped, as the
/// CLI never passes one there.
pub fn measure_mask(
    task: Task,
    mask: &[u8],
    width: usize,
    height: usize,
    fov: Option<&[bool]>,
    options: &MeasureOptions,
) -> Result<Measurements> {
    let binary: Vec<bool> = mask.iter().map(|&m| m > 0).collect();
    let fov = fov.filter(|_| task == Task::Retina);
    r2unet::measure::measure(task, &binary, width, height, fov, options)
}

/// Input as 8-bit RGBA for display, so the page can show formats the browser cannot decode (TIFF,
/// 16-bit CT). Signed images are CT slices in Hounsfield units: shown through the lung task's own
/// window, so the preview is what the model sees (a min-max stretch would spend the grey levels on
/// the air outside the scanner's circle, about -2000). Unsigned 16-bit and float images are
/// stretched from their minimum to their maximum.
pub fn display_rgba(image: &RawImage) -> Vec<u8> {
    use r2unet::image_io::SampleKind;
    let (lo, hi) = match image.kind {
        SampleKind::U8 => (0.0, 255.0),
        SampleKind::I16 => {
            let lung = r2unet::PreprocessConfig::for_task(r2unet::Task::Lung);
            (lung.hu_low, lung.hu_high)
        }
        _ => {
            let (lo, hi) = image
                .data
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            (lo, hi.max(lo + 1e-6))
        }
    };
    let px = |v: f32| (((v - lo) / (hi - lo)) * 255.0).round().clamp(0.0, 255.0) as u8;
    let mut out = Vec::with_capacity(image.len() * 4);
    for p in image.data.chunks_exact(image.channels) {
        if image.channels == 1 {
            let g = px(p[0]);
            out.extend([g, g, g, 255]);
        } else {
            out.extend([px(p[0]), px(p[1]), px(p[2]), 255]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_unknown_ones_are_refused() {
        assert_eq!(BackendKind::parse("cpu").unwrap(), BackendKind::Cpu);
        assert_eq!(BackendKind::parse("webgpu").unwrap(), BackendKind::WebGpu);
        for other in ["auto", "cuda", ""] {
            let err = BackendKind::parse(other).unwrap_err().to_string();
            assert!(err.contains("'webgpu' or 'cpu'"), "{err}");
        }
    }

    #[test]
    fn out_of_range_threshold_is_refused() {
        let o = SegmentOptions {
            threshold: 1.5,
            ..Default::default()
        };
        assert!(o.validate().unwrap_err().to_string().contains("threshold"));
    }

    /// The retina task counts inside the field of view, the others over the whole image (a field
    /// of view is not even passed to them, so their notes do not say one was ignored).
    #[test]
    fn measure_counts_the_retina_task_inside_the_field_of_view() {
        let (w, h) = (40usize, 30usize);
        let mask: Vec<u8> = (0..w * h)
            .map(|i| if (10..14).contains(&(i % w)) { 255 } else { 0 })
            .collect();
        let fov: Vec<bool> = (0..w * h).map(|i| i / w < 20).collect();
        let seg = Segmentation {
            width: w as u32,
            height: h as u32,
            probabilities: vec![0.0; w * h],
            mask,
            preprocess_ms: 0.0,
            model_ms: 0.0,
            finish_ms: 0.0,
            fov,
        };
        let opts = MeasureOptions::default();
        let json = |m: Measurements| m.to_json();
        let retina = json(measure(Task::Retina, &seg, &opts).unwrap());
        assert!(retina.contains("\"fovPixels\": 800"), "{retina}");
        assert!(retina.contains("\"vesselPixels\": 80,"), "{retina}");
        assert!(retina.contains("\"vesselAreaFraction\": 0.1,"), "{retina}");
        let skin = json(measure(Task::Skin, &seg, &opts).unwrap());
        assert!(skin.contains("\"areaPx\": 120,"), "{skin}");
        assert!(!skin.contains("field of view"), "{skin}");
        let lung = json(measure(Task::Lung, &seg, &opts).unwrap());
        assert!(lung.contains("\"areaPx\": 120,"), "{lung}");
    }

    #[test]
    fn display_stretches_sixteen_bit_grey() {
        let img = RawImage {
            width: 2,
            height: 1,
            channels: 1,
            kind: r2unet::image_io::SampleKind::U16,
            data: vec![1000.0, 3000.0],
        };
        assert_eq!(display_rgba(&img), vec![0, 0, 0, 255, 255, 255, 255, 255]);
    }

    #[test]
    fn display_windows_signed_ct_like_the_lung_model() {
        let lung = r2unet::PreprocessConfig::for_task(r2unet::Task::Lung);
        let mid = (lung.hu_low + lung.hu_high) / 2.0;
        let img = RawImage {
            width: 4,
            height: 1,
            channels: 1,
            kind: r2unet::image_io::SampleKind::I16,
            // Air outside the scanner's circle, the window's ends, its middle.
            data: vec![-2600.0, lung.hu_low, mid, lung.hu_high],
        };
        let grey: Vec<u8> = display_rgba(&img).chunks(4).map(|p| p[0]).collect();
        assert_eq!(grey, vec![0, 0, 128, 255]);
    }
}
