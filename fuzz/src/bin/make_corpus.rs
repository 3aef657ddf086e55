//! Writes the seed corpus of every fuzz target into OUT/TARGET/ (replacing what was there):
//!
//! - decode: a few real files of each kind from the data folder (`$R2UNET_DATA`, default
//!   `../shared/data`; never copied into the repository), and crops of them re-encoded in every
//!   format and sample layout the decoders take (PNG 1/8/16-bit grey, grey+alpha, RGB, RGBA;
//!   baseline JPEG; TIFF 8/16-bit, signed 16-bit and float, uncompressed, LZW, Deflate with the
//!   predictor, PackBits; GIF; BMP; binary and ASCII PPM/PGM);
//! - preprocess and segment_input: those files and raw samples behind the targets' headers
//!   (fuzz/src/lib.rs), for every task;
//! - weights: small untrained models (f32, f16, int8; 1 and 3 channels), the shipped retina
//!   model as the npm package's int8 copy, a file from before the digest, and the structured
//!   metadata inputs.
//!
//! Without the data folder the image seeds are synthetic (a fundus-like disc, a CT-like slice).
//!
//! Usage: make-corpus OUT
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::pnm::{PnmEncoder, PnmSubtype, SampleEncoding};
use image::{DynamicImage, ImageFormat};
use r2unet::image_io::{self, RawImage, SampleKind};
use r2unet::weights::{self, Precision};
use r2unet::{PreprocessConfig, Task};
use r2unet_fuzz::{
    TARGETS, config_bytes, meta_seed, synthetic_bytes, tiny_weights, tiny_weights_with,
};

