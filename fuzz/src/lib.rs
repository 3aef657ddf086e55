//! The bodies of the fuzz targets: one function for each entry point of r2unet that takes
//! outside bytes. `fuzz/fuzz_targets/*.rs` hand libFuzzer's inputs to them, and
//! `crates/r2unet-core/tests/fuzz_regressions.rs` includes this file to replay every committed
//! crashing input (`crates/r2unet-core/tests/fuzz-regressions/TARGET/*`) through the very same
//! function on the stable toolchain.
//!
//! Every function returns normally for every input. Refusing an input with an error is the
//! expected outcome for most of them; a panic (an assertion below, an index out of range, an
//! arithmetic overflow), an abort (a failed allocation) or a hang is a bug in r2unet or in a
//! dependency it feeds outside bytes to.
//!
//! This file uses only crates that `r2unet-core` itself depends on (so the regression test can
//! include it) and names none of its own items by `crate::` paths.

use burn_pack::{Bytes, Reader, Writer};
use r2unet::burn::tensor::{Device, Tensor};
use r2unet::image_io::{self, MAX_PIXELS, MIN_SIDE, RawImage, SampleKind};
use r2unet::inference::predict;
use r2unet::inference::tiling::{TilePlan, TilingConfig};
use r2unet::preprocess::{self, Prepared};
use r2unet::weights::{self, Precision};
use r2unet::{ModelBundle, ModelConfig, PreprocessConfig, R2UNet, Task};
use sha2::{Digest, Sha256};

/// The targets, by the names `scripts/fuzz.sh` and the regression folders use.
pub const TARGETS: [&str; 4] = ["decode", "weights", "preprocess", "segment_input"];

/// Runs one input through the named target.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "decode" => decode(data),
        "weights" => weights(data),
        "preprocess" => preprocess(data),
        "segment_input" => segment_input(data),
        other => panic!("unknown fuzz target '{other}'; expected one of {TARGETS:?}"),
    }
}

/// Images at most this many pixels go on to preprocessing and the model (256 x 256, the lung
/// model's input), so that each input takes milliseconds; larger ones are only decoded.
pub const MAX_FUZZ_PIXELS: usize = 256 * 256;
/// The segment target runs the model only on plans of at most this many tiles (JS may ask for
/// 8-pixel tiles with stride 1: tens of thousands of forward passes, slow but not a bug).
const MAX_FUZZ_TILES: usize = 16;
/// The segment target runs the network on tiles of at most this many pixels (64 x 64; the
/// `tile` option picks them), and a pointwise stand-in through the same tiling on larger ones.
const MAX_MODEL_TILE_PIXELS: usize = 64 * 64;
/// Same as `js.rs`'s `CPU_WHOLE_IMAGE_PIXELS`: with the default tiling the browser's CPU path
/// runs images of up to this many pixels as one tile.
const CPU_WHOLE_IMAGE_PIXELS: usize = 450_000;

/// Reads fixed-size fields from the front of an input; past its end every field is zero.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// What every image r2unet hands on must satisfy.
fn check_image(img: &RawImage) {
    assert!(
        img.channels == 1 || img.channels == 3,
        "{} channels",
        img.channels
    );
    assert_eq!(img.data.len(), img.len() * img.channels, "sample count");
    assert!(
        img.width >= MIN_SIDE && img.height >= MIN_SIDE,
        "{}x{} passed the minimum side",
        img.width,
        img.height
    );
    assert!(
        img.len() as u64 <= MAX_PIXELS,
        "{}x{} passed the pixel limit",
        img.width,
        img.height
    );
}

// ---------------------------------------------------------------------------------------------
// decode: `image_io::decode`, every format (PNG, JPEG, TIFF, GIF, BMP, PPM/PGM), and the label
// path (`decode_label`: the same decode, then a binary plane).

/// Any bytes as an image file.
pub fn decode(data: &[u8]) {
    if let Ok(img) = image_io::decode(data) {
        check_image(&img);
        assert_eq!(img.to_binary().len(), img.len());
        assert_eq!(img.luma().len(), img.len());
    }
}

// ---------------------------------------------------------------------------------------------
// weights: `weights::read_bundle`, `weights::from_bytes` (the model the metadata describes,
// built and loaded), `stored_precision` and `seal_legacy`.

