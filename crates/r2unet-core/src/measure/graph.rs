//! A thinned skeleton as a graph: end points (one neighbour), branch points (clusters of pixels
//! with three or more neighbours) and the segments between them.
//!
//! A junction of an 8-connected skeleton is often two or three touching pixels with three
//! neighbours each (where a branch leaves a line diagonally); they are one branch point, and the
//! steps inside the cluster belong to no segment.

use super::skeleton::RING;

/// One segment: the pixels from one node to the next (both included), or a closed loop with no
/// node, which starts and ends on the same pixel.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub path: Vec<usize>,
    pub closed: bool,
}

/// The skeleton's graph.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    pub segments: Vec<Segment>,
    /// Clusters of junction pixels.
    pub branch_points: usize,
    /// Pixels with exactly one neighbour.
    pub end_points: usize,
    /// Neighbour count of every pixel (0 off the skeleton).
    pub degree: Vec<u8>,
}

/// The neighbours of pixel `i` in a `width x height` image.
pub(crate) fn neighbours(
    i: usize,
    width: usize,
    height: usize,
) -> impl Iterator<Item = usize> + Clone {
    let (x, y) = ((i % width) as i64, (i / width) as i64);
    RING.into_iter().filter_map(move |(dx, dy)| {
        let (nx, ny) = (x + dx, y + dy);
        ((0..width as i64).contains(&nx) && (0..height as i64).contains(&ny))
            .then(|| ny as usize * width + nx as usize)
    })
}

/// The length of one step between neighbouring pixels: 1 or √2.
pub(crate) fn step(a: usize, b: usize, width: usize) -> f64 {
    if a % width == b % width || a / width == b / width {
        1.0
    } else {
        std::f64::consts::SQRT_2
    }
}

/// The Euclidean distance between two pixels' centres.
pub(crate) fn distance(a: usize, b: usize, width: usize) -> f64 {
    let dx = (a % width) as f64 - (b % width) as f64;
    let dy = (a / width) as f64 - (b / width) as f64;
    dx.hypot(dy)
}

/// The graph of a skeleton from [`super::skeleton::thin`].
pub(crate) fn trace(skel: &[bool], width: usize, height: usize) -> Graph {
    let on = |i: usize| skel[i];
    let degree: Vec<u8> = (0..skel.len())
        .map(|i| {
            if on(i) {
                neighbours(i, width, height).filter(|&n| on(n)).count() as u8
            } else {
                0
            }
        })
        .collect();
    let node = |i: usize| on(i) && degree[i] != 2;
    let junction = |i: usize| degree[i] >= 3;

    let mut graph = Graph {
        end_points: degree.iter().filter(|&&d| d == 1).count(),
        branch_points: junction_clusters(&degree, width, height),
        ..Graph::default()
    };
    let mut walked = vec![false; skel.len()];
    for p in (0..skel.len()).filter(|&p| node(p)) {
        for q in neighbours(p, width, height).filter(|&q| on(q)) {
            if node(q) {
                // A step between two nodes is a segment of its own (a one-step spur, a
                // two-pixel line), except inside a junction cluster.
                if p < q && !(junction(p) && junction(q)) {
                    graph.segments.push(Segment {
                        path: vec![p, q],
                        closed: false,
                    });
                }
                continue;
            }
            if walked[q] {
                continue; // traced from its other end
            }
            let mut path = vec![p, q];
            walked[q] = true;
            let (mut prev, mut cur) = (p, q);
            loop {
                // `cur` has two neighbours, and they do not touch (else it would have been thinned
                // away), so the way on is the one that is not `prev`.
                let next = neighbours(cur, width, height)
                    .find(|&n| on(n) && n != prev)
                    .expect("a line pixel has two neighbours");
                path.push(next);
                if node(next) {
                    break;
                }
                walked[next] = true;
                (prev, cur) = (cur, next);
            }
            graph.segments.push(Segment {
                path,
                closed: false,
            });
        }
    }
    // What is left unwalked are loops without a node (a ring).
    for start in 0..skel.len() {
        if !on(start) || degree[start] != 2 || walked[start] {
            continue;
        }
        walked[start] = true;
        let mut path = vec![start];
        let mut prev = neighbours(start, width, height)
            .find(|&n| on(n))
            .expect("a line pixel has two neighbours");
        let mut cur = start;
        loop {
            let next = neighbours(cur, width, height)
                .find(|&n| on(n) && n != prev)
                .expect("a line pixel has two neighbours");
            path.push(next);
            if next == start {
                break;
            }
            walked[next] = true;
            (prev, cur) = (cur, next);
        }
        graph.segments.push(Segment { path, closed: true });
    }
    graph.degree = degree;
    graph
}

