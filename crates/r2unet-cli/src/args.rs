//! Command-line arguments (clap derive), one struct per subcommand.
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use r2unet::Task;
use r2unet_train::datasets::Dataset;

/// `--dataset`, typed: the names come from the training crate's own list, so `--help` and the
/// error for a misspelt name list exactly the data sets that exist.
fn dataset_parser() -> impl TypedValueParser<Value = Dataset> {
    PossibleValuesParser::new(Dataset::ALL.map(Dataset::name))
        .map(|name| Dataset::parse(&name).expect("a listed name parses"))
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
    /// wgpu when an adapter is found, otherwise flex.
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
    /// The data set (its reader, split and task).
    #[arg(long, value_parser = dataset_parser())]
    pub dataset: Dataset,
    /// The data set's root folder, e.g. ../shared/data/DRIVE.
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder for checkpoints, config.json and log.csv.
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
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Turn off flips and rotations.
    #[arg(long)]
    pub no_augment: bool,
    /// Skin and lung: also zoom each training image in by a random factor up to this (e.g. 1.5;
    /// 1 = off), so that more lesions fill the frame.
    #[arg(long, default_value_t = 1.0)]
    pub zoom: f64,
    /// Continue from the run folder's last completed epoch (its config.json wins, except --epochs).
    #[arg(long)]
    pub resume: bool,
    /// Start from these weights instead of random ones (same architecture and widths), e.g. to
    /// fine-tune a shipped model or to continue at another --size; the optimiser starts afresh.
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The data set (its reader, split and task).
    #[arg(long, value_parser = dataset_parser())]
    pub dataset: Dataset,
    #[arg(long)]
    pub data: PathBuf,
    /// Split to score (default: test; validation for isic2017).
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
}

#[derive(Args)]
pub struct PredictArgs {
    /// The task; picks the shipped model unless --weights is given.
    #[arg(long, value_parser = task_parser())]
    pub task: Task,
    /// Weights file (default: the shipped model for the task).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Images to segment.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write STEM.overlay.png.
    #[arg(long)]
    pub overlay: bool,
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
