//! How the CPU kernels run their tasks: on rayon's threads in native builds (feature `native`),
//! in order on the calling thread elsewhere (wasm, where burn-flex runs without threads). This is
//! the one place that chooses; the kernels call [`for_each_index`], [`for_each_task`] and
//! [`sum_over_tasks`].
//!
//! Every kernel splits its work into tasks that each write their own part of the output (a
//! channel, a plane, an (image, band of rows) region). They share the output as a [`SharedOut`]:
//! a `&mut [f32]` cannot be shared between tasks, so the buffer goes to them as a pointer and a
//! length, and each task writes its part through [`SharedOut::slice_mut`] or [`SharedOut::at`].
use std::ops::Range;

/// An `f32` output buffer that parallel tasks write disjoint parts of: its start and its length,
/// `Send` and `Sync` so that every task can hold it. Typically the spare capacity of a `Vec` that
/// the tasks fill before its `set_len`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: a SharedOut is a pointer and a length; every write through it is `unsafe` under the
// contract of `new` (the buffer outlives the tasks, each element written by one task only), which
// holds whichever thread a task runs on.
unsafe impl Send for SharedOut {}
// SAFETY: as for Send: `&SharedOut` gives a task nothing but the pointer, and a task reads only
// elements it has written, so tasks on several threads at once touch only their own, disjoint,
// elements.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The buffer of `len` floats at `ptr`, to be shared by the tasks that fill it.
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for writes of `len` consecutive `f32` (it may point at uninitialised
    ///   memory, such as a `Vec`'s spare capacity), and stays so while this value or a copy of it
    ///   is used: the buffer outlives every task that writes through it, and is not reallocated,
    ///   freed or otherwise accessed (read, written, borrowed) until those tasks are done.
    /// - Writes are disjoint per task: each element is written by at most one task, and a task
    ///   holds [`slice_mut`](Self::slice_mut)s of its own elements only. Nothing is read through
    ///   the buffer while the tasks run, except by a task from elements it has written itself.
    pub(crate) unsafe fn new(ptr: *mut f32, len: usize) -> Self {
        Self { ptr, len }
    }

    /// The address of element `i` (`i == len` gives the end), for writers that take a pointer,
    /// such as the GEMM; writing through it is under [`new`](Self::new)'s contract. Panics when
    /// `i > len`.
    #[inline]
    pub(crate) fn at(&self, i: usize) -> *mut f32 {
        assert!(i <= self.len, "SharedOut: element {i} of {}", self.len);
        // SAFETY: `i <= len`, and by `new`'s contract the `len` floats at `ptr` are one live
        // allocation, so the offset stays inside it (or one past its end).
        unsafe { self.ptr.add(i) }
    }

    /// Elements `range`, for the one task that writes them. Panics when the range is not inside
    /// the buffer.
    ///
    /// # Safety
    ///
    /// No other task writes any element of `range`, or holds a slice over one, while the result
    /// lives (writes are disjoint per task), and the buffer is live ([`new`](Self::new)'s
    /// contract). The elements may be uninitialised: the task reads none that it has not
    /// written itself.
    #[inline]
    #[expect(
        clippy::mut_from_ref,
        reason = "the contract above makes the slice exclusive to its task"
    )]
    pub(crate) unsafe fn slice_mut(&self, range: Range<usize>) -> &mut [f32] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "SharedOut: elements {range:?} of {}",
            self.len
        );
        // SAFETY: the range is inside the buffer (checked above), which is live and valid for
        // writes by `new`'s contract; no other task touches these elements while the slice
        // lives, by this function's.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

/// A per-thread `f32` buffer that the kernels' tasks reuse across calls (a fresh zeroed one per
/// task cost several per cent of a training step in `memset`).
pub(crate) type ThreadBuffer = std::thread::LocalKey<std::cell::RefCell<Vec<f32>>>;

/// Runs `f` on the first `len` floats of this thread's `buffer`, grown as needed; the contents
/// are unspecified (what the last task left). A task never runs inside another on one thread
/// (nothing in a task waits on rayon), so one borrow is held at a time.
pub(crate) fn with_buffer<R>(
    buffer: &'static ThreadBuffer,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    buffer.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < len {
            b.resize(len, 0.0);
        }
        f(&mut b[..len])
    })
}

