//! Readers for the five data sets, each in its publisher's layout under a root folder, with the
//! splits documented in the README: DRIVE official 20/20; STARE and CHASE_DB1 declared
//! (first 10 / 20 sorted IDs train, the rest test); ISIC 2017 official train/validation with a
//! seeded 10 % hold-out of training for model selection; the ISIC 2016 overlap subset of the same
//! folder (its training rows minus a seeded 10 % hold-out, its test rows); lung 80/10/10 by a
//! fixed seed. And `folder`: your own folders of images and masks ([`folder`]).
mod chase;
mod drive;
pub mod folder;
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

/// Where a run's or an evaluation's images come from: a named data set under its root folder,
/// or the user's own folders (`--dataset folder`), already paired, checked and split.
#[derive(Clone, Debug)]
pub enum Source {
    Named { dataset: Dataset, root: PathBuf },
    Folder(Box<folder::FolderSet>),
}

impl Source {
    /// The name recorded in `config.json` and in reports: the data set's, or `folder`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Named { dataset, .. } => dataset.name(),
            Source::Folder(_) => folder::NAME,
        }
    }

    /// The named data set, if it is one (the paper's figures exist only for those).
    pub fn dataset(&self) -> Option<Dataset> {
        match self {
            Source::Named { dataset, .. } => Some(*dataset),
            Source::Folder(_) => None,
        }
    }

    pub fn task(&self) -> Task {
        match self {
            Source::Named { dataset, .. } => dataset.task(),
            Source::Folder(set) => set.spec.task,
        }
    }

    /// Split names this source accepts.
    pub fn splits(&self) -> &'static [&'static str] {
        match self {
            Source::Named { dataset, .. } => dataset.splits(),
            Source::Folder(_) => &folder::SPLITS,
        }
    }

    /// The split that `eval` scores by default.
    pub fn default_eval_split(&self) -> &'static str {
        match self {
            Source::Named { dataset, .. } => dataset.default_eval_split(),
            Source::Folder(_) => "test",
        }
    }

    /// The split of images model selection runs on during training, if any (retina selects on
    /// held-out patches of the training images instead, for named and folder data alike).
    pub fn selection_split(&self) -> Option<&'static str> {
        match self {
            Source::Named { dataset, .. } => dataset.selection_split(),
            Source::Folder(set) => (set.spec.task != Task::Retina).then_some("val"),
        }
    }

    /// Lists the samples of a split, in a stable order (by ID); an empty split is an error.
    pub fn list(&self, split: &str) -> Result<Vec<Sample>> {
        match self {
            Source::Named { dataset, root } => dataset.list(root, split),
            Source::Folder(set) => set.list(split),
        }
    }
}

/// One image with its label (and FOV mask where the publisher ships one).
#[derive(Clone, Debug)]
pub struct Sample {
    pub id: String,
    pub image: PathBuf,
    pub label: PathBuf,
    pub fov: Option<PathBuf>,
    /// How the label and FOV files are read as binary.
    pub mask_rule: MaskRule,
}

/// How a label or FOV mask file becomes a binary plane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaskRule {
    /// Luma above half of full scale ([`RawImage::to_binary`]): the named data sets' 0/255
    /// GIFs, TIFFs and 1-bit PNGs.
    #[default]
    HalfScale,
    /// Any kind of mask file (a folder of the user's own, `--dataset folder`), by each pixel's
    /// brightest channel: where the file's brightest value is at most 1/16 of full scale (index
    /// masks: 0/1, or 0/1/2 for several classes), every nonzero pixel is foreground; otherwise
    /// a pixel is foreground where it exceeds half of the file's brightest value. So 0/255,
    /// 0/1, 0/65535, palette and coloured (e.g. red on black) masks all read right, an all-zero
    /// file is all background, and the ringing of a JPEG mask around its edges is cut off.
    HalfOfMax,
}

impl MaskRule {
    /// The binary plane of a decoded mask file.
    pub fn apply(self, img: &RawImage) -> Vec<bool> {
        match self {
            MaskRule::HalfScale => img.to_binary(),
            MaskRule::HalfOfMax => {
                let c = img.channels.max(1);
                let brightest: Vec<f32> = img
                    .data
                    .chunks_exact(c)
                    .map(|p| p.iter().copied().fold(f32::NEG_INFINITY, f32::max))
                    .collect();
                let max = brightest.iter().copied().fold(0.0f32, f32::max);
                let cut = if max <= img.kind.full_scale() / 16.0 {
                    0.0
                } else {
                    max / 2.0
                };
                brightest.into_iter().map(|v| v > cut).collect()
            }
        }
    }
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
fn binary_at(
    path: &Path,
    image: &RawImage,
    what: &'static str,
    rule: MaskRule,
) -> Result<Vec<bool>> {
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
    Ok(rule.apply(&img))
}

impl Sample {
    /// Decodes and preprocesses the sample.
    pub fn load(&self, config: &PreprocessConfig) -> Result<Loaded> {
        let image = decode_at(&self.image)?;
        let label = binary_at(&self.label, &image, "label", self.mask_rule)?;
        let fov = match &self.fov {
            Some(p) => Some(binary_at(p, &image, "FOV mask", self.mask_rule)?),
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
