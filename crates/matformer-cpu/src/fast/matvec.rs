//! Matrix-vector products (`n == 1`, decode). Memory-bandwidth bound: each
//! weight is read exactly once, 16-bit weights are widened in registers,
//! and everything accumulates in `f32`. Results do not depend on the number
//! of threads: on AVX-512 CPUs every output element has an operation order
//! fixed by the shapes whatever the split (so the split follows the pool
//! size: one task per thread for mid-sized weights, none for small ones);
//! elsewhere tasks have a fixed, shape-determined size.

use rayon::prelude::*;

use super::avx512;
use super::par::{self, SendPtr, TASK_WORK};
use crate::WeightElem;

/// Up to this many rows of `x`, a product runs here (weights read once per block, reused from L1 for
/// every row) rather than in `gemm`, whose packing dominates at a few rows: the verify pass of
/// speculative decoding and short prompts.
pub(crate) const MAX_ROWS: usize = 8;

/// Weight elements per task (enough to amortize scheduling).
const MATVEC_TASK: usize = 2 * TASK_WORK;

/// Most partial sums in [`nn`] (each is `m` floats).
const MAX_PARTIALS: usize = 16;

/// Below this many weight bytes an AVX-512 matrix-vector product runs on
/// the calling thread (waking the pool costs more than it saves, and one
/// core's L2 holds the weight).
const PAR_MIN_BYTES: usize = 1 << 20;

/// Above `threads ×` this many weight elements [`nt_avx512`] uses more
/// tasks than threads (a multiple of the thread count, for load balance on
/// a shared machine).
const BIG_TASK: usize = 1 << 19;

/// Weight elements per partial sum in [`nn_avx512`] for large weights.
const NN_PART: usize = 1 << 17;

/// Whether a product over `work` weight elements of `W` runs inline.
fn inline<W>(work: usize) -> bool {
    work * std::mem::size_of::<W>() < PAR_MIN_BYTES
}

/// [`nt`] on AVX-512: contiguous blocks of weight rows (multiples of four), one per thread or a
/// multiple of the thread count for large weights; every block serves all rows of `x`.
fn nt_avx512<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize) {
    let n = x.len() / k;
    let m = y.len() / n;
    let work = m * k;
    let tasks = if inline::<W>(work) {
        1
    } else {
        let threads = rayon::current_num_threads().max(1);
        (threads * work.div_ceil(threads * BIG_TASK)).min(m.div_ceil(4)).max(1)
    };
    let rows = m.div_ceil(tasks).next_multiple_of(4);
    let yp = SendPtr::new(y);
    let body = |t: usize| {
        let (j0, j1) = (t * rows, ((t + 1) * rows).min(m));
        // SAFETY: the caller checked avx512 availability; `y` holds n·m elements and this block writes
        // only columns j0..j1 of each row, disjoint from every other block; `w` holds m·k.
        unsafe {
            W::dot_rows_avx512(&w[j0 * k..j1 * k], x, k, yp.get().add(j0), m, j1 - j0);
            if let Some(b) = bias {
                for i in 0..n {
                    for (j, bv) in (j0..j1).zip(&b[j0..j1]) {
                        *yp.get().add(i * m + j) += bv.to_f32();
                    }
                }
            }
        }
    };
    par::tasks(m.div_ceil(rows), body);
}

/// [`nn`] on AVX-512. Small weights: one pass on the calling thread.
/// Large: an even, shape-determined number (≤ [`MAX_PARTIALS`]) of
/// contiguous row blocks, each streamed by one task into its own partial
/// sum (whole rows, so memory is read sequentially), added in a fixed order.
fn nn_avx512<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize, m: usize) {
    match bias {
        Some(b) => W::to_f32_slice(b, y),
        None => y.fill(0.0),
    }
    if k == 0 {
        return;
    }
    if inline::<W>(k * m) || k < 2 {
        // SAFETY: the caller checked avx512 availability; `w` holds k·m.
        unsafe { W::axpy_cols_avx512(y, x, w, m) };
        return;
    }
    let parts = ((k * m) / NN_PART).next_multiple_of(2).clamp(2, MAX_PARTIALS).min(k);
    let rows = k.div_ceil(parts);
    let mut partial = vec![0.0f32; k.div_ceil(rows) * m];
    partial.par_chunks_mut(m).enumerate().for_each(|(t, p)| {
        let (r0, r1) = (t * rows, ((t + 1) * rows).min(k));
        // SAFETY: the caller checked avx512 availability; rows r0..r1 of
        // `w` hold (r1−r0)·m elements.
        unsafe { W::axpy_cols_avx512(p, &x[r0..r1], &w[r0 * m..r1 * m], m) };
    });
    for p in partial.chunks_exact(m) {
        for (yv, &pv) in y.iter_mut().zip(p) {
            *yv += pv;
        }
    }
}