/// Real files used as they are, relative to the data folder.
const REAL_FILES: &[&str] = &[
    "ISIC2017/ISIC-2017_Training_Data/ISIC_0000000.jpg",
    "ISIC2017/ISIC-2017_Training_Data/ISIC_0013037.jpg",
    "ISIC2017/ISIC-2017_Training_Part1_GroundTruth/ISIC_0000000_segmentation.png",
    "CHASE_DB1/Image_13R.jpg",
    "CHASE_DB1/Image_01L_1stHO.png",
    "DRIVE/test/mask/01_test_mask.gif",
    "DRIVE/test/1st_manual/01_manual1.gif",
    "DRIVE/test/images/01_test.tif",
    "STARE/labels-ah/im0001.ah.png",
    "STARE/images/im0001.png",
    "LUNG/2d_images/ID_0000_Z_0142.tif",
    "LUNG/2d_masks/ID_0000_Z_0142.tif",
];

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: make-corpus OUT"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var_os("R2UNET_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data"));
    for target in TARGETS {
        let dir = out.join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut seeds = Seeds {
        out: out.clone(),
        counts: Default::default(),
    };

    // Real files, as they are.
    let mut real = Vec::new();
    for rel in REAL_FILES {
        match std::fs::read(data.join(rel)) {
            Ok(bytes) => {
                seeds.add("decode", &bytes);
                real.push(bytes);
            }
            Err(e) => eprintln!("make-corpus: {} skipped: {e}", data.join(rel).display()),
        }
    }

    // Crops of real images (synthetic ones without the data folder).
    let read = |rel: &str| {
        std::fs::read(data.join(rel))
            .ok()
            .and_then(|b| image_io::decode(&b).ok())
    };
    let fundus = read("DRIVE/test/images/01_test.tif").unwrap_or_else(synthetic_fundus);
    let ct = read("LUNG/2d_images/ID_0000_Z_0142.tif").unwrap_or_else(synthetic_ct);
    let skin = read("ISIC2017/ISIC-2017_Training_Data/ISIC_0000000.jpg");
    let mut crops = vec![
        // The edge of the field of view (dark surround), the disc's middle, the smallest and odd
        // shapes.
        crop(&fundus, 0, 250, 64, 48),
        crop(&fundus, 250, 260, 40, 40),
        crop(&fundus, 300, 300, 16, 16),
        crop(&fundus, 100, 100, 17, 100),
    ];
    if let Some(skin) = &skin {
        crops.push(crop(skin, 60, 40, 48, 32));
    }
    let ct_crop = crop(&ct, 96, 96, 64, 64);
    let mut files = Vec::new();
    for img in &crops {
        files.extend(encode_all(img));
    }
    files.extend(encode_tiff(&ct_crop));
    for f in &files {
        seeds.add("decode", f);
    }

    // preprocess: files (all shipped configurations; the fuzzed one set to the retina model's;
    // a FOV mask given), and raw samples.
    let shipped_retina = {
        let b = std::fs::read(root.join("models/retina.bpk")).expect("models/retina.bpk");
        weights::read_bundle(&b)
            .expect("models/retina.bpk reads")
            .preprocess
    };
    let retina_config = config_bytes(&shipped_retina);
    let lung_config = config_bytes(&PreprocessConfig::for_task(Task::Lung));
    let small_files: Vec<&Vec<u8>> = files
        .iter()
        .chain(&real)
        .filter(|f| f.len() <= 65536)
        .collect();
    for (i, f) in small_files.iter().enumerate() {
        // bits 1-3: 7 = every shipped configuration; 6 = the fuzzed one; bit 4: FOV mask.
        let flags: u8 = match i % 3 {
            0 => 1 | (7 << 1),
            1 => 1 | (6 << 1),
            _ => 1 | (0 << 1) | 16,
        };
        seeds.add("preprocess", &[&[flags][..], &retina_config, f].concat());
    }
    let mut raw_images = crops.clone();
    raw_images.push(ct_crop.clone());
    raw_images.push(crop(&ct, 0, 0, 1, 1));
    raw_images.push(crop(&fundus, 280, 280, 3, 250));
    for (i, img) in raw_images.iter().enumerate() {
        let (flags, config) = match (i % 2, img.kind) {
            (_, SampleKind::I16) => ((5 << 1), &lung_config),
            (0, _) => ((7 << 1), &retina_config),
            _ => ((6 << 1), &retina_config),
        };
        seeds.add(
            "preprocess",
            &[&[flags][..], config, &synthetic_bytes(img)].concat(),
        );
    }

    // segment_input: file bytes and RGBA for each task (flags bits 1-2), default options and
    // given tiles.
    for (i, f) in small_files.iter().enumerate() {
        let task = (i % 3) as u8;
        let options: [u8; 5] = if i % 2 == 0 {
            [0, 0, 0, 0, 100]
        } else {
            [64, 0, 0, 0, 100]
        };
        seeds.add("segment_input", &[&[task << 1][..], &options, f].concat());
    }
    for (i, img) in crops.iter().enumerate() {
        let rgba: Vec<u8> = img
            .data
            .chunks_exact(img.channels)
            .flat_map(|p| [p[0] as u8, p[1 % p.len()] as u8, p[2 % p.len()] as u8, 255])
            .collect();
        let task = (i % 3) as u8;
        let head = [&[1 | (task << 1)][..], &[0, 0, 0, 0, 100]].concat();
        let dims = [img.width.to_le_bytes(), img.height.to_le_bytes()].concat();
        seeds.add("segment_input", &[&head[..], &dims, &rgba].concat());
    }

    // weights.
    for precision in [Precision::F32, Precision::F16, Precision::Int8] {
        let file = tiny_weights(precision);
        seeds.add("weights", &file);
        seeds.add("weights", &meta_seed(precision));
        if precision == Precision::F32 {
            // From before the digest: the pack alone.
            seeds.add("weights", &file[..file.len() - 40]);
        }
    }
    seeds.add(
        "weights",
        &tiny_weights_with(&[2, 4, 8, 16], Task::Skin, Precision::F32),
    );
    seeds.add(
        "weights",
        &tiny_weights_with(&[2, 4, 8, 16], Task::Lung, Precision::Int8),
    );
    // The shipped retina model as the npm package carries it (`r2unet export --int8`).
    let shipped = std::fs::read(root.join("models/retina.bpk")).unwrap();
    let (model, bundle) = weights::from_bytes(&shipped, &r2unet::burn::tensor::Device::flex())
        .expect("models/retina.bpk loads");
    seeds.add(
        "weights",
        &weights::to_bytes(&model, &bundle, Precision::Int8).unwrap(),
    );

    let be = big_endian_tiff(16, 16, &[7.0; 256]);
    assert!(
        image_io::decode(&be).is_ok(),
        "the big-endian TIFF seed decodes"
    );
    let decoded = files.iter().filter(|f| image_io::decode(f).is_ok()).count();
    for (target, (n, bytes)) in &seeds.counts {
        println!("make-corpus: {target}: {n} seeds, {bytes} bytes");
    }
    println!(
        "make-corpus: {decoded} of the {} re-encoded files decode (the rest: refused, e.g. too small)",
        files.len()
    );
}

