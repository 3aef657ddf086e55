//! The 1x1 convolution on plain `f32` slices in NCHW layout: per image, `y = W x + bias` with `W`
//! `[c_out, c_in]` and `x` `[c_in, h*w]`, one GEMM per (image, block of pixels) task.
use crate::ops::gemm::gemm;
use crate::ops::parallel::{SharedOut, for_each_task, sum_over_tasks};

/// Shape of one 1x1 convolution: `batch x c_in x plane` to `batch x c_out x plane`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    /// Pixels per plane, `h * w`.
    pub plane: usize,
}

/// A task: image `.0`, pixels `.1 .. .1 + .2` of its planes.
type Task = (usize, usize, usize);

/// Whole planes where the batch alone gives enough tasks (training batches); a whole image's
/// planes in blocks otherwise, so that a batch of one still runs on every thread.
fn tasks(d: &Dims) -> Vec<Task> {
    let splits = (16 / d.batch.max(1)).max(1);
    let block = d.plane.div_ceil(splits).max(1);
    (0..d.batch)
        .flat_map(|b| {
            (0..d.plane)
                .step_by(block)
                .map(move |p| (b, p, block.min(d.plane - p)))
        })
        .collect()
}

/// `[batch, c_out, plane]` from `task(t, out)` writing the task's pixels of every output plane
/// of its image.
fn fill(d: &Dims, planes: usize, task: impl Fn(Task, &SharedOut) + Send + Sync) -> Vec<f32> {
    let len = d.batch * planes * d.plane;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `y` has room for `len` floats and is left alone until `set_len`; the tasks cover
    // every (image, pixel) once and each writes (and then reads back) its own pixels of every
    // plane of its image only.
    let out = unsafe { SharedOut::new(y.spare_capacity_mut().as_mut_ptr().cast(), len) };
    for_each_task(&tasks(d), |&t| task(t, &out));
    // SAFETY: every element was written by its task.
    unsafe { y.set_len(len) };
    y
}

/// `y = conv1x1(x, weight) + bias`: `x` `[batch, c_in, plane]`, `weight` `[c_out, c_in]`, `bias`
/// `[c_out]`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(x.len(), d.batch * d.c_in * d.plane, "conv1x1: input length");
    assert_eq!(weight.len(), d.c_out * d.c_in, "conv1x1: weight length");
    assert_eq!(bias.len(), d.c_out, "conv1x1: bias length");
    fill(&d, d.c_out, |(b, p, n), out| {
        let first = b * d.c_out * d.plane + p;
        gemm(
            d.c_out,
            n,
            d.c_in,
            out.at(first),
            (d.plane as isize, 1),
            false,
            weight.as_ptr(),
            (d.c_in as isize, 1),
            x[b * d.c_in * d.plane + p..].as_ptr(),
            (d.plane as isize, 1),
        );
        for (co, &bias) in bias.iter().enumerate() {
            let at = first + co * d.plane;
            // SAFETY: these are this task's pixels of plane co, which the GEMM above wrote.
            let row = unsafe { out.slice_mut(at..at + n) };
            row.iter_mut().for_each(|v| *v += bias);
        }
    })
}

/// The input's gradient, `W^T dy` per image.
pub fn input_grad(dy: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(
        dy.len(),
        d.batch * d.c_out * d.plane,
        "conv1x1: output gradient length"
    );
    assert_eq!(weight.len(), d.c_out * d.c_in, "conv1x1: weight length");
    // W^T row-major (small), so that the product is row-major like the forward pass.
    let mut wt = vec![0.0f32; weight.len()];
    for co in 0..d.c_out {
        for ci in 0..d.c_in {
            wt[ci * d.c_out + co] = weight[co * d.c_in + ci];
        }
    }
    fill(&d, d.c_in, |(b, p, n), out| {
        gemm(
            d.c_in,
            n,
            d.c_out,
            out.at(b * d.c_in * d.plane + p),
            (d.plane as isize, 1),
            false,
            wt.as_ptr(),
            (d.c_out as isize, 1),
            dy[b * d.c_out * d.plane + p..].as_ptr(),
            (d.plane as isize, 1),
        );
    })
}

/// The weights' and the bias's gradients: `sum over images of dy x^T` (`[c_out, c_in]`) and the
/// sum of `dy` over images and pixels per output channel (`[c_out]`).
pub fn param_grads(x: &[f32], dy: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), d.batch * d.c_in * d.plane, "conv1x1: input length");
    assert_eq!(
        dy.len(),
        d.batch * d.c_out * d.plane,
        "conv1x1: output gradient length"
    );
    let pairs = d.c_out * d.c_in;
    let mut acc = sum_over_tasks(&tasks(&d), pairs + d.c_out, |acc, &(b, p, n)| {
        let dy = &dy[b * d.c_out * d.plane + p..];
        let (dw, dbias) = acc.split_at_mut(pairs);
        gemm(
            d.c_out,
            d.c_in,
            n,
            dw.as_mut_ptr(),
            (d.c_in as isize, 1),
            true,
            dy.as_ptr(),
            (d.plane as isize, 1),
            x[b * d.c_in * d.plane + p..].as_ptr(),
            (1, d.plane as isize),
        );
        for (co, s) in dbias.iter_mut().enumerate() {
            *s += dy[co * d.plane..][..n].iter().sum::<f32>();
        }
    });
    let dbias = acc.split_off(pairs);
    (acc, dbias)
}
