//! 2x2, stride-2 max-pooling on `f32` planes in NCHW layout, and its gradient.
//!
//! burn-flex pools through its general 3-D pooling with an index tensor: about 10 ms for one
//! batch of 32 x 16 x 48 x 48, a fifth of what the convolution next to it takes. Here each output
//! row is read from its two input rows in one pass.

use crate::ops::parallel::{SharedOut, for_each_index};

/// `planes` planes of `h x w` (both even) to `planes` planes of `h/2 x w/2`.
pub fn forward(x: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    assert!(
        h.is_multiple_of(2) && w.is_multiple_of(2),
        "max_pool2x2: odd plane"
    );
    assert_eq!(x.len(), planes * h * w, "max_pool2x2: input length");
    let (oh, ow) = (h / 2, w / 2);
    let mut y: Vec<f32> = Vec::with_capacity(planes * oh * ow);
    // SAFETY: `y` has room for `planes * oh * ow` floats and is left alone until `set_len`
    // below, after the tasks; each task writes its own plane.
    let out =
        unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), planes * oh * ow) };
    for_each_index(planes, |p| {
        // SAFETY: plane `p` of `y` is written by this task only, every element once.
        let y = unsafe { out.slice_mut(p * oh * ow..(p + 1) * oh * ow) };
        let x = &x[p * h * w..(p + 1) * h * w];
        for (i, row) in y.chunks_exact_mut(ow).enumerate() {
            let (r0, r1) = (
                &x[2 * i * w..(2 * i + 1) * w],
                &x[(2 * i + 1) * w..(2 * i + 2) * w],
            );
            for ((o, a), b) in row
                .iter_mut()
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
            {
                *o = a[0].max(a[1]).max(b[0].max(b[1]));
            }
        }
    });
    // SAFETY: every plane was written in full above.
    unsafe { y.set_len(planes * oh * ow) };
    y
}

/// The input gradient: each output's gradient goes to the first element of its window (row by
/// row) that equals the output, as the forward pass's maximum; the others get zero.
pub fn backward(x: &[f32], y: &[f32], dy: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    assert_eq!(x.len(), planes * h * w, "max_pool2x2: input length");
    assert!(
        y.len() == planes * oh * ow && dy.len() == y.len(),
        "max_pool2x2: output length"
    );
    let mut dx: Vec<f32> = Vec::with_capacity(x.len());
    // SAFETY: `dx` has room for `planes * h * w` floats and is left alone until `set_len` below,
    // after the tasks; each task writes its own plane.
    let out =
        unsafe { SharedOut::new(dx.spare_capacity_mut().as_mut_ptr().cast(), planes * h * w) };
    for_each_index(planes, |p| {
        // SAFETY: plane `p` of `dx` is written by this task only, every element once.
        let dx = unsafe { out.slice_mut(p * h * w..(p + 1) * h * w) };
        let x = &x[p * h * w..(p + 1) * h * w];
        let (y, dy) = (
            &y[p * oh * ow..(p + 1) * oh * ow],
            &dy[p * oh * ow..(p + 1) * oh * ow],
        );
        for i in 0..oh {
            let (d0, d1) = dx[2 * i * w..(2 * i + 2) * w].split_at_mut(w);
            let (x0, x1) = x[2 * i * w..(2 * i + 2) * w].split_at(w);
            let rows = (y[i * ow..(i + 1) * ow].iter()).zip(&dy[i * ow..(i + 1) * ow]);
            let windows = (x0.chunks_exact(2).zip(x1.chunks_exact(2)))
                .zip(d0.chunks_exact_mut(2).zip(d1.chunks_exact_mut(2)));
            // Branch-free, so that the loop has no unpredictable jumps.
            for ((&m, &g), ((a, b), (da, db))) in rows.zip(windows) {
                let e0 = a[0] == m;
                let e1 = !e0 && a[1] == m;
                let e2 = !(e0 || e1) && b[0] == m;
                let e3 = !(e0 || e1 || e2) && b[1] == m;
                da[0] = if e0 { g } else { 0.0 };
                da[1] = if e1 { g } else { 0.0 };
                db[0] = if e2 { g } else { 0.0 };
                db[1] = if e3 { g } else { 0.0 };
            }
        }
    });
    // SAFETY: every element of every plane was written above.
    unsafe { dx.set_len(planes * h * w) };
    dx
}