struct Seeds {
    out: PathBuf,
    counts: std::collections::BTreeMap<&'static str, (usize, usize)>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, bytes: &[u8]) {
        let entry = self.counts.entry(target).or_default();
        let path = self.out.join(target).join(format!("seed-{:04}", entry.0));
        std::fs::write(path, bytes).unwrap();
        entry.0 += 1;
        entry.1 += bytes.len();
    }
}

/// A `w x h` window of `img` at (x0, y0), clamped to the image.
fn crop(img: &RawImage, x0: u32, y0: u32, w: u32, h: u32) -> RawImage {
    let x0 = x0.min(img.width - 1);
    let y0 = y0.min(img.height - 1);
    let (w, h) = (w.min(img.width - x0), h.min(img.height - y0));
    let c = img.channels;
    let mut data = Vec::with_capacity((w * h) as usize * c);
    for y in y0..y0 + h {
        let row = (y * img.width + x0) as usize * c;
        data.extend_from_slice(&img.data[row..row + w as usize * c]);
    }
    RawImage {
        width: w,
        height: h,
        channels: c,
        kind: img.kind,
        data,
    }
}

/// A bright disc on black, in the red and green of a fundus photo.
fn synthetic_fundus() -> RawImage {
    let (w, h) = (565u32, 584u32);
    let data = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let (dx, dy) = (x as f32 - 282.0, y as f32 - 292.0);
            if dx * dx + dy * dy < 270.0 * 270.0 {
                [180.0 + (x % 13) as f32, 80.0 + (y % 11) as f32, 20.0]
            } else {
                [2.0, 1.0, 0.0]
            }
        })
        .collect();
    RawImage {
        width: w,
        height: h,
        channels: 3,
        kind: SampleKind::U8,
        data,
    }
}

/// Hounsfield units: air around a body, lungs inside.
fn synthetic_ct() -> RawImage {
    let data = (0..256 * 256)
        .map(|i| {
            let (x, y) = ((i % 256) as f32 - 128.0, (i / 256) as f32 - 128.0);
            if x * x + y * y > 110.0 * 110.0 {
                -2000.0
            } else if (x.abs() - 50.0).powi(2) + y * y < 35.0 * 35.0 {
                -800.0 + (i % 17) as f32
            } else {
                40.0 + (i % 29) as f32
            }
        })
        .collect();
    RawImage {
        width: 256,
        height: 256,
        channels: 1,
        kind: SampleKind::I16,
        data,
    }
}

