//! Decoding: bytes of a PNG, JPEG, TIFF (8 or 16 bit, signed or not), GIF, BMP or PPM/PGM to
//! raw samples. Always from bytes, never from a path: the browser has no files.
use std::io::Cursor;

use crate::error::{Error, Result};

/// Largest image accepted, in pixels (e.g. 6000x6000). Decoding stores f32 samples, so this bounds
/// memory at about 430 MB for RGB; larger photos must be downscaled first.
pub const MAX_PIXELS: u64 = 36_000_000;
/// Smallest side accepted: below this there is nothing for a 3-level U-Net to see.
pub const MIN_SIDE: u32 = 16;

/// How the source stored its samples; decides how values map to intensities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    /// 0..=255.
    U8,
    /// 0..=65535.
    U16,
    /// Signed 16-bit, e.g. CT Hounsfield units.
    I16,
    /// Floating point as stored.
    F32,
}

impl SampleKind {
    /// The value that means "full intensity" for unsigned kinds.
    pub fn full_scale(self) -> f32 {
        match self {
            SampleKind::U8 => 255.0,
            SampleKind::U16 => 65535.0,
            SampleKind::I16 | SampleKind::F32 => 1.0,
        }
    }
}

/// A decoded image: interleaved samples, 1 (grey) or 3 (RGB) channels, alpha dropped.
#[derive(Clone, Debug)]
pub struct RawImage {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub kind: SampleKind,
    pub data: Vec<f32>,
}

impl RawImage {
    /// Wraps RGBA bytes as they come from a canvas `ImageData`.
    pub fn from_rgba8(width: u32, height: u32, rgba: &[u8]) -> Result<Self> {
        check_size(width, height)?;
        let n = width as usize * height as usize;
        if rgba.len() != n * 4 {
            return Err(Error::Decode(format!(
                "RGBA buffer holds {} bytes; {width}x{height} needs {}",
                rgba.len(),
                n * 4
            )));
        }
        let data = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0] as f32, p[1] as f32, p[2] as f32])
            .collect();
        Ok(Self {
            width,
            height,
            channels: 3,
            kind: SampleKind::U8,
            data,
        })
    }

    /// Pixel count.
    pub fn len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Whether the image has no pixels (never true for a decoded image).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One channel as a plane (for grey images every index gives the grey plane).
    pub fn plane(&self, channel: usize) -> Vec<f32> {
        let c = channel.min(self.channels - 1);
        self.data
            .iter()
            .skip(c)
            .step_by(self.channels)
            .copied()
            .collect()
    }

    /// Luma (Rec. 601) as a plane, in the source's units.
    pub fn luma(&self) -> Vec<f32> {
        if self.channels == 1 {
            return self.data.clone();
        }
        self.data
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect()
    }

    /// A binary plane, `true` where the luma exceeds half of full scale (label and mask files:
    /// 255/0 GIFs, 1-bit PNGs).
    pub fn to_binary(&self) -> Vec<bool> {
        let half = match self.kind {
            SampleKind::U8 | SampleKind::U16 => self.kind.full_scale() / 2.0,
            SampleKind::I16 | SampleKind::F32 => 0.0,
        };
        self.luma().into_iter().map(|v| v > half).collect()
    }
}

fn check_size(width: u32, height: u32) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(Error::TooLarge {
            width,
            height,
            pixels,
            limit: MAX_PIXELS,
        });
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(Error::TooSmall {
            width,
            height,
            min: MIN_SIDE,
        });
    }
    Ok(())
}

/// Decodes an encoded image. TIFFs go through the `tiff` crate so 16-bit signed samples (CT in
/// Hounsfield units) survive; everything else through `image`.
pub fn decode(bytes: &[u8]) -> Result<RawImage> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return decode_tiff(bytes);
    }
    decode_generic(bytes)
}

/// Like [`decode`], but accepts images of any size down to 1x1: for label and mask files, whose
/// size is checked against their image instead.
pub fn decode_label(bytes: &[u8]) -> Result<Vec<bool>> {
    decode(bytes).map(|img| img.to_binary())
}