/// The tag after the SHA-256 digest that ends every weights file (`weights.rs`).
const DIGEST_TAG: &[u8; 8] = b"r2unet#1";
const TRAILER_LEN: usize = 32 + DIGEST_TAG.len();
/// Marks a structured input of the weights target: the metadata strings themselves.
pub const META_MAGIC: &[u8] = b"r2unet-fuzz-meta\n";
/// The metadata keys a structured input sets, in order (`weights.rs`).
const META_KEYS: [&str; 6] = [
    "r2unet.format",
    "r2unet.model",
    "r2unet.preprocess",
    "r2unet.precision",
    "r2unet.int8_scales",
    "r2unet.info",
];

/// `pack` with the digest trailer a weights file ends with.
pub fn seal(pack: &[u8]) -> Vec<u8> {
    let mut out = pack.to_vec();
    out.extend_from_slice(&Sha256::digest(pack));
    out.extend_from_slice(DIGEST_TAG);
    out
}

/// A weights file's bytes before its trailer (all of them when it has none).
fn unsealed(bytes: &[u8]) -> &[u8] {
    if bytes.len() >= TRAILER_LEN && bytes.ends_with(DIGEST_TAG) {
        &bytes[..bytes.len() - TRAILER_LEN]
    } else {
        bytes
    }
}

/// Any bytes as a weights file: as they are (almost all refused by the digest), and sealed
/// again with a fresh digest, so that the burnpack container, its metadata and the tensors
/// behind the digest are fuzzed too (a digest is no defence against a crafted file: anyone can
/// compute one). An input starting with [`META_MAGIC`] gives the metadata strings instead.
pub fn weights(data: &[u8]) {
    if let Some(rest) = data.strip_prefix(META_MAGIC) {
        return weights_meta(rest);
    }
    weights_file(data);
    let pack = unsealed(data);
    weights_file(&seal(pack));
    if let Ok(sealed) = weights::seal_legacy(pack) {
        assert!(weights::read_bundle(&sealed).is_ok());
    }
}

fn weights_file(bytes: &[u8]) {
    let bundle = weights::read_bundle(bytes);
    let precision = weights::stored_precision(bytes);
    let device = Device::flex();
    let Ok((model, loaded)) = weights::from_bytes(bytes, &device) else {
        return;
    };
    assert_eq!(bundle.as_ref().ok(), Some(&loaded), "read_bundle disagrees");
    assert!(precision.is_ok());
    // The smallest input the model takes: whatever numbers the tensors hold, it must run.
    let side = loaded.model.size_multiple();
    let x = Tensor::<4>::zeros([1, loaded.model.in_channels, side, side], &device);
    assert_eq!(model.forward(x).dims(), [1, 1, side, side]);
}

/// Structured input: the first byte picks the tensors (those of a tiny model stored in f32,
/// f16 or int8), then the values of [`META_KEYS`] separated by NUL bytes (fewer fields: the
/// remaining keys are absent). The pack is written with these metadata, sealed and read.
fn weights_meta(rest: &[u8]) {
    let mut input = Input(rest);
    let set = input.u8() as usize % 3;
    let fields = input.rest();
    let pack = TINY_PACKS.with(|p| p[set].clone());
    let tensors = Reader::from_bytes(Bytes::from_bytes_vec(pack))
        .and_then(Reader::into_tensors)
        .expect("the tiny model's own pack reads");
    let mut writer = Writer::new(tensors);
    if !fields.is_empty() {
        for (key, value) in META_KEYS.iter().zip(fields.split(|&b| b == 0)) {
            writer = writer.with_metadata(key, &String::from_utf8_lossy(value));
        }
    }
    let Ok(pack) = writer.into_bytes() else {
        return;
    };
    weights_file(&seal(&pack));
}

/// A seed of the structured weights input: the metadata of the tiny model stored at `precision`.
pub fn meta_seed(precision: Precision) -> Vec<u8> {
    let set = match precision {
        Precision::F32 => 0,
        Precision::F16 => 1,
        Precision::Int8 => 2,
    };
    let pack = TINY_PACKS.with(|p| p[set].clone());
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(pack)).expect("tiny pack");
    let mut out = META_MAGIC.to_vec();
    out.push(set as u8);
    for (i, key) in META_KEYS.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(
            reader
                .metadata()
                .get(*key)
                .map_or("", String::as_str)
                .as_bytes(),
        );
    }
    out
}

