//! Training examples: random patches inside the field of view (retina, the paper's 48x48), or
//! whole preprocessed images (skin, lung); optional flips and right-angle rotations.
//!
//! Every draw comes from a generator seeded afresh for the epoch, with [`epoch_seed`]`(seed,
//! epoch)`, never from one carried over from earlier epochs: so a run resumed after a kill
//! draws, for each epoch, exactly the examples an uninterrupted run draws, and the
//! checkpoints hold no random state.
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use r2unet::Task;
use r2unet::preprocess::renormalize_crop;

use crate::datasets::Loaded;

/// A set of equally sized examples stored flat: `inputs` is `[n, channels, side, side]`,
/// `labels` is `[n, 1, side, side]`.
#[derive(Clone, Debug, Default)]
pub struct Examples {
    pub channels: usize,
    pub side: usize,
    pub inputs: Vec<f32>,
    pub labels: Vec<f32>,
}

impl Examples {
    pub fn len(&self) -> usize {
        self.labels.len() / (self.side * self.side).max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inputs and labels of examples `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> (&[f32], &[f32]) {
        let (i, l) = (self.channels * self.side * self.side, self.side * self.side);
        (
            &self.inputs[range.start * i..range.end * i],
            &self.labels[range.start * l..range.end * l],
        )
    }

    fn push(
        &mut self,
        inputs: impl IntoIterator<Item = f32>,
        labels: impl IntoIterator<Item = f32>,
    ) {
        self.inputs.extend(inputs);
        self.labels.extend(labels);
    }
}

/// The seed of epoch `epoch`'s (1-based) draws in a run seeded with `seed`: a function of the
/// two alone, so that no generator state has to outlive an epoch (or be checkpointed).
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_add(epoch as u64 * 7919)
}

/// One of the 8 symmetries of the square, applied to a `side x side` plane.
fn dihedral(plane: &[f32], side: usize, t: u8) -> Vec<f32> {
    let mut out = vec![0.0; side * side];
    for y in 0..side {
        for x in 0..side {
            let (sy, sx) = match t & 3 {
                0 => (y, x),
                1 => (x, side - 1 - y),
                2 => (side - 1 - y, side - 1 - x),
                _ => (side - 1 - x, y),
            };
            let sx = if t & 4 != 0 { side - 1 - sx } else { sx };
            out[y * side + x] = plane[sy * side + sx];
        }
    }
    out
}

/// `count` random `side x side` patches whose centres lie inside the FOV, over all images.
pub fn patches(images: &[Loaded], count: usize, side: usize, seed: u64, augment: bool) -> Examples {
    let mut rng = SmallRng::seed_from_u64(seed);
    let channels = images[0].prepared.channels;
    let mut out = Examples {
        channels,
        side,
        ..Default::default()
    };
    out.inputs.reserve(count * channels * side * side);
    out.labels.reserve(count * side * side);
    // Pixel lists per image so a centre is drawn uniformly from FOV pixels.
    let inside: Vec<Vec<u32>> = images
        .iter()
        .map(|im| {
            im.prepared
                .fov
                .iter()
                .enumerate()
                .filter(|(_, m)| **m)
                .map(|(i, _)| i as u32)
                .collect()
        })
        .collect();
    while out.len() < count {
        let k = rng.random_range(0..images.len());
        let p = &images[k].prepared;
        if inside[k].is_empty() || p.width < side || p.height < side {
            continue;
        }
        let c = inside[k][rng.random_range(0..inside[k].len())] as usize;
        let (cy, cx) = (c / p.width, c % p.width);
        let y0 = cy.saturating_sub(side / 2).min(p.height - side);
        let x0 = cx.saturating_sub(side / 2).min(p.width - side);
        let t = if augment { rng.random_range(0..8u8) } else { 0 };
        let crop = |plane: &[f32]| -> Vec<f32> {
            let v: Vec<f32> = (0..side)
                .flat_map(|dy| plane[(y0 + dy) * p.width + x0..][..side].to_vec())
                .collect();
            dihedral(&v, side, t)
        };
        let n = p.width * p.height;
        let inputs: Vec<f32> = (0..channels)
            .flat_map(|ch| crop(&p.data[ch * n..(ch + 1) * n]))
            .collect();
        out.push(inputs, crop(&images[k].model_label));
    }
    out
}

/// Every image once, in a seeded order, optionally flipped/rotated (square inputs only).
pub fn whole_images(images: &[Loaded], seed: u64, augment: bool) -> Examples {
    whole_images_zoomed(images, seed, augment, None)
}

/// Zoom-in augmentation: a random factor in `[1, max]`, the crop then renormalised as `task`'s
/// preprocessing would a photo taken that close.
#[derive(Clone, Copy, Debug)]
pub struct Zoom {
    pub max: f64,
    pub task: Task,
}

/// The `side / factor` square at (`y0`, `x0`) of a `side x side` plane, resized back to
/// `side x side` bilinearly (pixel centres aligned). Labels come out soft at the lesion's edge,
/// which binary cross-entropy takes as it is.
fn zoom_plane(plane: &[f32], side: usize, factor: f64, y0: f64, x0: f64) -> Vec<f32> {
    let scale = 1.0 / factor;
    let last = (side - 1) as f64;
    let mut out = Vec::with_capacity(side * side);
    for y in 0..side {
        let sy = (y0 + (y as f64 + 0.5) * scale - 0.5).clamp(0.0, last);
        let (y1, fy) = (sy.floor() as usize, sy.fract() as f32);
        let y2 = (y1 + 1).min(side - 1);
        for x in 0..side {
            let sx = (x0 + (x as f64 + 0.5) * scale - 0.5).clamp(0.0, last);
            let (x1, fx) = (sx.floor() as usize, sx.fract() as f32);
            let x2 = (x1 + 1).min(side - 1);
            let top = plane[y1 * side + x1] * (1.0 - fx) + plane[y1 * side + x2] * fx;
            let bottom = plane[y2 * side + x1] * (1.0 - fx) + plane[y2 * side + x2] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// [`whole_images`], each image also zoomed in by a random factor in `[1, zoom.max]` at a random
/// place (a max <= 1: never), and its input planes put through the task's [`renormalize_crop`]
/// so that they are what preprocessing makes of a photo taken that close. The draws come after
/// the flip's, so a max of 1 gives exactly [`whole_images`]' examples.
pub fn whole_images_zoomed(
    images: &[Loaded],
    seed: u64,
    augment: bool,
    zoom: Option<Zoom>,
) -> Examples {
    let zoom = zoom.filter(|z| z.max > 1.0);
    let mut rng = SmallRng::seed_from_u64(seed);
    let p0 = &images[0].prepared;
    let (channels, side) = (p0.channels, p0.width);
    let mut order: Vec<usize> = (0..images.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut out = Examples {
        channels,
        side,
        ..Default::default()
    };
    for k in order {
        let p = &images[k].prepared;
        let t = if augment { rng.random_range(0..8u8) } else { 0 };
        let n = side * side;
        let zoomed = zoom.map(|z| {
            let factor = rng.random_range(1.0..=z.max);
            let room = side as f64 * (1.0 - 1.0 / factor);
            (
                factor,
                rng.random_range(0.0..=room),
                rng.random_range(0.0..=room),
            )
        });
        let view = |plane: &[f32]| {
            let turned = dihedral(plane, side, t);
            match zoomed {
                Some((f, y0, x0)) => zoom_plane(&turned, side, f, y0, x0),
                None => turned,
            }
        };
        let inputs: Vec<f32> = (0..channels)
            .flat_map(|c| {
                let mut plane = view(&p.data[c * n..(c + 1) * n]);
                if let Some(z) = zoom {
                    renormalize_crop(z.task, &mut plane);
                }
                plane
            })
            .collect();
        out.push(inputs, view(&images[k].model_label));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zoomed examples: image and label go through the same flip and zoom (an image equal to
    /// its label stays equal), zoom 1 gives `whole_images` exactly, and a zoom > 1 changes them.
    #[test]
    fn zoomed_whole_images_keep_image_and_label_aligned() {
        let side = 16;
        let images: Vec<Loaded> = (0..6)
            .map(|k| {
                let mask: Vec<f32> = (0..side * side)
                    .map(|i| (((i / side) + k) % 5 < 2 && (i % side) > k) as u8 as f32)
                    .collect();
                Loaded {
                    id: format!("{k}"),
                    prepared: r2unet::preprocess::Prepared {
                        data: mask.clone(),
                        channels: 1,
                        width: side,
                        height: side,
                        fov: vec![true; side * side],
                        source_fov: vec![true; side * side],
                        source_width: side,
                        source_height: side,
                    },
                    label: mask.iter().map(|v| *v > 0.5).collect(),
                    model_label: mask,
                }
            })
            .collect();
        let plain = whole_images(&images, 7, true);
        let zoom = |max| {
            Some(Zoom {
                max,
                task: Task::Lung,
            })
        };
        let same = whole_images_zoomed(&images, 7, true, zoom(1.0));
        assert_eq!(plain.inputs, same.inputs);
        let zoomed = whole_images_zoomed(&images, 7, true, zoom(1.8));
        assert_eq!(zoomed.len(), images.len());
        assert_eq!(zoomed.inputs, zoomed.labels);
        assert_ne!(zoomed.inputs, plain.inputs);
    }

    /// A zoomed skin example is what preprocessing makes of a photo taken that close: the top-left
    /// quarter of a photo prepared on its own, not a magnified piece of the whole photo's
    /// standardised planes (whose mean and spread belong to the whole photo).
    #[test]
    fn a_zoomed_skin_crop_is_prepared_like_a_closer_photo() {
        use r2unet::image_io::{RawImage, SampleKind};
        use r2unet::preprocess::{PreprocessConfig, prepare};
        // A smooth photo (so resampling twice loses little): a dark disc on a lighter gradient,
        // the disc filling most of the top-left quarter. RawImage is interleaved (RGBRGB...).
        let raw = |side: usize| {
            let mut data = Vec::with_capacity(3 * side * side);
            for y in 0..side {
                for x in 0..side {
                    let (fx, fy) = (x as f32, y as f32);
                    let d = ((fx - 60.0).powi(2) + (fy - 60.0).powi(2)).sqrt();
                    let disc = 1.0 / (1.0 + ((d - 45.0) / 6.0).exp());
                    for c in 0..3 {
                        data.push(200.0 - 30.0 * c as f32 + 0.2 * fx - 120.0 * disc);
                    }
                }
            }
            RawImage {
                width: side as u32,
                height: side as u32,
                channels: 3,
                kind: SampleKind::U8,
                data,
            }
        };
        let config = PreprocessConfig::for_task(Task::Skin);
        let side = config.size;
        let whole = prepare(&config, &raw(256), None).unwrap();
        let closer = prepare(&config, &raw(128), None).unwrap();
        let n = side * side;
        for c in 0..3 {
            let mut crop = zoom_plane(&whole.data[c * n..(c + 1) * n], side, 2.0, 0.0, 0.0);
            let unchanged = crop.clone();
            renormalize_crop(Task::Skin, &mut crop);
            let want = &closer.data[c * n..(c + 1) * n];
            let worst = |got: &[f32]| {
                got.iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max)
            };
            assert!(worst(&crop) < 0.1, "channel {c}: {}", worst(&crop));
            assert!(
                worst(&unchanged) > 0.3,
                "channel {c}: {}",
                worst(&unchanged)
            );
        }
    }

    #[test]
    fn zoom_by_one_is_the_identity_and_by_two_magnifies_the_chosen_quarter() {
        let side = 8;
        let plane: Vec<f32> = (0..side * side).map(|i| i as f32).collect();
        let same = zoom_plane(&plane, side, 1.0, 0.0, 0.0);
        assert!(same.iter().zip(&plane).all(|(a, b)| (a - b).abs() < 1e-5));
        // A factor of 2 at (4, 4): the bottom-right quarter. Bilinear sampling reproduces a
        // linear ramp exactly: output (y, x) samples the source at 4 + (y + 0.5) / 2 - 0.5
        // (clamped to the plane), likewise for x.
        let z = zoom_plane(&plane, side, 2.0, 4.0, 4.0);
        let at = |i: usize| (4.0 + (i as f32 + 0.5) / 2.0 - 0.5).min(7.0);
        for y in 0..side {
            for x in 0..side {
                let want = at(y) * side as f32 + at(x);
                assert!(
                    (z[y * side + x] - want).abs() < 1e-4,
                    "({y}, {x}): {} vs {want}",
                    z[y * side + x]
                );
            }
        }
        // A binary mask stays within [0, 1], soft only at edges.
        let mask: Vec<f32> = (0..side * side)
            .map(|i| ((i % side) >= 6) as u8 as f32)
            .collect();
        let zm = zoom_plane(&mask, side, 1.7, 2.0, 3.0);
        assert!(zm.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(zm.contains(&1.0) && zm.contains(&0.0));
    }

    #[test]
    fn dihedral_group_has_eight_distinct_members_and_identity() {
        let plane: Vec<f32> = (0..9).map(|i| i as f32).collect();
        let all: Vec<Vec<f32>> = (0..8).map(|t| dihedral(&plane, 3, t)).collect();
        assert_eq!(all[0], plane);
        for i in 0..8 {
            for j in i + 1..8 {
                assert_ne!(all[i], all[j], "{i} == {j}");
            }
        }
    }
}
