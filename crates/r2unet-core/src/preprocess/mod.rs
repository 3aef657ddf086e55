//! The one preprocessing definition per task. Training, evaluation, `r2unet predict` and the
//! browser all call [`prepare`] and [`Prepared::restore`], so train/test skew cannot creep in.
pub mod clahe;
pub mod fov;
pub mod resize;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::image_io::{MAX_PIXELS, RawImage, SampleKind};

/// The three tasks of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Retinal vessels in fundus photos (DRIVE, STARE, CHASE_DB1).
    Retina,
    /// Skin lesions in dermoscopy images (ISIC).
    Skin,
    /// Lungs in CT slices.
    Lung,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Retina, Task::Skin, Task::Lung];

    pub fn name(self) -> &'static str {
        match self {
            Task::Retina => "retina",
            Task::Skin => "skin",
            Task::Lung => "lung",
        }
    }

    pub fn parse(name: &str) -> crate::Result<Self> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown task '{name}'; expected retina, skin or lung"
                ))
            })
    }

    /// Model input channels after preprocessing.
    pub fn channels(self) -> usize {
        match self {
            Task::Skin => 3,
            Task::Retina | Task::Lung => 1,
        }
    }
}

/// Configuration of a task's preprocessing; stored inside every weights file so a model is
/// always fed the way it was trained.
#[derive(Config, Debug, PartialEq)]
pub struct PreprocessConfig {
    pub task: Task,
    /// Skin and lung: the side of the square the image is resized to (the report: 128 for skin,
    /// 256 for lung). Retina keeps its resolution and ignores this.
    #[config(default = 128)]
    pub size: usize,
    /// Retina: resample so the field of view is this many pixels wide; 0 keeps the native
    /// resolution (the paper's protocol).
    #[config(default = 0)]
    pub fov_width: usize,
    /// Retina: CLAHE tiles per side.
    #[config(default = 8)]
    pub clahe_grid: usize,
    /// Retina: CLAHE clip limit.
    #[config(default = 2.0)]
    pub clahe_clip: f32,
    /// Retina: gamma applied after CLAHE (values > 1 darken, making vessels stand out).
    #[config(default = 1.2)]
    pub gamma: f32,
    /// Lung: lower end of the Hounsfield window.
    #[config(default = -1000.0)]
    pub hu_low: f32,
    /// Lung: upper end of the Hounsfield window.
    #[config(default = 400.0)]
    pub hu_high: f32,
}

impl PreprocessConfig {
    /// The defaults for a task.
    pub fn for_task(task: Task) -> Self {
        match task {
            Task::Retina => Self::new(task),
            Task::Skin => Self::new(task).with_size(128),
            Task::Lung => Self::new(task).with_size(256),
        }
    }

    pub fn validate(&self) -> crate::Result<()> {
        if self.task != Task::Retina && !(16..=2048).contains(&self.size) {
            return Err(Error::Config(format!(
                "size must be 16..=2048, got {}",
                self.size
            )));
        }
        if self.hu_high <= self.hu_low {
            return Err(Error::Config("hu_high must exceed hu_low".into()));
        }
        Ok(())
    }
}

/// Retina: the most a photo is scaled up to bring its field of view to `fov_width` (a field of
/// view at least an eighth as wide as the model's, 67 px for the shipped 536).
pub const MAX_FOV_UPSCALE: f32 = 8.0;

/// An image ready for the model, plus what is needed to map the output back.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Planar `[channels, height, width]` model input.
    pub data: Vec<f32>,
    pub channels: usize,
    pub width: usize,
    pub height: usize,
    /// Field of view at model resolution (all true for skin and lung).
    pub fov: Vec<bool>,
    /// Field of view at source resolution.
    pub source_fov: Vec<bool>,
    pub source_width: usize,
    pub source_height: usize,
}

impl Prepared {
    /// Maps model-resolution probabilities back to the source size; zero outside the FOV.
    pub fn restore(&self, probs: &[f32]) -> Vec<f32> {
        let mut out = resize::bilinear(
            probs,
            self.width,
            self.height,
            self.source_width,
            self.source_height,
        );
        for (p, &inside) in out.iter_mut().zip(&self.source_fov) {
            if !inside {
                *p = 0.0;
            }
        }
        out
    }
}

