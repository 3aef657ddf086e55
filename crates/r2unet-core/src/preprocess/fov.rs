//! Field of view of a fundus photo: the bright disc inside the black surround. DRIVE ships
//! masks; STARE, CHASE_DB1 and a user's photo get one derived here.
use std::collections::VecDeque;

/// Derives a FOV mask from the red channel (the brightest in a fundus photo, and the one where
/// the disc edge is sharpest): threshold, keep the largest component, fill holes, erode slightly
/// so the dark rim does not count as background tissue.
///
/// `red` is one plane scaled to 0..1, `width * height` long.
pub fn derive(red: &[f32], width: usize, height: usize) -> Vec<bool> {
    let mut sorted: Vec<f32> = red.to_vec();
    sorted.sort_by(f32::total_cmp);
    let p99 = sorted[(sorted.len() - 1) * 99 / 100];
    // The surround is near black but JPEG noise lifts it a few levels; the disc is far brighter.
    let threshold = (0.15 * p99).max(12.0 / 255.0);
    let on: Vec<bool> = red.iter().map(|&v| v > threshold).collect();
    let mut fov = largest_component(&on, width, height);
    fill_holes(&mut fov, width, height);
    for _ in 0..2 {
        fov = erode(&fov, width, height);
    }
    if fov.iter().all(|&v| !v) {
        // Not a fundus photo (or entirely dark): the whole image is the field of view.
        return vec![true; red.len()];
    }
    fov
}

fn neighbours(i: usize, width: usize, height: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % width, i / width);
    [
        (x > 0).then(|| i - 1),
        (x + 1 < width).then(|| i + 1),
        (y > 0).then(|| i - width),
        (y + 1 < height).then(|| i + width),
    ]
    .into_iter()
    .flatten()
}

fn largest_component(on: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut label = vec![0u32; on.len()];
    let (mut best, mut best_size, mut next) = (0u32, 0usize, 1u32);
    let mut queue = VecDeque::new();
    for start in 0..on.len() {
        if !on[start] || label[start] != 0 {
            continue;
        }
        label[start] = next;
        queue.push_back(start);
        let mut size = 0;
        while let Some(i) = queue.pop_front() {
            size += 1;
            for n in neighbours(i, width, height) {
                if on[n] && label[n] == 0 {
                    label[n] = next;
                    queue.push_back(n);
                }
            }
        }
        if size > best_size {
            (best, best_size) = (next, size);
        }
        next += 1;
    }
    label.iter().map(|&l| l == best && best != 0).collect()
}

/// Marks as inside every pixel that the outside cannot reach from the image border.
fn fill_holes(mask: &mut [bool], width: usize, height: usize) {
    let mut outside = vec![false; mask.len()];
    let mut queue: VecDeque<usize> = (0..mask.len())
        .filter(|&i| {
            let (x, y) = (i % width, i / width);
            (x == 0 || y == 0 || x + 1 == width || y + 1 == height) && !mask[i]
        })
        .collect();
    for &i in &queue {
        outside[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for n in neighbours(i, width, height) {
            if !mask[n] && !outside[n] {
                outside[n] = true;
                queue.push_back(n);
            }
        }
    }
    for (m, o) in mask.iter_mut().zip(outside) {
        *m = !o;
    }
}

fn erode(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    (0..mask.len())
        .map(|i| mask[i] && neighbours(i, width, height).all(|n| mask[n]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_bright_disc_with_a_dark_hole_and_ignores_specks() {
        let (w, h) = (64usize, 48usize);
        let mut red = vec![0.01f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 32.0, y as f32 - 24.0);
                if dx * dx + dy * dy < 18.0 * 18.0 {
                    red[y * w + x] = 0.7;
                }
            }
        }
        red[24 * w + 32] = 0.0; // a dark vessel pixel inside must stay inside
        red[2 * w + 2] = 0.9; // a bright speck outside must not become FOV
        let fov = derive(&red, w, h);
        assert!(fov[24 * w + 32]);
        assert!(!fov[2 * w + 2]);
        assert!(!fov[0]);
        let inside = fov.iter().filter(|&&v| v).count();
        let disc = (std::f32::consts::PI * 16.0 * 16.0) as usize;
        assert!(
            inside > disc * 8 / 10 && inside < disc * 13 / 10,
            "{inside} vs {disc}"
        );
    }

    #[test]
    fn an_all_dark_image_is_all_field_of_view() {
        assert!(derive(&vec![0.0; 400], 20, 20).iter().all(|&v| v));
    }
}