/// The image's 8-bit RGB and grey versions in every format the `image` crate writes, and the
/// 16-bit, alpha and 1-bit variants; its TIFFs through [`encode_tiff`].
fn encode_all(img: &RawImage) -> Vec<Vec<u8>> {
    let (w, h) = (img.width, img.height);
    let rgb: Vec<u8> = img
        .data
        .chunks_exact(img.channels)
        .flat_map(|p| [p[0], p[1 % p.len()], p[2 % p.len()]].map(|v| v.clamp(0.0, 255.0) as u8))
        .collect();
    let rgb = image::RgbImage::from_raw(w, h, rgb).unwrap();
    let grey = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let mut out = Vec::new();
    let encoded = |img: DynamicImage, format: ImageFormat| {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, format)
            .ok()
            .map(|_| buf.into_inner())
    };
    let mut write = |img, format| out.extend(encoded(img, format));
    let colour = DynamicImage::ImageRgb8(rgb.clone());
    let luma = DynamicImage::ImageLuma8(grey.clone());
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::Pnm,
        ImageFormat::Tiff,
    ] {
        write(colour.clone(), format);
        write(luma.clone(), format);
    }
    write(
        DynamicImage::ImageRgba8(colour.to_rgba8()),
        ImageFormat::Png,
    );
    write(
        DynamicImage::ImageRgba8(colour.to_rgba8()),
        ImageFormat::Bmp,
    );
    write(
        DynamicImage::ImageLumaA8(colour.to_luma_alpha8()),
        ImageFormat::Png,
    );
    write(
        DynamicImage::ImageRgb16(colour.to_rgb16()),
        ImageFormat::Png,
    );
    write(
        DynamicImage::ImageLuma16(colour.to_luma16()),
        ImageFormat::Png,
    );
    write(
        DynamicImage::ImageRgba16(colour.to_rgba16()),
        ImageFormat::Png,
    );
    // A binary mask as a 1-bit PNG, as the data sets' labels are stored.
    let mask = image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if grey.get_pixel(x, y)[0] > 60 { 255 } else { 0 }])
    });
    {
        use image::ImageEncoder;
        use image::codecs::png::PngEncoder;
        let bits: Vec<u8> = mask
            .rows()
            .flat_map(|row| {
                let px: Vec<u8> = row.map(|p| u8::from(p[0] > 0)).collect();
                px.chunks(8)
                    .map(|c| {
                        c.iter()
                            .enumerate()
                            .fold(0u8, |a, (i, &b)| a | (b << (7 - i)))
                    })
                    .collect::<Vec<u8>>()
            })
            .collect();
        let mut buf = Vec::new();
        // 1-bit grey is not an ExtendedColorType the encoder takes from raw; write via L1 when
        // supported, else keep the 8-bit mask.
        if PngEncoder::new(&mut buf)
            .write_image(&bits, w, h, image::ExtendedColorType::L1)
            .is_ok()
        {
            out.push(buf);
        }
    }
    out.extend(encoded(DynamicImage::ImageLuma8(mask), ImageFormat::Gif));
    // Binary and ASCII PPM and PGM (`ImageFormat::Pnm` above writes PAM, P7).
    for (subtype, img) in [
        (PnmSubtype::Pixmap(SampleEncoding::Binary), colour.clone()),
        (PnmSubtype::Graymap(SampleEncoding::Binary), luma.clone()),
        (PnmSubtype::Pixmap(SampleEncoding::Ascii), colour.clone()),
        (PnmSubtype::Graymap(SampleEncoding::Ascii), luma.clone()),
        (PnmSubtype::Bitmap(SampleEncoding::Binary), luma.clone()),
    ] {
        let mut buf = Vec::new();
        let colour_type = if img.color().channel_count() == 3 {
            image::ExtendedColorType::Rgb8
        } else {
            image::ExtendedColorType::L8
        };
        if PnmEncoder::new(&mut buf)
            .with_subtype(subtype)
            .encode(img.as_bytes(), w, h, colour_type)
            .is_ok()
        {
            out.push(buf);
        }
    }
    out.extend(encode_tiff(img));
    out
}