/// Intensities scaled to 0..1 from however the source stored them.
fn unit_scale(plane: &mut [f32], kind: SampleKind) {
    match kind {
        SampleKind::U8 | SampleKind::U16 => {
            let s = 1.0 / kind.full_scale();
            plane.iter_mut().for_each(|v| *v *= s);
        }
        SampleKind::I16 | SampleKind::F32 => {
            let (lo, hi) = plane
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let s = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
            plane.iter_mut().for_each(|v| *v = (*v - lo) * s);
        }
    }
}

/// Prepares an image for the model. `fov` is an optional field-of-view mask at source size
/// (retina only; derived from the image when absent).
pub fn prepare(
    config: &PreprocessConfig,
    image: &RawImage,
    fov: Option<&[bool]>,
) -> crate::Result<Prepared> {
    config.validate()?;
    let (w, h) = (image.width as usize, image.height as usize);
    match config.task {
        Task::Retina => prepare_retina(config, image, fov),
        Task::Skin => {
            let mut data = Vec::with_capacity(3 * config.size * config.size);
            for c in 0..3 {
                let mut plane = image.plane(c);
                unit_scale(&mut plane, image.kind);
                let mut plane = resize::bilinear(&plane, w, h, config.size, config.size);
                standardize(&mut plane, None);
                data.extend(plane);
            }
            Ok(square(config, data, 3, w, h))
        }
        Task::Lung => {
            check_ct_slice(image)?;
            let mut plane = image.luma();
            match image.kind {
                SampleKind::I16 | SampleKind::F32 => {
                    let (lo, hi) = (config.hu_low, config.hu_high);
                    plane
                        .iter_mut()
                        .for_each(|v| *v = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0));
                }
                // An 8- or 16-bit unsigned picture of a slice is already windowed for display.
                kind => unit_scale(&mut plane, kind),
            }
            let plane = resize::bilinear(&plane, w, h, config.size, config.size);
            Ok(square(config, plane, 1, w, h))
        }
    }
}

/// What the lung model must not take silently. A CT slice comes as signed 16-bit Hounsfield
/// units (or float), or as a greyscale picture already windowed for display; these look like
/// one and are not:
/// - unsigned 16-bit: scanners store HU + 1024 or other rescale values, and which one is not in
///   the pixels, so any window would be a guess;
/// - colour: a photo (a grey picture saved as RGB, with equal channels, is fine);
/// - two grey levels or fewer: a mask, or a blank picture.
fn check_ct_slice(image: &RawImage) -> crate::Result<()> {
    let unsuitable = |reason: String| {
        Err(Error::Unsuitable {
            task: Task::Lung.name(),
            reason,
        })
    };
    if image.kind == SampleKind::U16 {
        return unsuitable(
            "an unsigned 16-bit image: its Hounsfield offset is unknown (scanners store HU + 1024 \
             or other rescale values); give a signed 16-bit slice in Hounsfield units, or an \
             8-bit greyscale picture already windowed"
                .into(),
        );
    }
    if image.channels >= 3 {
        // More than 1 % of the pixels with channels more than 8 levels (of 255) apart.
        let tolerance = 8.0 * image.kind.full_scale() / 255.0;
        let coloured = image
            .data
            .chunks_exact(image.channels)
            .filter(|p| (p[0] - p[1]).abs() > tolerance || (p[1] - p[2]).abs() > tolerance)
            .count();
        if coloured * 100 > image.len() {
            return unsuitable(format!(
                "a colour image ({} % of its pixels are coloured); the lung model takes a \
                 greyscale CT slice",
                (coloured * 100 / image.len().max(1)).max(1)
            ));
        }
    }
    let mut levels: Vec<f32> = Vec::with_capacity(3);
    for &v in image.data.iter().step_by(image.channels) {
        if !levels.contains(&v) {
            levels.push(v);
            if levels.len() > 2 {
                return Ok(());
            }
        }
    }
    unsuitable(format!(
        "only {} grey level{}: a mask or a blank picture, not a CT slice",
        levels.len(),
        if levels.len() == 1 { "" } else { "s" }
    ))
}

fn square(
    config: &PreprocessConfig,
    data: Vec<f32>,
    channels: usize,
    w: usize,
    h: usize,
) -> Prepared {
    let n = config.size * config.size;
    Prepared {
        data,
        channels,
        width: config.size,
        height: config.size,
        fov: vec![true; n],
        source_fov: vec![true; w * h],
        source_width: w,
        source_height: h,
    }
}

