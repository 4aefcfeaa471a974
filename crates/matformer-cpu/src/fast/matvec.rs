//! Matrix-vector products (`n == 1`, decode). Memory-bandwidth bound: each
//! weight is read exactly once, 16-bit weights are widened in registers,
//! and everything accumulates in `f32`. Results do not depend on the number
//! of threads: on AVX-512 CPUs every output element has an operation order
//! fixed by the shapes whatever the split (so the split follows the pool
//! size: one task per thread for mid-sized weights, none for small ones);
//! elsewhere tasks have a fixed, shape-determined size.

use rayon::prelude::*;

use super::avx512;
use super::par::TASK_WORK;
use crate::WeightElem;

/// Below this many weight elements an AVX-512 matrix-vector product runs on
/// the calling thread (waking the pool costs more than it saves).
const PAR_MIN: usize = 1 << 17;

/// Above `threads ×` this many weight elements the AVX-512 products use
/// more tasks than threads (for load balance on a shared machine).
const BIG_TASK: usize = 1 << 19;

/// Number of tasks for an AVX-512 product over `work` weight elements,
/// at most `max_tasks` (at least 1).
fn split_count(work: usize, max_tasks: usize) -> usize {
    if work < PAR_MIN {
        return 1;
    }
    let threads = rayon::current_num_threads().max(1);
    threads.max(work / BIG_TASK).min(max_tasks).max(1)
}

/// [`nt`] on AVX-512: contiguous blocks of rows (multiples of four).
fn nt_avx512<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize) {
    let m = y.len();
    let tasks = split_count(m * k, m.div_ceil(4));
    let rows = m.div_ceil(tasks).next_multiple_of(4);
    let body = |(t, yc): (usize, &mut [f32])| {
        let j0 = t * rows;
        // SAFETY: the caller checked avx512 availability.
        unsafe { W::dot_rows_avx512(&w[j0 * k..(j0 + yc.len()) * k], x, yc) };
        if let Some(b) = bias {
            for (yv, bv) in yc.iter_mut().zip(&b[j0..]) {
                *yv += bv.to_f32();
            }
        }
    };
    if tasks == 1 {
        body((0, y));
    } else {
        y.par_chunks_mut(rows).enumerate().for_each(body);
    }
}

/// [`nn`] on AVX-512: column stripes (multiples of 16), each walking all
/// `k` rows of its stripe; no partial sums.
fn nn_avx512<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize, m: usize) {
    match bias {
        Some(b) => W::to_f32_slice(b, y),
        None => y.fill(0.0),
    }
    if k == 0 {
        return;
    }
    let tasks = split_count(m * k, m.div_ceil(64));
    let cols = m.div_ceil(tasks).next_multiple_of(16);
    // SAFETY (both calls): the caller checked avx512 availability; `w`
    // holds k·m elements, so from column c0 it holds (k−1)·m + (m − c0).
    if tasks == 1 {
        unsafe { W::axpy_cols_avx512(y, x, w, m) };
    } else {
        y.par_chunks_mut(cols).enumerate().for_each(|(s, yc)| unsafe { W::axpy_cols_avx512(yc, x, &w[s * cols..], m) });
    }
}

/// Weight elements per task (enough to amortize scheduling).
const MATVEC_TASK: usize = 2 * TASK_WORK;

/// Most partial sums in [`nn`] (each is `m` floats).
const MAX_PARTIALS: usize = 16;

/// `y[m] = w[m,k] · x[k] (+ bias)`: one dot product per weight row,
/// parallel over blocks of rows.
pub(crate) fn nt<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize) {
    if avx512::available() {
        return nt_avx512(x, w, bias, y, k);
    }
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
    if avx512::available() {
        return nn_avx512(x, w, bias, y, k, m);
    }
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
