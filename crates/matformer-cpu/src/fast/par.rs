//! Parallel-loop helpers: run small work inline (entering the rayon pool
//! from outside costs microseconds), split big work into tasks of a fixed
//! size (so results do not depend on the thread count), and reuse scratch
//! buffers.

use std::cell::RefCell;

use rayon::prelude::*;

/// Elements (roughly: multiply-adds) per parallel task. Waking the pool costs
/// microseconds (tens on a busy machine); at 1 << 15 the 3M-param shipped
/// MatLM decoded 25% slower (5900 vs 7400 tokens/s), each norm and attention
/// call paying a wake-up for about a microsecond of work.
pub(crate) const TASK_WORK: usize = 1 << 17;

/// Runs `f(row0, rows)` over consecutive blocks of rows of `y` (rows of
/// `row_len` elements, each costing about `work_per_row`), in parallel when
/// there is more than one block.
pub(crate) fn rows_mut<F>(y: &mut [f32], row_len: usize, work_per_row: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    if y.is_empty() || row_len == 0 {
        return;
    }
    let rows_per_task = (TASK_WORK / work_per_row.max(1)).max(1);
    let chunk = rows_per_task * row_len;
    if y.len() <= chunk {
        f(0, y);
    } else {
        y.par_chunks_mut(chunk).enumerate().for_each(|(t, c)| f(t * rows_per_task, c));
    }
}

/// Runs `f(offset, part)` over chunks of `x` in parallel (element-wise ops).
pub(crate) fn chunks_mut<F>(x: &mut [f32], f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    rows_mut(x, 1, 1, f);
}

/// Runs `f(i)` for `i in 0..n` tasks, in parallel when `n > 1`.
pub(crate) fn tasks<F>(n: usize, f: F)
where
    F: Fn(usize) + Sync + Send,
{
    if n <= 1 {
        (0..n).for_each(f);
    } else {
        (0..n).into_par_iter().for_each(f);
    }
}

/// A raw pointer that may cross threads. Users guarantee that concurrent
/// tasks write disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(*mut f32);

// SAFETY: only used to hand disjoint output regions to rayon tasks; every
// use site documents why the regions are disjoint.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Wraps the start of `y`.
    pub(crate) fn new(y: &mut [f32]) -> Self {
        Self(y.as_mut_ptr())
    }

    /// The pointer (a method so closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with a per-thread reusable buffer of `len` floats (contents
/// unspecified). Re-entrant calls on the same thread get a fresh buffer.
/// The buffer keeps its largest size for the life of the thread.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Splits the rows of `dx` (rows of `row_len`) into tasks of a fixed,
/// shape-determined number of rows; task `t` gets `f(row0, rows, partial)`
/// with its own zeroed `partial` buffer of `plen` floats. Returns all
/// partials in task order, so the caller can reduce them deterministically.
pub(crate) fn rows_with_partials<F>(dx: &mut [f32], row_len: usize, work_per_row: usize, plen: usize, f: F) -> Vec<f32>
where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
{
    if dx.is_empty() || row_len == 0 || plen == 0 {
        return Vec::new();
    }
    let rows_per_task = (TASK_WORK / work_per_row.max(1)).max(1);
    let n_tasks = (dx.len() / row_len).div_ceil(rows_per_task);
    let mut partials = vec![0.0; n_tasks * plen];
    if n_tasks == 1 {
        f(0, dx, &mut partials);
    } else {
        dx.par_chunks_mut(rows_per_task * row_len)
            .zip(partials.par_chunks_mut(plen))
            .enumerate()
            .for_each(|(t, (rows, p))| f(t * rows_per_task, rows, p));
    }
    partials
}
