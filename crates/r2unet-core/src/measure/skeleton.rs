//! Thinning a mask to its 1-pixel, 8-connected centre lines.
//!
//! Directional sequential thinning by simple points: in turn from the north, south, east and west
//! borders, a pixel is deleted when deleting it changes no connectivity (a "simple" pixel, tested
//! on the current image, so deletions never disconnect or merge anything) and it is not the end
//! of a line (it has at least two neighbours). Zhang-Suen, the better-known parallel scheme, has
//! no such guarantee: it deletes 2x2 blocks and 2-pixel-wide diagonal lines outright, which
//! would break the thinnest vessels apart. The result has no simple pixel left other than line
//! ends, so each pixel on a line has exactly two neighbours and tracing it is unambiguous.
//!
//! Work is proportional to the border pixels at each step (a list of them is kept), so it stays
//! near O(pixels) even for a filled image.

/// Offsets of the 8 neighbours in ring order (E, NE, N, NW, W, SW, S, SE), as `(dx, dy)`.
pub(crate) const RING: [(i64, i64); 8] = [
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// Whether deleting a pixel with this neighbourhood (bit `k` = ring neighbour `k` set) keeps
/// the topology, for 8-connected foreground and 4-connected background: its foreground
/// neighbours form exactly one 8-connected group, and its background neighbours exactly one
/// 4-connected group that touches the pixel's sides.
pub(crate) fn simple_table() -> [bool; 256] {
    let mut table = [false; 256];
    for (code, simple) in table.iter_mut().enumerate() {
        let on = |k: usize| code & (1 << k) != 0;
        let fg = groups(on, |a, b| chebyshev(a, b) == 1, |_| true);
        let bg = groups(|k| !on(k), |a, b| manhattan(a, b) == 1, |k| k % 2 == 0);
        *simple = fg == 1 && bg == 1;
    }
    table
}

fn chebyshev(a: usize, b: usize) -> i64 {
    let ((ax, ay), (bx, by)) = (RING[a], RING[b]);
    (ax - bx).abs().max((ay - by).abs())
}

fn manhattan(a: usize, b: usize) -> i64 {
    let ((ax, ay), (bx, by)) = (RING[a], RING[b]);
    (ax - bx).abs() + (ay - by).abs()
}

/// The number of groups of ring positions with `member`, joined by `adjacent`, that hold at
/// least one position with `counts`.
fn groups(
    member: impl Fn(usize) -> bool,
    adjacent: impl Fn(usize, usize) -> bool,
    counts: impl Fn(usize) -> bool,
) -> usize {
    let mut group = [usize::MAX; 8];
    let mut n = 0;
    for start in (0..8).filter(|&k| member(k)) {
        if group[start] != usize::MAX {
            continue;
        }
        let mut stack = vec![start];
        group[start] = n;
        while let Some(a) = stack.pop() {
            for (b, gb) in group.iter_mut().enumerate() {
                if member(b) && *gb == usize::MAX && adjacent(a, b) {
                    *gb = n;
                    stack.push(b);
                }
            }
        }
        n += 1;
    }
    (0..n)
        .filter(|&g| (0..8).any(|k| group[k] == g && counts(k)))
        .count()
}

/// The skeleton of `fg` (`width * height`, row-major), as a mask of the same size.
pub(crate) fn thin(fg: &[bool], width: usize, height: usize) -> Vec<bool> {
    let simple = simple_table();
    // A 1-pixel background frame, so that no neighbour look-up needs a bounds check.
    let stride = width + 2;
    let mut img = vec![false; stride * (height + 2)];
    for (y, row) in fg.chunks_exact(width).enumerate() {
        img[(y + 1) * stride + 1..][..width].copy_from_slice(row);
    }
    let ring: [isize; 8] = RING.map(|(dx, dy)| dy as isize * stride as isize + dx as isize);
    let at = |p: usize, k: usize| p.wrapping_add_signed(ring[k]);
    let code =
        |img: &[bool], p: usize| (0..8).fold(0, |c, k| c | (usize::from(img[at(p, k)]) << k));
    let sides = [2, 6, 0, 4]; // N, S, E, W
    let mut listed = vec![false; img.len()];
    let mut border: Vec<usize> = (0..img.len())
        .filter(|&p| img[p] && sides.iter().any(|&k| !img[at(p, k)]))
        .collect();
    for &p in &border {
        listed[p] = true;
    }
    let mut candidates = Vec::new();
    loop {
        let mut changed = false;
        for side in sides {
            candidates.clear();
            candidates.extend(
                border
                    .iter()
                    .copied()
                    .filter(|&p| img[p] && !img[at(p, side)]),
            );
            for &p in &candidates {
                let c = code(&img, p);
                if c.count_ones() >= 2 && simple[c] {
                    img[p] = false;
                    changed = true;
                    for k in sides {
                        let n = at(p, k);
                        if img[n] && !listed[n] {
                            listed[n] = true;
                            border.push(n);
                        }
                    }
                }
            }
        }
        border.retain(|&p| img[p]);
        if !changed {
            break;
        }
    }
    let mut out = vec![false; width * height];
    for (y, row) in out.chunks_exact_mut(width).enumerate() {
        row.copy_from_slice(&img[(y + 1) * stride + 1..][..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{components::components, draw};

    #[test]
    fn simple_points_by_hand() {
        let t = simple_table();
        let bits = |ks: &[usize]| ks.iter().fold(0, |c, &k| c | 1 << k);
        assert!(!t[0], "an isolated pixel");
        assert!(
            t[bits(&[0])],
            "a line's end (kept by the thinning's end rule, not here)"
        );
        assert!(!t[bits(&[0, 4])], "the middle of a line");
        assert!(
            t[bits(&[0, 2])],
            "a staircase corner: E and N touch diagonally"
        );
        assert!(!t[bits(&[0, 1, 2, 3, 4, 5, 6, 7])], "an interior pixel");
        assert!(!t[bits(&[1, 3])], "NE and NW do not touch");
        assert!(t[bits(&[0, 1, 2])]);
    }

    #[test]
    fn bands_thin_to_their_centre_line() {
        let (w, h) = (60, 20);
        let band = draw::rect(w, h, 5, 6, 55, 13); // 7 rows: 6..=12
        let s = thin(&band, w, h);
        let on: Vec<usize> = (0..w * h).filter(|&i| s[i]).collect();
        assert!(on.iter().all(|&i| i / w == 9), "the centre row");
        assert!(on.len() >= 40, "{}", on.len());
    }

    #[test]
    fn thinning_keeps_topology_and_thin_lines() {
        let (w, h) = (80, 80);
        // A ring (one hole) and a 2-pixel-wide diagonal line: both survive, the ring as a loop.
        let ring = draw::from_fn(w, h, |x, y| {
            let r2 = (x - 30.0).powi(2) + (y - 30.0).powi(2);
            (100.0..=400.0).contains(&r2)
        });
        let diag = draw::from_fn(w, h, |x, y| {
            (55.0..75.0).contains(&x) && (y - x + 5.0 == 0.0 || y - x + 4.0 == 0.0)
        });
        let s = thin(&draw::or(&ring, &diag), w, h);
        assert_eq!(components(&s, w, h).len(), 2);
        // The ring's hole is still a hole: the background inside (4-connected, the background's
        // connectivity) does not reach the edge.
        let mut seen = vec![false; w * h];
        let mut stack = vec![30 * w + 30];
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            assert!(x > 0 && y > 0 && x < w - 1 && y < h - 1, "the hole leaks");
            for n in [i - 1, i + 1, i - w, i + w] {
                if !s[n] && !seen[n] {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        // A 2x2 block (which Zhang-Suen deletes) keeps a 2-pixel line.
        let block = thin(&draw::rect(6, 6, 2, 2, 4, 4), 6, 6);
        assert_eq!(block.iter().filter(|&&v| v).count(), 2);
        assert_eq!(components(&block, 6, 6).len(), 1);
    }

    #[test]
    fn a_filled_image_thins_fast_and_connected() {
        let (w, h) = (900, 700);
        let t = std::time::Instant::now();
        let s = thin(&vec![true; w * h], w, h);
        assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
        assert_eq!(components(&s, w, h).len(), 1);
    }
}