/// Runs `f(0)`, ..., `f(n - 1)`: on rayon's threads in native builds, in order on this thread
/// elsewhere (wasm).
pub(crate) fn for_each_index(n: usize, f: impl Fn(usize) + Send + Sync) {
    imp::for_each_index(n, f)
}

/// Runs `f` on every task, as [`for_each_index`].
pub(crate) fn for_each_task<T: Sync>(tasks: &[T], f: impl Fn(&T) + Send + Sync) {
    imp::for_each_task(tasks, f)
}

/// Runs `task` on every task with a zeroed accumulator of `size` floats per thread and returns the
/// accumulators' sum (the weight gradients: a sum over images and pixels).
pub(crate) fn sum_over_tasks<T: Sync>(
    tasks: &[T],
    size: usize,
    task: impl Fn(&mut [f32], &T) + Send + Sync,
) -> Vec<f32> {
    imp::sum_over_tasks(tasks, size, task)
}

#[cfg(feature = "native")]
use threaded as imp;

#[cfg(not(feature = "native"))]
use serial as imp;

/// Native builds: rayon.
#[cfg(feature = "native")]
mod threaded {
    use std::sync::{Mutex, PoisonError};

    use rayon::prelude::*;

    pub(super) fn for_each_index(n: usize, f: impl Fn(usize) + Send + Sync) {
        (0..n).into_par_iter().for_each(f);
    }

    pub(super) fn for_each_task<T: Sync>(tasks: &[T], f: impl Fn(&T) + Send + Sync) {
        tasks.par_iter().for_each(f);
    }

    pub(super) fn sum_over_tasks<T: Sync>(
        tasks: &[T],
        size: usize,
        task: impl Fn(&mut [f32], &T) + Send + Sync,
    ) -> Vec<f32> {
        // One accumulator per worker thread rather than rayon's `fold`, which starts a zeroed one
        // for every piece it splits the tasks into (up to one per task: several MiB to zero and
        // to add up again for the 64-channel layers' weight gradients). A task never runs inside
        // another (nothing in a task waits on rayon), so a thread's lock is never held twice.
        let slots: Vec<Mutex<Vec<f32>>> = (0..rayon::current_num_threads())
            .map(|_| Mutex::new(Vec::new()))
            .collect();
        tasks.par_iter().for_each(|t| {
            let i = rayon::current_thread_index().unwrap_or(0) % slots.len();
            let mut acc = slots[i].lock().unwrap_or_else(PoisonError::into_inner);
            if acc.is_empty() {
                acc.resize(size, 0.0);
            }
            task(&mut acc, t);
        });
        let mut used = slots
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
            .filter(|acc| !acc.is_empty());
        let mut total = used.next().unwrap_or_else(|| vec![0.0f32; size]);
        for acc in used {
            total.iter_mut().zip(&acc).for_each(|(a, b)| *a += b);
        }
        total
    }
}

/// Builds without threads (wasm); in tests also the reference for the threaded versions.
#[cfg(any(test, not(feature = "native")))]
mod serial {
    pub(super) fn for_each_index(n: usize, f: impl Fn(usize)) {
        (0..n).for_each(f);
    }

    pub(super) fn for_each_task<T>(tasks: &[T], f: impl Fn(&T)) {
        tasks.iter().for_each(f);
    }

