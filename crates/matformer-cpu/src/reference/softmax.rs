//! Reference softmax, log-softmax, cross-entropy and argmax.

use crate::shape::check_len;

/// Softmax over each row of `x[n,d]`, in place (max-subtracted, `f64` sums).
pub fn softmax(x: &mut [f32], n: usize, d: usize) {
    check_len("softmax", "x", x.len(), n * d);
    for row in x.chunks_exact_mut(d.max(1)).take(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        for v in row.iter_mut() {
            *v = ((*v as f64 - max).exp() / sum) as f32;
        }
    }
}

/// Log-softmax of one row, in place: `x - logsumexp(x)`.
pub fn log_softmax(x: &mut [f32]) {
    let lse = logsumexp(x);
    for v in x.iter_mut() {
        *v = (*v as f64 - lse) as f32;
    }
}

/// `log Σ exp(x)` in `f64`, max-subtracted.
pub(crate) fn logsumexp(x: &[f32]) -> f64 {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

/// Mean cross-entropy of `logits[n,v]` against `targets[n]` (each `< v`):
/// `mean_i (logsumexp(logits_i) − logits_i[targets_i])`. Returns 0 when `n == 0`.
pub fn cross_entropy(logits: &[f32], targets: &[u32], n: usize, v: usize) -> f32 {
    check_len("cross_entropy", "logits", logits.len(), n * v);
    check_len("cross_entropy", "targets", targets.len(), n);
    if n == 0 {
        return 0.0;
    }
    let mut total = 0.0f64;
    for (row, &t) in logits.chunks_exact(v).zip(targets) {
        total += logsumexp(row) - row[t as usize] as f64;
    }
    (total / n as f64) as f32
}

/// Index of the largest element (the first one on ties). NaNs are never
/// selected unless every element is NaN (then 0). Panics on an empty slice.
pub fn argmax(x: &[f32]) -> usize {
    assert!(!x.is_empty(), "argmax: empty slice");
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in x.iter().enumerate() {
        if v > best_v || (!found && v == f32::NEG_INFINITY) {
            best = i;
            best_v = v;
            found = true;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut x = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0];
        softmax(&mut x, 2, 3);
        let e: f32 = 1.0 + 1f32.exp() + 2f32.exp();
        assert!((x[2] - 2f32.exp() / e).abs() < 1e-7);
        assert!((x[3] - 1.0 / 3.0).abs() < 1e-7);
        let mut l = [0.0, 0.0];
        log_softmax(&mut l);
        assert!((l[0] + 2f32.ln()).abs() < 1e-7);
        let loss = cross_entropy(&[0.0, 0.0, 0.0, 10.0], &[0, 1], 2, 2);
        let want = (2f64.ln() + (1.0 + (-10f64).exp()).ln()) / 2.0;
        assert!((loss as f64 - want).abs() < 1e-7);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax(&[f32::NAN]), 0);
    }
}
