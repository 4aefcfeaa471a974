//! Test helpers: a seeded RNG, random data, closeness checks and a
//! finite-difference gradient checker.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::WeightElem;

/// Deterministic RNG for tests.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `len` values uniform in `[-1, 1)`.
pub(crate) fn uniform(r: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

/// `len` token ids below `vocab`.
pub(crate) fn ids(r: &mut StdRng, len: usize, vocab: usize) -> Vec<u32> {
    (0..len).map(|_| r.random_range(0..vocab as u32)).collect()
}

/// Rounds `f32` values to the weight type.
pub(crate) fn to_w<W: WeightElem>(v: &[f32]) -> Vec<W> {
    v.iter().map(|&x| W::from_f32(x)).collect()
}

/// Asserts `|got - want| <= atol + rtol·|want|` element-wise, reporting the
/// worst element.
#[track_caller]
pub(crate) fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let tol = atol + rtol * w.abs();
        let ok = err <= tol || (g.is_nan() && w.is_nan()) || g == w;
        if !ok && worst.is_none_or(|(_, e)| err / tol > e) {
            worst = Some((i, err / tol));
        }
    }
    if let Some((i, ratio)) = worst {
        panic!(
            "{what}: element {i}: got {} want {} (error {:.3}x the tolerance atol {atol} + rtol {rtol})",
            got[i], want[i], ratio
        );
    }
}

/// Checks an analytic gradient against central finite differences.
///
/// `loss(p)` evaluates the scalar loss for the parameter vector `p` (in `f64`
/// accumulation over the `f32` forward outputs); `grad` is the analytic
/// gradient at `p0`. Uses step `eps` and asserts
/// `|fd - grad| <= atol + rtol·max(|fd|, |grad|)` for every coordinate.
#[track_caller]
pub(crate) fn check_grad(
    what: &str,
    p0: &[f32],
    grad: &[f32],
    loss: &mut dyn FnMut(&[f32]) -> f64,
    eps: f32,
    rtol: f64,
    atol: f64,
) {
    assert_eq!(p0.len(), grad.len(), "{what}: grad length");
    let mut p = p0.to_vec();
    for i in 0..p.len() {
        let orig = p[i];
        p[i] = orig + eps;
        let lp = loss(&p);
        p[i] = orig - eps;
        let lm = loss(&p);
        p[i] = orig;
        // the actual step after f32 rounding
        let h = ((orig + eps) as f64) - ((orig - eps) as f64);
        let fd = (lp - lm) / h;
        let g = grad[i] as f64;
        let tol = atol + rtol * fd.abs().max(g.abs());
        assert!((fd - g).abs() <= tol, "{what}[{i}]: finite difference {fd:.6e} vs analytic {g:.6e} (tol {tol:.2e})");
    }
}

/// `Σ y·r` in `f64`: a random linear functional used as the scalar loss in
/// gradient checks (its gradient w.r.t. `y` is `r`).
pub(crate) fn project(y: &[f32], r: &[f32]) -> f64 {
    y.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum()
}
