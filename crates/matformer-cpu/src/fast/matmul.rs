//! Fast matrix products: `nt` with `n ≤ 8` rows goes to the SIMD matrix-vector kernels (one weight read
//! serves every row), `nn` with `n == 1` too;
//! `n > 1` to `gemm`, either one parallel call (many rows, `f32` or small
//! weights) or one single-threaded call per weight block in parallel
//! (few rows, or large 16-bit weights widened block by block).

use super::blocked::{self, Blocking};
use super::{matvec, par};
use crate::reference::check_matmul;
use crate::WeightElem;

/// `y[n,m] = x[n,k] · w[m,k]ᵀ (+ bias[m])`; `w` in PyTorch-linear layout
/// `[out, in]`. Overwrites `y`. Cost is proportional to `n·k·m`: pass a
/// prefix of a neuron-major weight to compute only the active rows.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], n: usize, k: usize, m: usize) {
    check_matmul("matmul_nt", x, w, bias, y, n, k, m);
    nt_with(x, w, bias, y, (n, k, m), None);
}

/// `y[n,m] = x[n,k] · w[k,m] (+ bias[m])`. Used for the neuron-major FFN down
/// projection `[d_ff, d_model]` with `k` the active width. Overwrites `y`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn<W: WeightElem>(x: &[f32], w: &[W], bias: Option<&[W]>, y: &mut [f32], n: usize, k: usize, m: usize) {
    check_matmul("matmul_nn", x, w, bias, y, n, k, m);
    nn_with(x, w, bias, y, (n, k, m), None);
}

/// Fills every row of `y[n,m]` with the bias; returns whether there was one
/// (so the product must accumulate onto `y`).
fn prefill_bias<W: WeightElem>(y: &mut [f32], bias: Option<&[W]>, m: usize) -> bool {
    match bias {
        Some(b) => {
            par::rows_mut(y, m, m, |_, rows| {
                for row in rows.chunks_exact_mut(m) {
                    W::to_f32_slice(b, row);
                }
            });
            true
        }
        None => false,
    }
}

/// [`matmul_nt`] without shape checks; `blocking` overrides the widening
/// blocks of half weights (tests use it to exercise every path).
pub(crate) fn nt_with<W: WeightElem>(
    x: &[f32],
    w: &[W],
    bias: Option<&[W]>,
    y: &mut [f32],
    (n, k, m): (usize, usize, usize),
    blocking: Option<Blocking>,
) {
    if n == 0 || m == 0 {
        return;
    }
    if n <= matvec::MAX_ROWS && k > 0 && blocking.is_none() {
        return matvec::nt(x, w, bias, y, k);
    }
    let acc = prefill_bias(y, bias, m);
    if k == 0 {
        if !acc {
            y.fill(0.0);
        }
        return;
    }
    let is_f32 = W::as_f32_slice(w).is_some();
    let b = blocking.unwrap_or_else(|| blocked::nt_blocking(n, k, m, is_f32));
    blocked::nt(x, w, y, (n, k, m), acc, b);
}

