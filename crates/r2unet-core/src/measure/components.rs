//! 8-connected components of a mask: what counts as one lesion or one lung. 8-connectivity
//! because a mask's diagonal steps (a thin vessel, a ragged lesion edge) still join one object.

/// One component: its size and the sums of its pixels' coordinates (for its centroid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Component {
    pub size: u64,
    pub sum_x: u64,
    pub sum_y: u64,
}

impl Component {
    pub fn centroid_x(&self) -> f64 {
        self.sum_x as f64 / self.size as f64
    }
}

/// Every 8-connected component of `mask`, in the order of their first pixel in raster order.
pub(crate) fn components(mask: &[bool], width: usize, height: usize) -> Vec<Component> {
    let mut seen = vec![false; mask.len()];
    let mut stack = Vec::new();
    let mut found = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut c = Component {
            size: 0,
            sum_x: 0,
            sum_y: 0,
        };
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            c.size += 1;
            c.sum_x += x as u64;
            c.sum_y += y as u64;
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let n = ny * width + nx;
                    if mask[n] && !seen[n] {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
        }
        found.push(c);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::draw;

    #[test]
    fn diagonal_steps_join_and_gaps_separate() {
        // A diagonal line is one component; a disc far from it is another.
        let (w, h) = (40, 30);
        let mut mask = draw::disc(w, h, 30.0, 15.0, 5.0);
        for i in 0..10 {
            mask[(i + 2) * w + i + 2] = true;
        }
        let c = components(&mask, w, h);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].size, 10);
        assert!((c[0].centroid_x() - 6.5).abs() < 1e-9);
        assert!((c[1].centroid_x() - 30.0).abs() < 1e-9);
        assert!(components(&vec![false; w * h], w, h).is_empty());
        assert_eq!(components(&vec![true; w * h], w, h).len(), 1);
    }
}
