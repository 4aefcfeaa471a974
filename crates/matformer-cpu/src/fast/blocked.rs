//! Matrix products with `n > 1` rows cut into weight blocks, one rayon task
//! per block, each running a single-threaded `gemm`. Blocks of `f16`/`bf16`
//! weights are widened into a reusable per-thread `f32` buffer (sized for
//! L2 when `n` is small, so every weight is read from memory once and the
//! widened copy is consumed from cache); `nn` blocks of `f32` weights are
//! copied the same way (a contiguous block multiplies ~1.5x faster than a
//! strided one), `nt` blocks of `f32` weights are used in place.
//!
//! `f32` weights take this path only for few rows (`n ≤ SMALL_N`), where
//! independent blocks beat one parallel gemm over the whole matrix;
//! otherwise [`Blocking::Whole`] means one parallel gemm (after widening the
//! whole matrix, for small 16-bit weights).

use super::gemm::{col_major, gemm, gemm_raw, row_major};
use super::par::{chunks_mut, tasks, with_scratch, SendPtr, TASK_WORK};
use crate::WeightElem;

/// Up to this many rows of `x`, blocks are sized to stay in L2.
const SMALL_N: usize = 16;
/// Weights up to this many elements are widened whole when `n > SMALL_N`.
const WHOLE_ELEMS: usize = 1 << 20;
/// Widened block size (elements) that fits in L2 with room for `x`.
const L2_ELEMS: usize = 1 << 16;
/// Minimum block width for large `n` (amortizes gemm's packing of `x`).
const WIDE_BLOCK: usize = 256;

/// How a product is cut: the whole weight at once, or blocks of
/// `rows × cols` weight elements (only `rows` for `nt`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Blocking {
    /// One parallel gemm over the whole matrix (16-bit weights are widened
    /// whole first).
    Whole,
    /// `nt`: blocks of `rows` weight rows (output columns).
    /// `nn`: column stripes of `cols`, each walked in blocks of `rows`.
    Blocks { rows: usize, cols: usize },
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Blocking for [`nt`] chosen from the shapes and the weight type.
pub(crate) fn nt_blocking(n: usize, k: usize, m: usize, is_f32: bool) -> Blocking {
    if n > SMALL_N && (is_f32 || m * k <= WHOLE_ELEMS) {
        return Blocking::Whole;
    }
    let target = if n > SMALL_N { WIDE_BLOCK } else { (L2_ELEMS / k.max(1)).max(8) };
    let per_thread = m.div_ceil(threads()).next_multiple_of(16);
    Blocking::Blocks { rows: target.min(per_thread).clamp(1, m.max(1)), cols: 0 }
}

/// Blocking for [`nn`] chosen from the shapes and the weight type.
pub(crate) fn nn_blocking(n: usize, k: usize, m: usize, is_f32: bool) -> Blocking {
    if n > SMALL_N && (is_f32 || m * k <= WHOLE_ELEMS) {
        return Blocking::Whole;
    }
    let per_thread = m.div_ceil(threads()).next_multiple_of(16);
    let cols = per_thread.max(WIDE_BLOCK.min(m)).clamp(1, m.max(1));
    let rows = if n > SMALL_N { (4 * L2_ELEMS / cols).max(WIDE_BLOCK) } else { (L2_ELEMS / cols).max(16) };
    Blocking::Blocks { rows: rows.clamp(1, k.max(1)), cols }
}

/// Widens all of `w` into `buf`, in parallel for large weights.
fn widen_all<W: WeightElem>(w: &[W], buf: &mut [f32]) {
    chunks_mut(buf, |off, part| W::to_f32_slice(&w[off..off + part.len()], part));
}