/// [`matmul_nn`] without shape checks; see [`nt_with`].
pub(crate) fn nn_with<W: WeightElem>(
    x: &[f32],
    w: &[W],
    bias: Option<&[W]>,
    y: &mut [f32],
    (n, k, m): (usize, usize, usize),
    blocking: Option<Blocking>,
) {
    if n == 0 || m == 0 {
        return;
    }
    if n == 1 && blocking.is_none() {
        return matvec::nn(x, w, bias, y, k, m);
    }
    let acc = prefill_bias(y, bias, m);
    if k == 0 {
        if !acc {
            y.fill(0.0);
        }
        return;
    }
    let is_f32 = W::as_f32_slice(w).is_some();
    let b = blocking.unwrap_or_else(|| blocked::nn_blocking(n, k, m, is_f32));
    blocked::nn(x, w, y, (n, k, m), acc, b);
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

    use super::*;
    use crate::reference;
    use crate::testutil::{rng, to_w, uniform};

    /// Checks `got` against the `f64` reference with a bound scaled by the
    /// problem's magnitude `mag[i,j] = Σ_l |x[i,l]·w[j,l]| + |bias[j]|`.
    ///
    /// Tolerance `|got − ref| ≤ 4e-6·mag + 1e-7`: an `f32` dot product of
    /// length k has a worst-case error of `k·2⁻²⁴·mag` (≈ 6e-8·k·mag) and a
    /// typical one of `√k·2⁻²⁴·mag`; for the k ≤ 520 used here the typical
    /// error is ≤ 1.4e-6·mag, so 4e-6 catches any real bug (a wrong or
    /// missing term is O(mag/k) ≥ 2e-3·mag) while tolerating summation
    /// order. Half weights need no extra slack: both sides use the same
    /// exactly-widened weights.
    fn check<W: WeightElem>(nt: bool, n: usize, k: usize, m: usize, bias: bool, blocking: Option<Blocking>) {
        let mut r = rng((n * 1_000_003 + k * 1009 + m) as u64);
        let x = uniform(&mut r, n * k);
        let w: Vec<W> = to_w(&uniform(&mut r, m * k));
        let b: Vec<W> = to_w(&uniform(&mut r, m));
        let bias = bias.then_some(&b[..]);
        let mut want = vec![0.0; n * m];
        let mut got = vec![f32::NAN; n * m];
        if nt {
            reference::matmul_nt(&x, &w, bias, &mut want, n, k, m);
            nt_with(&x, &w, bias, &mut got, (n, k, m), blocking);
        } else {
            reference::matmul_nn(&x, &w, bias, &mut want, n, k, m);
            nn_with(&x, &w, bias, &mut got, (n, k, m), blocking);
        }
        for i in 0..n {
            for j in 0..m {
                let mut mag = bias.map_or(0.0, |b| b[j].to_f32().abs() as f64);
                for l in 0..k {
                    let wv = if nt { w[j * k + l] } else { w[l * m + j] };
                    mag += (x[i * k + l] as f64 * wv.to_f32() as f64).abs();
                }
                let (g, e) = (got[i * m + j] as f64, want[i * m + j] as f64);
                assert!(
                    (g - e).abs() <= 4e-6 * mag + 1e-7,
                    "{} {} n={n} k={k} m={m} {blocking:?} [{i},{j}]: {g} vs {e}",
                    if nt { "nt" } else { "nn" },
                    std::any::type_name::<W>(),
                );
            }
        }
    }

    fn all_shapes<W: WeightElem>() {
        for &n in &[1, 2, 7, 33] {
            for &k in &[1, 7, 33, 130, 520] {
                for &m in &[1, 7, 33, 130] {
                    for nt in [true, false] {
                        check::<W>(nt, n, k, m, (n + k + m) % 2 == 0, None);
                    }
                }
            }
        }
    }

    #[test]
    fn f32_matches_reference() {
        all_shapes::<f32>();
    }

    #[test]
    fn f16_matches_reference() {
        all_shapes::<f16>();
    }

    #[test]
    fn bf16_matches_reference() {
        all_shapes::<bf16>();
    }

    /// Forced blockings exercise every blocked path (whole, blocked with
    /// ragged edge blocks, single-row blocks) at small sizes.
    #[test]
    fn half_blockings_match_reference() {
        let blockings = [
            Blocking::Whole,
            Blocking::Blocks { rows: 1, cols: 1 },
            Blocking::Blocks { rows: 5, cols: 16 },
            Blocking::Blocks { rows: 64, cols: 7 },
        ];
        for b in blockings {
            for &(n, k, m) in &[(1, 33, 7), (2, 7, 33), (17, 130, 33), (40, 33, 130)] {
                for nt in [true, false] {
                    check::<f16>(nt, n, k, m, true, Some(b));
                    check::<bf16>(nt, n, k, m, false, Some(b));
                    check::<f32>(nt, n, k, m, false, Some(b));
                }
            }
        }
    }

    /// Shapes big enough to take the parallel paths (several matvec tasks
    /// and partial sums, several widened blocks, parallel gemm).
    #[test]
    fn large_shapes_match_reference() {
        for &(n, k, m) in &[(1, 1000, 300), (1, 300, 1000), (3, 700, 301), (20, 300, 260)] {
            for nt in [true, false] {
                check::<f32>(nt, n, k, m, true, None);
                check::<f16>(nt, n, k, m, false, None);
                check::<bf16>(nt, n, k, m, true, None);
            }
        }
    }

    /// Up to `matvec::MAX_ROWS` rows, each row of `matmul_nt` is bit-identical to a one-row call: a
    /// batched verify pass (speculative decoding) sees exactly the logits of token-by-token decoding.
    #[test]
    fn few_row_nt_equals_row_by_row() {
        let mut r = rng(29);
        for &(k, m) in &[(33, 7), (256, 1024), (1024, 300)] {
            let w = uniform(&mut r, m * k);
            let b = uniform(&mut r, m);
            for n in 2..=matvec::MAX_ROWS {
                let x = uniform(&mut r, n * k);
                let mut all = vec![0.0; n * m];
                matmul_nt(&x, &w, Some(&b), &mut all, n, k, m);
                for i in 0..n {
                    let mut one = vec![0.0; m];
                    matmul_nt(&x[i * k..(i + 1) * k], &w, Some(&b), &mut one, 1, k, m);
                    assert_eq!(&all[i * m..(i + 1) * m], &one[..], "k={k} m={m} n={n} row {i}");
                }
            }
        }
    }

    /// The matrix-vector kernels split work by shape only, so the result is
    /// bit-identical whatever the pool size.
    #[test]
    fn matvec_is_independent_of_thread_count() {
        let mut r = rng(99);
        let (k, m) = (700, 900);
        let x = uniform(&mut r, k);
        let w: Vec<bf16> = to_w(&uniform(&mut r, k * m));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut a, mut b) = (vec![0.0; m], vec![0.0; m]);
                super::matmul_nt(&x, &w, None, &mut a, 1, k, m);
                super::matmul_nn(&x, &w, None, &mut b, 1, k, m);
                (a, b)
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn empty_inner_dimension_gives_bias() {
        let b = [1.0f32, 2.0];
        for n in [1, 3] {
            let mut y = vec![f32::NAN; n * 2];
            super::matmul_nt(&[], &[], Some(&b), &mut y, n, 0, 2);
            assert!(y.chunks(2).all(|r| r == b));
            let mut y = vec![f32::NAN; n * 2];
            super::matmul_nn::<f16>(&[], &[], None, &mut y, n, 0, 2);
            assert!(y.iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    #[should_panic(expected = "matmul_nn: `x` has length")]
    fn length_mismatch_panics() {
        let mut y = [0.0; 4];
        super::matmul_nn(&[1.0; 3], &[1.0f32; 4], None, &mut y, 2, 2, 2);
    }
}