/// The smallest r2unet model (widths 2-4, retina), as a weights file.
pub fn tiny_weights(precision: Precision) -> Vec<u8> {
    tiny_weights_with(&[2, 4], Task::Retina, precision)
}

/// An untrained model file with these widths for `task`.
pub fn tiny_weights_with(widths: &[usize], task: Task, precision: Precision) -> Vec<u8> {
    let config = ModelConfig::new()
        .with_widths(widths.to_vec())
        .with_in_channels(task.channels());
    let model = config.init(&Device::flex());
    let bundle = ModelBundle {
        model: config,
        preprocess: PreprocessConfig::for_task(task),
        info: [("dataset".to_string(), "fuzz seed".to_string())].into(),
    };
    weights::to_bytes(&model, &bundle, precision).expect("a tiny model serialises")
}

thread_local! {
    /// The tiny model's burnpack (no trailer) in f32, f16 and int8.
    static TINY_PACKS: [Vec<u8>; 3] = [Precision::F32, Precision::F16, Precision::Int8]
        .map(|p| unsealed(&tiny_weights(p)).to_vec());
}

// ---------------------------------------------------------------------------------------------
// preprocess: `preprocess::prepare` for each task, on decoded files and on images of any size
// (1x1 up) and content, with the shipped models' configurations, the defaults, and any
// configuration a weights file could carry.

/// The preprocessing configurations of the shipped models (`models/*.bpk`, read once).
fn shipped_configs() -> [PreprocessConfig; 3] {
    thread_local! {
        static SHIPPED: [PreprocessConfig; 3] = [
            include_bytes!("../../models/retina.bpk").as_slice(),
            include_bytes!("../../models/skin.bpk").as_slice(),
            include_bytes!("../../models/lung.bpk").as_slice(),
        ]
        .map(|b| weights::read_bundle(b).expect("a shipped model reads").preprocess);
    }
    SHIPPED.with(|s| s.clone())
}

/// An image of any size from 1x1 to 256x256, any sample kind, the samples taken from `input`
/// (repeated when it is short; f32 samples may be NaN or infinite).
fn synthetic_image(mut input: Input) -> RawImage {
    let width = 1 + u32::from(input.u16()) % 256;
    let height = 1 + u32::from(input.u16()) % 256;
    let channels = if input.u8() & 1 == 0 { 1 } else { 3 };
    let kind = [
        SampleKind::U8,
        SampleKind::U16,
        SampleKind::I16,
        SampleKind::F32,
    ][input.u8() as usize % 4];
    let bytes = input.rest();
    let per = match kind {
        SampleKind::U8 => 1,
        SampleKind::U16 | SampleKind::I16 => 2,
        SampleKind::F32 => 4,
    };
    let n = width as usize * height as usize * channels;
    let sample = |i: usize| -> f32 {
        if bytes.len() < per {
            return 0.0;
        }
        let at = (i * per) % (bytes.len() - bytes.len() % per);
        let b = &bytes[at..at + per];
        match kind {
            SampleKind::U8 => f32::from(b[0]),
            SampleKind::U16 => f32::from(u16::from_le_bytes([b[0], b[1]])),
            SampleKind::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])),
            SampleKind::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    };
    RawImage {
        width,
        height,
        channels,
        kind,
        data: (0..n).map(sample).collect(),
    }
}

/// A preprocessing configuration from 22 bytes: any values, as a weights file could carry.
fn fuzzed_config(input: &mut Input) -> PreprocessConfig {
    PreprocessConfig {
        task: Task::ALL[input.u8() as usize % 3],
        // Up to 600 (validate refuses under 16 and over 2048): larger squares cost time, not
        // coverage.
        size: usize::from(input.u16() % 600),
        fov_width: usize::from(input.u16()),
        clahe_grid: usize::from(input.u8()),
        clahe_clip: input.f32(),
        gamma: input.f32(),
        hu_low: input.f32(),
        hu_high: input.f32(),
    }
}