/// `y[n,m] = x[n,k] · w[m,k]ᵀ (+ bias)` for `n ≤` [`MAX_ROWS`] rows of `x` (`y.len()` a multiple of
/// `n = x.len() / k`, `k > 0`): one dot product per weight row and row of `x`, parallel over blocks of
/// weight rows. Each row's result is exactly what a one-row call would give.
pub(crate) fn nt<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize) {
    if avx512::available() {
        nt_avx512(x, w, bias, y, k)
    } else {
        let m = y.len() / (x.len() / k);
        for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(m)) {
            nt_portable(xr, w, bias, yr, k)
        }
    }
}

/// [`nt`] for one row without AVX-512: fixed-size row blocks, one dot product per row.
fn nt_portable<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize) {
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
        nn_avx512(x, w, bias, y, k, m)
    } else {
        nn_portable(x, w, bias, y, k, m)
    }
}

/// [`nn`] without AVX-512 (see [`nn`]'s description of the partial sums).
fn nn_portable<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], k: usize, m: usize) {
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

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

    use super::*;
    use crate::reference;
    use crate::testutil::{rng, to_w, uniform};

    /// Both implementations (AVX-512 when the CPU has it, and the portable
    /// one) against the `f64` reference, on inline, split and partial-sum
    /// sizes (the 16-bit and `f32` weights cross the 1 MiB inline limit at
    /// different shapes), in pools of 1 and 3 threads.
    ///
    /// Tolerance as in `matmul`'s tests, `|got − ref| ≤ 4e-6·mag + 1e-7`
    /// with `mag = Σ|x·w| + |bias|`: the typical `f32` summation error for
    /// these `k ≤ 1000` is `√k·2⁻²⁴·mag ≤ 2e-6·mag`; a wrong or missing
    /// term is `O(mag/k) ≥ 1e-3·mag`.
    fn check<W: WeightElem>() {
        let mut r = rng(17);
        let shapes = [(1, 1), (7, 33), (33, 7), (17, 100), (768, 384), (700, 901), (1000, 300), (3, 5000), (520, 1100)];
        for (si, &(k, m)) in shapes.iter().enumerate() {
            let x = uniform(&mut r, k);
            let w: Vec<W> = to_w(&uniform(&mut r, k * m));
            let b: Vec<W> = to_w(&uniform(&mut r, m.max(k)));
            for nt_op in [true, false] {
                // nt: y[m] = w[m,k]·x[k]; nn: y[m] = x[k]·w[k,m].
                let bias = (si % 2 == 0).then_some(&b[..m]);
                let mut want = vec![0.0; m];
                if nt_op {
                    reference::matmul_nt(&x, &w, bias, &mut want, 1, k, m);
                } else {
                    reference::matmul_nn(&x, &w, bias, &mut want, 1, k, m);
                }
                let mag: Vec<f64> = (0..m)
                    .map(|j| {
                        let bm = bias.map_or(0.0, |b| b[j].to_f32().abs() as f64);
                        bm + (0..k)
                            .map(|l| {
                                let wv = if nt_op { w[j * k + l] } else { w[l * m + j] };
                                (x[l] as f64 * wv.to_f32() as f64).abs()
                            })
                            .sum::<f64>()
                    })
                    .collect();
                for threads in [1, 3] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    for simd in [true, false] {
                        if simd && !avx512::available() {
                            continue;
                        }
                        let mut got = vec![f32::NAN; m];
                        pool.install(|| match (nt_op, simd) {
                            (true, true) => nt_avx512(&x, &w, bias, &mut got, k),
                            (true, false) => nt_portable(&x, &w, bias, &mut got, k),
                            (false, true) => nn_avx512(&x, &w, bias, &mut got, k, m),
                            (false, false) => nn_portable(&x, &w, bias, &mut got, k, m),
                        });
                        for j in 0..m {
                            let (g, e) = (got[j] as f64, want[j] as f64);
                            assert!(
                                (g - e).abs() <= 4e-6 * mag[j] + 1e-7,
                                "{} {} k={k} m={m} simd={simd} threads={threads} [{j}]: {g} vs {e}",
                                if nt_op { "nt" } else { "nn" },
                                std::any::type_name::<W>(),
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn matvec_paths_match_reference_f32() {
        check::<f32>();
    }

    #[test]
    fn matvec_paths_match_reference_f16() {
        check::<f16>();
    }

    #[test]
    fn matvec_paths_match_reference_bf16() {
        check::<bf16>();
    }
}
