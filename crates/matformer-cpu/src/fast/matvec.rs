//! Matrix products with few rows of `x` (decode `n == 1`, speculative
//! verification `n ≤ SKINNY_MAX`). Memory-bandwidth bound: every weight is
//! read from memory once. For `n == 1`, 16-bit weights are widened in
//! registers; for `n > 1` a small block of weights is widened once into an
//! L1-sized buffer and reused by all `n` rows. Tasks have a fixed size that
//! depends only on the shapes, so results do not depend on the thread count.

use rayon::prelude::*;

use super::par::TASK_WORK;
use super::simd::{self, hsum, LANES};
use crate::WeightElem;

/// Up to this many rows of `x`, these kernels beat a general gemm (which
/// is tuned for large `n`).
pub(crate) const SKINNY_MAX: usize = 16;

/// Weight elements per task (enough to amortize scheduling).
const MATVEC_TASK: usize = 2 * TASK_WORK;

/// Most partial sums in [`nn`] (each is `n·m` floats).
const MAX_PARTIALS: usize = 16;

/// Columns of `x` per packed chunk in [`nt`] (`n·KC` floats stay in L1).
const KC: usize = 256;
/// Columns per block in [`nn`] (`n·CW` partial sums stay in L1).
const CW: usize = 256;
/// Weight rows per group in [`nn`].
const RG: usize = 8;

/// `y[n,m] = x[n,k] · w[m,k]ᵀ (+ bias)`: one dot product per (weight row,
/// row of `x`), parallel over weight rows.
pub(crate) fn nt<W: WeightElem>(
    x: &[f32],
    w: &[W],
    bias: Option<&[W]>,
    y: &mut [f32],
    (n, k, m): (usize, usize, usize),
) {
    let rows_per_task = (MATVEC_TASK / (k * n).max(1)).max(1);
    let bias_at = |j: usize| bias.map_or(0.0, |b| b[j].to_f32());
    if n == 1 {
        // y is its own transpose; 16-bit weights are widened in registers.
        let body = |(t, yc): (usize, &mut [f32])| {
            let j0 = t * rows_per_task;
            for (jj, yv) in yc.iter_mut().enumerate() {
                let j = j0 + jj;
                *yv = W::dot(&w[j * k..(j + 1) * k], x) + bias_at(j);
            }
        };
        if m <= rows_per_task {
            body((0, y));
        } else {
            y.par_chunks_mut(rows_per_task).enumerate().for_each(body);
        }
        return;
    }
    // Pack x in chunks of KC columns, rows contiguous per chunk, so the
    // chunk of every row sits together in L1 (rows of x at a power-of-two
    // stride would alias in the cache).
    let mut xp = vec![0.0f32; n * k];
    for c0 in (0..k).step_by(KC) {
        let l = KC.min(k - c0);
        for i in 0..n {
            xp[n * c0 + i * l..n * c0 + (i + 1) * l].copy_from_slice(&x[i * k + c0..i * k + c0 + l]);
        }
    }
    // yt[m, n]: contiguous per weight row, transposed into y at the end.
    let mut yt = vec![0.0f32; m * n];
    let body = |(t, yc): (usize, &mut [f32])| {
        let j0 = t * rows_per_task;
        let mut buf = Vec::new();
        let mut acc = vec![[0.0f32; LANES]; n];
        for (jj, yr) in yc.chunks_exact_mut(n).enumerate() {
            let j = j0 + jj;
            acc.iter_mut().for_each(|a| *a = [0.0; LANES]);
            for c0 in (0..k).step_by(KC) {
                let l = KC.min(k - c0);
                let wc = widened(&w[j * k + c0..j * k + c0 + l], &mut buf);
                simd::dots_acc(&mut acc, wc, &xp[n * c0..n * (c0 + l)]);
            }
            for (yv, a) in yr.iter_mut().zip(&acc) {
                *yv = hsum(a) + bias_at(j);
            }
        }
    };
    if m <= rows_per_task {
        body((0, &mut yt));
    } else {
        yt.par_chunks_mut(rows_per_task * n).enumerate().for_each(body);
    }
    for (j, col) in yt.chunks_exact(n).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            y[i * m + j] = v;
        }
    }
}

/// `w` as `f32`: the slice itself for `f32` weights, else widened into `buf`.
fn widened<'a, W: WeightElem>(w: &'a [W], buf: &'a mut Vec<f32>) -> &'a [f32] {
    match W::as_f32_slice(w) {
        Some(f) => f,
        None => {
            buf.resize(w.len(), 0.0);
            W::to_f32_slice(w, buf);
            buf
        }
    }
}

/// `y[n,m] = x[n,k] · w[k,m] (+ bias)`: the rows of `w` are split into at
/// most [`MAX_PARTIALS`] contiguous blocks, each streamed once by one task
/// into its own partial sum (all `n` rows); the partials are then added in a
/// fixed order.
pub(crate) fn nn<W: WeightElem>(
    x: &[f32],
    w: &[W],
    bias: Option<&[W]>,
    y: &mut [f32],
    (n, k, m): (usize, usize, usize),
) {
    let parts = (k * m * n)
        .div_ceil(MATVEC_TASK)
        .clamp(1, MAX_PARTIALS.min(k.max(1)));
    let rows = k.div_ceil(parts).max(1);
    let parts = k.div_ceil(rows).max(1);
    let block = |p: &mut [f32], r0: usize, r1: usize| {
        if n == 1 {
            // whole rows streamed, 16-bit weights widened in registers
            return W::axpy_rows(p, &x[r0..r1], &w[r0 * m..r1 * m]);
        }
        // Column blocks keep the n partial-row segments in L1; each group of
        // weight rows is widened once and used by all n rows of x.
        let mut buf = Vec::new();
        for c0 in (0..m).step_by(CW) {
            let cw = CW.min(m - c0);
            for g0 in (r0..r1).step_by(RG) {
                let g1 = (g0 + RG).min(r1);
                let (wb, stride) = match W::as_f32_slice(w) {
                    Some(wf) => (&wf[g0 * m + c0..], m),
                    None => {
                        buf.resize((g1 - g0) * cw, 0.0);
                        for (r, dst) in (g0..g1).zip(buf.chunks_exact_mut(cw)) {
                            W::to_f32_slice(&w[r * m + c0..r * m + c0 + cw], dst);
                        }
                        (&buf[..], cw)
                    }
                };
                for (i, pi) in p.chunks_exact_mut(m).enumerate() {
                    let xi = &x[i * k + g0..i * k + g1];
                    simd::axpy_rows_strided(&mut pi[c0..c0 + cw], xi, wb, stride);
                }
            }
        }
    };
    let init = |y: &mut [f32]| match bias {
        Some(b) => y.chunks_exact_mut(m).for_each(|r| W::to_f32_slice(b, r)),
        None => y.fill(0.0),
    };
    init(y);
    if parts == 1 {
        block(y, 0, k);
        return;
    }
    let mut partial = vec![0.0f32; parts * n * m];
    partial
        .par_chunks_mut(n * m)
        .enumerate()
        .for_each(|(t, p)| block(p, t * rows, ((t + 1) * rows).min(k)));
    for p in partial.chunks_exact(n * m) {
        for (yv, &pv) in y.iter_mut().zip(p) {
            *yv += pv;
        }
    }
}
