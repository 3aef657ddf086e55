//! The library's error type: every message names the thing that was wrong and, where it helps,
//! what to do about it. Callers add the file name; this crate never sees paths.
use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The cause of an error, from a dependency whose error type this crate does not name (burn's
/// read-back and data errors). Kept as the error's `source()`, not flattened into its message, so
/// that a caller printing the chain (`{:#}` in the CLI) shows it once.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong between bytes and a mask.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are empty.
    #[error("the input is empty (0 bytes)")]
    Empty,
    /// The bytes are not an image in a supported format, or are cut short.
    #[error("cannot decode the image: {0}")]
    Decode(String),
    /// The image is too small for the model to say anything about it.
    #[error("image is {width}x{height}; it must be at least {min}x{min} pixels")]
    TooSmall { width: u32, height: u32, min: u32 },
    /// The image exceeds the pixel budget.
    #[error(
        "image is {width}x{height} = {pixels} pixels; the limit is {limit} pixels (downscale it first)"
    )]
    TooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    /// An image and its label (or FOV mask) disagree in size.
    #[error("size mismatch: image is {image_w}x{image_h} but {what} is {other_w}x{other_h}")]
    SizeMismatch {
        what: &'static str,
        image_w: u32,
        image_h: u32,
        other_w: u32,
        other_h: u32,
    },
    /// A readable image that is not what the task's model takes (e.g. a colour photo or a mask
    /// given to the lung model), refused rather than turned into a meaningless mask.
    #[error("not an input for the {task} model: {reason}")]
    Unsuitable { task: &'static str, reason: String },
    /// A weights file whose digest does not match its bytes: corrupted (a flipped bit, a bad
    /// download or disk) or edited.
    #[error(
        "invalid weights: the file's bytes do not match its SHA-256 digest (corrupted or changed \
         since it was written); download or copy it again"
    )]
    DigestMismatch,
    /// A weights file without the digest that every file r2unet writes carries: written before
    /// the digest existed, or cut short.
    #[error(
        "invalid weights: no integrity digest at the end of the file (cut short, or written \
         before r2unet added one: `r2unet export --weights OLD --out NEW` adds it)"
    )]
    NoDigest,
    /// The bytes are not a burnpack container (or one cut short).
    #[error("invalid weights: not a burnpack file, or cut short")]
    NotBurnpack(#[source] burn_pack::Error),
    /// A tensor of a weights file cannot be read as the numbers it declares.
    #[error("invalid weights: tensor '{name}' cannot be read")]
    WeightsTensor {
        name: String,
        #[source]
        source: Cause,
    },
    /// Reading results back from the compute device failed (a lost device, a failed map).
    #[error("backend error: reading {what} back from the device failed")]
    ReadBack {
        what: &'static str,
        #[source]
        source: Cause,
    },
    /// A weights file cannot be read as an r2unet model.
    #[error("invalid weights: {0}")]
    Weights(String),
    /// Weights for another architecture, task or channel count.
    #[error("weights do not fit this model: {0}")]
    WeightsMismatch(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The compute backend failed (device lost, out of memory, failed read-back).
    #[error("backend error: {0}")]
    Backend(String),
}
