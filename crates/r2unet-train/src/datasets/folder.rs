//! Your own data (`--dataset folder`): a folder of images and a folder of masks (and, for retina,
//! optionally a folder of field-of-view masks), in any format `r2unet::image_io::decode` reads
//! and at any size.
//!
//! **Pairing.** Files are paired by name without the extension (the *stem*; only files whose
//! extension is one of [`IMAGE_EXTENSIONS`] are looked at, hidden files never). A mask belongs
//! to an image when the mask's stem, or the mask's stem minus one of [`MASK_SUFFIXES`] (any
//! case), equals the image's stem, or the image's stem minus one of [`SPLIT_TAGS`]. So
//! `ISIC_0001.jpg` pairs with `ISIC_0001_segmentation.png`, `ID_0001.tif` with `ID_0001.tif`,
//! and DRIVE as it is published, `21_training.tif`, with `21_manual1.gif` (`21_training` minus
//! `_training` is `21`, `21_manual1` minus `_manual1` is `21`). FOV masks pair the same way with
//! [`FOV_SUFFIXES`] (`21_training_mask.gif`). Every image needs exactly one mask (and one FOV
//! mask when a FOV folder is given), and every mask exactly one image: a file that fits none or
//! several, two images of one stem, a file that cannot be decoded, a mask of another size than
//! its image or an image the task's preprocessing refuses are all listed in one error, each
//! with its problem, before anything trains (or, with `skip_bad`, left out and listed as
//! warnings). An image's stem is its ID: in reports, in the split file and in `files.csv`.
//!
//! **Splits.** `train`, `val` and `test`, either from a split file (see [`read_split_file`]) or
//! by seeded fractions: the pairs sorted by stem, shuffled by a SplitMix64-driven Fisher–Yates
//! with the seed (the same shuffle as the named readers', so the same on every machine), then
//! cut into `train | val | test` with `round(n * val)` and `round(n * test)` pairs. With the
//! defaults (0.1, 0.1, seed 42) the shared LUNG folder gets exactly the named `lung` split.
//! Masks are read with [`MaskRule::HalfOfMax`].
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use r2unet::image_io::{self, RawImage};
use r2unet::preprocess::{self, PreprocessConfig, Task};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{MaskRule, Sample, seeded_shuffle};
use crate::error::{Result, TrainError};

/// The data set name of folder data, in `config.json` and in reports.
pub const NAME: &str = "folder";

/// The splits of folder data (`all` is every pair, in a split or not).
pub const SPLITS: [&str; 4] = ["train", "val", "test", "all"];

/// Mask stems may end with one of these (any case) after their image's stem.
pub const MASK_SUFFIXES: [&str; 10] = [
    "_mask",
    "_masks",
    "_segmentation",
    "_manual1",
    "_lesion",
    "_label",
    "_labels",
    "_gt",
    "_seg",
    "-mask",
];

/// FOV mask stems may end with one of these (any case) after their image's stem.
pub const FOV_SUFFIXES: [&str; 9] = [
    "_mask",
    "_fov",
    "_fovmask",
    "_fov_mask",
    "_roi",
    "_test_mask",
    "_training_mask",
    "-mask",
    "-fov",
];

/// An image stem ending with one of these (any case) also pairs without it (DRIVE names its
/// images `21_training`, its labels `21_manual1`).
pub const SPLIT_TAGS: [&str; 5] = ["_training", "_train", "_test", "_validation", "_val"];

/// File extensions (any case) looked at in the folders; other files are ignored, with a note.
pub const IMAGE_EXTENSIONS: [&str; 12] = [
    "png", "jpg", "jpeg", "jpe", "tif", "tiff", "gif", "bmp", "ppm", "pgm", "pbm", "pnm",
];

pub const DEFAULT_VAL_FRACTION: f64 = 0.1;
pub const DEFAULT_TEST_FRACTION: f64 = 0.1;

/// How at most this many names are listed in a warning about many files.
const LIST_AT_MOST: usize = 10;

/// What `--dataset folder` was given; recorded in a run's `config.json` (paths absolute), so
/// that `--resume` finds the same data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FolderSpec {
    pub images: PathBuf,
    pub masks: PathBuf,
    #[serde(default)]
    pub fov: Option<PathBuf>,
    pub task: Task,
    /// CSV of `stem,split` rows; without it the split is by the fractions and the seed.
    #[serde(default)]
    pub split_file: Option<PathBuf>,
    pub val_fraction: f64,
    pub test_fraction: f64,
    pub seed: u64,
    /// Leave out unpaired and unreadable files (listed as warnings) instead of refusing.
    #[serde(default)]
    pub skip_bad: bool,
}