/// The 22 bytes [`fuzzed_config`] reads back as `config` (for seeds).
pub fn config_bytes(config: &PreprocessConfig) -> Vec<u8> {
    let mut out = vec![
        Task::ALL
            .iter()
            .position(|t| *t == config.task)
            .unwrap_or(0) as u8,
    ];
    out.extend((config.size.min(599) as u16).to_le_bytes());
    out.extend((config.fov_width.min(65535) as u16).to_le_bytes());
    out.push(config.clahe_grid.min(255) as u8);
    for v in [
        config.clahe_clip,
        config.gamma,
        config.hu_low,
        config.hu_high,
    ] {
        out.extend(v.to_le_bytes());
    }
    out
}

/// The bytes [`synthetic_image`] reads back as `image` (for seeds; sides up to 256).
pub fn synthetic_bytes(image: &RawImage) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(((image.width - 1) as u16).to_le_bytes());
    out.extend(((image.height - 1) as u16).to_le_bytes());
    out.push(u8::from(image.channels == 3));
    let kind = [
        SampleKind::U8,
        SampleKind::U16,
        SampleKind::I16,
        SampleKind::F32,
    ];
    out.push(kind.iter().position(|k| *k == image.kind).unwrap_or(0) as u8);
    for &v in &image.data {
        match image.kind {
            SampleKind::U8 => out.push(v as u8),
            SampleKind::U16 => out.extend((v as u16).to_le_bytes()),
            SampleKind::I16 => out.extend((v as i16).to_le_bytes()),
            SampleKind::F32 => out.extend(v.to_le_bytes()),
        }
    }
    out
}

/// Layout: one byte of flags (bit 0: the image is an encoded file, not synthetic; bits 1-3:
/// which configuration: 0-2 the shipped retina, skin and lung models', 3-5 the tasks' defaults,
/// 6 the fuzzed one, 7 all shipped ones; bit 4: a retina FOV mask is given, bit 5: of the wrong
/// size), 22 bytes of [`fuzzed_config`], then the image: a file, or a synthetic one's header
/// (width, height: u16; channels, kind: u8) and samples.
pub fn preprocess(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.u8();
    let fuzzed = fuzzed_config(&mut input);
    let image = if flags & 1 == 1 {
        match image_io::decode(input.rest()) {
            Ok(img) if img.len() <= MAX_FUZZ_PIXELS => img,
            _ => return,
        }
    } else {
        synthetic_image(input)
    };
    let shipped = shipped_configs();
    let configs: Vec<(PreprocessConfig, bool)> = match (flags >> 1) & 7 {
        i @ 0..=2 => vec![(shipped[i as usize].clone(), true)],
        i @ 3..=5 => vec![(PreprocessConfig::for_task(Task::ALL[i as usize - 3]), true)],
        6 => vec![(fuzzed, false)],
        _ => shipped.into_iter().map(|c| (c, true)).collect(),
    };
    let mask: Option<Vec<bool>> = (flags & 16 != 0).then(|| {
        let n = image.len() + usize::from(flags & 32 != 0);
        (0..n)
            .map(|i| image.data[i % image.data.len()] > 0.0)
            .collect()
    });
    for (config, standard) in configs {
        let Ok(prepared) = preprocess::prepare(&config, &image, mask.as_deref()) else {
            continue;
        };
        check_prepared(&prepared, &image);
        // Integer samples and a configuration r2unet wrote: the model gets finite numbers.
        if standard && image.kind != SampleKind::F32 {
            assert!(
                prepared.data.iter().all(|v| v.is_finite()),
                "non-finite model input"
            );
        }
    }
}

fn check_prepared(p: &Prepared, image: &RawImage) {
    assert_eq!(p.data.len(), p.channels * p.width * p.height, "model input");
    assert_eq!(p.fov.len(), p.width * p.height, "fov");
    assert_eq!(p.source_fov.len(), image.len(), "source fov");
    assert_eq!(
        (p.source_width, p.source_height),
        (image.width as usize, image.height as usize)
    );
    assert_eq!(p.restore(&vec![0.5; p.width * p.height]).len(), image.len());
}

// ---------------------------------------------------------------------------------------------
// segment_input: what `Segmenter.segment` does with its input and options (crates/r2unet-wasm:
// `read_input` in js.rs, `engine::segment`), on the core functions it calls: the bytes of a file
// (`image_io::decode`) or `{width, height, data}` RGBA (`RawImage::from_rgba8`), then the
// options' checks, `preprocess::prepare` with the shipped model's configuration, the tiled
// forward pass of a small untrained model on the CPU (burn-flex; on tiles up to 64 x 64, a
// pointwise stand-in through the same tiling on larger ones), the restore and the mask.

