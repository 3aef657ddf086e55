//! Training examples: random patches inside the field of view (retina, the paper's 48x48), or
//! whole preprocessed images (skin, lung); optional flips and right-angle rotations.
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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
        let inputs: Vec<f32> = (0..channels)
            .flat_map(|c| dihedral(&p.data[c * n..(c + 1) * n], side, t))
            .collect();
        out.push(inputs, dihedral(&images[k].model_label, side, t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