/// One image with its mask (and FOV mask), checked, with the SHA-256 of each file.
#[derive(Clone, Debug)]
pub struct Pair {
    pub stem: String,
    pub image: PathBuf,
    pub mask: PathBuf,
    pub fov: Option<PathBuf>,
    pub image_sha256: String,
    pub mask_sha256: String,
    pub fov_sha256: Option<String>,
    /// `train`, `val` or `test`; `None` for a pair the split file does not list.
    pub split: Option<&'static str>,
}

/// The pairs of a folder spec, checked and split.
#[derive(Clone, Debug)]
pub struct FolderSet {
    pub spec: FolderSpec,
    /// Sorted by stem.
    pub pairs: Vec<Pair>,
    /// What was left out or ignored, one line each (no `error:` in them).
    pub warnings: Vec<String>,
}

/// A file and what is wrong with it.
struct Problem {
    path: PathBuf,
    what: String,
}

impl Problem {
    fn new(path: &Path, what: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}

fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `s` without `suffix` (compared in any case), if it ends with it and something is left.
fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let n = s.len().checked_sub(suffix.len())?;
    (n > 0 && s.is_char_boundary(n) && s[n..].eq_ignore_ascii_case(suffix)).then(|| &s[..n])
}

/// The stem and the stem minus each of `suffixes` it ends with.
fn keys(stem: &str, suffixes: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::from([stem.to_string()]);
    out.extend(
        suffixes
            .iter()
            .filter_map(|s| strip_suffix_ci(stem, s))
            .map(str::to_string),
    );
    out
}

/// The image files of `dir` (sorted) and the other files, which are ignored.
fn list_dir(dir: &Path, flag: &str) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if !dir.is_dir() {
        return Err(TrainError::Dataset(format!(
            "{flag} {}: not a folder",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir).map_err(|error| TrainError::Io {
        path: dir.to_owned(),
        error,
    })?;
    let (mut images, mut other) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|error| TrainError::Io {
            path: dir.to_owned(),
            error,
        })?;
        let path = entry.path();
        if name_of(&path).starts_with('.') || !path.is_file() {
            continue;
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            images.push(path);
        } else {
            other.push(path);
        }
    }
    images.sort();
    other.sort();
    Ok((images, other))
}

/// Which of `others` fit which images: for each image the indices of the files that fit it,
/// and for each file the indices of the images it fits.
fn fits(
    image_stems: &[String],
    others: &[PathBuf],
    suffixes: &[&str],
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, stem) in image_stems.iter().enumerate() {
        for key in keys(stem, &SPLIT_TAGS) {
            by_key.entry(key).or_default().push(i);
        }
    }
    let mut per_image = vec![Vec::new(); image_stems.len()];
    let mut per_other = Vec::with_capacity(others.len());
    for (j, path) in others.iter().enumerate() {
        let mut hits = BTreeSet::new();
        for key in keys(&stem_of(path), suffixes) {
            hits.extend(by_key.get(&key).into_iter().flatten().copied());
        }
        for &i in &hits {
            per_image[i].push(j);
        }
        per_other.push(hits.into_iter().collect());
    }
    (per_image, per_other)
}

