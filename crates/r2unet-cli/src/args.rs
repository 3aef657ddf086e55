//! Command-line arguments (clap derive), one struct per subcommand.
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use r2unet::Task;
use r2unet_train::datasets::Dataset;

/// `--dataset` of train and eval: a named data set (read from `--data ROOT`) or `folder` (your
/// own images and masks, [`FolderArgs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetArg {
    Named(Dataset),
    Folder,
}

/// `--dataset`, typed: the names come from the training crate's own list (and `folder`), so
/// `--help` and the error for a misspelt name list exactly the data sets that exist.
fn dataset_parser() -> impl TypedValueParser<Value = DatasetArg> {
    let folder = r2unet_train::datasets::folder::NAME;
    PossibleValuesParser::new(Dataset::ALL.map(Dataset::name).into_iter().chain([folder])).map(
        move |name| match name.as_str() {
            n if n == folder => DatasetArg::Folder,
            n => DatasetArg::Named(Dataset::parse(n).expect("a listed name parses")),
        },
    )
}

/// The `--dataset` values that read `--data ROOT` (clap's "required if" conditions; a CLI test
/// checks them against the training crate's list).
const NAMED_DATASETS: [(&str, &str); 6] = [
    ("dataset", "drive"),
    ("dataset", "stare"),
    ("dataset", "chase"),
    ("dataset", "isic2017"),
    ("dataset", "isic2016"),
    ("dataset", "lung"),
];

/// `--dataset folder`: your own images and masks (train and eval).
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Your own data (--dataset folder)")]
pub struct FolderArgs {
    /// Folder of images: PNG, JPEG, TIFF (8/16-bit, signed or not), GIF, BMP or PPM/PGM, any
    /// size; files with other extensions and hidden files are ignored. An image's name without
    /// its extension (its stem) is its ID.
    #[arg(long, value_name = "DIR", required_if_eq("dataset", "folder"))]
    pub images: Option<PathBuf>,
    /// Folder of masks: 0/255, 0/1, 16-bit, palette or coloured (foreground where a pixel's
    /// brightest channel is above half of the file's brightest value; any nonzero pixel in
    /// index masks, whose brightest value is at most 1/16 of full scale). A mask
    /// pairs with the image whose stem is the mask's stem, or the mask's stem minus one of
    /// _mask, _masks, _segmentation, _manual1, _lesion, _label, _labels, _gt, _seg, -mask (any
    /// case); an image stem ending in _training, _train, _test, _validation or _val also pairs
    /// without it (DRIVE as published: 21_training.tif with 21_manual1.gif). An image needs
    /// exactly one mask and a mask exactly one image.
    #[arg(long, value_name = "DIR", required_if_eq("dataset", "folder"))]
    pub masks: Option<PathBuf>,
    /// Retina: folder of field-of-view masks, paired like masks with the suffixes _mask, _fov,
    /// _fovmask, _fov_mask, _roi, _test_mask, _training_mask, -mask, -fov (DRIVE:
    /// 21_training_mask.gif). Without it the FOV is derived from each photo.
    #[arg(long, value_name = "DIR")]
    pub fov: Option<PathBuf>,
    /// What the images show (picks the preprocessing and, for eval, the shipped model).
    #[arg(long, value_parser = task_parser(), required_if_eq("dataset", "folder"))]
    pub task: Option<Task>,
    /// CSV of stem,split rows, split one of train, val, test or none; a first line naming the
    /// columns stem and split is a header (other columns are ignored, so a run's files.csv is
    /// a split file too); # lines are comments. Unlisted pairs are in no split. Default: a
    /// seeded shuffle of the pairs sorted by stem, cut by --val-fraction and --test-fraction.
    #[arg(long, value_name = "CSV", conflicts_with_all = ["val_fraction", "test_fraction"])]
    pub split_file: Option<PathBuf>,
    /// Share of the pairs in the val split (model selection for skin and lung) [default: 0.1].
    #[arg(long, value_name = "F")]
    pub val_fraction: Option<f64>,
    /// Share of the pairs in the test split [default: 0.1].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// Leave out files that are unpaired, unreadable or of another size than their image, with
    /// a warning each, instead of refusing the folder.
    #[arg(long)]
    pub skip_bad: bool,
}

/// `--task`, typed, from the core crate's list of tasks.
fn task_parser() -> impl TypedValueParser<Value = Task> {
    PossibleValuesParser::new(Task::ALL.map(Task::name))
        .map(|name| Task::parse(&name).expect("a listed name parses"))
}

/// `--arch`: one of the model zoo's names (the core crate's list).
fn arch_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(r2unet::model::ARCHITECTURES)
}

