//! The native side of r2unet: dataset readers in their publishers' layouts, splits, training
//! samples, the training loop with checkpoints and resume, and dataset evaluation.
pub mod adam;
pub mod bce;
pub mod checkpoint;
pub mod datasets;
pub mod error;
pub mod evaluate;
pub mod samples;
pub mod trainer;

pub use datasets::{Dataset, Sample, Source};
pub use error::{Result, TrainError};
