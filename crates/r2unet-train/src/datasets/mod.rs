//! Readers for the five data sets, each in its publisher's layout under a root folder, with the
//! splits documented in the README: DRIVE official 20/20; STARE and CHASE_DB1 declared
//! (first 10 / 20 sorted IDs train, the rest test); ISIC 2017 official train/validation with a
//! seeded 10 % hold-out of training for model selection; the ISIC 2016 overlap subset of the same
//! folder (its training rows minus a seeded 10 % hold-out, its test rows); lung 80/10/10 by a
//! fixed seed.
mod chase;
mod drive;
mod isic;
mod lung;
mod stare;

use std::path::{Path, PathBuf};

use r2unet::image_io::{self, RawImage};
use r2unet::preprocess::resize;
use r2unet::preprocess::{self, Prepared, PreprocessConfig, Task};

use crate::error::{Result, TrainError, read};

/// A data set the CLI knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    Drive,
    Stare,
    Chase,
    Isic2017,
    /// The ISIC 2016 Part 1 images present in the ISIC 2017 folder (not comparable one-to-one
    /// with published ISIC 2016 figures; see the data README).
    Isic2016,
    Lung,
}

impl Dataset {
    pub const ALL: [Dataset; 6] = [
        Dataset::Drive,
        Dataset::Stare,
        Dataset::Chase,
        Dataset::Isic2017,
        Dataset::Isic2016,
        Dataset::Lung,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Drive => "drive",
            Dataset::Stare => "stare",
            Dataset::Chase => "chase",
            Dataset::Isic2017 => "isic2017",
            Dataset::Isic2016 => "isic2016",
            Dataset::Lung => "lung",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Dataset::ALL.into_iter().find(|d| d.name() == name).ok_or_else(|| {
            TrainError::Dataset(format!(
                "unknown dataset '{name}'; expected drive, stare, chase, isic2017, isic2016 or lung"
            ))
        })
    }

    pub fn task(self) -> Task {
        match self {
            Dataset::Drive | Dataset::Stare | Dataset::Chase => Task::Retina,
            Dataset::Isic2017 | Dataset::Isic2016 => Task::Skin,
            Dataset::Lung => Task::Lung,
        }
    }

    /// Split names this data set accepts.
    pub fn splits(self) -> &'static [&'static str] {
        match self {
            Dataset::Drive | Dataset::Stare | Dataset::Chase => &["train", "test", "all"],
            Dataset::Isic2017 => &["train", "holdout", "validation"],
            Dataset::Isic2016 => &["train", "holdout", "test"],
            Dataset::Lung => &["train", "val", "test", "all"],
        }
    }

    /// The split that `eval` scores by default (the one results are reported on).
    pub fn default_eval_split(self) -> &'static str {
        match self {
            Dataset::Isic2017 => "validation",
            _ => "test",
        }
    }

    /// The split model selection runs on during training, if the data set has one of images
    /// (retina selects on held-out patches instead).
    pub fn selection_split(self) -> Option<&'static str> {
        match self {
            Dataset::Isic2017 | Dataset::Isic2016 => Some("holdout"),
            Dataset::Lung => Some("val"),
            _ => None,
        }
    }

    /// Lists the samples of a split, in a stable order.
    pub fn list(self, root: &Path, split: &str) -> Result<Vec<Sample>> {
        if !self.splits().contains(&split) {
            return Err(TrainError::Dataset(format!(
                "{} has no split '{split}'; expected one of {}",
                self.name(),
                self.splits().join(", ")
            )));
        }
        if !root.is_dir() {
            return Err(TrainError::Dataset(format!(
                "{}: not a folder",
                root.display()
            )));
        }
        let samples = match self {
            Dataset::Drive => drive::list(root, split)?,
            Dataset::Stare => stare::list(root, split)?,
            Dataset::Chase => chase::list(root, split)?,
            Dataset::Isic2017 => isic::list(root, split)?,
            Dataset::Isic2016 => isic::list_2016(root, split)?,
            Dataset::Lung => lung::list(root, split)?,
        };
        if samples.is_empty() {
            return Err(TrainError::Dataset(format!(
                "{}: no {} images found for split '{split}' (see the data README for the layout)",
                root.display(),
                self.name()
            )));
        }
        Ok(samples)
    }
}

/// One image with its label (and FOV mask where the publisher ships one).
#[derive(Clone, Debug)]
pub struct Sample {
    pub id: String,
    pub image: PathBuf,
    pub label: PathBuf,
    pub fov: Option<PathBuf>,
}

/// A sample decoded and preprocessed.
pub struct Loaded {
    pub id: String,
    pub prepared: Prepared,
    /// Truth at source resolution.
    pub label: Vec<bool>,
    /// Truth at model resolution (what training compares logits against).
    pub model_label: Vec<f32>,
}

fn decode_at(path: &Path) -> Result<RawImage> {
    image_io::decode(&read(path)?).map_err(|error| TrainError::Image {
        path: path.to_owned(),
        error,
    })
}

/// Reads a label or mask file and checks it against the image size.
fn binary_at(path: &Path, image: &RawImage, what: &'static str) -> Result<Vec<bool>> {
    let bytes = read(path)?;
    let img = image_io::decode(&bytes).map_err(|error| TrainError::Image {
        path: path.to_owned(),
        error,
    })?;
    if (img.width, img.height) != (image.width, image.height) {
        return Err(TrainError::Image {
            path: path.to_owned(),
            error: r2unet::Error::SizeMismatch {
                what,
                image_w: image.width,
                image_h: image.height,
                other_w: img.width,
                other_h: img.height,
            },
        });
    }
    Ok(img.to_binary())
}

impl Sample {
    /// Decodes and preprocesses the sample.
    pub fn load(&self, config: &PreprocessConfig) -> Result<Loaded> {
        let image = decode_at(&self.image)?;
        let label = binary_at(&self.label, &image, "label")?;
        let fov = match &self.fov {
            Some(p) => Some(binary_at(p, &image, "FOV mask")?),
            None => None,
        };
        let prepared = preprocess::prepare(config, &image, fov.as_deref()).map_err(|error| {
            TrainError::Image {
                path: self.image.clone(),
                error,
            }
        })?;
        let (w, h) = (image.width as usize, image.height as usize);
        let model_label = resize::nearest(&label, w, h, prepared.width, prepared.height)
            .into_iter()
            .map(|v| if v { 1.0 } else { 0.0 })
            .collect();
        Ok(Loaded {
            id: self.id.clone(),
            prepared,
            label,
            model_label,
        })
    }
}

/// Files in `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|error| TrainError::Io {
        path: dir.to_owned(),
        error,
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The expected label file, or an error naming it.
fn must_exist(path: PathBuf, of: &Path) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(TrainError::Dataset(format!(
            "{}: missing label {}",
            of.display(),
            path.display()
        )))
    }
}

/// A deterministic shuffle (SplitMix64-driven Fisher–Yates), so splits never depend on a
/// crate's RNG algorithm changing.
fn seeded_shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn stem(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests;