/// What [`prepare`] does to a plane after resizing it, for a square cut out of an already
/// prepared image and resized back up (training's zoom-in crops). Skin is standardised per image,
/// so a crop must be standardised again to look like a photo taken that close: a lesion that fills
/// the frame loses its "darker than the skin around it" cue, which is exactly the case to learn.
/// Lung's windowing is per pixel, so its crops are already right; retina patches are not zoomed.
pub fn renormalize_crop(task: Task, plane: &mut [f32]) {
    match task {
        Task::Skin => standardize(plane, None),
        Task::Retina | Task::Lung => {}
    }
}

/// Zero mean, unit variance over the pixels where `mask` is true (all when `None`).
fn standardize(plane: &mut [f32], mask: Option<&[bool]>) {
    let inside = |i: usize| mask.is_none_or(|m| m[i]);
    let (mut n, mut sum, mut sq) = (0usize, 0f64, 0f64);
    for (i, &v) in plane.iter().enumerate() {
        if inside(i) {
            n += 1;
            sum += v as f64;
            sq += (v as f64) * (v as f64);
        }
    }
    let mean = sum / n.max(1) as f64;
    let std = ((sq / n.max(1) as f64) - mean * mean)
        .max(0.0)
        .sqrt()
        .max(1e-6);
    for v in plane.iter_mut() {
        *v = ((*v as f64 - mean) / std) as f32;
    }
}

