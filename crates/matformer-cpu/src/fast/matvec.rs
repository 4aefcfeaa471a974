//! Matrix-vector products (`n == 1`, decode). Memory-bandwidth bound: each
//! weight is read exactly once, 16-bit weights are widened in registers,
//! and everything accumulates in `f32`. Tasks have a fixed size that
//! depends only on the shapes, so results do not depend on the number of
//! threads.

use rayon::prelude::*;

use super::par::TASK_WORK;
use crate::WeightElem;

/// Weight elements per task (enough to amortize scheduling).
const MATVEC_TASK: usize = 2 * TASK_WORK;

/// Most partial sums in [`nn`] (each is `m` floats).
const MAX_PARTIALS: usize = 16;

/// `y[m] = w[m,k] · x[k] (+ bias)`: one dot product per weight row,
/// parallel over blocks of rows.
pub(crate) fn nt<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize) {
    let rows_per_task = (MATVEC_TASK / k.max(1)).max(1);
    let body = |(t, yc): (usize, &mut [f32])| {
        let j0 = t * rows_per_task;
        for (jj, yv) in yc.iter_mut().enumerate() {
            let j = j0 + jj;
            let b = bias.map_or(0.0, |b| b[j].to_f32());
            *yv = W::dot(&w[j * k..(j + 1) * k], x) + b;
        }
    };
    if y.len() <= rows_per_task {
        body((0, y));
    } else {
        y.par_chunks_mut(rows_per_task).enumerate().for_each(body);
    }
}

/// `y[m] = x[k] · w[k,m] (+ bias)`: the rows of `w` are split into at most
/// [`MAX_PARTIALS`] contiguous blocks, each streamed by one task into its
/// own partial sum (four rows per pass over the partial); the partials are
/// then added in a fixed order.
pub(crate) fn nn<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize, m: usize) {
    match bias {
        Some(b) => W::to_f32_slice(b, y),
        None => y.fill(0.0),
    }
    let parts = (k * m).div_ceil(MATVEC_TASK).clamp(1, MAX_PARTIALS.min(k.max(1)));
    let rows = k.div_ceil(parts).max(1);
    if parts == 1 {
        W::axpy_rows(y, x, w);
        return;
    }
    let mut partial = vec![0.0f32; k.div_ceil(rows) * m];
    partial.par_chunks_mut(m).enumerate().for_each(|(t, p)| {
        let (r0, r1) = (t * rows, ((t + 1) * rows).min(k));
        W::axpy_rows(p, &x[r0..r1], &w[r0 * m..r1 * m]);
    });
    for p in partial.chunks_exact(m) {
        for (yv, &pv) in y.iter_mut().zip(p) {
            *yv += pv;
        }
    }
}