/// TIFFs through the `tiff` crate, as the data sets store them: DRIVE's RGB with Deflate and
/// the horizontal predictor, the lung set's signed 16-bit grey with Deflate; and the other
/// sample formats and compressions r2unet reads.
fn encode_tiff(img: &RawImage) -> Vec<Vec<u8>> {
    use tiff::encoder::compression::DeflateLevel;
    use tiff::encoder::{Compression, TiffEncoder, colortype};
    use tiff::tags::Predictor;
    let (w, h) = (img.width, img.height);
    let luma = img.luma();
    let mut out = Vec::new();
    let deflate = Compression::Deflate(DeflateLevel::Balanced);
    let settings = [
        (Compression::Uncompressed, Predictor::None),
        (Compression::Lzw, Predictor::Horizontal),
        (deflate, Predictor::Horizontal),
        (Compression::Packbits, Predictor::None),
    ];
    for (i, (compression, predictor)) in settings.into_iter().enumerate() {
        let mut buf = Cursor::new(Vec::new());
        let Ok(enc) = TiffEncoder::new(&mut buf) else {
            continue;
        };
        let mut enc = enc.with_compression(compression).with_predictor(predictor);
        let ok = match (img.kind, i % 2) {
            (SampleKind::I16, _) => {
                let v: Vec<i16> = luma.iter().map(|&x| x as i16).collect();
                enc.write_image::<colortype::GrayI16>(w, h, &v).is_ok()
            }
            (_, 0) if img.channels == 3 => {
                let v: Vec<u8> = img.data.iter().map(|&x| x as u8).collect();
                enc.write_image::<colortype::RGB8>(w, h, &v).is_ok()
            }
            _ => {
                let v: Vec<u16> = luma.iter().map(|&x| (x * 257.0) as u16).collect();
                enc.write_image::<colortype::Gray16>(w, h, &v).is_ok()
            }
        };
        if ok {
            out.push(buf.into_inner());
        }
    }
    out.push(big_endian_tiff(w, h, &luma));
    // Float samples, grey and RGB.
    let mut buf = Cursor::new(Vec::new());
    if let Ok(mut enc) = TiffEncoder::new(&mut buf) {
        let v: Vec<f32> = luma.iter().map(|&x| x / 255.0).collect();
        if enc.write_image::<colortype::Gray32Float>(w, h, &v).is_ok() {
            out.push(buf.into_inner());
        }
    }
    if img.channels == 3 {
        let mut buf = Cursor::new(Vec::new());
        if let Ok(mut enc) = TiffEncoder::new(&mut buf) {
            let v: Vec<f32> = img.data.iter().map(|&x| x / 255.0).collect();
            if enc.write_image::<colortype::RGB32Float>(w, h, &v).is_ok() {
                out.push(buf.into_inner());
            }
        }
    }
    out
}

/// An uncompressed 8-bit grey TIFF in big-endian byte order ("MM"), written by hand: the `tiff`
/// crate writes little-endian files only.
fn big_endian_tiff(w: u32, h: u32, luma: &[f32]) -> Vec<u8> {
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, w),     // ImageWidth
        (257, 4, h),     // ImageLength
        (258, 3, 8),     // BitsPerSample
        (259, 3, 1),     // Compression: none
        (262, 3, 1),     // PhotometricInterpretation: black is zero
        (273, 4, 122),   // StripOffsets: right after the IFD
        (277, 3, 1),     // SamplesPerPixel
        (278, 4, h),     // RowsPerStrip
        (279, 4, w * h), // StripByteCounts
    ];
    let mut out = b"MM\0*".to_vec();
    out.extend(8u32.to_be_bytes());
    out.extend((entries.len() as u16).to_be_bytes());
    for (tag, kind, value) in entries {
        out.extend(tag.to_be_bytes());
        out.extend(kind.to_be_bytes());
        out.extend(1u32.to_be_bytes());
        if kind == 3 {
            out.extend((value as u16).to_be_bytes());
            out.extend([0, 0]);
        } else {
            out.extend(value.to_be_bytes());
        }
    }
    out.extend(0u32.to_be_bytes());
    assert_eq!(out.len(), 122);
    out.extend(luma.iter().map(|&v| v.clamp(0.0, 255.0) as u8));
    out
}