/// `y[n,m] (+)= x[n,k] · w[m,k]ᵀ`; `accumulate` adds to `y` (bias prefill).
#[allow(clippy::too_many_arguments)]
pub(crate) fn nt<W: WeightElem>(
    x: &[f32],
    w: &[W],
    y: &mut [f32],
    (n, k, m): (usize, usize, usize),
    accumulate: bool,
    blocking: Blocking,
) {
    let (dl, ll, rl) = (row_major(m), row_major(k), col_major(k));
    let rows = match blocking {
        Blocking::Whole => {
            if let Some(wf) = W::as_f32_slice(w) {
                return gemm((n, m, k), y, dl, x, ll, wf, rl, accumulate, 1.0, true);
            }
            return with_scratch(m * k, |buf| {
                widen_all(w, buf);
                gemm((n, m, k), y, dl, x, ll, buf, rl, accumulate, 1.0, true);
            });
        }
        Blocking::Blocks { rows, .. } => rows.max(1),
    };
    let yp = SendPtr::new(y);
    let parallel = m.div_ceil(rows) > 1 && n * m * k > TASK_WORK;
    let run = |b: usize| {
        let (j0, j1) = (b * rows, ((b + 1) * rows).min(m));
        let block = &w[j0 * k..j1 * k];
        let mul = |wb: &[f32]| {
            // SAFETY: `y` holds n·m elements; this block writes only columns
            // j0..j1 of each row, disjoint from every other block. `x` and
            // `wb` are valid for n·k and (j1-j0)·k elements.
            unsafe {
                gemm_raw((n, j1 - j0, k), yp.get().add(j0), dl, x.as_ptr(), ll, wb.as_ptr(), rl, accumulate, 1.0, false)
            }
        };
        match W::as_f32_slice(block) {
            Some(wb) => mul(wb),
            None => with_scratch((j1 - j0) * k, |buf| {
                W::to_f32_slice(block, buf);
                mul(buf)
            }),
        }
    };
    if parallel {
        tasks(m.div_ceil(rows), run);
    } else {
        (0..m.div_ceil(rows)).for_each(run);
    }
}

/// `y[n,m] (+)= x[n,k] · w[k,m]`; `accumulate` adds to `y` (bias prefill).
#[allow(clippy::too_many_arguments)]
pub(crate) fn nn<W: WeightElem>(
    x: &[f32],
    w: &[W],
    y: &mut [f32],
    (n, k, m): (usize, usize, usize),
    accumulate: bool,
    blocking: Blocking,
) {
    let (rows, cols) = match blocking {
        Blocking::Whole => {
            let (dl, ll, rl) = (row_major(m), row_major(k), row_major(m));
            if let Some(wf) = W::as_f32_slice(w) {
                return gemm((n, m, k), y, dl, x, ll, wf, rl, accumulate, 1.0, true);
            }
            return with_scratch(m * k, |buf| {
                widen_all(w, buf);
                gemm((n, m, k), y, dl, x, ll, buf, rl, accumulate, 1.0, true);
            });
        }
        Blocking::Blocks { rows, cols } => (rows.max(1), cols.max(1)),
    };
    let yp = SendPtr::new(y);
    let stripes = m.div_ceil(cols);
    let run = |s: usize| {
        let (c0, c1) = (s * cols, ((s + 1) * cols).min(m));
        let cw = c1 - c0;
        with_scratch(rows * cw, |buf| {
            for k0 in (0..k).step_by(rows) {
                let k1 = (k0 + rows).min(k);
                for r in k0..k1 {
                    let dst = &mut buf[(r - k0) * cw..(r - k0 + 1) * cw];
                    W::to_f32_slice(&w[r * m + c0..r * m + c1], dst);
                }
                // SAFETY: `y` holds n·m elements; this stripe writes only
                // columns c0..c1 of each row, disjoint from other stripes.
                // `x` columns k0..k1 and `buf` ((k1-k0)·cw) are in bounds.
                unsafe {
                    gemm_raw(
                        (n, cw, k1 - k0),
                        yp.get().add(c0),
                        row_major(m),
                        x.as_ptr().add(k0),
                        row_major(k),
                        buf.as_ptr(),
                        row_major(cw),
                        accumulate || k0 > 0,
                        1.0,
                        false,
                    )
                }
            }
        });
    };
    if stripes > 1 && n * m * k > TASK_WORK {
        tasks(stripes, run);
    } else {
        (0..stripes).for_each(run);
    }
}
