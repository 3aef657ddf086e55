//! From a prepared image to probabilities: [`tiling`] plans the overlapping tiles and blends
//! their outputs, [`predict`] runs the model over them, [`split`] cuts the work into pieces for
//! several workers (the browser's pool of CPU modules) and puts their outputs together.
pub mod predict;
pub mod split;
pub mod tiling;
