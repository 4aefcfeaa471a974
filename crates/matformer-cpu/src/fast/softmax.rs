//! Fast softmax, log-softmax, cross-entropy and argmax.

use rayon::prelude::*;

use super::math::{exp_shift_sum, exp_sum};
use super::par::{self, TASK_WORK};
use super::simd;
use crate::shape::check_len;

/// Softmax over each row of `x[n,d]`, in place (max-subtracted).
pub fn softmax(x: &mut [f32], n: usize, d: usize) {
    check_len("softmax", "x", x.len(), n * d);
    par::rows_mut(x, d, 8 * d, |_, rows| {
        for row in rows.chunks_exact_mut(d) {
            let max = simd::max(row);
            let inv = 1.0 / exp_shift_sum(row, max);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    });
}

/// `log Σ exp(x)`, max-subtracted (`-inf` for an empty or all `-inf` row).
fn logsumexp(x: &[f32]) -> f32 {
    let max = simd::max(x);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + exp_sum(x, max).ln()
}

/// Log-softmax of one row, in place: `x - logsumexp(x)`.
pub fn log_softmax(x: &mut [f32]) {
    let lse = logsumexp(x);
    par::chunks_mut(x, |_, c| {
        for v in c {
            *v -= lse;
        }
    });
}

/// Mean cross-entropy of `logits[n,v]` against `targets[n]` (each `< v`):
/// `mean_i (logsumexp(logits_i) − logits_i[targets_i])`. Rows in parallel;
/// the per-row losses are summed in order in `f64`. Returns 0 when `n == 0`.
pub fn cross_entropy(logits: &[f32], targets: &[u32], n: usize, v: usize) -> f32 {
    check_len("cross_entropy", "logits", logits.len(), n * v);
    check_len("cross_entropy", "targets", targets.len(), n);
    if n == 0 {
        return 0.0;
    }
    let row_loss = |(row, &t): (&[f32], &u32)| (logsumexp(row) - row[t as usize]) as f64;
    let losses: Vec<f64> = if n * v <= TASK_WORK {
        logits.chunks_exact(v).zip(targets).map(row_loss).collect()
    } else {
        logits.par_chunks_exact(v).zip(targets).with_min_len((TASK_WORK / (8 * v)).max(1)).map(row_loss).collect()
    };
    (losses.iter().sum::<f64>() / n as f64) as f32
}

/// Index of the largest element (the first one on ties). NaNs are never
/// selected unless every element is NaN (then 0). Panics on an empty slice.
pub fn argmax(x: &[f32]) -> usize {
    crate::reference::argmax(x)
}

/// How two models' predictions agree, summed over rows (see [`agreement_kl`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowAgreement {
    /// Rows where both pick the same argmax.
    pub agree: usize,
    /// Sum over rows of KL(reference ‖ other), in nats, computed in `f64`.
    pub kl_sum: f64,
    /// Rows compared.
    pub rows: usize,
}

impl RowAgreement {
    /// Fraction of rows with the same argmax (0 when no rows).
    pub fn agreement(&self) -> f64 {
        self.agree as f64 / self.rows.max(1) as f64
    }

    /// Mean KL(reference ‖ other) per row (0 when no rows).
    pub fn mean_kl(&self) -> f64 {
        self.kl_sum / self.rows.max(1) as f64
    }
}

impl std::ops::AddAssign for RowAgreement {
    fn add_assign(&mut self, o: Self) {
        self.agree += o.agree;
        self.kl_sum += o.kl_sum;
        self.rows += o.rows;
    }
}

