//! Exact ROC-AUC and PR-AUC from ranked probabilities (ties handled as ties), never from a
//! binned curve: the paper's AUCs differ in the third decimal, which binning can move.

/// Indices sorted by probability, descending.
fn ranked(probs: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_unstable_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx
}

/// Groups of tied probabilities in descending order, as (positives, negatives) per group.
fn tie_groups(probs: &[f32], truth: &[bool]) -> Vec<(u64, u64)> {
    let idx = ranked(probs);
    let mut groups: Vec<(u64, u64)> = Vec::new();
    let mut last = f32::NAN;
    for i in idx {
        if groups.is_empty() || probs[i] != last {
            groups.push((0, 0));
            last = probs[i];
        }
        let g = groups.last_mut().expect("pushed above");
        if truth[i] { g.0 += 1 } else { g.1 += 1 }
    }
    groups
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half (Mann–Whitney U). 0.5 when a class is absent.
pub fn roc_auc(probs: &[f32], truth: &[bool]) -> f64 {
    let (mut area, mut neg_above, mut pos_total, mut neg_total) = (0f64, 0u64, 0u64, 0u64);
    for (pos, neg) in tie_groups(probs, truth) {
        // Each positive in this group beats the negatives in lower groups; count from above.
        area += pos as f64 * neg_above as f64 + 0.5 * pos as f64 * neg as f64;
        neg_above += neg;
        pos_total += pos;
        neg_total += neg;
    }
    if pos_total == 0 || neg_total == 0 {
        return 0.5;
    }
    // `area` counts pairs where the negative ranks above the positive (plus half the ties).
    1.0 - area / (pos_total as f64 * neg_total as f64)
}

/// Area under the precision–recall curve as average precision (sklearn's definition:
/// sum over thresholds of (recall step) x precision), thresholds at the distinct probabilities.
pub fn pr_auc(probs: &[f32], truth: &[bool]) -> f64 {
    let groups = tie_groups(probs, truth);
    let total_pos: u64 = groups.iter().map(|g| g.0).sum();
    if total_pos == 0 {
        return 0.0;
    }
    let (mut tp, mut fp, mut ap) = (0u64, 0u64, 0f64);
    for (pos, neg) in groups {
        tp += pos;
        fp += neg;
        ap += (pos as f64 / total_pos as f64) * (tp as f64 / (tp + fp) as f64);
    }
    ap
}

/// ROC curve points `(false-positive rate, true-positive rate)` at every distinct probability,
/// from (0, 0) to (1, 1).
pub fn roc_curve(probs: &[f32], truth: &[bool]) -> Vec<(f64, f64)> {
    let groups = tie_groups(probs, truth);
    let p: u64 = groups.iter().map(|g| g.0).sum();
    let n: u64 = groups.iter().map(|g| g.1).sum();
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut points = vec![(0.0, 0.0)];
    for (pos, neg) in groups {
        tp += pos;
        fp += neg;
        points.push((fp as f64 / n.max(1) as f64, tp as f64 / p.max(1) as f64));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over every (positive, negative) pair, ties counting one half.
    fn brute_auc(probs: &[f32], truth: &[bool]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..probs.len() {
            for j in 0..probs.len() {
                if truth[i] && !truth[j] {
                    den += 1.0;
                    if probs[i] > probs[j] {
                        num += 1.0;
                    } else if probs[i] == probs[j] {
                        num += 0.5;
                    }
                }
            }
        }
        num / den
    }

    #[test]
    fn matches_brute_force_pair_count_with_ties() {
        let mut seed = 12345u64;
        for round in 0..20 {
            let n = 50 + round * 7;
            let mut probs = Vec::new();
            let mut truth = Vec::new();
            for _ in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Coarse values force many ties.
                probs.push(((seed >> 33) % 11) as f32 / 10.0);
                truth.push((seed >> 20).is_multiple_of(3));
            }
            let (a, b) = (roc_auc(&probs, &truth), brute_auc(&probs, &truth));
            assert!((a - b).abs() < 1e-12, "round {round}: {a} vs {b}");
        }
    }

    #[test]
    fn hand_computed_values() {
        // Perfect separation, reversed, and all tied.
        assert_eq!(
            roc_auc(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]),
            1.0
        );
        assert_eq!(
            roc_auc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]),
            0.0
        );
        assert_eq!(roc_auc(&[0.5; 4], &[true, false, true, false]), 0.5);
        // 3 of 4 pairs ordered right: P=.9 beats N=.6,.2; P=.4 beats N=.2, loses to .6.
        assert_eq!(
            roc_auc(&[0.9, 0.6, 0.4, 0.2], &[true, false, true, false]),
            0.75
        );
        // AP: ranks T F T F → precision 1 at recall .5, 2/3 at recall 1 → (1 + 2/3) / 2.
        let ap = pr_auc(&[0.9, 0.6, 0.4, 0.2], &[true, false, true, false]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn curve_runs_from_origin_to_one_one() {
        let c = roc_curve(&[0.9, 0.6, 0.4, 0.2], &[true, false, true, false]);
        assert_eq!(c.first(), Some(&(0.0, 0.0)));
        assert_eq!(c.last(), Some(&(1.0, 1.0)));
    }
}