/// A JPEG cut short is refused: the decoder would return what it has, the missing rows grey,
/// and a mask of half an image would look complete. The end-of-image marker (FF D9) must follow
/// the last start-of-scan marker (FF DA). Inside entropy-coded data an FF byte is always followed
/// by 00 or a restart marker, so neither pair can appear there by chance; an EXIF thumbnail has
/// both markers of its own, but before the main image's scan.
fn check_jpeg_complete(bytes: &[u8]) -> Result<()> {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(scan), Some(end)) if end > scan => Ok(()),
        _ => Err(Error::Decode(
            "the JPEG is cut short (no end-of-image marker after its last scan)".into(),
        )),
    }
}

fn decode_generic(bytes: &[u8]) -> Result<RawImage> {
    use image::{DynamicImage, ImageReader};
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::Decode(
            "not a recognised image format (expected PNG, JPEG, TIFF, GIF, BMP or PPM/PGM)".into(),
        ));
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(bytes)?;
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| Error::Decode(e.to_string()))?;
    check_size(width, height)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    // The header's size is within the pixel limit, but a file can still ask its decoder for
    // more: a GIF frame may declare 65535 x 65535 pixels inside a small logical screen (found by
    // fuzzing: a 3 kB GIF of 565 x 584 took 2.7 GB). The largest buffer a legal image needs is
    // its pixels as RGBA in f32.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 16);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| Error::Decode(e.to_string()))?;
    let (kind, channels, data): (SampleKind, usize, Vec<f32>) = match img {
        DynamicImage::ImageLuma8(i) => (
            SampleKind::U8,
            1,
            i.into_raw().into_iter().map(f32::from).collect(),
        ),
        DynamicImage::ImageLumaA8(i) => (
            SampleKind::U8,
            1,
            i.into_raw().chunks_exact(2).map(|p| p[0] as f32).collect(),
        ),
        DynamicImage::ImageLuma16(i) => (
            SampleKind::U16,
            1,
            i.into_raw().into_iter().map(f32::from).collect(),
        ),
        DynamicImage::ImageLumaA16(i) => (
            SampleKind::U16,
            1,
            i.into_raw().chunks_exact(2).map(|p| p[0] as f32).collect(),
        ),
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgba16(_) => (
            SampleKind::U16,
            3,
            img.to_rgb16()
                .into_raw()
                .into_iter()
                .map(f32::from)
                .collect(),
        ),
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
            (SampleKind::F32, 3, img.to_rgb32f().into_raw())
        }
        other => (
            SampleKind::U8,
            3,
            other
                .to_rgb8()
                .into_raw()
                .into_iter()
                .map(f32::from)
                .collect(),
        ),
    };
    Ok(RawImage {
        width,
        height,
        channels,
        kind,
        data,
    })
}

