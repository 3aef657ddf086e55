//! Threshold metrics from a binary confusion matrix.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Confusion {
    /// Counts predictions `p >= threshold` against the truth.
    pub fn from_scores(probs: &[f32], truth: &[bool], threshold: f32) -> Self {
        let mut c = Self::default();
        for (&p, &t) in probs.iter().zip(truth) {
            match (p >= threshold, t) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_)
    }
    /// Sensitivity (recall, true-positive rate).
    pub fn sensitivity(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Specificity (true-negative rate).
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }
    /// F1 score, which equals the Dice coefficient for binary masks.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
    /// Jaccard index (intersection over union).
    pub fn jaccard(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp + self.fn_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // p:      .9   .8   .3   .6   .1   .5
        // truth:  T    F    T    F    F    T     threshold .5 → predicted T T F T F T
        let c = Confusion::from_scores(
            &[0.9, 0.8, 0.3, 0.6, 0.1, 0.5],
            &[true, false, true, false, false, true],
            0.5,
        );
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 2,
                tn: 1,
                fn_: 1
            }
        );
        assert!((c.accuracy() - 3.0 / 6.0).abs() < 1e-12);
        assert!((c.sensitivity() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.specificity() - 1.0 / 3.0).abs() < 1e-12);
        assert!((c.f1() - 4.0 / 7.0).abs() < 1e-12);
        assert!((c.jaccard() - 2.0 / 5.0).abs() < 1e-12);
    }

    #[test]
    fn empty_classes_give_zero_not_nan() {
        let c = Confusion::from_scores(&[0.1, 0.2], &[false, false], 0.5);
        assert_eq!(c.sensitivity(), 0.0);
        assert_eq!(c.specificity(), 1.0);
        assert!(!c.f1().is_nan());
    }
}
