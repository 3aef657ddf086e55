//! Adam's update on `f32` slices, split over threads.
use super::Constants;
use crate::ops::parallel::{SharedOut, for_each_index};

/// Elements per task: large enough that a task's overhead vanishes, small enough that the
/// largest parameters (3x3 weights of up to 147,456 values) split over the cores.
const CHUNK: usize = 16 * 1024;

/// The new parameter and moments from the old ones and the gradient.
pub fn step(
    param: &[f32],
    grad: &[f32],
    m: &[f32],
    v: &[f32],
    c: Constants,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam: parameter, gradient and moments differ in length"
    );
    let mut out = [(); 3].map(|_| Vec::<f32>::with_capacity(n));
    // SAFETY: each buffer's spare capacity holds `n` floats and outlives the tasks below, which
    // write disjoint ranges of it and read nothing through it.
    let [p_out, m_out, v_out] = out
        .each_mut()
        .map(|b| unsafe { SharedOut::new(b.as_mut_ptr(), n) });
    for_each_index(n.div_ceil(CHUNK), |task| {
        let range = task * CHUNK..((task + 1) * CHUNK).min(n);
        // SAFETY: the tasks' ranges are disjoint.
        let (p_new, m_new, v_new) = unsafe {
            (
                p_out.slice_mut(range.clone()),
                m_out.slice_mut(range.clone()),
                v_out.slice_mut(range.clone()),
            )
        };
        let (a1, a2) = (1.0 - c.beta_1, 1.0 - c.beta_2);
        for i in 0..range.len() {
            let j = range.start + i;
            let g = grad[j];
            let m = c.beta_1 * m[j] + a1 * g;
            let v = c.beta_2 * v[j] + a2 * (g * g);
            m_new[i] = m;
            v_new[i] = v;
            p_new[i] = param[j] - c.step_size * m / (v.sqrt() + c.epsilon);
        }
    });
    // SAFETY: the tasks above wrote all `n` floats of each buffer.
    out.iter_mut().for_each(|b| unsafe { b.set_len(n) });
    let [p, m, v] = out;
    (p, m, v)
}