#[derive(Parser)]
#[command(
    name = "r2unet",
    version,
    about = "R2U-Net medical image segmentation: train, eval, predict"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model on a data set, with a validation pass each epoch and resumable checkpoints.
    Train(TrainArgs),
    /// Score a model on a data set split; prints a markdown table beside the paper's numbers.
    Eval(EvalArgs),
    /// Segment image files; writes STEM.prob.png and STEM.mask.png (and an overlay).
    Predict(PredictArgs),
    /// Re-encode weights as burnpack for the browser (f32, f16 at half the size, or int8 kernels at a quarter).
    Export(ExportArgs),
    /// Training throughput and whole-image inference time on each available backend.
    Bench(BenchArgs),
    /// Show what a weights file holds: architecture, preprocessing, provenance.
    Info(InfoArgs),
    /// List the model zoo with parameter counts.
    Zoo(ZooArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// wgpu where an adapter is found and a short timed run of the command's work is faster
    /// there than on flex; otherwise flex.
    Auto,
    /// GPU through wgpu (Vulkan/Metal/DX12).
    Wgpu,
    /// burn-flex on the CPU.
    Flex,
}

#[derive(Args, Clone)]
pub struct TilingArgs {
    /// Tile side for whole-image inference (48 with --stride 16 is the paper's protocol).
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Step between tiles.
    #[arg(long, default_value_t = 192)]
    pub stride: usize,
    /// Tiles per forward pass (lowered automatically to fit memory).
    #[arg(long, default_value_t = 4)]
    pub tile_batch: usize,
    /// Average the probabilities over the four flips of the image (test-time augmentation;
    /// four times the work).
    #[arg(long)]
    pub flips: bool,
    /// Retina: resample each image so that its field of view is this many pixels wide before the
    /// model, and the map back after (0 = native size). Default: what the model was trained
    /// with. For photos at another scale than the training set's.
    #[arg(long)]
    pub fov_width: Option<usize>,
}

#[derive(Args)]
pub struct TrainArgs {
    /// The data set: drive, stare, chase, isic2017, isic2016 and lung are read from --data ROOT
    /// in their publishers' layouts; folder is your own images and masks (--images, --masks,
    /// --task; see "Your own data" below). Optional with --resume (the run's config.json
    /// records it).
    #[arg(long, value_parser = dataset_parser(), required_unless_present = "resume")]
    pub dataset: Option<DatasetArg>,
    /// A named data set's root folder, e.g. ../shared/data/DRIVE (with --resume: default the
    /// one the run recorded).
    #[arg(long, value_name = "ROOT", required_if_eq_any = NAMED_DATASETS,
          conflicts_with_all = ["images", "masks", "fov"])]
    pub data: Option<PathBuf>,
    /// Run folder for checkpoints, config.json and log.csv (and files.csv for folder data).
    #[arg(long)]
    pub out: PathBuf,
    /// The architecture (Fig. 1 of the paper; `r2unet info` lists them).
    #[arg(long, default_value = "r2unet", value_parser = arch_parser())]
    pub arch: String,
    /// Feature widths, comma separated.
    #[arg(long, default_value = "16,32,64,128", value_delimiter = ',')]
    pub widths: Vec<usize>,
    /// Recurrent steps per RCL.
    #[arg(long, default_value_t = 2)]
    pub t: usize,
    /// Epochs in the schedule (default 20). With --resume: the run's own unless given, which
    /// lengthens or shortens the cosine schedule from the next epoch on.
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Adam learning rate (cosine-decayed to 5 % of it).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Retina: patches per epoch.
    #[arg(long, default_value_t = 10000)]
    pub patches: usize,
    /// Retina: patch side.
    #[arg(long, default_value_t = 48)]
    pub patch: usize,
    /// Skin and lung: input side.
    #[arg(long)]
    pub size: Option<usize>,
    /// Retina: resample so the FOV is this wide (0 = native resolution).
    #[arg(long, default_value_t = 0)]
    pub fov_width: usize,
    /// Seed of the patches and the example order, and for folder data of its split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Turn off flips and rotations.
    #[arg(long)]
    pub no_augment: bool,
    /// Skin and lung: also zoom each training image in by a random factor up to this (e.g. 1.5;
    /// 1 = off), so that more lesions fill the frame.
    #[arg(long, default_value_t = 1.0)]
    pub zoom: f64,
    /// Continue from the run folder's last completed epoch (its config.json wins, except --epochs
    /// and --data; folder data must still match the run's files.csv).
    #[arg(long)]
    pub resume: bool,
    /// Start from these weights instead of random ones (same architecture and widths), e.g. to
    /// fine-tune a shipped model or to continue at another --size; the optimiser starts afresh.
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    // Last: its help heading would otherwise also cover the flags after it.
    #[command(flatten)]
    pub folder: FolderArgs,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The data set: drive, stare, chase, isic2017, isic2016 and lung are read from --data ROOT
    /// in their publishers' layouts; folder is your own images and masks (--images, --masks,
    /// --task; see "Your own data" below).
    #[arg(long, value_parser = dataset_parser())]
    pub dataset: DatasetArg,
    /// A named data set's root folder, e.g. ../shared/data/DRIVE.
    #[arg(long, value_name = "ROOT", required_if_eq_any = NAMED_DATASETS,
          conflicts_with_all = ["images", "masks", "fov"])]
    pub data: Option<PathBuf>,
    /// Folder data with fractions: the seed of the split, as given to train (its --seed).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Split to score (default: test; validation for isic2017); folder data: train, val, test
    /// or all.
    #[arg(long)]
    pub split: Option<String>,
    /// Weights file (default: the shipped model for the data set's task).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the pooled ROC curve as a PNG.
    #[arg(long)]
    pub roc: Option<PathBuf>,
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    #[command(flatten)]
    pub tiling: TilingArgs,
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    // Last: its help heading would otherwise also cover the flags after it.
    #[command(flatten)]
    pub folder: FolderArgs,
}

