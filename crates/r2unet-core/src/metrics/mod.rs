//! Segmentation metrics over the pixels inside a field of view: threshold metrics from a
//! confusion matrix, and exact ROC-AUC / PR-AUC from ranked probabilities.
pub mod auc;
pub mod confusion;

use serde::{Deserialize, Serialize};

pub use auc::{pr_auc, roc_auc, roc_curve};
pub use confusion::Confusion;

/// The paper's metrics plus Jaccard and PR-AUC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub acc: f64,
    pub se: f64,
    pub sp: f64,
    pub f1: f64,
    pub jaccard: f64,
    pub auc: f64,
    pub pr_auc: f64,
}

/// Pixels gathered for scoring: probability and truth for every pixel inside the FOV.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    pub probs: Vec<f32>,
    pub truth: Vec<bool>,
}

impl Scores {
    /// Adds the FOV pixels of one image.
    pub fn extend(&mut self, probs: &[f32], truth: &[bool], fov: &[bool]) {
        for ((&p, &t), &m) in probs.iter().zip(truth).zip(fov) {
            if m {
                self.probs.push(p);
                self.truth.push(t);
            }
        }
    }

    /// All metrics at `threshold`.
    pub fn metrics(&self, threshold: f32) -> Metrics {
        let c = Confusion::from_scores(&self.probs, &self.truth, threshold);
        Metrics {
            acc: c.accuracy(),
            se: c.sensitivity(),
            sp: c.specificity(),
            f1: c.f1(),
            jaccard: c.jaccard(),
            auc: roc_auc(&self.probs, &self.truth),
            pr_auc: pr_auc(&self.probs, &self.truth),
        }
    }
}