/// The number of 8-connected clusters of junction pixels (three or more neighbours).
fn junction_clusters(degree: &[u8], width: usize, height: usize) -> usize {
    let mut seen = vec![false; degree.len()];
    let mut clusters = 0;
    let mut stack = Vec::new();
    for start in 0..degree.len() {
        if degree[start] < 3 || seen[start] {
            continue;
        }
        clusters += 1;
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            for n in neighbours(i, width, height) {
                if degree[n] >= 3 && !seen[n] {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
    }
    clusters
}

impl Segment {
    /// The path's length with steps of 1 (side) and √2 (diagonal).
    pub fn chain_length(&self, width: usize) -> f64 {
        self.path.windows(2).map(|s| step(s[0], s[1], width)).sum()
    }

    /// The straight distance between the segment's two ends.
    pub fn chord(&self, width: usize) -> f64 {
        distance(self.path[0], self.path[self.path.len() - 1], width)
    }

    /// The arc length as the sum of chords between every `k`-th pixel (and the last). Step
    /// counting overstates oblique lines (a digital line at 26.6° measures 8% long, since its
    /// staircase is counted step by step); chords over a few pixels average the staircase out
    /// while still following the curve (for a bend of radius 10 px and k = 5, 1% short).
    pub fn arc_length(&self, width: usize, k: usize) -> f64 {
        let last = self.path.len() - 1;
        let mut marks: Vec<usize> = (0..=last).step_by(k.max(1)).collect();
        if marks.last() != Some(&last) {
            marks.push(last);
        }
        marks
            .windows(2)
            .map(|m| distance(self.path[m[0]], self.path[m[1]], width))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{draw, skeleton::thin};

    #[test]
    fn a_plus_has_one_branch_point_four_ends_and_four_segments() {
        let (w, h) = (61, 61);
        let mut m = vec![false; w * h];
        draw::line(&mut m, w, (10, 30), (50, 30));
        draw::line(&mut m, w, (30, 10), (30, 50));
        let g = trace(&thin(&m, w, h), w, h);
        assert_eq!((g.branch_points, g.end_points, g.segments.len()), (1, 4, 4));
        // The centre and its four neighbours (three neighbours each) are the junction's cluster,
        // so each arm's segment starts one pixel out.
        for s in &g.segments {
            assert!(
                (s.chain_length(w) - 19.0).abs() < 1e-9,
                "{}",
                s.chain_length(w)
            );
        }
    }

    #[test]
    fn a_y_with_a_diagonal_branch_is_one_branch_point() {
        let (w, h) = (61, 61);
        let mut m = vec![false; w * h];
        draw::line(&mut m, w, (5, 30), (55, 30));
        draw::line(&mut m, w, (30, 30), (50, 50));
        let g = trace(&thin(&m, w, h), w, h);
        assert_eq!((g.branch_points, g.end_points, g.segments.len()), (1, 3, 3));
    }

    #[test]
    fn a_ring_is_one_closed_segment() {
        let (w, h) = (50, 50);
        let ring = draw::from_fn(w, h, |x, y| {
            let r2 = (x - 25.0).powi(2) + (y - 25.0).powi(2);
            (225.0..=289.0).contains(&r2)
        });
        let g = trace(&thin(&ring, w, h), w, h);
        assert_eq!((g.branch_points, g.end_points, g.segments.len()), (0, 0, 1));
        assert!(g.segments[0].closed);
        let len = g.segments[0].arc_length(w, 5);
        assert!(
            (len / (2.0 * std::f64::consts::PI * 16.0) - 1.0).abs() < 0.03,
            "{len}"
        );
    }

    #[test]
    fn chords_measure_an_oblique_line_true() {
        let (w, h) = (120, 60);
        let mut m = vec![false; w * h];
        draw::line(&mut m, w, (0, 0), (100, 50));
        let g = trace(&m, w, h);
        assert_eq!(g.segments.len(), 1);
        let s = &g.segments[0];
        let truth = 100f64.hypot(50.0);
        assert!((s.arc_length(w, 5) / truth - 1.0).abs() < 0.01);
        assert!((s.chord(w) - truth).abs() < 1e-9);
        assert!(s.chain_length(w) / truth > 1.07, "steps overstate it");
    }
}