/// Compare `other[n,v]` with `reference[n,v]` row by row: greedy (argmax) agreement and
/// KL(softmax(reference) ‖ softmax(other)). Used for submodel-vs-full consistency.
pub fn agreement_kl(reference: &[f32], other: &[f32], n: usize, v: usize) -> RowAgreement {
    check_len("agreement_kl", "reference", reference.len(), n * v);
    check_len("agreement_kl", "other", other.len(), n * v);
    let log_softmax64 = |row: &[f32]| -> Vec<f64> {
        let max = simd::max(row) as f64;
        let lse = row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
        row.iter().map(|&x| x as f64 - lse).collect()
    };
    let mut out = RowAgreement { rows: n, ..RowAgreement::default() };
    for (r, o) in reference.chunks_exact(v).zip(other.chunks_exact(v)) {
        out.agree += (argmax(r) == argmax(o)) as usize;
        let (p, q) = (log_softmax64(r), log_softmax64(o));
        out.kl_sum += p.iter().zip(&q).map(|(p, q)| p.exp() * (p - q)).sum::<f64>();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{assert_close, ids, rng, uniform};

    /// Tolerance rtol 1e-5, atol 1e-7: probabilities and log-probabilities
    /// are computed in `f32` with a ~1 ulp exponential and an `f32` sum over
    /// d ≤ 5000 terms (relative error ~1e-6 at worst); the reference is `f64`.
    #[test]
    fn matches_reference() {
        let mut r = rng(13);
        for &(n, d) in &[(1, 1), (1, 7), (7, 33), (33, 130), (3, 5000), (130, 300)] {
            let x: Vec<f32> = uniform(&mut r, n * d).iter().map(|v| v * 8.0).collect();
            let (mut a, mut b) = (x.clone(), x.clone());
            softmax(&mut a, n, d);
            reference::softmax(&mut b, n, d);
            assert_close("softmax", &a, &b, 1e-5, 1e-7);
            let (mut a, mut b) = (x[..d].to_vec(), x[..d].to_vec());
            log_softmax(&mut a);
            reference::log_softmax(&mut b);
            assert_close("log_softmax", &a, &b, 1e-5, 1e-6);
            let t = ids(&mut r, n, d);
            let (ca, cb) = (cross_entropy(&x, &t, n, d), reference::cross_entropy(&x, &t, n, d));
            assert_close("cross_entropy", &[ca], &[cb], 1e-5, 1e-6);
            assert_eq!(argmax(&x[..d]), reference::argmax(&x[..d]));
        }
    }

    /// Identical rows agree everywhere with zero KL; for different rows the KL matches the
    /// definition Σ p (log p − log q) computed from the reference softmax, and agreement counts argmaxes.
    #[test]
    fn agreement_kl_matches_definition() {
        let mut r = rng(5);
        let (n, v) = (9, 37);
        let a: Vec<f32> = uniform(&mut r, n * v).iter().map(|x| x * 4.0).collect();
        let b: Vec<f32> = a.iter().zip(uniform(&mut r, n * v)).map(|(x, e)| x + 2.0 * e).collect();
        let same = agreement_kl(&a, &a, n, v);
        assert_eq!((same.agree, same.rows), (n, n));
        assert!(same.kl_sum.abs() < 1e-9, "{}", same.kl_sum);
        let got = agreement_kl(&a, &b, n, v);
        let (mut p, mut q) = (a.clone(), b.clone());
        reference::softmax(&mut p, n, v);
        reference::softmax(&mut q, n, v);
        let want: f64 = p.iter().zip(&q).map(|(&p, &q)| p as f64 * ((p as f64).ln() - (q as f64).ln())).sum();
        assert!(want > 0.01, "rows should differ: KL {want}");
        assert_close("kl", &[got.kl_sum as f32], &[want as f32], 1e-4, 1e-6);
        let agree = a.chunks(v).zip(b.chunks(v)).filter(|(x, y)| argmax(x) == argmax(y)).count();
        assert_eq!(got.agree, agree);
        assert!(agree < n, "the perturbation should flip some argmax");
    }

    #[test]
    fn masked_entries_get_zero() {
        let mut x = [0.0, f32::NEG_INFINITY, 1.0];
        softmax(&mut x, 1, 3);
        assert_eq!(x[1], 0.0);
        assert!((x[0] + x[2] - 1.0).abs() < 1e-6);
    }
}