fn decode_tiff(bytes: &[u8]) -> Result<RawImage> {
    use tiff::ColorType;
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    let err = |e: tiff::TiffError| Error::Decode(format!("TIFF: {e}"));
    let mut limits = Limits::default();
    limits.decoding_buffer_size = (MAX_PIXELS * 16) as usize;
    limits.intermediate_buffer_size = (MAX_PIXELS * 16) as usize;
    let mut decoder = Decoder::new(Cursor::new(bytes))
        .map_err(err)?
        .with_limits(limits);
    let (width, height) = decoder.dimensions().map_err(err)?;
    check_size(width, height)?;
    let color = decoder.colortype().map_err(err)?;
    let stored = match color {
        ColorType::Gray(_) => 1,
        ColorType::GrayA(_) => 2,
        ColorType::RGB(_) => 3,
        ColorType::RGBA(_) => 4,
        other => {
            return Err(Error::Decode(format!(
                "TIFF colour type {other:?} is not supported"
            )));
        }
    };
    let (kind, samples): (SampleKind, Vec<f32>) = match decoder.read_image().map_err(err)? {
        DecodingResult::U8(v) => (SampleKind::U8, v.into_iter().map(f32::from).collect()),
        DecodingResult::U16(v) => (SampleKind::U16, v.into_iter().map(f32::from).collect()),
        DecodingResult::I16(v) => (SampleKind::I16, v.into_iter().map(f32::from).collect()),
        DecodingResult::I8(v) => (SampleKind::I16, v.into_iter().map(f32::from).collect()),
        DecodingResult::F32(v) => (SampleKind::F32, v),
        _ => {
            return Err(Error::Decode(
                "TIFF sample format is not supported (use 8/16-bit or f32)".into(),
            ));
        }
    };
    let n = width as usize * height as usize;
    if samples.len() < n * stored {
        return Err(Error::Decode(format!(
            "TIFF holds {} samples; {width}x{height}x{stored} needs {}",
            samples.len(),
            n * stored
        )));
    }
    let channels = if stored >= 3 { 3 } else { 1 };
    let data = if stored == channels {
        samples[..n * stored].to_vec()
    } else {
        samples
            .chunks_exact(stored)
            .take(n)
            .flat_map(|p| p[..channels].to_vec())
            .collect()
    };
    Ok(RawImage {
        width,
        height,
        channels,
        kind,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_rgb_png() {
        let img = decode(&png(20, 17)).unwrap();
        assert_eq!(
            (img.width, img.height, img.channels, img.kind),
            (20, 17, 3, SampleKind::U8)
        );
        assert_eq!(&img.data[..6], &[0.0, 0.0, 7.0, 1.0, 0.0, 7.0]);
    }

    #[test]
    fn rejects_empty_truncated_garbage_and_tiny() {
        assert!(matches!(decode(&[]), Err(Error::Empty)));
        let bytes = png(40, 40);
        assert!(matches!(
            decode(&bytes[..bytes.len() / 2]),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            decode(b"hello, this is not an image"),
            Err(Error::Decode(_))
        ));
        assert!(matches!(decode(&png(1, 1)), Err(Error::TooSmall { .. })));
    }

    #[test]
    fn refuses_huge_images_before_decoding_them() {
        // A 12000x12000 grey PNG compresses to little, but would need 576 MB as f32.
        let img = image::GrayImage::new(12000, 12000);
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        let err = decode(&out).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn signed_16_bit_tiff_keeps_hounsfield_units() {
        let (w, h) = (16u32, 16u32);
        let hu: Vec<i16> = (0..w * h).map(|i| i as i16 * 10 - 1000).collect();
        let mut out = Cursor::new(Vec::new());
        let mut enc = tiff::encoder::TiffEncoder::new(&mut out).unwrap();
        enc.write_image::<tiff::encoder::colortype::GrayI16>(w, h, &hu)
            .unwrap();
        let img = decode(out.get_ref()).unwrap();
        assert_eq!(img.kind, SampleKind::I16);
        assert_eq!(img.data[0], -1000.0);
        assert_eq!(img.data[255], 1550.0);
    }

    #[test]
    fn rgba_canvas_data_drops_alpha() {
        let rgba: Vec<u8> = (0..16 * 16).flat_map(|i| [i as u8, 2, 3, 255]).collect();
        let img = RawImage::from_rgba8(16, 16, &rgba).unwrap();
        assert_eq!(&img.data[3..6], &[1.0, 2.0, 3.0]);
        assert!(RawImage::from_rgba8(16, 16, &rgba[..10]).is_err());
    }
}

#[cfg(test)]
mod cut_short {
    use image::ImageFormat;

    /// Every format, cut to a third and by its last 10 bytes, is refused; whole, it decodes.
    #[test]
    fn a_file_cut_short_is_refused_in_every_format() {
        let img = image::RgbImage::from_fn(96, 80, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x ^ y) * 5) as u8])
        });
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Tiff,
            ImageFormat::Gif,
            ImageFormat::Bmp,
            ImageFormat::Pnm,
        ] {
            let mut buf = std::io::Cursor::new(Vec::new());
            image::DynamicImage::ImageRgb8(img.clone())
                .write_to(&mut buf, format)
                .unwrap();
            let bytes = buf.into_inner();
            assert!(super::decode(&bytes).is_ok(), "{format:?} whole");
            for cut in [&bytes[..bytes.len() / 3], &bytes[..bytes.len() - 10]] {
                let err = super::decode(cut).map(|_| ()).unwrap_err();
                assert!(
                    matches!(err, crate::Error::Decode(_)),
                    "{format:?} cut to {}: {err}",
                    cut.len()
                );
            }
        }
    }
}