thread_local! {
    /// Per task, an untrained model with widths 2-4-8-16: as many levels as the shipped models
    /// (so the same size multiple, 8, and the same tiling), at a tiny fraction of the work.
    static SEGMENT_MODELS: [R2UNet; 3] = Task::ALL.map(|task| {
        ModelConfig::new()
            .with_widths(vec![2, 4, 8, 16])
            .with_in_channels(task.channels())
            .init(&Device::flex())
    });
}

/// Layout: one byte of flags (bit 0: `{width, height, data}` RGBA, else file bytes; bits 1-2:
/// task, as the weights file's; bit 3: `flips`), the options `tile` and `stride` (u16 each; 0
/// is "not given"), `threshold` (u8 / 200), then the input: file bytes, or width and height
/// (u32 each, any value, as JS may give) and the RGBA bytes.
pub fn segment_input(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.u8();
    let task = (flags >> 1) as usize % 3;
    let (tile, stride) = (input.u16(), input.u16());
    let threshold = f32::from(input.u8()) / 200.0;
    let image = if flags & 1 == 1 {
        let (width, height) = (input.u32(), input.u32());
        RawImage::from_rgba8(width, height, input.rest())
    } else {
        image_io::decode(input.rest())
    };
    let Ok(image) = image else {
        return;
    };
    check_image(&image);
    if image.len() > MAX_FUZZ_PIXELS {
        return;
    }
    // The options as `Segmenter::run_options` turns them into a tiling (`js.rs`).
    let base = TilingConfig::new();
    let tile = (tile > 0).then_some(usize::from(tile));
    let stride = (stride > 0).then_some(usize::from(stride));
    let default_tiles = tile.is_none() && stride.is_none();
    let tile_side = tile.unwrap_or(base.tile);
    let stride = stride.unwrap_or(if tile.is_some() {
        (tile_side * 3 / 4).max(1)
    } else {
        base.stride
    });
    let mut tiling = TilingConfig::new()
        .with_tile(tile_side)
        .with_stride(stride)
        .with_batch(1)
        .with_flips(flags & 8 != 0);
    if default_tiles {
        tiling = tiling.with_whole_up_to(CPU_WHOLE_IMAGE_PIXELS);
    }
    if !(0.0..=1.0).contains(&threshold) || tiling.validate().is_err() {
        return;
    }
    let config = &shipped_configs()[task];
    let Ok(prepared) = preprocess::prepare(config, &image, None) else {
        return;
    };
    check_prepared(&prepared, &image);
    let plan = TilePlan::new(
        prepared.channels,
        prepared.height,
        prepared.width,
        &tiling,
        8,
    )
    .expect("a validated tiling plans");
    if plan.positions.len() > MAX_FUZZ_TILES {
        return;
    }
    let probs = if plan.tile_w * plan.tile_h <= MAX_MODEL_TILE_PIXELS {
        SEGMENT_MODELS
            .with(|models| {
                predict::probabilities(
                    &models[task],
                    &Device::flex(),
                    &prepared,
                    &tiling,
                    |_, _| {},
                )
            })
            .expect("the CPU forward pass of a prepared image")
    } else {
        // The same plan, extraction and blending as `predict::probabilities`, with a pointwise
        // stand-in for the network: the model itself runs only on small tiles, where an input
        // takes milliseconds instead of a second.
        let mut acc = plan.accumulator();
        let n = plan.tile_w * plan.tile_h;
        for tiles in plan.positions.chunks(tiling.batch) {
            let x = plan.extract(&prepared.data, tiles);
            assert_eq!(x.len(), tiles.len() * plan.channels * n);
            let y: Vec<f32> = (0..tiles.len())
                .flat_map(|t| x[t * plan.channels * n..][..n].iter())
                .map(|v| 1.0 / (1.0 + (-v).exp()))
                .collect();
            acc.add(tiles, &y);
        }
        acc.finish()
    };
    assert_eq!(probs.len(), prepared.width * prepared.height);
    let restored = prepared.restore(&probs);
    assert_eq!(restored.len(), image.len());
    assert_eq!(predict::mask(&restored, threshold).len(), image.len());
}