fn names(paths: &[&Path]) -> String {
    paths
        .iter()
        .map(|p| name_of(p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pairs `images` with `others` (masks or FOV masks); problems for every file that fits none or
/// several. `Some(j)` per image where exactly one file fits it and fits only it.
fn pair_files(
    images: &[PathBuf],
    image_stems: &[String],
    others: &[PathBuf],
    suffixes: &[&str],
    what: &str,
    dir: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<Option<usize>> {
    let (per_image, per_other) = fits(image_stems, others, suffixes);
    for (j, hits) in per_other.iter().enumerate() {
        match hits.len() {
            0 => problems.push(Problem::new(
                &others[j],
                format!("no image in the images folder pairs with this {what}"),
            )),
            1 => {}
            _ => {
                let clash: Vec<&Path> = hits.iter().map(|&i| images[i].as_path()).collect();
                problems.push(Problem::new(
                    &others[j],
                    format!(
                        "this {what} fits several images ({}); rename it or them",
                        names(&clash)
                    ),
                ));
            }
        }
    }
    per_image
        .iter()
        .enumerate()
        .map(|(i, hits)| match hits.as_slice() {
            [] => {
                problems.push(Problem::new(
                    &images[i],
                    format!("no {what} for this image in {}", dir.display()),
                ));
                None
            }
            [j] if per_other[*j].len() == 1 => Some(*j),
            [j] => {
                problems.push(Problem::new(
                    &images[i],
                    format!(
                        "its only {what}, {}, fits other images too",
                        name_of(&others[*j])
                    ),
                ));
                None
            }
            several => {
                let clash: Vec<&Path> = several.iter().map(|&j| others[j].as_path()).collect();
                problems.push(Problem::new(
                    &images[i],
                    format!(
                        "several {what}s fit this image ({}); keep one",
                        names(&clash)
                    ),
                ));
                None
            }
        })
        .collect()
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Reads and decodes one file: its digest and image, or its problem.
fn read_decode(path: &Path) -> std::result::Result<(String, RawImage), Problem> {
    let bytes = std::fs::read(path).map_err(|e| Problem::new(path, format!("cannot read: {e}")))?;
    let digest = sha256_hex(&bytes);
    let image = image_io::decode(&bytes).map_err(|e| Problem::new(path, e.to_string()))?;
    Ok((digest, image))
}

/// A candidate pair, before its files are checked.
struct Candidate {
    stem: String,
    image: PathBuf,
    mask: PathBuf,
    fov: Option<PathBuf>,
}

/// Decodes every file of a candidate, checks the sizes and runs the task's preprocessing.
fn check(c: &Candidate, preprocess: &PreprocessConfig) -> std::result::Result<Pair, Vec<Problem>> {
    let mut problems = Vec::new();
    let image = read_decode(&c.image).map_err(|p| problems.push(p)).ok();
    let mut other = |path: &Path, what: &str| -> Option<(String, Vec<bool>)> {
        let (digest, img) = read_decode(path).map_err(|p| problems.push(p)).ok()?;
        if let Some((_, im)) = &image
            && (img.width, img.height) != (im.width, im.height)
        {
            problems.push(Problem::new(
                path,
                format!(
                    "this {what} is {}x{} but its image {} is {}x{}",
                    img.width,
                    img.height,
                    name_of(&c.image),
                    im.width,
                    im.height
                ),
            ));
            return None;
        }
        Some((digest, MaskRule::HalfOfMax.apply(&img)))
    };
    let mask = other(&c.mask, "mask");
    let fov = c.fov.as_ref().map(|p| other(p, "FOV mask"));
    if let (Some((image_sha256, im)), Some((mask_sha256, _)), true) =
        (&image, &mask, fov.as_ref().is_none_or(Option::is_some))
    {
        let fov_plane = fov
            .as_ref()
            .and_then(|f| f.as_ref().map(|(_, p)| p.as_slice()));
        match preprocess::prepare(preprocess, im, fov_plane) {
            Ok(_) => {
                return Ok(Pair {
                    stem: c.stem.clone(),
                    image: c.image.clone(),
                    mask: c.mask.clone(),
                    fov: c.fov.clone(),
                    image_sha256: image_sha256.clone(),
                    mask_sha256: mask_sha256.clone(),
                    fov_sha256: fov.flatten().map(|(d, _)| d),
                    split: None,
                });
            }
            Err(e) => problems.push(Problem::new(&c.image, e.to_string())),
        }
    }
    Err(problems)
}

/// A warning line never carries the word that marks an error (`error:`), which some decoders'
/// messages contain ("Format error: ...").
fn as_warning(line: String) -> String {
    line.replace("error:", "error -")
        .replace("Error:", "Error -")
}

fn list_some(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(LIST_AT_MOST)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LIST_AT_MOST {
        let _ = write!(s, " and {} more", items.len() - LIST_AT_MOST);
    }
    s
}

impl FolderSet {
    /// Lists, pairs and checks the folders of `spec` (every file decoded, in parallel, and
    /// every image through `preprocess`), then splits the pairs. Every problem is named in one
    /// error, or, with `spec.skip_bad`, its files are left out and it becomes a warning.
    pub fn open(spec: &FolderSpec, preprocess: &PreprocessConfig) -> Result<Self> {
        if spec.fov.is_some() && spec.task != Task::Retina {
            return Err(TrainError::Dataset(format!(
                "--fov is for retina data; {} images are scored on every pixel",
                spec.task.name()
            )));
        }
        if preprocess.task != spec.task {
            return Err(TrainError::TaskMismatch {
                weights: preprocess.task.name(),
                dataset: NAME,
                wanted: spec.task.name(),
            });
        }
        let mut fatal = Vec::new();
        let mut warnings = Vec::new();
        let mut listed = |dir: &Path, flag: &str| -> Result<Vec<PathBuf>> {
            let (images, ignored) = list_dir(dir, flag)?;
            if images.is_empty() {
                fatal.push(format!(
                    "{flag} {}: no image files in it (looked for .{})",
                    dir.display(),
                    IMAGE_EXTENSIONS.join(", .")
                ));
            }
            if !ignored.is_empty() {
                let names: Vec<String> = ignored.iter().map(|p| name_of(p)).collect();
                warnings.push(format!(
                    "ignored {} file(s) in {} that are not images by their extension: {}",
                    ignored.len(),
                    dir.display(),
                    list_some(&names)
                ));
            }
            Ok(images)
        };
        let images = listed(&spec.images, "--images")?;
        let masks = listed(&spec.masks, "--masks")?;
        let fovs = match &spec.fov {
            Some(dir) => Some(listed(dir, "--fov")?),
            None => None,
        };
        if !fatal.is_empty() {
            return Err(TrainError::Dataset(fatal.join("\n")));
        }

        let mut problems = Vec::new();
        let stems: Vec<String> = images.iter().map(|p| stem_of(p)).collect();
        let mut by_stem: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in stems.iter().enumerate() {
            by_stem.entry(s).or_default().push(i);
        }
        let mut duplicate = vec![false; images.len()];
        for same in by_stem.values().filter(|v| v.len() > 1) {
            let clash: Vec<&Path> = same.iter().map(|&i| images[i].as_path()).collect();
            for &i in same {
                duplicate[i] = true;
                problems.push(Problem::new(
                    &images[i],
                    format!(
                        "several images share the stem '{}' ({}); keep one",
                        stems[i],
                        names(&clash)
                    ),
                ));
            }
        }
        let mask_of = pair_files(
            &images,
            &stems,
            &masks,
            &MASK_SUFFIXES,
            "mask",
            &spec.masks,
            &mut problems,
        );
        let fov_of = match (&fovs, &spec.fov) {
            (Some(fovs), Some(dir)) => Some(pair_files(
                &images,
                &stems,
                fovs,
                &FOV_SUFFIXES,
                "FOV mask",
                dir,
                &mut problems,
            )),
            _ => None,
        };
        let candidates: Vec<Candidate> = (0..images.len())
            .filter_map(|i| {
                let mask = mask_of[i]?;
                let fov = match (&fov_of, &fovs) {
                    (Some(of), Some(fovs)) => Some(fovs[of[i]?].clone()),
                    _ => None,
                };
                (!duplicate[i]).then(|| Candidate {
                    stem: stems[i].clone(),
                    image: images[i].clone(),
                    mask: masks[mask].clone(),
                    fov,
                })
            })
            .collect();
        let checked: Vec<std::result::Result<Pair, Vec<Problem>>> = candidates
            .par_iter()
            .map(|c| check(c, preprocess))
            .collect();
        let mut pairs = Vec::with_capacity(checked.len());
        for result in checked {
            match result {
                Ok(pair) => pairs.push(pair),
                Err(p) => problems.extend(p),
            }
        }
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.path.display(), p.what))
                .collect();
            if !spec.skip_bad {
                return Err(TrainError::Dataset(format!(
                    "{} problem(s) in the folder data (--help says how files pair); fix them, \
                     or pass --skip-bad to leave these files out:\n  {}",
                    lines.len(),
                    lines.join("\n  ")
                )));
            }
            warnings.extend(lines.into_iter().map(|l| format!("skipped {l}")));
        }
        if pairs.is_empty() {
            return Err(TrainError::Dataset(format!(
                "no usable image/mask pairs in {} and {}",
                spec.images.display(),
                spec.masks.display()
            )));
        }
        pairs.sort_by(|a, b| a.stem.cmp(&b.stem));
        match &spec.split_file {
            Some(path) => {
                let text = String::from_utf8(crate::error::read(path)?).map_err(|_| {
                    TrainError::Dataset(format!("{}: not UTF-8 text", path.display()))
                })?;
                let known: BTreeSet<&str> = stems.iter().map(String::as_str).collect();
                let splits = read_split_file(path, &text, &known)?;
                let mut unlisted = Vec::new();
                for pair in &mut pairs {
                    match splits.get(&pair.stem) {
                        Some(split) => pair.split = *split,
                        None => unlisted.push(pair.stem.clone()),
                    }
                }
                if !unlisted.is_empty() {
                    warnings.push(format!(
                        "{} pair(s) are not in {} and belong to no split (only to 'all'): {}",
                        unlisted.len(),
                        path.display(),
                        list_some(&unlisted)
                    ));
                }
            }
            None => assign_fractions(&mut pairs, spec)?,
        }
        Ok(Self {
            spec: spec.clone(),
            pairs,
            warnings: warnings.into_iter().map(as_warning).collect(),
        })
    }

    /// The samples of `split` (`all`: every pair), sorted by stem; an empty split is an error.
    pub fn list(&self, split: &str) -> Result<Vec<Sample>> {
        if !SPLITS.contains(&split) {
            return Err(TrainError::Dataset(format!(
                "folder data has no split '{split}'; expected one of {}",
                SPLITS.join(", ")
            )));
        }
        let out: Vec<Sample> = self
            .pairs
            .iter()
            .filter(|p| split == "all" || p.split == Some(split))
            .map(|p| Sample {
                id: p.stem.clone(),
                image: p.image.clone(),
                label: p.mask.clone(),
                fov: p.fov.clone(),
                mask_rule: MaskRule::HalfOfMax,
            })
            .collect();
        if out.is_empty() {
            let count = |s: &str| self.pairs.iter().filter(|p| p.split == Some(s)).count();
            return Err(TrainError::Dataset(format!(
                "folder data: no pairs in split '{split}' (of {} pairs: {} train, {} val, {} \
                 test); {}",
                self.pairs.len(),
                count("train"),
                count("val"),
                count("test"),
                if self.spec.split_file.is_some() {
                    "mark some rows of the split file with it"
                } else {
                    "raise its fraction (--val-fraction, --test-fraction)"
                }
            )));
        }
        Ok(out)
    }

    /// `files.csv` of a run: `split,stem,image,mask,fov,image_sha256,mask_sha256,fov_sha256`,
    /// one row per pair by stem (`none` for a pair in no split; FOV columns empty without
    /// FOV masks). It is also a valid split file.
    pub fn files_csv(&self) -> String {
        let mut s = String::from(FILES_CSV_HEADER);
        s.push('\n');
        for p in &self.pairs {
            let path = |p: &Path| csv_field(&p.display().to_string());
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{}",
                p.split.unwrap_or("none"),
                csv_field(&p.stem),
                path(&p.image),
                path(&p.mask),
                p.fov.as_deref().map(path).unwrap_or_default(),
                p.image_sha256,
                p.mask_sha256,
                p.fov_sha256.as_deref().unwrap_or_default()
            );
        }
        s
    }

    /// Checks that the pairs are those a run recorded in `stored` (its `files.csv`): the same
    /// stems in the same splits with the same digests (paths may differ: the data may move).
    pub fn check_unchanged(&self, stored: &str, path: &Path) -> Result<()> {
        let rows = |text: &str| -> BTreeMap<String, String> {
            text.lines()
                .skip(1)
                .filter_map(|l| {
                    let c = csv_cells(l);
                    (c.len() >= 8)
                        .then(|| (c[1].clone(), format!("{},{},{},{}", c[0], c[5], c[6], c[7])))
                })
                .collect()
        };
        let (was, now) = (rows(stored), rows(&self.files_csv()));
        if was == now {
            return Ok(());
        }
        let gone: Vec<String> = was
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        let new: Vec<String> = now
            .keys()
            .filter(|k| !was.contains_key(*k))
            .cloned()
            .collect();
        let changed: Vec<String> = now
            .iter()
            .filter(|(k, v)| was.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k.clone())
            .collect();
        let mut what = Vec::new();
        for (label, list) in [("changed", changed), ("new", new), ("gone", gone)] {
            if !list.is_empty() {
                what.push(format!("{label}: {}", list_some(&list)));
            }
        }
        Err(TrainError::Dataset(format!(
            "the folder data changed since this run started ({} records it): {}; a run resumes \
             on the same files and splits only (start a new run with another --out to train on \
             them as they are now)",
            path.display(),
            what.join("; ")
        )))
    }
}

/// The header of `files.csv`.
pub const FILES_CSV_HEADER: &str = "split,stem,image,mask,fov,image_sha256,mask_sha256,fov_sha256";

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The cells of one CSV line (quoted cells may hold commas and doubled quotes), trimmed.
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    cells.push(cell);
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// Reads a split file: CSV, one row per image stem, `stem,split` with `split` one of `train`,
/// `val`, `test` or `none` (in no split). The first line is a header when its cells include
/// `stem` and `split` (then those columns are read wherever they are and others ignored, so a
/// run's `files.csv` is a split file too); otherwise every line is a row of `stem,split`.
/// Blank lines and lines starting with `#` are skipped. A stem that is not an image's in the
/// folder (`known`), an unknown split, a stem listed twice or a short row is an error naming
/// the file and line; all of them are listed at once. Images the file does not list belong
/// to no split.
pub fn read_split_file(
    path: &Path,
    text: &str,
    known: &BTreeSet<&str>,
) -> Result<BTreeMap<String, Option<&'static str>>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim_start_matches('\u{feff}')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .peekable();
    let (mut stem_col, mut split_col) = (0, 1);
    if let Some((_, first)) = lines.peek() {
        let cells = csv_cells(first);
        let find = |name: &str| cells.iter().position(|c| c.eq_ignore_ascii_case(name));
        if let (Some(a), Some(b)) = (find("stem"), find("split")) {
            (stem_col, split_col) = (a, b);
            lines.next();
        }
    }
    let mut out = BTreeMap::new();
    let mut seen_at: HashMap<String, usize> = HashMap::new();
    let mut problems = Vec::new();
    for (n, line) in lines {
        let cells = csv_cells(line);
        let at = format!("{}:{n}", path.display());
        let (Some(stem), Some(split)) = (cells.get(stem_col), cells.get(split_col)) else {
            problems.push(format!(
                "{at}: expected the columns stem,split; found '{line}'"
            ));
            continue;
        };
        let split = match split.to_ascii_lowercase().as_str() {
            "train" => Some("train"),
            "val" => Some("val"),
            "test" => Some("test"),
            "none" => None,
            other => {
                problems.push(format!(
                    "{at}: unknown split '{other}' (expected train, val, test or none)"
                ));
                continue;
            }
        };
        if !known.contains(stem.as_str()) {
            problems.push(format!(
                "{at}: no image with the stem '{stem}' in the images folder"
            ));
            continue;
        }
        if let Some(first) = seen_at.insert(stem.clone(), n) {
            problems.push(format!(
                "{at}: '{stem}' is listed again (first on line {first})"
            ));
            continue;
        }
        out.insert(stem.clone(), split);
    }
    if !problems.is_empty() {
        return Err(TrainError::Dataset(format!(
            "{} problem(s) in the split file:\n  {}",
            problems.len(),
            problems.join("\n  ")
        )));
    }
    Ok(out)
}

/// The split by seeded fractions (see the module's documentation).
fn assign_fractions(pairs: &mut [Pair], spec: &FolderSpec) -> Result<()> {
    let (val, test) = (spec.val_fraction, spec.test_fraction);
    let ok = |f: f64| (0.0..1.0).contains(&f);
    if !ok(val) || !ok(test) || val + test >= 1.0 {
        return Err(TrainError::Dataset(format!(
            "--val-fraction {val} and --test-fraction {test}: each must be in [0, 1) and \
             together under 1"
        )));
    }
    let n = pairs.len();
    let mut order: Vec<usize> = (0..n).collect();
    seeded_shuffle(&mut order, spec.seed);
    let n_test = (n as f64 * test).round() as usize;
    let n_val = ((n as f64 * val).round() as usize).min(n - n_test);
    let n_train = n - n_val - n_test;
    for (rank, &i) in order.iter().enumerate() {
        pairs[i].split = Some(if rank < n_train {
            "train"
        } else if rank < n_train + n_val {
            "val"
        } else {
            "test"
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