#[cfg(test)]
mod huge {
    use image::ImageFormat;

    fn encode(format: ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 7, y as u8 * 9, 50]));
        let mut buf = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut buf, format)
            .unwrap();
        buf.into_inner()
    }

    /// A small real file whose header is edited to declare 30,000 x 30,000 pixels (900 million;
    /// 2.7 GB as RGB), as a hostile or broken file would.
    fn declaring_30000(format: ImageFormat) -> Vec<u8> {
        let mut b = encode(format);
        let side: u16 = 30_000;
        match format {
            ImageFormat::Png => {
                // IHDR's width and height, big-endian u32, right after the signature and chunk head.
                b[16..20].copy_from_slice(&u32::from(side).to_be_bytes());
                b[20..24].copy_from_slice(&u32::from(side).to_be_bytes());
                // Its CRC must match, or the decoder stops at "CRC error" before the size check.
                let crc = crc32(&b[12..29]);
                b[29..33].copy_from_slice(&crc.to_be_bytes());
            }
            ImageFormat::Jpeg => {
                let sof = b.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
                b[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
                b[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
            }
            ImageFormat::Gif => {
                b[6..8].copy_from_slice(&side.to_le_bytes());
                b[8..10].copy_from_slice(&side.to_le_bytes());
            }
            ImageFormat::Bmp => {
                b[18..22].copy_from_slice(&i32::from(side).to_le_bytes());
                b[22..26].copy_from_slice(&i32::from(side).to_le_bytes());
            }
            ImageFormat::Tiff => {
                // Little-endian TIFF: the first IFD's ImageWidth (256), ImageLength (257) and
                // RowsPerStrip (278; one strip, as the small file has).
                let ifd = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
                let n = u16::from_le_bytes(b[ifd..ifd + 2].try_into().unwrap()) as usize;
                for e in 0..n {
                    let at = ifd + 2 + 12 * e;
                    let tag = u16::from_le_bytes(b[at..at + 2].try_into().unwrap());
                    if tag == 256 || tag == 257 || tag == 278 {
                        let kind = u16::from_le_bytes(b[at + 2..at + 4].try_into().unwrap());
                        let value = if kind == 3 {
                            let mut v = [0u8; 4];
                            v[..2].copy_from_slice(&side.to_le_bytes());
                            v
                        } else {
                            u32::from(side).to_le_bytes()
                        };
                        b[at + 8..at + 12].copy_from_slice(&value);
                    }
                }
            }
            _ => unreachable!(),
        }
        b
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Refused from the header, before any pixel buffer exists: in well under a second, with
    /// the limit named.
    #[test]
    fn a_file_declaring_huge_dimensions_is_refused_from_its_header() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Tiff,
            ImageFormat::Gif,
            ImageFormat::Bmp,
        ] {
            let bytes = declaring_30000(format);
            let started = std::time::Instant::now();
            let err = super::decode(&bytes).map(|_| ()).unwrap_err();
            let took = started.elapsed();
            assert!(
                matches!(
                    err,
                    crate::Error::TooLarge {
                        width: 30_000,
                        height: 30_000,
                        ..
                    }
                ),
                "{format:?}: {err}"
            );
            assert!(err.to_string().contains("36000000"), "{format:?}: {err}");
            assert!(took.as_millis() < 1000, "{format:?}: {took:?}");
        }
    }

    /// A GIF whose logical screen is 565 x 584 but whose frame declares far more (the fuzz
    /// input `tests/fuzz-regressions/preprocess/gif-frame-larger-than-its-screen-2.7gb`, after
    /// its 23 bytes of harness fields): refused by the allocation limit, not decoded with 2.7 GB.
    #[test]
    fn a_gif_frame_larger_than_its_screen_is_refused() {
        let input = include_bytes!(
            "../tests/fuzz-regressions/preprocess/gif-frame-larger-than-its-screen-2.7gb"
        );
        let err = super::decode(&input[23..]).expect_err("a frame past the limit");
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
