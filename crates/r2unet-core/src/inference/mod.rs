//! From a prepared image to probabilities: [`tiling`] plans the overlapping tiles and blends
//! their outputs, [`predict`] runs the model over them.
pub mod predict;
pub mod tiling;