    pub(super) fn sum_over_tasks<T>(
        tasks: &[T],
        size: usize,
        task: impl Fn(&mut [f32], &T),
    ) -> Vec<f32> {
        let mut acc = vec![0.0f32; size];
        tasks.iter().for_each(|t| task(&mut acc, t));
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASKS: usize = 64;
    const CHUNK: usize = 37;

    type Run<'a> = &'a dyn Fn(usize, &(dyn Fn(usize) + Send + Sync));

    /// Task `t` fills chunk `t` of one buffer through `slice_mut` and element `t` of another
    /// through `at`; `run` runs the tasks.
    fn fill(run: Run) -> (Vec<f32>, Vec<f32>) {
        let mut chunks: Vec<f32> = Vec::with_capacity(TASKS * CHUNK);
        let mut firsts = vec![-1.0f32; TASKS];
        // SAFETY: `chunks` has capacity for TASKS * CHUNK floats and `firsts` holds TASKS; neither
        // is touched until the tasks are done, and task t writes chunk t and element t only.
        let (c, f) = unsafe {
            (
                SharedOut::new(
                    chunks.spare_capacity_mut().as_mut_ptr().cast(),
                    TASKS * CHUNK,
                ),
                SharedOut::new(firsts.as_mut_ptr(), TASKS),
            )
        };
        run(TASKS, &|t| {
            // SAFETY: chunk t is written by task t only.
            let chunk = unsafe { c.slice_mut(t * CHUNK..(t + 1) * CHUNK) };
            for (j, v) in chunk.iter_mut().enumerate() {
                *v = (t * CHUNK + j) as f32;
            }
            // SAFETY: element t (< TASKS) is written by task t only.
            unsafe { *f.at(t) = chunk[0] };
        });
        // SAFETY: the tasks wrote every chunk in full.
        unsafe { chunks.set_len(TASKS * CHUNK) };
        (chunks, firsts)
    }

    #[test]
    fn disjoint_writes_from_parallel_tasks_land() {
        let (chunks, firsts) = fill(&|n, f| for_each_index(n, f));
        assert!(chunks.iter().enumerate().all(|(i, &v)| v == i as f32));
        assert!(
            firsts
                .iter()
                .enumerate()
                .all(|(t, &v)| v == (t * CHUNK) as f32)
        );

        // The same through for_each_task, with tasks of unequal length.
        let tasks: Vec<Range<usize>> = (0..TASKS).map(|t| t * t..(t + 1) * (t + 1)).collect();
        let len = TASKS * TASKS;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        // SAFETY: capacity `len`, untouched until the tasks are done; the ranges are disjoint.
        let shared = unsafe { SharedOut::new(out.spare_capacity_mut().as_mut_ptr().cast(), len) };
        for_each_task(&tasks, |r| {
            // SAFETY: range r belongs to this task only.
            let s = unsafe { shared.slice_mut(r.clone()) };
            s.iter_mut().for_each(|v| *v = r.start as f32);
        });
        // SAFETY: the ranges cover 0..TASKS * TASKS.
        unsafe { out.set_len(len) };
        for (t, r) in tasks.iter().enumerate() {
            assert!(out[r.clone()].iter().all(|&v| v == (t * t) as f32));
        }
    }

    #[test]
    fn the_serial_path_gives_the_same_results() {
        let threaded = fill(&|n, f| for_each_index(n, f));
        assert_eq!(fill(&|n, f| serial::for_each_index(n, f)), threaded);
        let indices: Vec<usize> = (0..TASKS).collect();
        assert_eq!(
            fill(&|_, f| serial::for_each_task(&indices, |&t| f(t))),
            threaded
        );

        // Integer-valued sums, exact in any order.
        let tasks: Vec<usize> = (0..1000).collect();
        let task = |acc: &mut [f32], &t: &usize| {
            acc[t % 7] += t as f32;
            acc[7] += 1.0;
        };
        let sum = sum_over_tasks(&tasks, 8, task);
        assert_eq!(sum, serial::sum_over_tasks(&tasks, 8, task));
        assert_eq!(sum[7], 1000.0);
        assert_eq!(sum.iter().take(7).sum::<f32>(), (999 * 1000 / 2) as f32);
    }

    #[test]
    #[should_panic(expected = "SharedOut")]
    fn slices_outside_the_buffer_are_refused() {
        let mut buf = vec![0.0f32; 4];
        // SAFETY: `buf` is untouched while `shared` is used, by this one thread.
        let shared = unsafe { SharedOut::new(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: the only slice of the buffer (and out of bounds, so it panics).
        let _ = unsafe { shared.slice_mut(2..5) };
    }
}
