//! Fast LayerNorm and RMSNorm: rows in parallel, vectorized reductions.

use super::{par, simd};
use crate::elem::widen;
use crate::reference::check_norm;
use crate::shape::check_len;
use crate::WeightElem;

/// LayerNorm over rows of `x[n,d]`:
/// `y = (x - mean) / sqrt(var + eps) * gamma (+ beta)`, biased variance
/// (two-pass: mean, then squared deviations).
#[allow(clippy::too_many_arguments)]
pub fn layernorm<W: WeightElem>(
    x: &[f32],
    gamma: &[W],
    beta: Option<&[W]>,
    y: &mut [f32],
    n: usize,
    d: usize,
    eps: f32,
) {
    check_norm("layernorm", x, gamma, y, n, d);
    if let Some(b) = beta {
        check_len("layernorm", "beta", b.len(), d);
    }
    let g = widen(gamma);
    let b = beta.map(widen);
    par::rows_mut(y, d, 4 * d, |row0, rows| {
        for (r, yr) in rows.chunks_exact_mut(d).enumerate() {
            let xr = &x[(row0 + r) * d..(row0 + r + 1) * d];
            let (mean, rstd) = layernorm_stats(xr, eps);
            match &b {
                Some(b) => {
                    for (((yv, &xv), &gv), &bv) in yr.iter_mut().zip(xr).zip(&g).zip(b) {
                        *yv = (xv - mean) * rstd * gv + bv;
                    }
                }
                None => {
                    for ((yv, &xv), &gv) in yr.iter_mut().zip(xr).zip(&g) {
                        *yv = (xv - mean) * rstd * gv;
                    }
                }
            }
        }
    });
}

/// `(mean, 1/sqrt(var + eps))` of one row (also used by the backward pass).
pub(crate) fn layernorm_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let d = x.len().max(1) as f32;
    let mean = simd::sum(x) / d;
    let var = simd::sum_sq_dev(x, mean) / d;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `1/sqrt(mean(x²) + eps)` of one row (also used by the backward pass).
pub(crate) fn rms_rstd(x: &[f32], eps: f32) -> f32 {
    let d = x.len().max(1) as f32;
    1.0 / (simd::sum_sq_dev(x, 0.0) / d + eps).sqrt()
}

/// RMSNorm (Llama) over rows of `x[n,d]`: `y = x / sqrt(mean(x²) + eps) * gamma`.
pub fn rmsnorm<W: WeightElem>(x: &[f32], gamma: &[W], y: &mut [f32], n: usize, d: usize, eps: f32) {
    check_norm("rmsnorm", x, gamma, y, n, d);
    let g = widen(gamma);
    par::rows_mut(y, d, 3 * d, |row0, rows| {
        for (r, yr) in rows.chunks_exact_mut(d).enumerate() {
            let xr = &x[(row0 + r) * d..(row0 + r + 1) * d];
            let rstd = rms_rstd(xr, eps);
            for ((yv, &xv), &gv) in yr.iter_mut().zip(xr).zip(&g) {
                *yv = xv * rstd * gv;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

    use super::*;
    use crate::reference;
    use crate::testutil::{assert_close, rng, to_w, uniform};

    /// Tolerance rtol 1e-5, atol 1e-5: outputs are O(1) (normalized values
    /// times gamma in [-1, 1]); `f32` mean/variance over d ≤ 1000 carry a
    /// relative error of a few 1e-7, and a wrong statistic would be off by
    /// O(1e-2) or more.
    fn run<W: WeightElem>() {
        let mut r = rng(7);
        for &n in &[1, 2, 7, 33, 130] {
            for &d in &[1, 7, 33, 130, 1000] {
                // offset rows test the two-pass variance
                let x: Vec<f32> = uniform(&mut r, n * d).iter().map(|v| v * 3.0 + 2.0).collect();
                let g: Vec<W> = to_w(&uniform(&mut r, d));
                let b: Vec<W> = to_w(&uniform(&mut r, d));
                let (mut got, mut want) = (vec![0.0; n * d], vec![0.0; n * d]);
                for beta in [None, Some(&b[..])] {
                    layernorm(&x, &g, beta, &mut got, n, d, 1e-5);
                    reference::layernorm(&x, &g, beta, &mut want, n, d, 1e-5);
                    assert_close(&format!("layernorm {n}x{d}"), &got, &want, 1e-5, 1e-5);
                }
                rmsnorm(&x, &g, &mut got, n, d, 1e-6);
                reference::rmsnorm(&x, &g, &mut want, n, d, 1e-6);
                assert_close(&format!("rmsnorm {n}x{d}"), &got, &want, 1e-5, 1e-5);
            }
        }
    }

    #[test]
    fn matches_reference_f32() {
        run::<f32>();
    }

    #[test]
    fn matches_reference_f16() {
        run::<f16>();
    }

    #[test]
    fn matches_reference_bf16() {
        run::<bf16>();
    }
}