fn prepare_retina(
    config: &PreprocessConfig,
    image: &RawImage,
    fov: Option<&[bool]>,
) -> crate::Result<Prepared> {
    let (w, h) = (image.width as usize, image.height as usize);
    let source_fov = match fov {
        Some(mask) if mask.len() != w * h => {
            return Err(Error::Config(format!(
                "FOV mask has {} pixels but the image has {w}x{h} = {}",
                mask.len(),
                w * h
            )));
        }
        Some(mask) => mask.to_vec(),
        None => {
            let mut red = image.plane(0);
            unit_scale(&mut red, image.kind);
            fov::derive(&red, w, h)
        }
    };
    // Green carries the vessel contrast in a fundus photo; a grey image is used as it is.
    let mut plane = image.plane(1);
    unit_scale(&mut plane, image.kind);

    let (mut pw, mut ph, mut pfov) = (w, h, source_fov.clone());
    // A crop from inside the disc has no dark surround: its field of view is the whole image and
    // says nothing about the photo's scale, so such an image stays as it is.
    let covered = || source_fov.iter().filter(|m| **m).count() as f32 / (w * h).max(1) as f32;
    if config.fov_width > 0 && covered() < 0.9 {
        let fov_w = fov_width(&source_fov, w, h).max(1);
        let scale = config.fov_width as f32 / fov_w as f32;
        // Within 5 % the resampling would blur more than it normalises.
        if (scale - 1.0).abs() > 0.05 {
            pw = ((w as f32 * scale).round() as usize).max(16);
            ph = ((h as f32 * scale).round() as usize).max(16);
            // A field of view a few pixels wide (a bright spot in a dark picture, or a 3-pixel
            // wide strip) would otherwise be scaled up hundreds of times: billions of pixels,
            // an allocation that aborts the process (found by fuzzing with the shipped model's
            // fov_width, 536).
            if scale > MAX_FOV_UPSCALE || (pw as u64) * (ph as u64) > MAX_PIXELS {
                return Err(Error::Unsuitable {
                    task: Task::Retina.name(),
                    reason: format!(
                        "its field of view (the bright disc of a fundus photo) is {fov_w} px wide; \
                         scaled to the model's {} px it would be {pw}x{ph} pixels (at most \
                         {MAX_FOV_UPSCALE} times larger and {MAX_PIXELS} pixels in all): not a \
                         fundus photo, or one too small",
                        config.fov_width
                    ),
                });
            }
            plane = resize::bilinear(&plane, w, h, pw, ph);
            pfov = resize::nearest(&source_fov, w, h, pw, ph);
        }
    }

    // Per image, inside the FOV: standardise, stretch to 0..255, CLAHE, gamma. This is the
    // retina-unet pipeline, per image instead of per dataset so a single photo gets the same.
    standardize(&mut plane, Some(&pfov));
    let (lo, hi) = plane
        .iter()
        .zip(&pfov)
        .filter(|(_, m)| **m)
        .fold((f32::MAX, f32::MIN), |(a, b), (&v, _)| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut bytes: Vec<u8> = plane
        .iter()
        .zip(&pfov)
        .map(|(&v, &m)| {
            if m {
                ((v - lo) / span * 255.0).clamp(0.0, 255.0) as u8
            } else {
                0
            }
        })
        .collect();
    clahe::apply(&mut bytes, pw, ph, config.clahe_grid, config.clahe_clip);
    let data: Vec<f32> = bytes
        .iter()
        .zip(&pfov)
        .map(|(&b, &m)| {
            if m {
                (b as f32 / 255.0).powf(config.gamma)
            } else {
                0.0
            }
        })
        .collect();
    Ok(Prepared {
        data,
        channels: 1,
        width: pw,
        height: ph,
        fov: pfov,
        source_fov,
        source_width: w,
        source_height: h,
    })
}

/// Width of the FOV's bounding box.
fn fov_width(fov: &[bool], w: usize, h: usize) -> usize {
    let (mut x0, mut x1) = (w, 0);
    for y in 0..h {
        for x in 0..w {
            if fov[y * w + x] {
                x0 = x0.min(x);
                x1 = x1.max(x + 1);
            }
        }
    }
    x1.saturating_sub(x0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(w: u32, h: u32, f: impl Fn(u32, u32) -> [f32; 3]) -> RawImage {
        let data = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect();
        RawImage {
            width: w,
            height: h,
            channels: 3,
            kind: SampleKind::U8,
            data,
        }
    }

    #[test]
    fn retina_keeps_size_zeroes_outside_fov_and_restores() {
        let img = rgb(60, 40, |x, y| {
            let inside = (x as f32 - 30.0).powi(2) + (y as f32 - 20.0).powi(2) < 18.0f32.powi(2);
            if inside {
                [180.0, (x * 3) as f32, 20.0]
            } else {
                [2.0, 1.0, 0.0]
            }
        });
        let p = prepare(&PreprocessConfig::for_task(Task::Retina), &img, None).unwrap();
        assert_eq!((p.channels, p.width, p.height), (1, 60, 40));
        assert_eq!(p.data[0], 0.0);
        assert!(!p.fov[0] && p.fov[20 * 60 + 30]);
        assert!(p.data.iter().all(|v| (0.0..=1.0).contains(v)));
        let restored = p.restore(&vec![0.7; 60 * 40]);
        assert_eq!(restored[0], 0.0);
        assert!((restored[20 * 60 + 30] - 0.7).abs() < 1e-6);
    }

    #[test]
    fn retina_rescales_to_the_requested_fov_width_and_back() {
        let img = rgb(200, 200, |x, y| {
            let inside = (x as f32 - 100.0).powi(2) + (y as f32 - 100.0).powi(2) < 90.0f32.powi(2);
            if inside {
                [200.0, 100.0, 10.0]
            } else {
                [0.0, 0.0, 0.0]
            }
        });
        let config = PreprocessConfig::for_task(Task::Retina).with_fov_width(90);
        let p = prepare(&config, &img, None).unwrap();
        assert!((95..=105).contains(&p.width), "{}", p.width);
        assert_eq!(p.restore(&vec![0.5; p.width * p.height]).len(), 200 * 200);
    }

    /// A piece cut from inside the disc (no surround) is not resampled: its width is not the
    /// field of view's.
    #[test]
    fn retina_keeps_the_scale_of_a_crop_without_surround() {
        let img = rgb(128, 128, |x, y| {
            [150.0 + (x % 7) as f32, 90.0 + (y % 5) as f32, 10.0]
        });
        let config = PreprocessConfig::for_task(Task::Retina).with_fov_width(536);
        let p = prepare(&config, &img, None).unwrap();
        assert_eq!((p.width, p.height), (128, 128));
    }

    /// A dark picture with a small bright spot: its field of view would be scaled up 179 times
    /// to the shipped model's 536 px (about 11,400 x 11,400 pixels; the fuzzer's input, a strip
    /// 3 pixels wide, would have made 215 million). Refused, naming why; a small real photo
    /// still scales up.
    #[test]
    fn retina_refuses_a_field_of_view_too_small_to_scale() {
        let config = PreprocessConfig::for_task(Task::Retina).with_fov_width(536);
        let spot = rgb(64, 64, |x, y| {
            if (28..35).contains(&x) && (28..35).contains(&y) {
                [200.0, 100.0, 10.0]
            } else {
                [0.0, 0.0, 0.0]
            }
        });
        let err = prepare(&config, &spot, None).unwrap_err();
        assert!(
            matches!(err, Error::Unsuitable { task: "retina", .. })
                && err.to_string().contains("3 px wide"),
            "{err}"
        );
        let thumbnail = rgb(96, 96, |x, y| {
            let inside = (x as f32 - 48.0).powi(2) + (y as f32 - 48.0).powi(2) < 44.0f32.powi(2);
            if inside {
                [200.0, 100.0, 10.0]
            } else {
                [0.0, 0.0, 0.0]
            }
        });
        let p = prepare(&config, &thumbnail, None).unwrap();
        assert!(p.width > 96 * 5, "{}", p.width);
    }

    #[test]
    fn retina_rejects_a_fov_of_the_wrong_size() {
        let img = rgb(32, 32, |_, _| [1.0, 1.0, 1.0]);
        let err = prepare(
            &PreprocessConfig::for_task(Task::Retina),
            &img,
            Some(&[true; 10]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("FOV"), "{err}");
    }

    #[test]
    fn skin_resizes_to_a_standardised_square() {
        let img = rgb(90, 60, |x, y| [x as f32, y as f32, 128.0]);
        let p = prepare(&PreprocessConfig::for_task(Task::Skin), &img, None).unwrap();
        assert_eq!((p.channels, p.width, p.height), (3, 128, 128));
        let red = &p.data[..128 * 128];
        let mean: f32 = red.iter().sum::<f32>() / red.len() as f32;
        assert!(mean.abs() < 1e-3);
        assert_eq!(p.restore(&vec![1.0; 128 * 128]).len(), 90 * 60);
    }

    #[test]
    fn lung_windows_hounsfield_units() {
        // Air outside the scanner's circle, bone, and the window's middle.
        let data: Vec<f32> = (0..32 * 32)
            .map(|i| [-2000.0, 1000.0, -300.0][i % 3])
            .collect();
        let img = RawImage {
            width: 32,
            height: 32,
            channels: 1,
            kind: SampleKind::I16,
            data,
        };
        let config = PreprocessConfig::for_task(Task::Lung).with_size(32);
        let p = prepare(&config, &img, None).unwrap();
        assert_eq!(&p.data[..3], &[0.0, 1.0, 0.5]);
    }

    #[test]
    fn lung_refuses_what_is_not_a_ct_slice() {
        let config = PreprocessConfig::for_task(Task::Lung).with_size(32);
        let image = |channels: usize, kind: SampleKind, data: Vec<f32>| RawImage {
            width: 32,
            height: 32,
            channels,
            kind,
            data,
        };
        let refused = |img: RawImage, why: &str| {
            let err = prepare(&config, &img, None).unwrap_err();
            assert!(
                matches!(err, Error::Unsuitable { task: "lung", .. })
                    && err.to_string().contains(why),
                "{err}"
            );
        };
        let grey: Vec<f32> = (0..32 * 32).map(|i| (i % 200) as f32).collect();
        let photo: Vec<f32> = grey.iter().flat_map(|&v| [v, 255.0 - v, 90.0]).collect();
        refused(image(3, SampleKind::U8, photo), "colour");
        let mask: Vec<f32> = (0..32 * 32)
            .map(|i| if i % 7 == 0 { 255.0 } else { 0.0 })
            .collect();
        refused(image(1, SampleKind::U8, mask), "2 grey levels: a mask");
        refused(image(1, SampleKind::U8, vec![0.0; 32 * 32]), "1 grey level");
        let raw: Vec<f32> = grey.iter().map(|v| v * 10.0).collect();
        refused(image(1, SampleKind::U16, raw), "unsigned 16-bit");
        // A windowed 8-bit picture, grey or saved as RGB with equal channels, is taken.
        let rgb_grey: Vec<f32> = grey.iter().flat_map(|&v| [v, v, v]).collect();
        assert!(prepare(&config, &image(1, SampleKind::U8, grey), None).is_ok());
        assert!(prepare(&config, &image(3, SampleKind::U8, rgb_grey), None).is_ok());
    }
}