#[derive(Args)]
pub struct PredictArgs {
    /// The task; picks the shipped model unless --weights is given.
    #[arg(long, value_parser = task_parser())]
    pub task: Task,
    /// Weights file (default: the shipped model for the task).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Images to segment, and folders: walked recursively for image files (other files are
    /// skipped and listed); outputs keep the path below the folder.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// In folders, segment the files whose path below the folder matches this pattern
    /// (e.g. '*_test.tif', 'images/*.png') instead of every image file.
    #[arg(long)]
    pub glob: Option<String>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write STEM.overlay.png.
    #[arg(long)]
    pub overlay: bool,
    /// Also measure each mask (README, "Measurements") into measurements.csv (one row per
    /// image) and measurements.json in --out.
    #[arg(long)]
    pub measure: bool,
    /// With --measure: one pixel's size in micrometres (retina, skin), for lengths in um.
    #[arg(long, requires = "measure")]
    pub pixel_size_um: Option<f64>,
    /// With --measure, retina: the camera's field-of-view angle in degrees (45 for DRIVE and
    /// STARE, 30 for CHASE_DB1); the scale follows from the FOV's width in pixels.
    #[arg(long, requires = "measure")]
    pub fov_angle: Option<f64>,
    /// With --measure, lung: the pixel spacing in millimetres (DICOM PixelSpacing), for areas
    /// in mm^2.
    #[arg(long, requires = "measure")]
    pub pixel_spacing_mm: Option<f64>,
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    #[command(flatten)]
    pub tiling: TilingArgs,
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Weights to export (a run's best.bpk, or any r2unet weights file).
    #[arg(long)]
    pub weights: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// Store tensors as f16 (half the download; batch-norm statistics stay f32).
    #[arg(long, conflicts_with = "int8")]
    pub f16: bool,
    /// Store convolution kernels as int8 with a scale per output channel (a quarter of the
    /// download; biases and batch-norm tensors stay f32). The model still computes in f32.
    #[arg(long)]
    pub int8: bool,
    /// Retina: store this field-of-view width (pixels; 0 = native size) as the model's own, so
    /// that every image is resampled to it before the model, in the CLI and in the browser.
    #[arg(long)]
    pub fov_width: Option<usize>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Backend to measure (default: every available one).
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// DRIVE root, for the inference image (01_test.tif).
    #[arg(long, default_value = "../shared/data/DRIVE")]
    pub data: PathBuf,
    /// Training steps to time (after 2 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Patches per training step.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096).map(|v| v as usize))]
    pub batch: usize,
    /// Whole-image passes to time, the best reported (0: training only).
    #[arg(long, default_value_t = 3)]
    pub images: usize,
    /// Write the results as JSON (one object; an array when several backends ran).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Weights file.
    pub weights: PathBuf,
}

#[derive(Args)]
pub struct ZooArgs {
    /// Feature widths, comma separated.
    #[arg(long, default_value = "16,32,64,128", value_delimiter = ',')]
    pub widths: Vec<usize>,
    /// Recurrent steps per RCL.
    #[arg(long, default_value_t = 2)]
    pub t: usize,
}
